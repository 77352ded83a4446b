"""Hemisphere of each region, from its label or the parcellation's documented order.

Used to score FC on intra-hemispheric edges only, as cuBNM reports it (tractography
under-estimates interhemispheric connections, so models fit those edges poorly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["hemispheres"]

_LEFT = ("_L", "-L", "_lh", "-lh", "lh_", "lh.", "LH_", "_LH")
_RIGHT = ("_R", "-R", "_rh", "-rh", "rh_", "rh.", "RH_", "_RH")


def _one(label: str) -> int | None:
    for side, marks in ((0, _LEFT), (1, _RIGHT)):
        if any(label.endswith(m) or label.startswith(m) or f"{m}_" in label for m in marks):
            return side
    return None


def hemispheres(labels: Sequence[str] | None, parcellation: str = "") -> np.ndarray | None:
    """[N] int array, 0 = left and 1 = right hemisphere, or None when it cannot be told.

    Labels decide first (suffixes ``_L``/``_R`` as in AAL, prefixes ``LH_``/``RH_`` or
    ``7Networks_LH_...`` as in Schaefer). Otherwise a Schaefer parcellation
    (``parcellation`` starting with "schaefer") is split in its documented order: the first
    half of the regions is the left hemisphere.
    """
    if labels is None:
        return None
    labels = [str(s) for s in labels]
    sides = [_one(s) for s in labels]
    if all(s is not None for s in sides) and 0 < sum(sides) < len(sides):
        return np.asarray(sides, dtype=np.int8)
    n = len(labels)
    if parcellation.lower().startswith("schaefer") and n % 2 == 0:
        return np.repeat(np.array([0, 1], dtype=np.int8), n // 2)
    return None
