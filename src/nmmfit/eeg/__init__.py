"""EEG observation model: lead fields (MNE), sensor noise, epochs and evoked responses.
The main names are exported here (lazily).

Needs the ``eeg`` extra (``pip install 'nmmfit[eeg]'``): importing the package without MNE is
one clear ImportError (:func:`nmmfit._extras.require`).
"""

from nmmfit._extras import require
from nmmfit._lazy import lazy_exports

require("eeg", "mne", feature="nmmfit.eeg")

_EXPORTS = {
    "ERPConfig": "nmmfit.eeg.erp",
    "ERPSimulator": "nmmfit.eeg.erp",
    "sphere_leadfield": "nmmfit.eeg.leadfield",
    "make_noise_model": "nmmfit.eeg.noise",
    "EvokedNoiseSampler": "nmmfit.eeg.noise",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
