"""The FC + FCD cost of DELSSOME / pFIC (Zhang et al. 2024; Zeng et al. 2026; ``docs/pfic.md``).

The cost has two steps: :func:`~nmmfit.stats.summary.summarise` the simulated BOLD, then
:func:`distance` of that summary to the target (:func:`fc_fcd_cost` does both). For each
parameter set p with D noise duplicates:

- the FC matrices of the valid duplicates are averaged (plain mean, no Fisher z, as
  DELSSOME), and so are their FCD histograms; the mean histogram is normalised to a CDF;
- ``fc_corr`` = 1 - Pearson r(mean simulated FC vector, empirical FC vector);
- ``fc_l1`` = |mean(simulated FC vector) - mean(empirical FC vector)| -- a difference of the two
  means over the upper triangle (:func:`fc_level`), not an elementwise L1 (DELSSOME's "L1");
- ``fcd_ks`` = max over bins |CDF_sim - CDF_emp| (Kolmogorov-Smirnov distance,
  :func:`ks_distance`);
- ``total`` = w_corr fc_corr + w_l1 fc_l1 + w_ks fcd_ks (weights 1, 1, 1 by default).

The simulated FCD always uses the Target's own FCD definition (``target.fcd_spec``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from nmmfit._validate import as_array
from nmmfit.stats.fc import triu_indices
from nmmfit.stats.summary import Summary, summarise

if TYPE_CHECKING:  # pragma: no cover
    from nmmfit.data.target import Target

__all__ = ["CostTerms", "FrameCountWarning", "SENTINEL_COST", "TERM_NAMES", "distance",
           "fc_fcd_cost", "fc_level", "intra_fc_corr_cost", "ks_distance", "target_distance"]

#: Cost given to each term (fc_corr, fc_l1, fcd_ks) of a parameter set with no valid duplicate,
#: as in Zhang et al.'s pFIC code (a NaN term is set to 5). With unit weights the total is 15,
#: far above any real cost (each real term is at most 2, 1 and 1), so such a set ranks last.
#: The set is also flagged ``valid=False``.
SENTINEL_COST = 5.0

#: Names of the three cost terms, in order.
TERM_NAMES = ("fc_corr", "fc_l1", "fcd_ks")


class FrameCountWarning(UserWarning):
    """The summarised runs have another number of frames than the target was built for (the
    normalised FCD CDFs still compare, over a different number of windows). Silence it with
    ``warn_frames=False`` where that is deliberate, or filter this category."""


@dataclass
class CostTerms:
    """Cost terms of P parameter sets (float64 arrays of shape [P]).

    Attributes
    ----------
    fc_corr : 1 - Pearson r between simulated and empirical FC upper triangles.
    fc_l1 : |mean simulated FC - mean empirical FC| over the upper triangle.
    fcd_ks : KS distance between the simulated and empirical FCD CDFs.
    total : weighted sum of the three terms.
    valid : bool; False where no duplicate was valid (terms = :data:`SENTINEL_COST`).
    n_valid : int; number of valid duplicates that went into each set's cost.
    fc_corr_intra : 1 - Pearson r over intra-hemispheric edges only (reported beside the
        cost, as cuBNM scores FC; not part of ``total``); None when the target does not
        know its regions' hemispheres (``target.meta["hemisphere"]``), NaN for invalid sets.
    """

    fc_corr: np.ndarray
    fc_l1: np.ndarray
    fcd_ks: np.ndarray
    total: np.ndarray
    valid: np.ndarray
    n_valid: np.ndarray | None = None
    fc_corr_intra: np.ndarray | None = None

    def as_dict(self) -> dict[str, np.ndarray]:
        """Field name -> array (``n_valid`` included when present)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def __len__(self) -> int:
        return int(np.shape(self.total)[0])


def _weights(weights) -> np.ndarray:
    w = as_array(weights, "weights", ndim=1)
    if w.shape != (3,):
        raise ValueError(f"weights must hold 3 values (fc_corr, fc_l1, fcd_ks), got shape "
                         f"{w.shape}")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError(f"weights must be finite and non-negative, got {w.tolist()}")
    return w


def fc_level(fc_upper):
    """Mean FC over the upper-triangle edges (the last axis): the level that ``fc_l1``
    compares. ``fc_upper`` [..., E] is a NumPy array or a torch tensor (the surrogate's
    structured predictor uses this definition too); returns [...] of the same kind."""
    return fc_upper.mean(-1)


