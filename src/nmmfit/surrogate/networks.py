"""Surrogate networks: FC+FCD cost predictors and a validity classifier (torch).

Every network takes the same four float32 inputs (see :mod:`nmmfit.surrogate.features`):

- ``tokens`` [B, N, 3]: scaled (wEE_i, wEI_i, sigma_i) per region;
- ``sc_rows`` [B, N, N]: G-scaled SC, row i = region i's input weights;
- ``fc_upper`` [B, N(N-1)/2]: the target FC's strict upper triangle;
- ``fcd_pdf`` [B, n_bins]: the target FCD probability mass per bin (scaled).

Cost predictors return [B, 3] = (fc_corr in [0, 2], fc_l1 in [0, 2], fcd_ks in [0, 1]); the
classifier returns [B] logits of "the simulation is valid". Each module keeps its constructor
arguments in ``self.config`` (plain types) so that :mod:`nmmfit.surrogate.store` can rebuild it.

One concept, the surrogate networks (the classes share their input layers and the search-time
forward path of :mod:`nmmfit.surrogate.fastpath`); the length is the five architectures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nmmfit.stats.cost import fc_level, ks_distance
from nmmfit.surrogate.fastpath import FoldedLayer, FoldedSearchContext, SearchContext, TokenMap

__all__ = [
    "RegionTransformer",
    "CostPredictor",
    "MLPCostPredictor",
    "StructuredCostPredictor",
    "structured_terms",
    "folded_normal_mean",
    "cdf_points",
    "ValidityClassifier",
    "MLPValidityClassifier",
    "MODEL_CLASSES",
    "build_model",
    "make_mlp",
]


def make_mlp(d_in: int, d_out: int, hidden: Sequence[int] = (), dropout: float = 0.0) -> nn.Module:
    """Linear layers with GELU (and optional dropout) between them; ``hidden`` = hidden widths.

    ``hidden=()`` gives a single ``Linear(d_in, d_out)``, as in the group-level DELSSOME code.
    """
    layers: list[nn.Module] = []
    prev = int(d_in)
    for h in hidden:
        layers += [nn.Linear(prev, int(h)), nn.GELU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = int(h)
    layers.append(nn.Linear(prev, int(d_out)))
    return nn.Sequential(*layers) if len(layers) > 1 else layers[0]


def _check_inputs(tokens: torch.Tensor, sc_rows: torch.Tensor, fc_upper: torch.Tensor,
                  fcd_pdf: torch.Tensor, n_regions: int, n_fcd_bins: int) -> None:
    """Raise ``ValueError`` naming the input whose shape does not fit the network."""
    n, k = n_regions, n_regions * (n_regions - 1) // 2
    if tokens.ndim != 3 or tokens.shape[1:] != (n, 3):
        raise ValueError(f"tokens must be [B, {n}, 3] (B, regions, wEE/wEI/sigma), got shape "
                         f"{tuple(tokens.shape)}")
    b = tokens.shape[0]
    expect = {"sc_rows": (sc_rows, (b, n, n)), "fc_upper": (fc_upper, (b, k)),
              "fcd_pdf": (fcd_pdf, (b, n_fcd_bins))}
    for name, (arr, shape) in expect.items():
        if tuple(arr.shape) != shape:
            raise ValueError(f"{name} must have shape {list(shape)} for {n} regions, "
                             f"{n_fcd_bins} FCD bins and batch {b}, got shape {tuple(arr.shape)}")


def _cost_output(fc_logits: torch.Tensor, fcd_logit: torch.Tensor) -> torch.Tensor:
    """[B, 2] and [B, 1] logits -> [B, 3] costs: 2 sigmoid (FC terms, [0, 2]), sigmoid (KS)."""
    return torch.cat([2.0 * torch.sigmoid(fc_logits), torch.sigmoid(fcd_logit)], dim=-1)


class _SurrogateNet(nn.Module):
    """Common base: stores ``config``, ``n_regions`` and ``n_fcd_bins``; checks inputs."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = dict(config)
        self.n_regions = int(config["n_regions"])
        self.n_fcd_bins = int(config["n_fcd_bins"])
        if self.n_regions < 2 or self.n_fcd_bins < 1:
            raise ValueError(f"n_regions must be >= 2 and n_fcd_bins >= 1, got {self.n_regions} "
                             f"and {self.n_fcd_bins}")

    def check_inputs(self, tokens, sc_rows, fc_upper, fcd_pdf) -> None:
        _check_inputs(tokens, sc_rows, fc_upper, fcd_pdf, self.n_regions, self.n_fcd_bins)

    def forward(self, tokens: torch.Tensor, sc_rows: torch.Tensor, fc_upper: torch.Tensor,
                fcd_pdf: torch.Tensor) -> torch.Tensor:
        """Network output for a batch whose rows each carry their target's FC and FCD."""
        self.check_inputs(tokens, sc_rows, fc_upper, fcd_pdf)
        return self.forward_cached(tokens, sc_rows, self.embed_target(fc_upper, fcd_pdf))

    def embed_target(self, fc_upper: torch.Tensor, fcd_pdf: torch.Tensor):
        """The target-only part of the network (FC and FCD embeddings) for [T] targets.

        A fit scores many candidates against one target: computing this once and passing
        it to :meth:`forward_cached` (rows broadcast against a single target) removes the
        per-candidate cost of the large FC / FCD layers.
        """
        raise NotImplementedError

    def forward_cached(self, tokens: torch.Tensor, sc_rows: torch.Tensor, target_emb):
        """Output from candidate inputs and :meth:`embed_target`'s result (its leading size
        is the batch size, or 1 to broadcast one target over the batch)."""
        raise NotImplementedError

    def search_context(self, sc: torch.Tensor, target_emb, token_map=None):
        """Everything about one target that :meth:`forward_search` reuses across calls
        (:mod:`nmmfit.surrogate.fastpath`).

        sc : the prepared (scaled) SC, [1, N, N]; target_emb : :meth:`embed_target` of that
        target (leading size 1); token_map : optional (A [C, 3N], a0 [3N]) with which
        :meth:`forward_search` takes C search inputs per candidate instead of tokens
        (``tokens.flatten(1) = inputs @ A + a0``: the tokens are an affine function of the
        search vector, :func:`~nmmfit.surrogate.features.token_affine_map`). This base
        version keeps them (a :class:`~nmmfit.surrogate.fastpath.SearchContext`); the MLP
        family folds the target's share of its first fusion layer into a bias, the token map
        into its parameter layer and the SC row statistics into its SC layer (inference only;
        a :class:`~nmmfit.surrogate.fastpath.FoldedSearchContext`).
        """
        if token_map is None:
            return SearchContext(sc, target_emb)
        tm = TokenMap.checked(token_map, self.n_regions)
        return SearchContext(sc, target_emb, TokenMap(tm.a.float(), tm.a0.float()))

    def forward_search(self, inputs: torch.Tensor, g: torch.Tensor,
                       ctx: SearchContext) -> torch.Tensor:
        """Inference output for candidates of one target: equals
        ``forward_cached(tokens, g[:, None, None] * sc, emb)`` (up to float rounding).

        inputs : tokens [B, N, 3] (scaled regional parameters), or [B, C] search inputs when
        ``ctx`` holds a token map; g : [B] global coupling G; ctx : :meth:`search_context`.
        For evaluation only (no dropout, no gradients needed).
        """
        tokens = inputs
        if ctx.token_map is not None:
            tokens = ctx.token_map.tokens(inputs, self.n_regions)
        return self.forward_cached(tokens, g[:, None, None] * ctx.sc, ctx.target_emb)


