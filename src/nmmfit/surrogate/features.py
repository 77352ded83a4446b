"""Network inputs for the DELSSOME surrogates, built from an evaluation table and its targets.

Data contract
-------------
*Table* (one row per evaluated candidate; M rows, N regions), a mapping of arrays:

- ``wEE`` [M, N], ``wEI`` [M, N]: recurrent weights (dimensionless);
- ``sigma`` [M, N]: noise amplitude (nA, about 0.0005-0.01);
- ``G`` [M]: global coupling (dimensionless);
- ``target_idx`` [M] int: the row of the targets arrays this candidate was scored against;
- ``costs`` [M, 3] (fc_corr, fc_l1, fcd_ks; NaN or the sentinel 5.0 where invalid) and
  ``valid`` [M] bool: labels, needed only for training.

*Targets* (T << M empirical targets), a mapping of arrays:

- ``sc`` [T, N, N]: normalised SC (max 0.02, as ``Target.sc``);
- ``fc`` [T, N, N]: empirical FC;
- ``fcd_pdf`` [T, n_bins]: FCD probability mass per bin (sums to 1).

Network inputs (float32 tensors, B rows)
----------------------------------------
- region tokens [B, N, 3]: (wEE_i, wEI_i, sigma_i), each z-scored by the :class:`Normaliser`;
- SC rows [B, N, N]: ``G * SC / sc_scale`` (row i = region i's input weights);
- FC upper triangle [B, N(N-1)/2]: ``np.triu_indices(N, k=1)`` order, divided by ``fc_scale``;
- FCD PDF [B, n_bins]: times ``fcd_scale``.

Targets are gathered per batch through ``target_idx``: nothing of size [M, N, N] is ever built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nmmfit._validate import as_array, check_finite
from nmmfit.stats.cost import SENTINEL_COST  # cost of each term of an invalid set
from nmmfit.stats.cost import TERM_NAMES as COST_NAMES  # the three predicted cost terms

__all__ = [
    "PARAM_NAMES",
    "COST_NAMES",
    "SENTINEL_COST",
    "Normaliser",
    "PreparedTargets",
    "check_table",
    "check_targets",
    "stack_targets",
    "prepare_targets",
    "cost_mask",
    "batch_arrays",
    "batch_tensors",
    "candidate_arrays",
    "candidate_tokens",
    "token_affine_map",
]

#: Per-region parameters that make up a region token, in order.
PARAM_NAMES = ("wEE", "wEI", "sigma")


# --------------------------------------------------------------------------------------------
# checks


def check_table(table: Mapping[str, np.ndarray], n_regions: int | None = None,
                require_labels: bool = False, name: str = "table") -> dict[str, np.ndarray]:
    """Check an evaluation table and return its arrays (float64 / int64 / bool).

    ``costs`` and ``valid`` are required only when ``require_labels``; when present they are
    checked and returned too. Raises ``ValueError`` naming the array and its shape.
    """
    if not isinstance(table, Mapping):
        raise TypeError(f"{name} must be a mapping of arrays, got {type(table).__name__}")
    need = [*PARAM_NAMES, "G", "target_idx"] + (["costs", "valid"] if require_labels else [])
    missing = [k for k in need if k not in table]
    if missing:
        raise ValueError(f"{name} lacks the arrays {missing}; it has {sorted(table)}")
    out: dict[str, np.ndarray] = {}
    for key in PARAM_NAMES:
        arr = as_array(table[key], f"{name}['{key}']", ndim=2)
        check_finite(arr, f"{name}['{key}']")
        out[key] = arr
    m, n = out["wEE"].shape
    for key in PARAM_NAMES[1:]:
        if out[key].shape != (m, n):
            raise ValueError(f"{name}['{key}'] has shape {out[key].shape}, but {name}['wEE'] "
                             f"has shape {(m, n)}; all must be [M, N]")
    if n_regions is not None and n != n_regions:
        raise ValueError(f"{name}['wEE'] has shape {(m, n)}: {n} regions, but the model "
                         f"expects {n_regions} regions")
    g = as_array(table["G"], f"{name}['G']", ndim=1)
    check_finite(g, f"{name}['G']")
    tidx = np.asarray(table["target_idx"])
    if tidx.ndim != 1 or not (np.issubdtype(tidx.dtype, np.integer) or tidx.size == 0):
        raise ValueError(f"{name}['target_idx'] must be a 1-D integer array, got shape "
                         f"{tidx.shape} and dtype {tidx.dtype}")
    for key, arr in (("G", g), ("target_idx", tidx)):
        if arr.shape[0] != m:
            raise ValueError(f"{name}['{key}'] has shape {arr.shape}, but the table has {m} rows "
                             f"({name}['wEE'] has shape {(m, n)})")
    if tidx.size and tidx.min() < 0:
        raise ValueError(f"{name}['target_idx'] (shape {tidx.shape}) has negative entries")
    out["G"] = g
    out["target_idx"] = tidx.astype(np.int64)
    if "costs" in table:
        costs = as_array(table["costs"], f"{name}['costs']", ndim=2)
        if costs.shape != (m, 3):
            raise ValueError(f"{name}['costs'] must be [M, 3] = {(m, 3)} (fc_corr, fc_l1, "
                             f"fcd_ks), got shape {costs.shape}")
        out["costs"] = costs
    if "valid" in table:
        valid = np.asarray(table["valid"])
        if valid.shape != (m,):
            raise ValueError(f"{name}['valid'] must be [M] = {(m,)}, got shape {valid.shape}")
        out["valid"] = valid.astype(bool)
    return out


def check_targets(targets: Mapping[str, np.ndarray], n_regions: int | None = None,
                  n_fcd_bins: int | None = None, name: str = "targets") -> dict[str, np.ndarray]:
    """Check targets (``sc``, ``fc`` [T, N, N], ``fcd_pdf`` [T, n_bins]); return float64 arrays."""
    if isinstance(targets, PreparedTargets):
        raise TypeError(f"{name} is already prepared; pass the raw targets mapping")
    if not isinstance(targets, Mapping):
        raise TypeError(f"{name} must be a mapping of arrays, got {type(targets).__name__}")
    missing = [k for k in ("sc", "fc", "fcd_pdf") if k not in targets]
    if missing:
        raise ValueError(f"{name} lacks the arrays {missing}; it has {sorted(targets)}")
    sc = check_finite(as_array(targets["sc"], f"{name}['sc']", ndim=3), f"{name}['sc']")
    fc = check_finite(as_array(targets["fc"], f"{name}['fc']", ndim=3), f"{name}['fc']")
    pdf = as_array(targets["fcd_pdf"], f"{name}['fcd_pdf']", ndim=2)
    check_finite(pdf, f"{name}['fcd_pdf']")
    t, n = sc.shape[0], sc.shape[1]
    if sc.shape != (t, n, n):
        raise ValueError(f"{name}['sc'] must be [T, N, N], got shape {sc.shape}")
    if fc.shape != sc.shape:
        raise ValueError(f"{name}['fc'] has shape {fc.shape}, but {name}['sc'] has shape "
                         f"{sc.shape}; both must be [T, N, N]")
    if pdf.shape[0] != t:
        raise ValueError(f"{name}['fcd_pdf'] has shape {pdf.shape}: {pdf.shape[0]} targets, but "
                         f"{name}['sc'] has shape {sc.shape} ({t} targets)")
    if n_regions is not None and n != n_regions:
        raise ValueError(f"{name}['sc'] has shape {sc.shape}: {n} regions, but the model "
                         f"expects {n_regions} regions")
    if n_fcd_bins is not None and pdf.shape[1] != n_fcd_bins:
        raise ValueError(f"{name}['fcd_pdf'] has shape {pdf.shape}: {pdf.shape[1]} bins, but the "
                         f"model expects {n_fcd_bins} FCD bins")
    if (pdf < 0).any():
        raise ValueError(f"{name}['fcd_pdf'] (shape {pdf.shape}) has negative entries; it must "
                         "be a probability mass per bin")
    return {"sc": sc, "fc": fc, "fcd_pdf": pdf}


def stack_targets(targets: Sequence) -> dict[str, np.ndarray]:
    """Stack ``nmmfit.data.target.Target`` objects into a targets mapping (``sc``, ``fc``,
    ``fcd_pdf``); row t of each array belongs to ``targets[t]``."""
    if len(targets) == 0:
        raise ValueError("targets is empty; give at least one Target")
    return {
        "sc": np.stack([np.asarray(t.sc, dtype=float) for t in targets]),
        "fc": np.stack([np.asarray(t.fc, dtype=float) for t in targets]),
        "fcd_pdf": np.stack([np.asarray(t.fcd_pdf, dtype=float) for t in targets]),
    }


def cost_mask(table: Mapping[str, np.ndarray], sentinel: float = SENTINEL_COST) -> np.ndarray:
    """[M] bool: rows usable for cost regression (``valid``, all 3 costs finite and below
    ``sentinel``)."""
    costs = as_array(table["costs"], "table['costs']", ndim=2)
    valid = np.asarray(table["valid"], dtype=bool)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(costs).all(axis=1) & (costs < sentinel).all(axis=1)
    return valid & ok


# --------------------------------------------------------------------------------------------
# normalisation


@dataclass
class Normaliser:
    """Input scalings of the surrogate networks (JSON-serialisable).

    - tokens: ``(x - token_mean) / token_std`` per feature (wEE, wEI, sigma), pooled over rows
      and regions. :meth:`default` uses fixed scalings (wEE/10, wEI/5, sigma/0.01 nA);
      :meth:`fit` z-scores over the training table.
    - SC rows: ``G * SC / sc_scale``; fitted ``sc_scale`` = mean(G) * max(SC), so a typical row
      lies in [0, ~1]. Default 3 * 0.02 (G ~ 3, SC max 0.02).
    - FC: ``FC / fc_scale`` (1: correlations are already in [-1, 1]).
    - FCD PDF: ``pdf * fcd_scale``; ``fcd_scale`` = n_bins, so a uniform PDF becomes 1.
    """

    token_mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    token_std: list[float] = field(default_factory=lambda: [10.0, 5.0, 0.01])
    sc_scale: float = 0.06
    fc_scale: float = 1.0
    fcd_scale: float = 1.0

    def __post_init__(self) -> None:
        self.token_mean = [float(v) for v in np.asarray(self.token_mean, dtype=float).ravel()]
        self.token_std = [float(v) for v in np.asarray(self.token_std, dtype=float).ravel()]
        if len(self.token_mean) != 3 or len(self.token_std) != 3:
            raise ValueError(f"token_mean and token_std must hold 3 values (wEE, wEI, sigma), got "
                             f"{len(self.token_mean)} and {len(self.token_std)}")
        for key in ("sc_scale", "fc_scale", "fcd_scale"):
            setattr(self, key, float(getattr(self, key)))
        scales = [*self.token_std, self.sc_scale, self.fc_scale, self.fcd_scale]
        if not all(np.isfinite(s) and s > 0 for s in scales):
            raise ValueError(f"Normaliser scales must be finite and > 0, got token_std="
                             f"{self.token_std}, sc_scale={self.sc_scale}, fc_scale="
                             f"{self.fc_scale}, fcd_scale={self.fcd_scale}")

    @classmethod
    def default(cls, n_fcd_bins: int = 1) -> Normaliser:
        """Fixed scalings (no data): wEE/10, wEI/5, sigma/0.01, G*SC/0.06, pdf*n_fcd_bins."""
        return cls(fcd_scale=float(n_fcd_bins))

    @classmethod
    def fit(cls, table: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray]) -> Normaliser:
        """Fit the scalings on a training table and its targets (see the class docstring)."""
        tab = check_table(table)
        tg = check_targets(targets, n_regions=tab["wEE"].shape[1])
        if tab["wEE"].shape[0] == 0:
            raise ValueError("table has no rows; cannot fit a Normaliser")
        feats = np.stack([tab[k].ravel() for k in PARAM_NAMES], axis=1)
        mean = feats.mean(axis=0)
        std = feats.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant feature is only centred
        g_mean = float(np.abs(tab["G"]).mean())
        sc_max = float(tg["sc"].max())
        sc_scale = g_mean * sc_max if g_mean * sc_max > 0 else 1.0
        return cls(token_mean=mean.tolist(), token_std=std.tolist(), sc_scale=sc_scale,
                   fc_scale=1.0, fcd_scale=float(tg["fcd_pdf"].shape[1]))

    def as_dict(self) -> dict:
        """Plain dict (floats and lists) for JSON or ``torch.save(weights_only=True)``."""
        return {"token_mean": list(self.token_mean), "token_std": list(self.token_std),
                "sc_scale": self.sc_scale, "fc_scale": self.fc_scale,
                "fcd_scale": self.fcd_scale}

    @classmethod
    def from_dict(cls, d: Mapping) -> Normaliser:
        """Inverse of :meth:`as_dict`."""
        keys = ("token_mean", "token_std", "sc_scale", "fc_scale", "fcd_scale")
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"normaliser dict lacks {missing}; it has {sorted(d)}")
        return cls(**{k: d[k] for k in keys})


# --------------------------------------------------------------------------------------------
# batches


@dataclass
class PreparedTargets:
    """Targets scaled once for batching (float32): ``sc`` [T, N, N] (SC / sc_scale, not yet
    times G), ``fc_upper`` [T, N(N-1)/2], ``fcd_pdf`` [T, n_bins]."""

    sc: np.ndarray
    fc_upper: np.ndarray
    fcd_pdf: np.ndarray

    @property
    def n_targets(self) -> int:
        return int(self.sc.shape[0])

    @property
    def n_regions(self) -> int:
        return int(self.sc.shape[1])

    @property
    def n_fcd_bins(self) -> int:
        return int(self.fcd_pdf.shape[1])


def prepare_targets(targets: Mapping[str, np.ndarray] | PreparedTargets,
                    normaliser: Normaliser, n_regions: int | None = None,
                    n_fcd_bins: int | None = None) -> PreparedTargets:
    """Check and scale targets once, for repeated :func:`batch_arrays` calls."""
    if isinstance(targets, PreparedTargets):
        if n_regions is not None and targets.n_regions != n_regions:
            raise ValueError(f"targets have {targets.n_regions} regions (sc shape "
                             f"{targets.sc.shape}), but the model expects {n_regions} regions")
        if n_fcd_bins is not None and targets.n_fcd_bins != n_fcd_bins:
            raise ValueError(f"targets have {targets.n_fcd_bins} FCD bins (fcd_pdf shape "
                             f"{targets.fcd_pdf.shape}), but the model expects {n_fcd_bins}")
        return targets
    tg = check_targets(targets, n_regions=n_regions, n_fcd_bins=n_fcd_bins)
    n = tg["sc"].shape[1]
    iu = np.triu_indices(n, k=1)
    return PreparedTargets(
        sc=(tg["sc"] / normaliser.sc_scale).astype(np.float32),
        fc_upper=(tg["fc"][:, iu[0], iu[1]] / normaliser.fc_scale).astype(np.float32),
        fcd_pdf=(tg["fcd_pdf"] * normaliser.fcd_scale).astype(np.float32),
    )


def batch_arrays(table: Mapping[str, np.ndarray], targets: Mapping | PreparedTargets,
                 rows: np.ndarray | slice | None, normaliser: Normaliser,
                 checked: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Network inputs of the table rows ``rows`` as float32 numpy arrays.

    Returns (tokens [B, N, 3], sc_rows [B, N, N], fc_upper [B, N(N-1)/2], fcd_pdf [B, n_bins]).
    ``checked=True`` skips the table checks (the caller ran :func:`check_table` already).
    """
    tab = table if checked else check_table(table)
    prep = prepare_targets(targets, normaliser, n_regions=tab["wEE"].shape[1])
    sel = slice(None) if rows is None else rows
    tidx = np.asarray(tab["target_idx"][sel])
    if tidx.size and tidx.max() >= prep.n_targets:
        raise ValueError(f"table['target_idx'] has entries up to {int(tidx.max())}, but the "
                         f"targets hold only {prep.n_targets} rows (sc shape {prep.sc.shape})")
    tokens, sc_rows = candidate_arrays({k: tab[k][sel] for k in (*PARAM_NAMES, "G")},
                                       prep.sc[tidx], normaliser)
    return tokens, sc_rows, prep.fc_upper[tidx], prep.fcd_pdf[tidx]