def ks_distance(cdf_sim, cdf_emp):
    """Kolmogorov-Smirnov distance ``max over bins |cdf_sim - cdf_emp|`` (the ``fcd_ks`` term).

    ``cdf_sim`` and ``cdf_emp`` are [..., n_bins] CDFs on the same bins (broadcast against
    each other), both NumPy arrays or both torch tensors (the surrogate's structured predictor
    uses this definition too); returns [...] of the same kind.
    """
    gap = abs(cdf_sim - cdf_emp)
    if isinstance(gap, np.ndarray | np.generic):
        return gap.max(axis=-1)
    return gap.amax(dim=-1)  # a torch tensor


def distance(summary: Summary, target: Target, weights=(1.0, 1.0, 1.0),
             warn_frames: bool = True) -> CostTerms:
    """FC + FCD cost of a :class:`~nmmfit.stats.summary.Summary` against a target.

    Parameters
    ----------
    summary : :func:`~nmmfit.stats.summary.summarise` of the simulated BOLD, P sets; its
        FCD definition must be ``target.fcd_spec``.
    target : the empirical :class:`~nmmfit.data.Target`.
    weights : (w_corr, w_l1, w_ks) for the total.
    warn_frames : warn (:class:`FrameCountWarning`) when the summarised runs have another
        number of frames than ``target.n_frames``; pass False where shorter runs are
        deliberate (the training and validation simulations of a fit).

    Returns
    -------
    :class:`CostTerms` with arrays of shape [P]: a set with no valid duplicate gets
    :data:`SENTINEL_COST` in each term and ``valid=False``. A region-count or FCD-definition
    mismatch with the target raises ``ValueError``.
    """
    return _distance(summary, target, _weights(weights), warn_frames, stacklevel=3)


def fc_fcd_cost(bold, target: Target, valid=None, weights=(1.0, 1.0, 1.0),
                threads: int | None = None, warn_frames: bool = True) -> CostTerms:
    """FC + FCD cost of simulated BOLD against an empirical :class:`~nmmfit.data.Target`:
    ``distance(summarise(bold, target.fcd_spec, valid, threads), target, weights)``.

    Parameters
    ----------
    bold : [P, D, N, T] simulated BOLD (P parameter sets x D noise duplicates x regions x
        frames), or [P, N, T] for D = 1. float32 is fine.
    target : the empirical target; its ``fcd_spec`` defines the simulated FCD.
    valid : [P, D] (or [P] when D = 1) bool, False for duplicates to leave out (e.g. a
        diverged simulation). A duplicate whose BOLD holds any NaN/inf, or whose FC/FCD is
        not finite (a region constant over the run or a window), is left out automatically.
    weights : (w_corr, w_l1, w_ks) for the total.
    threads : worker threads for the FCD (default: the usable cores).
    warn_frames : see :func:`distance`.

    Returns
    -------
    :class:`CostTerms` with arrays of shape [P]. Never raises on invalid simulations: a set
    with no valid duplicate gets :data:`SENTINEL_COST` in each term and ``valid=False``.
    A shape or region-count mismatch with the target is a configuration error and raises
    ``ValueError`` (before any FCD is computed).
    """
    shape = np.shape(bold)
    if len(shape) in (3, 4) and shape[-2] != target.n_regions:
        raise ValueError(
            f"bold has shape {shape}: {shape[-2]} regions, but the target "
            f"{target.name!r} has {target.n_regions} regions"
        )
    w = _weights(weights)
    summary = summarise(bold, target.fcd_spec, valid=valid, threads=threads)
    return _distance(summary, target, w, warn_frames, stacklevel=3)