class RegionTransformer(nn.Module):
    """The "FIC-model embedding" trunk of DELSSOME's MultiModalCostPredictor.

    ParamEmbedder MLP(3 -> d/2) + LayerNorm and SCEmbedder MLP(N -> d/2) + LayerNorm (per SC
    row) are concatenated into region tokens [B, N, d]; a learned CLS token is prepended (no
    positional encoding), then a post-norm ``nn.TransformerEncoder`` (feed-forward 4d, GELU)
    and a final LayerNorm. ``forward`` returns the CLS output [B, d].

    Symmetry: permuting the region tokens together with the SC *rows* leaves the CLS output
    unchanged. Permuting SC *columns* changes it, because the SC embedder is a dense layer over
    a row (as in the published model), so the network is tied to one region order.
    """

    def __init__(self, n_regions: int, d_model: int = 64, n_layers: int = 4, n_heads: int = 8,
                 mlp_hidden: Sequence[int] = (), dropout: float = 0.1) -> None:
        super().__init__()
        if d_model % 2 or d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be even and divisible by n_heads "
                             f"({n_heads})")
        half = d_model // 2
        self.param_embed = nn.Sequential(make_mlp(3, half, mlp_hidden), nn.LayerNorm(half))
        self.sc_embed = nn.Sequential(make_mlp(n_regions, half, mlp_hidden), nn.LayerNorm(half))
        self.cls_token = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=4 * d_model,
                                           dropout=dropout, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: torch.Tensor, sc_rows: torch.Tensor,
                return_all: bool = False) -> torch.Tensor:
        """tokens [B, N, 3], sc_rows [B, N, N] -> CLS output [B, d] (or all [B, N+1, d])."""
        x = torch.cat([self.param_embed(tokens), self.sc_embed(sc_rows)], dim=-1)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.norm(self.encoder(x))
        return x if return_all else x[:, 0]


