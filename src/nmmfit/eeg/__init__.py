"""EEG observation model: lead fields (MNE), sensor noise, epochs and evoked responses.
The main names are exported here (lazily).

Needs the ``eeg`` extra (``pip install 'nmmfit[eeg]'``): importing the package without MNE is
one clear ImportError (:func:`nmmfit._extras.require`).
"""

import importlib

from nmmfit._extras import require

require("eeg", "mne", feature="nmmfit.eeg")

_EXPORTS = {
    "ERPConfig": "nmmfit.eeg.erp",
    "ERPSimulator": "nmmfit.eeg.erp",
    "sphere_leadfield": "nmmfit.eeg.leadfield",
    "make_noise_model": "nmmfit.eeg.noise",
    "EvokedNoiseSampler": "nmmfit.eeg.noise",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