def _distance(summary: Summary, target: Target, w: np.ndarray, warn_frames: bool,
              stacklevel: int) -> CostTerms:
    """:func:`distance` with checked weights ``w`` [3]; a :class:`FrameCountWarning` points
    ``stacklevel`` frames up."""
    if summary.n_regions != target.n_regions:
        raise ValueError(f"the summary has {summary.n_regions} regions, but the target "
                         f"{target.name!r} has {target.n_regions} regions")
    if summary.spec != target.fcd_spec:
        raise ValueError(f"the summary's FCD definition {summary.spec} differs from target "
                         f"{target.name!r}'s {target.fcd_spec}; summarise with "
                         "target.fcd_spec")
    if warn_frames and target.n_frames and summary.n_frames != target.n_frames:
        warnings.warn(
            f"simulated runs have {summary.n_frames} frames but target {target.name!r} was "
            f"built for {target.n_frames}; the FCD CDFs are still comparable (normalised) but "
            "hold a different number of windows", FrameCountWarning, stacklevel=stacklevel)
    n_ok = summary.n_valid
    sim_fc = summary.fc_upper  # NaN rows for sets without a valid duplicate
    emp = target.fc_upper
    with np.errstate(invalid="ignore", divide="ignore"):
        fc_corr = _one_minus_r(sim_fc, emp)
        fc_l1 = np.abs(fc_level(sim_fc) - fc_level(emp))
        ks = ks_distance(summary.fcd_cdf, target.fcd_cdf)

    terms = np.stack([fc_corr, fc_l1, ks], axis=1)
    good_set = (n_ok > 0) & np.isfinite(terms).all(axis=1)
    terms[~good_set] = SENTINEL_COST
    total = terms @ w
    intra = None
    mask = _intra_edges(target)
    if mask is not None:
        intra = np.where(good_set, _one_minus_r(sim_fc[:, mask], emp[mask]), np.nan)
    return CostTerms(fc_corr=terms[:, 0], fc_l1=terms[:, 1], fcd_ks=terms[:, 2], total=total,
                     valid=good_set, n_valid=np.where(good_set, n_ok, 0),
                     fc_corr_intra=intra)


def _one_minus_r(sim: np.ndarray, emp: np.ndarray) -> np.ndarray:
    """1 - Pearson r of each row of sim [P, E] with emp [E]."""
    e = emp - emp.mean()
    c = sim - sim.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - (c @ e) / (np.linalg.norm(c, axis=-1) * np.linalg.norm(e))


def _intra_edges(target: Target) -> np.ndarray | None:
    """Bool [E] over the upper-triangle edges: both ends in the same hemisphere (None when the
    target has no hemisphere labels)."""
    h = target.meta.get("hemisphere") if isinstance(target.meta, dict) else None
    if h is None:
        return None
    h = np.asarray(h)
    if h.shape != (target.n_regions,):
        raise ValueError(f"target {target.name!r}: meta['hemisphere'] has shape {h.shape}, "
                         f"expected ({target.n_regions},)")
    iu, ju = triu_indices(target.n_regions)
    return h[iu] == h[ju]


def intra_fc_corr_cost(fc, target: Target) -> float:
    """1 - r between an [N, N] FC matrix and the target's FC over intra-hemispheric edges
    (NaN when the target has no hemisphere labels)."""
    mask = _intra_edges(target)
    if mask is None:
        return float("nan")
    iu, ju = triu_indices(target.n_regions)
    return float(_one_minus_r(np.asarray(fc)[iu, ju][mask][None], target.fc_upper[mask])[0])


def target_distance(other: Target, target: Target, weights=(1.0, 1.0, 1.0)) -> dict:
    """The cost that ``other``'s empirical FC and FCD CDF would score against ``target`` if
    they were a simulation (a noise ceiling: what another real subject scores).

    Both targets must have the same regions and FCD bins. Returns fc_corr, fc_l1, fcd_ks,
    total (and fc_corr_intra when hemispheres are known) as floats.
    """
    if other.n_regions != target.n_regions:
        raise ValueError(f"targets {other.name!r} ({other.n_regions} regions) and "
                         f"{target.name!r} ({target.n_regions}) differ in region count")
    if other.fcd_cdf.shape != target.fcd_cdf.shape:
        raise ValueError(f"FCD CDFs of {other.name!r} {other.fcd_cdf.shape} and "
                         f"{target.name!r} {target.fcd_cdf.shape} have different bins")
    w = _weights(weights)
    emp = target.fc_upper
    t = np.array([_one_minus_r(other.fc_upper[None], emp)[0],
                  abs(fc_level(other.fc_upper) - fc_level(emp)),
                  ks_distance(other.fcd_cdf, target.fcd_cdf)])
    out = {k: float(v) for k, v in zip(TERM_NAMES, t, strict=True)}
    out["total"] = float(t @ w)
    mask = _intra_edges(target)
    if mask is not None:
        out["fc_corr_intra"] = float(_one_minus_r(other.fc_upper[mask][None], emp[mask])[0])
    return out
