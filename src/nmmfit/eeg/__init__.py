"""EEG observation model: lead fields (MNE), sensor noise, epochs and evoked responses.

Needs the ``eeg`` extra (``pip install 'nmmfit[eeg]'``): importing the package without MNE is
one clear ImportError (:func:`nmmfit._extras.require`).
"""

from nmmfit._extras import require

require("eeg", "mne", feature="nmmfit.eeg")
