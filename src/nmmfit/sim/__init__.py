"""Batched integrators for the pFIC + Balloon-Windkessel model.

Use :func:`nmmfit.sim.simulate`; it dispatches to one of three engines that integrate the
same equations (:mod:`nmmfit.models.fic`, :mod:`nmmfit.models.balloon`):

- ``"numpy"``: plain, readable reference (slow);
- ``"numba"``: the fast CPU engine (parallel over lanes, SIMD-friendly maths, counter-based noise);
- ``"torch"``: runs on a GPU when one is present, on the CPU otherwise.
"""

from nmmfit.sim.api import ENGINES, simulate
from nmmfit.sim.common import SEARCH, TEST, FICBatch, SimConfig
from nmmfit.sim.result import SimResult

__all__ = ["simulate", "ENGINES", "SimConfig", "SimResult", "FICBatch", "SEARCH", "TEST"]
