"""The per-target fast path of the surrogate networks (inference only).

A fit scores many candidates against one target. Everything about that target that a network
reuses across calls is computed once, into a typed context, by the network's
``search_context``; ``forward_search`` then takes only the candidates' inputs and G. Both are
methods of the networks (:mod:`nmmfit.surrogate.networks`); this module holds what they
exchange and the folding of first layers:

- :class:`TokenMap`: the search vector -> token map (``tokens.flatten(1) = inputs @ a + a0``,
  :func:`~nmmfit.surrogate.features.token_affine_map`);
- :class:`SearchContext`: the generic context (transformer networks): the target's prepared SC
  [1, N, N], its embedding, and optionally a token map;
- :class:`FoldedLayer`: a first Linear with what is fixed for the target folded in, then the
  layers after it;
- :class:`FoldedSearchContext`: the MLP family's context, three folded layers (parameter
  branch, SC-statistics branch, fusion) and the target embedding;
- :class:`TargetPath`: one loaded network and its context for one target, as the surrogate
  evaluator runs it (search vectors [P, dim] and G [P] in, float64 outputs out).

Every fold is exact up to float rounding; the full forward (``forward`` / ``forward_cached``)
stays the reference (tests/test_surrogate_nets.py compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nmmfit.surrogate.features import prepare_targets, token_affine_map

__all__ = ["TokenMap", "SearchContext", "FoldedLayer", "FoldedSearchContext", "TargetPath"]


@dataclass(frozen=True)
class TokenMap:
    """Affine map from C search inputs to the 3N tokens: ``tokens.flatten(1) = inputs @ a + a0``.

    a : [C, 3N]; a0 : [3N] (tensors).
    """

    a: torch.Tensor
    a0: torch.Tensor

    @classmethod
    def checked(cls, token_map, n_regions: int) -> TokenMap:
        """``token_map`` = (A [C, 3N], a0 [3N]) (arrays or tensors) as tensors, unconverted;
        a ValueError names the shapes when they do not fit ``n_regions``."""
        a, a0 = (torch.as_tensor(t) for t in token_map)
        if a.ndim != 2 or a.shape[1] != 3 * n_regions or tuple(a0.shape) != (3 * n_regions,):
            raise ValueError(f"token_map must be (A [C, {3 * n_regions}], a0 "
                             f"[{3 * n_regions}]) for {n_regions} regions, got shapes "
                             f"{tuple(a.shape)} and {tuple(a0.shape)}")
        return cls(a, a0)

    def tokens(self, inputs: torch.Tensor, n_regions: int) -> torch.Tensor:
        """Search inputs [B, C] -> tokens [B, N, 3]."""
        return torch.addmm(self.a0, inputs, self.a).view(inputs.shape[0], n_regions, 3)


@dataclass(frozen=True)
class SearchContext:
    """What the generic ``forward_search`` reuses for one target.

    sc : the prepared (scaled) SC of the target, [1, N, N]; target_emb : the network's
    ``embed_target`` of it (leading size 1); token_map : float32 :class:`TokenMap`, or None
    (then ``forward_search`` takes tokens [B, N, 3]).
    """

    sc: torch.Tensor
    target_emb: object
    token_map: TokenMap | None = None


@dataclass(frozen=True)
class FoldedLayer:
    """``x -> rest(x @ weight + bias)``: a first Linear in folded form, then the layers after it.

    weight : [C, width]; bias : [1, width]; rest : the later layers (inference: no dropout).
    """

    weight: torch.Tensor
    bias: torch.Tensor
    rest: tuple[nn.Module, ...]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to inputs [B, C]."""
        h = torch.addmm(self.bias, x, self.weight)
        for layer in self.rest:
            h = layer(h)
        return h

    @classmethod
    def fold(cls, branch: nn.Sequential, input_map=None) -> FoldedLayer:
        """A branch (first layer a Linear) whose input is ``u A + a0``: ``input_map`` = (A
        [C, d_in], a0 [d_in] or None); None: the identity. The composition is done in
        float64, then cast back."""
        first, rest = branch[0], tuple(branch)[1:]
        w, b = first.weight, first.bias
        if input_map is None:
            return cls(w.T.contiguous(), b[None], rest)
        a, a0 = input_map
        w64 = w.double()
        w_in = (a.double() @ w64.T).to(w.dtype)
        bias = b.double() if a0 is None else b.double() + a0.double() @ w64.T
        return cls(w_in, bias[None].to(w.dtype), rest)

    @classmethod
    def split(cls, fusion: nn.Sequential, target_emb: torch.Tensor) -> FoldedLayer:
        """The fusion MLP (``Dropout`` then :func:`~nmmfit.surrogate.networks.make_mlp`)
        applied to ``[cand, target_emb]`` with a fixed target [1, d_t], taking the candidate
        features [B, 2 width].

        The first Linear's output is ``W_c cand + (W_t target_emb + b)``; the bracket is the
        same for every candidate of the target, so it is computed once. Inference only: the
        dropout layers are skipped.
        """
        mlp = fusion[-1]
        layers = list(mlp) if isinstance(mlp, nn.Sequential) else [mlp]
        first, rest = layers[0], tuple(m for m in layers[1:] if not isinstance(m, nn.Dropout))
        n_tgt = target_emb.shape[-1]
        w = first.weight
        n_cand = w.shape[1] - n_tgt
        bias = torch.addmm(first.bias, target_emb, w[:, n_cand:].T)
        return cls(w[:, :n_cand].T.contiguous(), bias, rest)