class _TargetEmbedders(nn.Module):
    """FCEmbedder MLP(N(N-1)/2 -> d) + LayerNorm; FCD embedder LayerNorm(n_bins) ->
    MLP(n_bins -> d) -> LayerNorm."""

    def __init__(self, n_regions: int, n_fcd_bins: int, d_model: int,
                 mlp_hidden: Sequence[int] = ()) -> None:
        super().__init__()
        k = n_regions * (n_regions - 1) // 2
        self.fc_embed = nn.Sequential(make_mlp(k, d_model, mlp_hidden), nn.LayerNorm(d_model))
        self.fcd_embed = nn.Sequential(nn.LayerNorm(n_fcd_bins),
                                       make_mlp(n_fcd_bins, d_model, mlp_hidden),
                                       nn.LayerNorm(d_model))

    def forward(self, fc_upper: torch.Tensor, fcd_pdf: torch.Tensor):
        return self.fc_embed(fc_upper), self.fcd_embed(fcd_pdf)


class _TransformerNet(_SurrogateNet):
    """Shared constructor of the transformer networks: the :class:`RegionTransformer` trunk and
    the FC / FCD embedders; ``config`` records the constructor arguments."""

    def __init__(self, n_regions: int, n_fcd_bins: int, d_model: int, n_layers: int,
                 n_heads: int, mlp_hidden: Sequence[int], dropout: float) -> None:
        mlp_hidden = [int(h) for h in mlp_hidden]
        super().__init__(dict(n_regions=int(n_regions), n_fcd_bins=int(n_fcd_bins),
                              d_model=int(d_model), n_layers=int(n_layers), n_heads=int(n_heads),
                              mlp_hidden=mlp_hidden, dropout=float(dropout)))
        self.trunk = RegionTransformer(n_regions, d_model, n_layers, n_heads, mlp_hidden, dropout)
        self.targets = _TargetEmbedders(n_regions, n_fcd_bins, d_model, mlp_hidden)