def candidate_arrays(params: Mapping[str, np.ndarray], sc: np.ndarray,
                     normaliser: Normaliser) -> tuple[np.ndarray, np.ndarray]:
    """The candidate part of the network inputs, float32.

    params : ``wEE``, ``wEI``, ``sigma`` [B, N] and ``G`` [B]; sc : prepared (scaled) SC,
    [B, N, N] per row or [1, N, N] for one target shared by the batch.
    Returns (tokens [B, N, 3], G-scaled SC rows [B, N, N]).
    """
    g = np.asarray(params["G"], dtype=np.float32)
    return candidate_tokens(params, normaliser), sc * g[:, None, None]


def candidate_tokens(params: Mapping[str, np.ndarray], normaliser: Normaliser,
                     dtype=np.float32) -> np.ndarray:
    """Scaled regional parameters: tokens [B, N, 3] (``dtype``) from ``wEE``, ``wEI``,
    ``sigma`` [B, N] (the normaliser's token mean and std)."""
    mean = np.asarray(normaliser.token_mean, dtype=np.float64)
    std = np.asarray(normaliser.token_std, dtype=np.float64)
    tokens = np.stack([params[k] for k in PARAM_NAMES], axis=-1)
    return ((tokens - mean) / std).astype(dtype)


def token_affine_map(regional: Callable[[np.ndarray], Mapping[str, np.ndarray]], dim: int,
                     normaliser: Normaliser) -> tuple[np.ndarray, np.ndarray]:
    """The tokens of search vectors as an affine map: (A [dim, 3N], a0 [3N]) float64 with
    ``candidate_tokens(regional(x)).reshape(B, 3N) = x @ A + a0`` for x [B, dim].

    ``regional`` maps search vectors to ``wEE``, ``wEI``, ``sigma`` [B, N] (for example a
    :class:`~nmmfit.fit.parametrise.Parametrisation`'s expansion, which is linear in x). The
    map is read off at 0 and the unit vectors, then checked at a further point; a ``regional``
    that is not affine raises ``ValueError``.
    """
    dim = int(dim)

    def flat(x):
        return candidate_tokens(regional(x), normaliser, np.float64).reshape(x.shape[0], -1)

    t = flat(np.vstack([np.zeros(dim), np.eye(dim)]))
    a0, a = t[0], t[1:] - t[0]
    probe = np.linspace(-1.0, 2.0, dim)[None]
    got, want = flat(probe)[0], probe[0] @ a + a0
    if not np.allclose(got, want, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(want).max())):
        raise ValueError(f"the regional parameters are not an affine function of the {dim} "
                         f"search inputs (largest token deviation {np.abs(got - want).max():.3g})")
    return a, a0


def batch_tensors(table: Mapping[str, np.ndarray], targets: Mapping | PreparedTargets,
                  rows: np.ndarray | slice | None, normaliser: Normaliser,
                  checked: bool = False, device=None):
    """Same as :func:`batch_arrays` but as float32 torch tensors (on ``device``)."""
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device)
                 for a in batch_arrays(table, targets, rows, normaliser, checked=checked))
