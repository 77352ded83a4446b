"""What the FC + FCD cost compares: the summary of P sets of simulated BOLD runs.

A set is one parameter vector simulated with D noise duplicates. Its summary is the sum of
its valid duplicates' FC matrices and FCD histograms (plain sums; their means are the set's
simulated FC and FCD, as in DELSSOME, Zeng et al. 2026; ``docs/pfic.md``), with which
duplicates were valid. :func:`summarise` computes it once; :func:`nmmfit.stats.cost.distance`
compares it with a target, and callers that also report the simulated FC or FCD CDF (the test
phase of a fit, the surrogate's simulated summaries, a Target's own FC and FCD) read them from
the same :class:`Summary` instead of recomputing them.

Sums rather than means are kept so that summaries of single duplicates pool into groups
exactly (:meth:`Summary.pool`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nmmfit._validate import as_array
from nmmfit.stats.fc import fc_matrix, triu_indices
from nmmfit.stats.fcd import FCDSpec, cdf_from_counts, fcd_histogram

__all__ = ["Summary", "summarise"]

#: Simulations per float64 FC chunk (bounds the temporary memory to ~30 MB per 100 x 1200 run).
_FC_CHUNK = 16


@dataclass(frozen=True)
class Summary:
    """FC and FCD summary of P sets of D duplicate BOLD runs (N regions, ``n_frames`` frames).

    Attributes
    ----------
    fc_sum : [P, N, N] float64, the sum of the valid duplicates' FC matrices (Pearson r);
        0 for a set with no valid duplicate.
    fcd_counts : [P, n_bins] int64, the sum of the valid duplicates' FCD histograms
        (``spec``'s bins).
    valid : [P, D] bool, the duplicates that went into the sums.
    spec : the FCD definition the histograms were computed with.
    n_frames : frames per run (T).
    """

    fc_sum: np.ndarray
    fcd_counts: np.ndarray
    valid: np.ndarray
    spec: FCDSpec
    n_frames: int

    def __len__(self) -> int:
        return int(self.valid.shape[0])

    @property
    def n_regions(self) -> int:
        """Number of regions N."""
        return int(self.fc_sum.shape[-1])

    @property
    def n_valid(self) -> np.ndarray:
        """[P] int, valid duplicates per set."""
        return self.valid.sum(axis=1)

    @property
    def fc(self) -> np.ndarray:
        """[P, N, N] float64 mean FC over each set's valid duplicates (NaN for a set with
        none)."""
        n_ok = self.n_valid
        mean = self.fc_sum / np.maximum(n_ok, 1)[:, None, None]
        mean[n_ok == 0] = np.nan
        return mean

    @property
    def fc_upper(self) -> np.ndarray:
        """[P, N (N - 1) / 2] upper triangle (k=1, row-major) of :attr:`fc`, C-contiguous (so
        that reductions over edges add in the same order as on any other [P, E] array)."""
        iu, ju = triu_indices(self.n_regions)
        return np.ascontiguousarray(self.fc[:, iu, ju])

    @property
    def fcd_cdf(self) -> np.ndarray:
        """[P, n_bins] float64 normalised CDF of each set's mean FCD histogram (NaN for a set
        with no valid duplicate)."""
        mean = self.fcd_counts / np.maximum(self.n_valid, 1)[:, None]
        return cdf_from_counts(mean)

    def pool(self, size: int) -> Summary:
        """The summary of consecutive sets pooled in groups of ``size``: [P / size] sets of
        ``size * D`` duplicates. P must be a multiple of ``size``.

        Pooled sums add in order, so pooling single-duplicate summaries (D = 1) gives bit for
        bit what :func:`summarise` gives for the grouped runs; for D > 1 it agrees up to
        floating-point rounding of the FC sums.
        """
        size = int(size)
        n_set, n_dup = self.valid.shape
        if size < 1 or n_set % size:
            raise ValueError(f"cannot pool {n_set} sets in groups of {size}: the group size "
                             "must be a positive divisor of the number of sets")
        n = self.n_regions
        return Summary(
            fc_sum=self.fc_sum.reshape(n_set // size, size, n, n).sum(axis=1),
            fcd_counts=self.fcd_counts.reshape(n_set // size, size, -1).sum(axis=1),
            valid=self.valid.reshape(n_set // size, size * n_dup),
            spec=self.spec, n_frames=self.n_frames)


def summarise(bold, spec: FCDSpec, valid=None, threads: int | None = None) -> Summary:
    """FC and FCD summary of simulated (or empirical) BOLD runs.

    Parameters
    ----------
    bold : [P, D, N, T] BOLD (P sets x D duplicates x regions x frames), or [P, N, T] for
        D = 1. float32 is fine.
    spec : the FCD definition (a Target's ``fcd_spec`` when the summary is compared with it).
    valid : [P, D] (or [P] when D = 1) bool, False for duplicates to leave out (e.g. a
        diverged simulation). A duplicate whose BOLD holds any NaN/inf, whose FC is not finite
        (a region constant over the run) or whose FCD misses values (a region constant in a
        window) is left out automatically.
    threads : worker threads for the FCD (default: the usable cores).

    Returns
    -------
    :class:`Summary` of the P sets. Never raises on invalid runs (their set just has fewer
    valid duplicates); a malformed ``bold`` or ``valid`` raises ``ValueError``.
    """
    x = np.asarray(bold)
    if x.dtype.kind not in "fiu":
        x = as_array(x, "bold")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"bold must be [P, D, N, T] or [P, N, T], got shape {np.shape(bold)}")
    n_set, n_dup, n_reg, n_frames = x.shape
    if spec.n_windows(n_frames) < 2:
        raise ValueError(
            f"bold has shape {np.shape(bold)}: {n_frames} frames give fewer than 2 FCD "
            f"windows of {spec.window_frames} frames (step {spec.step_frames})"
        )
    ok = np.isfinite(x).all(axis=(-2, -1))
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        if v.shape == (n_set,) and n_dup == 1:
            v = v[:, None]
        if v.shape != (n_set, n_dup):
            raise ValueError(f"valid must have shape ({n_set}, {n_dup}) to match bold "
                             f"{np.shape(bold)}, got shape {v.shape}")
        ok &= v

    fc_sum = np.zeros((n_set, n_reg, n_reg))
    counts_sum = np.zeros((n_set, spec.n_bins), np.int64)
    ok_flat = ok.ravel().copy()
    sel = np.flatnonzero(ok_flat)
    if sel.size:
        flat = x.reshape(n_set * n_dup, n_reg, n_frames)
        runs = flat if sel.size == flat.shape[0] else flat[sel]
        counts = fcd_histogram(runs, spec, threads=threads)
        complete = counts.sum(axis=1) == spec.n_values(n_frames)
        iu, ju = triu_indices(n_reg)
        for c in range(0, sel.size, _FC_CHUNK):
            fcs = fc_matrix(runs[c:c + _FC_CHUNK])
            good = np.isfinite(fcs[:, iu, ju]).all(axis=1) & complete[c:c + _FC_CHUNK]
            # in run order, so each set's sum adds its duplicates in order
            for k, run in enumerate(sel[c:c + _FC_CHUNK]):
                if good[k]:
                    fc_sum[run // n_dup] += fcs[k]
                    counts_sum[run // n_dup] += counts[c + k]
                else:
                    ok_flat[run] = False
    return Summary(fc_sum=fc_sum, fcd_counts=counts_sum, valid=ok_flat.reshape(n_set, n_dup),
                   spec=spec, n_frames=int(n_frames))