class CostPredictor(_TransformerNet):
    """DELSSOME's MultiModalCostPredictor: CLS transformer over regions + FC/FCD embeddings.

    FC head: LayerNorm(cls + fc_emb) -> MLP -> 2 -> 2 * sigmoid (fc_corr, fc_l1 in [0, 2]).
    FCD head: LayerNorm(cls + fcd_emb) -> MLP -> 1 -> sigmoid (fcd_ks in [0, 1]).
    The fusions are sums of d-vectors. Defaults are the group-level release (d 64, 4 layers,
    8 heads, single-Linear MLPs, dropout 0.1).
    """

    def __init__(self, n_regions: int, n_fcd_bins: int, d_model: int = 64, n_layers: int = 4,
                 n_heads: int = 8, mlp_hidden: Sequence[int] = (), dropout: float = 0.1) -> None:
        super().__init__(n_regions, n_fcd_bins, d_model, n_layers, n_heads, mlp_hidden, dropout)
        mlp_hidden = self.config["mlp_hidden"]
        self.fc_head = nn.Sequential(nn.LayerNorm(d_model), make_mlp(d_model, 2, mlp_hidden))
        self.fcd_head = nn.Sequential(nn.LayerNorm(d_model), make_mlp(d_model, 1, mlp_hidden))

    def embed_target(self, fc_upper: torch.Tensor, fcd_pdf: torch.Tensor):
        """(fc_emb [T, d], fcd_emb [T, d])."""
        return self.targets(fc_upper, fcd_pdf)

    def forward_cached(self, tokens: torch.Tensor, sc_rows: torch.Tensor, target_emb):
        """-> [B, 3] predicted (fc_corr, fc_l1, fcd_ks)."""
        fc_emb, fcd_emb = target_emb
        cls = self.trunk(tokens, sc_rows)
        return _cost_output(self.fc_head(cls + fc_emb), self.fcd_head(cls + fcd_emb))