@dataclass(frozen=True)
class FoldedSearchContext:
    """What the MLP family's ``forward_search`` reuses for one target.

    param : the parameter branch (inputs: tokens flattened [B, 3N], or search inputs [B, C]
    when folded with a token map); sc_stats : the SC-statistics branch folded with the
    target's unscaled (G = 1) SC row statistics (input: G [B, 1]); fusion : the fusion MLP with
    the target embedding's share in its bias (input: candidate features [B, 2 width]);
    target_emb : the network's ``embed_target`` of the target (leading size 1).
    """

    param: FoldedLayer
    sc_stats: FoldedLayer
    fusion: FoldedLayer
    target_emb: object


class TargetPath:
    """One loaded network's inference path for candidates of one target.

    Built once per target: the target's inputs prepared with the model's normaliser, its
    embedding, and the network's search context with the parametrisation's token map (the
    tokens are affine in the search vector, so the network takes the vector itself).

    loaded : :class:`~nmmfit.surrogate.store.LoadedModel`; target :
    :class:`~nmmfit.data.target.Target`; parametrisation : its
    :class:`~nmmfit.fit.parametrise.Parametrisation`.
    """

    def __init__(self, loaded, target, parametrisation) -> None:
        self.model = loaded.model
        tg = {"sc": target.sc[None], "fc": target.fc[None], "fcd_pdf": target.fcd_pdf[None]}
        prep = prepare_targets(tg, loaded.normaliser)
        with torch.inference_mode():
            emb = self.model.embed_target(torch.from_numpy(prep.fc_upper),
                                          torch.from_numpy(prep.fcd_pdf))
            tmap = token_affine_map(lambda v: parametrisation.expand(v).as_dict(),
                                    parametrisation.dim, loaded.normaliser)
            self.context = self.model.search_context(
                torch.from_numpy(prep.sc), emb,
                token_map=tuple(torch.from_numpy(t) for t in tmap))

    def __call__(self, x: torch.Tensor, g: torch.Tensor) -> np.ndarray:
        """Raw network output (float64) for search vectors x [P, dim] and their G [P]
        (float32 tensors): one forward pass, no grad."""
        with torch.inference_mode():
            out = self.model.forward_search(x, g, self.context)
        return out.numpy().astype(np.float64)
