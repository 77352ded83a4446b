"""nmmfit: fit biophysical neural mass models to brain recordings.

The main entry points are available at the top level::

    import nmmfit

    ds = nmmfit.datasets.load("hcp_schaefer100")
    target = nmmfit.Target.from_dataset(ds, group="train706")
    res = nmmfit.simulate(target.sc, wEE=3.5, wEI=2.5, G=1.0, sigma=0.005)
    cost = nmmfit.fc_fcd_cost(res.bold, target, valid=res.valid)
    fitted = nmmfit.fit(*nmmfit.default_targets(), preset="quick")   # CMA-ES, Euler

They are loaded on first use (``import nmmfit`` alone imports nothing heavy). ``nmmfit.fit``
is the fitting subpackage and, called, runs :func:`nmmfit.fit.protocol.fit`.

Subpackages
-----------
data       bundled cohorts, user-data loaders, SC recipes and the empirical ``Target``
models     parameter specs and equations (pFIC, Balloon-Windkessel, Jansen-Rit)
sim        batched integrators (numpy reference, numba CPU, torch)
stats      FC, FCD, their summary and the FC+FCD cost
fit        parametrisation by maps, CMA-ES, the train / validation / test protocol
surrogate  DELSSOME's deep-learning surrogates (torch)
population fitting whole cohorts (Dask), E/I group analysis
eeg        Jansen-Rit ERPs through an MNE lead field, sensor noise
infer      Jansen-Rit sensitivity and parameter inference (Bi-LSTM, sbi NPE)

The last three need optional extras: ``population`` the extra of that name, ``eeg`` and
``infer`` the ``eeg`` extra (``pip install 'nmmfit[all]'`` installs both; see
:mod:`nmmfit._extras`); without them, importing them is one clear ImportError.
"""

from __future__ import annotations

from nmmfit._lazy import lazy_exports

__version__ = "0.1.0"

#: top-level name -> the module that defines it (imported on first access)
_EXPORTS = {
    "simulate": "nmmfit.sim",
    "SimConfig": "nmmfit.sim",
    "SimResult": "nmmfit.sim",
    "SEARCH": "nmmfit.sim",
    "TEST": "nmmfit.sim",
    "Target": "nmmfit.data.target",
    "fc_fcd_cost": "nmmfit.stats",
    "summarise": "nmmfit.stats",
    "distance": "nmmfit.stats",
    "CostTerms": "nmmfit.stats",
    "FCDSpec": "nmmfit.stats",
    "default_targets": "nmmfit.fit",
    "get_preset": "nmmfit.fit",
    "FitResult": "nmmfit.fit",
    "Parametrisation": "nmmfit.fit",
    "best_by_validation": "nmmfit.fit",
    "SurrogateEvaluator": "nmmfit.surrogate.evaluator",
}
#: modules exported as themselves (``nmmfit.fit`` is also callable: see the docstring)
_MODULES = ("datasets", "fit")

__all__ = ["__version__", *_MODULES, *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS, _MODULES)