class MLPCostPredictor(_SurrogateNet):
    """Fast MLP baseline with the same inputs and outputs as :class:`CostPredictor`.

    Four branches, each Linear -> GELU -> LayerNorm to ``width``:
    parameters (flattened tokens, 3N), SC summary (per-region G-scaled in-strength and max
    input weight, 2N: pooled row statistics instead of all N^2 entries), FC upper triangle, and
    FCD PDF (after LayerNorm(n_bins)). The four are concatenated and a fusion MLP
    (``mlp_hidden``, with dropout) maps them to 3 logits -> (2 sigmoid, 2 sigmoid, sigmoid).
    No attention: cost O(B (N + N^2 + n_bins) width); it ties the network to one region order.
    """

    def __init__(self, n_regions: int, n_fcd_bins: int, width: int = 128,
                 mlp_hidden: Sequence[int] = (128,), dropout: float = 0.1) -> None:
        mlp_hidden = [int(h) for h in mlp_hidden]
        super().__init__(dict(n_regions=int(n_regions), n_fcd_bins=int(n_fcd_bins),
                              width=int(width), mlp_hidden=mlp_hidden, dropout=float(dropout)))
        k = n_regions * (n_regions - 1) // 2

        def branch(d_in: int) -> nn.Module:
            return nn.Sequential(nn.Linear(d_in, width), nn.GELU(), nn.LayerNorm(width))

        self.param_branch = branch(3 * n_regions)
        self.sc_branch = branch(2 * n_regions)
        self.fc_branch = branch(k)
        self.fcd_branch = nn.Sequential(nn.LayerNorm(n_fcd_bins), branch(n_fcd_bins))
        self.fusion = nn.Sequential(nn.Dropout(dropout),
                                    make_mlp(4 * width, 3, mlp_hidden, dropout=dropout))

    def embed_target(self, fc_upper: torch.Tensor, fcd_pdf: torch.Tensor):
        """[T, 2 width]: the FC and FCD branches."""
        return torch.cat([self.fc_branch(fc_upper), self.fcd_branch(fcd_pdf)], dim=-1)

    @staticmethod
    def _sc_stats(sc_rows: torch.Tensor) -> torch.Tensor:
        """[B, 2N]: each region's in-strength (row sum) and largest input weight (row max)."""
        return torch.cat([sc_rows.sum(dim=-1), sc_rows.amax(dim=-1)], dim=-1)

    def _candidate(self, tokens: torch.Tensor, sc_rows: torch.Tensor) -> torch.Tensor:
        """[B, 2 width]: the parameter and SC-summary branches (no target)."""
        return torch.cat([self.param_branch(tokens.flatten(1)),
                          self.sc_branch(self._sc_stats(sc_rows))], dim=-1)

    @staticmethod
    def _fuse(cand: torch.Tensor, target_emb: torch.Tensor) -> torch.Tensor:
        """Candidate features joined with the target embedding (broadcast when it has 1 row)."""
        tgt = target_emb.expand(cand.shape[0], -1) if target_emb.shape[0] == 1 else target_emb
        return torch.cat([cand, tgt], dim=-1)

    def _features(self, tokens: torch.Tensor, sc_rows: torch.Tensor, target_emb):
        return self._fuse(self._candidate(tokens, sc_rows), target_emb)

    def search_context(self, sc: torch.Tensor, target_emb, token_map=None):
        """Per-target reuse for :meth:`forward_search` (see the base class), all exact up to
        float rounding:

        - SC branch: its first layer applied to the unscaled (G = 1) SC row statistics; the
          statistics scale with G > 0, so a candidate's pre-activation is ``G W s + b``;
        - parameter branch: with a token map, its first layer composed with the map
          (``W (inputs A + a0) + b``: C inputs instead of 3N tokens);
        - fusion: its first layer split into candidate weights and a bias that already
          holds the target embedding's share.
        """
        if self.training:
            raise RuntimeError("search_context is for inference: call model.eval() first")
        emb = target_emb[0] if isinstance(target_emb, tuple) else target_emb
        if sc.shape[0] != 1 or emb.shape[0] != 1:
            raise ValueError(f"search_context takes one target, got SC shape {tuple(sc.shape)} "
                             f"and an embedding of shape {tuple(emb.shape)}")
        tm = None if token_map is None else TokenMap.checked(token_map, self.n_regions)
        return FoldedSearchContext(
            param=FoldedLayer.fold(self.param_branch, None if tm is None else (tm.a, tm.a0)),
            sc_stats=FoldedLayer.fold(self.sc_branch, (self._sc_stats(sc), None)),
            fusion=FoldedLayer.split(self.fusion, emb), target_emb=target_emb)

    def _candidate_search(self, inputs: torch.Tensor, g: torch.Tensor,
                          ctx: FoldedSearchContext) -> torch.Tensor:
        """:meth:`_candidate` for sc_rows = g * SC of one target from :meth:`search_context`'s
        folded first layers (no [B, N, N] rows, no [B, 3N] tokens when it has a token map)."""
        return torch.cat([ctx.param(inputs.flatten(1)),
                          ctx.sc_stats(g[:, None].to(inputs.dtype))], dim=-1)

    def forward_search(self, inputs: torch.Tensor, g: torch.Tensor,
                       ctx: FoldedSearchContext) -> torch.Tensor:
        out = ctx.fusion(self._candidate_search(inputs, g, ctx))
        return _cost_output(out[:, :2], out[:, 2:])

    def forward_cached(self, tokens: torch.Tensor, sc_rows: torch.Tensor, target_emb):
        """-> [B, 3] predicted (fc_corr, fc_l1, fcd_ks)."""
        out = self.fusion(self._features(tokens, sc_rows, target_emb))
        return _cost_output(out[:, :2], out[:, 2:])


def cdf_points(n_bins: int, k: int):
    """Indices [k] (int64 numpy) of the FCD bins at which the structured predictor compares
    CDFs: k evenly spaced bins from the first, the last bin (where every CDF is 1) left out.
    A bin's CDF value is the mass up to and including that bin."""
    return np.round(np.linspace(0, n_bins - 1, int(k) + 1)[:-1]).astype(np.int64)


