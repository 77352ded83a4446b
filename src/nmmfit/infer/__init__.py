"""Parameter inference for the Jansen-Rit ERP benchmark: datasets and sensitivity analysis.

Needs the ``eeg`` extra (``pip install 'nmmfit[eeg]'``: MNE for the simulated EEG, sbi for
NPE): importing the package without them is one clear ImportError
(:func:`nmmfit._extras.require`).
"""

from nmmfit._extras import require

require("eeg", feature="nmmfit.infer")
