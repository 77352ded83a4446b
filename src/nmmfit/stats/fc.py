"""Static functional connectivity (FC): Pearson matrices, upper triangles, Fisher-z means.

All functions work on batches: leading axes are kept, the last two are (regions, frames) for
BOLD and (regions, regions) for FC.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nmmfit._validate import as_array

__all__ = ["fc_matrix", "upper_tri", "triu_indices", "fisher_mean", "FISHER_CLIP"]

#: |r| is clipped to this before ``arctanh`` so that r = 1 (the diagonal) stays finite.
FISHER_CLIP = 1.0 - 1e-7


@lru_cache(maxsize=16)
def _triu(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    iu, ju = np.triu_indices(n, k)
    iu.setflags(write=False)
    ju.setflags(write=False)
    return iu, ju


def triu_indices(n: int, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cached, read-only ``np.triu_indices(n, k)`` (row-major order of the upper triangle)."""
    return _triu(int(n), int(k))


def fc_matrix(bold, name: str = "bold") -> np.ndarray:
    """Pearson correlation between the regions of each BOLD run.

    Parameters
    ----------
    bold : [..., N, T] BOLD (regions x frames); any float dtype.

    Returns
    -------
    [..., N, N] float64 FC, identical to ``np.corrcoef`` for each run. A region that is
    constant over the run gives NaN in its row and column (no error is raised).
    """
    x = as_array(bold, name)
    if x.ndim < 2:
        raise ValueError(f"{name} must be [..., N, T] (regions x frames), got shape {x.shape}")
    x = x - x.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        x /= np.sqrt(np.einsum("...t,...t->...", x, x))[..., None]
        fc = x @ np.swapaxes(x, -1, -2)
    np.clip(fc, -1.0, 1.0, out=fc)
    return fc


def upper_tri(mat, k: int = 1) -> np.ndarray:
    """Upper triangle (offset ``k``) of [..., N, N] matrices as [..., N(N-1)/2] vectors (k=1).

    The order is row-major (``np.triu_indices``); for a symmetric matrix it holds the same
    values as the lower triangle.
    """
    m = np.asarray(mat)
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"mat must be [..., N, N], got shape {m.shape}")
    iu, ju = triu_indices(m.shape[-1], k)
    return m[..., iu, ju]


def fisher_mean(fcs, axis: int = 0, clip: float = FISHER_CLIP) -> np.ndarray:
    """Fisher-z average of FC matrices: ``tanh(mean(arctanh(r)))`` over ``axis``.

    Parameters
    ----------
    fcs : [K, N, N] (or a sequence of [N, N]) Pearson FC matrices.
    axis : the axis to average over (default 0).
    clip : |r| is clipped to this before ``arctanh`` (default :data:`FISHER_CLIP`; the
        bundled AAL group FCs use 0.999999).

    Returns
    -------
    [N, N] float64 FC with the diagonal set to 1.
    """
    arr = as_array(fcs, "fcs")
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"fcs must be [..., N, N] FC matrices, got shape {arr.shape}")
    z = np.arctanh(np.clip(arr, -clip, clip))
    out = np.tanh(z.mean(axis=axis))
    n = out.shape[-1]
    out[..., np.arange(n), np.arange(n)] = 1.0
    return out