def folded_normal_mean(mu: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """E|X| for X ~ Normal(mu, scale^2), elementwise (``scale`` > 0).

    = scale sqrt(2/pi) exp(-mu^2 / (2 scale^2)) + mu (1 - 2 Phi(-mu / scale)). It is the
    expected |m_sim - m_emp| when the simulated FC mean m_sim scatters around ``mu`` + m_emp
    from one noise realisation to the next.
    """
    z = mu / scale
    return (scale * (2.0 / torch.pi) ** 0.5 * torch.exp(-0.5 * z * z)
            + mu * (1.0 - 2.0 * torch.special.ndtr(-z)))


def structured_terms(mu: torch.Tensor, spread: torch.Tensor, tau: torch.Tensor,
                     cdf_sim: torch.Tensor, m_emp: torch.Tensor,
                     cdf_emp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fc_l1 [B, 1], fcd_ks [B, 1]) of the structured predictor from predicted summaries.

    The distances are the cost's own (:func:`nmmfit.stats.cost.fc_level`,
    :func:`nmmfit.stats.cost.ks_distance`), taken in expectation over noise realisations:
    fc_l1 = E|m_sim - m_emp| with m_sim ~ Normal(``mu``, ``spread``^2)
    (:func:`folded_normal_mean`); fcd_ks = min(1, sqrt(KS^2 + ``tau``^2)) with KS the
    cost's distance between ``cdf_sim`` and ``cdf_emp``. With ``spread`` -> 0 and ``tau`` = 0
    they are the cost's fc_l1 and fcd_ks of a simulation whose FC level is ``mu`` and whose
    FCD CDF is ``cdf_sim`` (at the compared bins).

    Shapes: ``mu``, ``spread``, ``tau``, ``m_emp`` [B, 1] (or broadcastable), ``cdf_sim`` and
    ``cdf_emp`` [B, K].
    """
    fc_l1 = folded_normal_mean(mu - m_emp, spread)
    ks = ks_distance(cdf_sim, cdf_emp)[:, None]
    return fc_l1, torch.sqrt(ks * ks + tau * tau).clamp_max(1.0)


class StructuredCostPredictor(MLPCostPredictor):
    """MLP predictor whose fc_l1 and fcd_ks terms are computed from predicted simulation
    summaries, so that the target enters them exactly as it does in the cost function.

    ``fc_l1 = |mean simulated FC - mean empirical FC|`` and ``fcd_ks = max |F_sim - F_emp|``
    (:func:`nmmfit.stats.cost.distance`) depend on the target only through its mean FC and
    its FCD CDF, and :func:`structured_terms` computes them with the cost's definitions. This
    network predicts, from the candidate inputs alone (the parameter and SC branches of
    :class:`MLPCostPredictor`, no target embedding):

    - the simulated FC mean mu and its scatter s over noise realisations; fc_l1 is the
      expected |m_sim - m_emp| under Normal(mu, s^2) (:func:`folded_normal_mean`);
    - the simulated FCD CDF at ``n_cdf_points`` evenly spaced bin edges (a softmax over
      ``n_cdf_points + 1`` masses, cumulated, so it is monotone and in [0, 1]) and a noise
      floor tau; fcd_ks = min(1, sqrt(KS^2 + tau^2)) with KS the largest gap to the target's
      CDF at those points.

    fc_corr keeps the fused (candidate + target embedding) head. A target unlike any training
    target therefore changes fc_l1 and fcd_ks through the formulas rather than through learned
    target embeddings, which is what transfer to new subjects and cohorts needs.

    ``fc_scale`` must equal the :class:`~nmmfit.surrogate.features.Normaliser`'s (the FC input
    is ``FC / fc_scale``); the FCD PDF input is normalised by its own sum, so its scale does
    not matter.
    """

    def __init__(self, n_regions: int, n_fcd_bins: int, width: int = 128,
                 mlp_hidden: Sequence[int] = (128,), dropout: float = 0.1,
                 n_cdf_points: int = 200, fc_scale: float = 1.0) -> None:
        super().__init__(n_regions, n_fcd_bins, width, mlp_hidden, dropout)
        k = int(n_cdf_points)
        if not 2 <= k <= n_fcd_bins:
            raise ValueError(f"n_cdf_points must lie in [2, n_fcd_bins={n_fcd_bins}], got {k}")
        if not float(fc_scale) > 0:
            raise ValueError(f"fc_scale must be > 0, got {fc_scale}")
        self.config.update(n_cdf_points=k, fc_scale=float(fc_scale))
        hidden = [int(h) for h in mlp_hidden]
        self.fusion = nn.Sequential(nn.Dropout(dropout),
                                    make_mlp(4 * width, 1, hidden, dropout=dropout))
        idx = torch.from_numpy(cdf_points(n_fcd_bins, k))
        self.register_buffer("cdf_index", idx, persistent=False)
        self.sim_head = make_mlp(2 * width, 3 + k + 1, hidden, dropout=dropout)

    def embed_target(self, fc_upper: torch.Tensor, fcd_pdf: torch.Tensor):
        """(fused-branch embedding [T, 2 width], mean FC [T, 1], FCD CDF at the points [T, K])."""
        m_emp = fc_level(fc_upper)[:, None] * self.config["fc_scale"]
        cdf = torch.cumsum(fcd_pdf, dim=-1)
        cdf = cdf / cdf[:, -1:].clamp_min(1e-12)
        return super().embed_target(fc_upper, fcd_pdf), m_emp, cdf[:, self.cdf_index]

    def _summaries(self, cand: torch.Tensor):
        h = self.sim_head(cand)
        mu = torch.tanh(h[:, :1])
        spread = nn.functional.softplus(h[:, 1:2]) * 0.1 + 1e-4
        tau = nn.functional.softplus(h[:, 2:3]) * 0.1
        cdf_sim = torch.cumsum(torch.softmax(h[:, 3:], dim=-1), dim=-1)[:, :-1]
        return mu, spread, tau, cdf_sim

    def summaries(self, tokens: torch.Tensor, sc_rows: torch.Tensor) -> torch.Tensor:
        """[B, 1 + K]: the predicted simulated FC mean and FCD CDF at the ``cdf_index`` bins
        (expected over noise realisations; no target involved)."""
        mu, _, _, cdf_sim = self._summaries(self._candidate(tokens, sc_rows))
        return torch.cat([mu, cdf_sim], dim=-1)

    def _heads(self, cand: torch.Tensor, target_emb, corr_logit: torch.Tensor | None = None):
        """(costs [B, 3], summaries [B, 1 + K]) from the candidate features, in one pass
        (``corr_logit``: the fused head's output when the caller has it already)."""
        emb, m_emp, cdf_emp = target_emb
        if corr_logit is None:
            corr_logit = self.fusion(self._fuse(cand, emb))
        mu, spread, tau, cdf_sim = self._summaries(cand)
        fc_l1, ks = structured_terms(mu, spread, tau, cdf_sim, m_emp, cdf_emp)
        costs = torch.cat([2.0 * torch.sigmoid(corr_logit), fc_l1, ks], dim=-1)
        return costs, torch.cat([mu, cdf_sim], dim=-1)

    def forward_cached(self, tokens: torch.Tensor, sc_rows: torch.Tensor, target_emb):
        """-> [B, 3] predicted (fc_corr, fc_l1, fcd_ks)."""
        return self._heads(self._candidate(tokens, sc_rows), target_emb)[0]

    def forward_search(self, inputs: torch.Tensor, g: torch.Tensor,
                       ctx: FoldedSearchContext) -> torch.Tensor:
        cand = self._candidate_search(inputs, g, ctx)
        return self._heads(cand, ctx.target_emb, corr_logit=ctx.fusion(cand))[0]

    def forward_with_summaries(self, tokens: torch.Tensor, sc_rows: torch.Tensor,
                               fc_upper: torch.Tensor, fcd_pdf: torch.Tensor) -> torch.Tensor:
        """[B, 3 + 1 + K]: the costs, then the summaries (:meth:`summaries`), both from the
        same forward pass (one dropout draw in training mode)."""
        self.check_inputs(tokens, sc_rows, fc_upper, fcd_pdf)
        cand = self._candidate(tokens, sc_rows)
        return torch.cat(self._heads(cand, self.embed_target(fc_upper, fcd_pdf)), dim=-1)


class ValidityClassifier(_TransformerNet):
    """Within-range classifier: the :class:`RegionTransformer` trunk (smaller by default) plus
    the FC/FCD embedders; head LayerNorm(cls + fc_emb + fcd_emb) -> MLP -> 1 logit.

    ``forward`` returns [B] logits; ``sigmoid(logit)`` is the probability that the candidate's
    simulation is valid.
    """

    def __init__(self, n_regions: int, n_fcd_bins: int, d_model: int = 32, n_layers: int = 2,
                 n_heads: int = 4, mlp_hidden: Sequence[int] = (), dropout: float = 0.1) -> None:
        super().__init__(n_regions, n_fcd_bins, d_model, n_layers, n_heads, mlp_hidden, dropout)
        mlp_hidden = self.config["mlp_hidden"]
        self.head = nn.Sequential(nn.LayerNorm(d_model), make_mlp(d_model, 1, mlp_hidden))

    def embed_target(self, fc_upper: torch.Tensor, fcd_pdf: torch.Tensor):
        """[T, d]: the summed FC and FCD embeddings."""
        fc_emb, fcd_emb = self.targets(fc_upper, fcd_pdf)
        return fc_emb + fcd_emb

    def forward_cached(self, tokens: torch.Tensor, sc_rows: torch.Tensor, target_emb):
        """-> [B] logits of validity."""
        return self.head(self.trunk(tokens, sc_rows) + target_emb).squeeze(-1)


class MLPValidityClassifier(MLPCostPredictor):
    """Fast classifier: the :class:`MLPCostPredictor` branches and fusion with one logit out.

    ``forward`` returns [B] logits of "the simulation is valid".
    """

    def __init__(self, n_regions: int, n_fcd_bins: int, width: int = 128,
                 mlp_hidden: Sequence[int] = (128,), dropout: float = 0.1) -> None:
        super().__init__(n_regions, n_fcd_bins, width, mlp_hidden, dropout)
        self.fusion = nn.Sequential(nn.Dropout(dropout),
                                    make_mlp(4 * width, 1, [int(h) for h in mlp_hidden],
                                             dropout=dropout))

    def forward_cached(self, tokens: torch.Tensor, sc_rows: torch.Tensor, target_emb):
        """-> [B] logits of validity."""
        return self.fusion(self._features(tokens, sc_rows, target_emb)).squeeze(-1)

    def forward_search(self, inputs: torch.Tensor, g: torch.Tensor,
                       ctx: FoldedSearchContext) -> torch.Tensor:
        return ctx.fusion(self._candidate_search(inputs, g, ctx)).squeeze(-1)


#: Class name -> class, for rebuilding saved models.
MODEL_CLASSES: dict[str, type[_SurrogateNet]] = {
    "CostPredictor": CostPredictor,
    "MLPCostPredictor": MLPCostPredictor,
    "StructuredCostPredictor": StructuredCostPredictor,
    "ValidityClassifier": ValidityClassifier,
    "MLPValidityClassifier": MLPValidityClassifier,
}


def build_model(class_name: str, config: dict) -> nn.Module:
    """Rebuild a network from its class name and ``config`` (its constructor kwargs)."""
    if class_name not in MODEL_CLASSES:
        raise ValueError(f"unknown surrogate network class {class_name!r}; known: "
                         f"{sorted(MODEL_CLASSES)}")
    return MODEL_CLASSES[class_name](**config)
