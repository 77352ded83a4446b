"""Parameter specifications kept as data.

Every model declares its parameters once, as a tuple of :class:`Param`. Bounds, defaults,
units and docs are derived from that one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """One model parameter.

    Attributes
    ----------
    name : identifier used in code and files.
    default : default value, in ``unit``.
    lower, upper : search bounds, in ``unit``.
    unit : physical unit ("" for dimensionless).
    regional : True for one value per region, False for one global value.
    description : one line for docs and plots.
    """

    name: str
    default: float
    lower: float
    upper: float
    unit: str
    regional: bool
    description: str

    def check(self, value, where: str = "") -> None:
        """Raise ``ValueError`` if any element of ``value`` lies outside [lower, upper]."""
        import numpy as np

        arr = np.asarray(value, dtype=float)
        bad = (arr < self.lower) | (arr > self.upper) | ~np.isfinite(arr)
        if bad.any():
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            raise ValueError(
                f"{self.name}{where} (shape {arr.shape}) has {int(bad.sum())} values outside "
                f"[{self.lower}, {self.upper}] {self.unit}: range seen [{lo:.4g}, {hi:.4g}]"
            )
