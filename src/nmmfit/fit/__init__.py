"""Model inversion: CMA-ES over the map-parametrised pFIC model, with the paper's protocol.

The package is callable: ``nmmfit.fit(train, val, test, ...)`` is :func:`fit`, so that the
top-level entry point and the subpackage share one name.

>>> from nmmfit.fit import fit, default_targets
>>> train, val, test = default_targets()  # HCP Schaefer-100: train706 / 2 subjects / test303
>>> res = fit(train, val, test, preset="quick")   # doctest: +SKIP
>>> res.test_cost, res.ei_map.shape               # doctest: +SKIP

Modules
-------
parametrise  maps -> regional wEE, wEI, sigma (+ global G); bounds; initialisation
evaluator    the Evaluator interface and the Euler (simulate + FC/FCD cost) evaluator
spotcheck    an evaluator that re-scores a fast evaluator's best candidates by simulation
cmaes        pycma ask/tell driver with rejection sampling, 1/loss weights, restarts, resume
warm_start   the linearised-FC start of CMA-ES
store        SQLite store of every evaluation (one transaction per epoch)
presets      protocol settings: presets "paper" and "quick", per-phase SimConfig, default data
heldout      the test phase: distinct best validated candidates, scored over many duplicates
result       :class:`FitResult`; the best of several fits by validation
protocol     train / validation / test: :func:`fit`
"""

import inspect
import sys
import types

from nmmfit.fit.cmaes import CMAESConfig, SamplingError, SearchHistory, run_search
from nmmfit.fit.evaluator import EulerEvaluator, Evaluation, Evaluator
from nmmfit.fit.parametrise import Parametrisation, RegionalParams, wei_bounds_from_fc
from nmmfit.fit.presets import PRESETS, Preset, default_targets, get_preset, sim_config_for
from nmmfit.fit.protocol import DEFAULT_STORE, fit
from nmmfit.fit.result import FitResult, best_by_validation
from nmmfit.fit.spotcheck import SpotCheckEvaluator
from nmmfit.fit.store import Store

__all__ = [
    "fit",
    "FitResult",
    "best_by_validation",
    "Preset",
    "PRESETS",
    "get_preset",
    "default_targets",
    "sim_config_for",
    "DEFAULT_STORE",
    "Parametrisation",
    "RegionalParams",
    "wei_bounds_from_fc",
    "Evaluator",
    "Evaluation",
    "EulerEvaluator",
    "SpotCheckEvaluator",
    "CMAESConfig",
    "SamplingError",
    "SearchHistory",
    "run_search",
    "Store",
]


class _CallablePackage(types.ModuleType):
    """The ``nmmfit.fit`` package, which called is :func:`nmmfit.fit.protocol.fit`."""

    def __call__(self, *args, **kwargs) -> FitResult:
        return fit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
__signature__ = inspect.signature(fit)
