"""Input checks shared by every module.

Each check raises ``ValueError`` (or ``TypeError``) with a message that names the offending
array and its shape, so that a user can see at once what was wrong.
"""

from __future__ import annotations

import numpy as np


def as_array(x, name: str, ndim: int | tuple[int, ...] | None = None, dtype=float) -> np.ndarray:
    """Convert ``x`` to an array and check its number of dimensions.

    Raises ``ValueError`` naming ``name`` and the shape when ``ndim`` does not match.
    """
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} could not be converted to a {np.dtype(dtype)} array: {err}"
        ) from err
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    return arr


def check_finite(arr: np.ndarray, name: str) -> np.ndarray:
    """Raise if ``arr`` holds NaN or inf, reporting how many and the first position."""
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} (shape {arr.shape}) contains {int(bad.sum())} non-finite values "
            f"(NaN or inf); first at index {first}"
        )
    return arr


def check_sc(sc, name: str = "SC", allow_negative: bool = False) -> np.ndarray:
    """Check a structural connectivity matrix: square, finite and (by default) non-negative.

    Returns it as a float64 array of shape [N, N].
    """
    arr = as_array(sc, name, ndim=2)
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square [N, N] matrix, got shape {arr.shape}")
    check_finite(arr, name)
    if not allow_negative and (arr < 0).any():
        n_neg = int((arr < 0).sum())
        raise ValueError(
            f"{name} (shape {arr.shape}) has {n_neg} negative entries (min {arr.min():.4g}); "
            "structural connectivity must be non-negative"
        )
    return arr


def check_bold(bold, name: str = "BOLD", min_frames: int | None = None) -> np.ndarray:
    """Check one BOLD run: a finite [N, T] array with at least ``min_frames`` frames."""
    arr = as_array(bold, name, ndim=2)
    check_finite(arr, name)
    if min_frames is not None and arr.shape[1] < min_frames:
        raise ValueError(
            f"{name} has shape {arr.shape} (regions x frames): {arr.shape[1]} frames is shorter "
            f"than one FCD window of {min_frames} frames"
        )
    return arr


def check_region_count(n_expected: int, arr: np.ndarray, name: str, axis: int = 0,
                       reference: str = "SC") -> None:
    """Raise if ``arr.shape[axis]`` is not ``n_expected``, the region count of ``reference``."""
    if arr.shape[axis] != n_expected:
        raise ValueError(
            f"{name} has shape {arr.shape}: {arr.shape[axis]} regions on axis {axis}, "
            f"but {reference} has {n_expected} regions"
        )
