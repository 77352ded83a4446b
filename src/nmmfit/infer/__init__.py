"""Parameter inference for the Jansen-Rit ERP: datasets, sensitivity, the information
ceiling (Fisher / Cramer-Rao), point estimators (the paper's Bi-LSTM, baselines, the source
boosting ensemble) and NPE posteriors. The main names are exported here (lazily).

Needs the ``eeg`` extra (``pip install 'nmmfit[eeg]'``: MNE for the simulated EEG, sbi for
NPE): importing the package without them is one clear ImportError
(:func:`nmmfit._extras.require`).
"""

from nmmfit._extras import require
from nmmfit._lazy import lazy_exports

require("eeg", feature="nmmfit.infer")

_EXPORTS = {
    "ERPFisher": "nmmfit.infer.fisher",
    "erp_fisher": "nmmfit.infer.fisher",
    "PCABoosting": "nmmfit.infer.estimators",
    "PCAMLP": "nmmfit.infer.estimators",
    "SourceBoostingEnsemble": "nmmfit.infer.estimators",
    "BiLSTMConfig": "nmmfit.infer.bilstm",
    "BiLSTMEstimator": "nmmfit.infer.bilstm",
    "NPEConfig": "nmmfit.infer.npe",
    "NPEstimator": "nmmfit.infer.npe",
    "SummaryNPE": "nmmfit.infer.npe_summary",
    "ALPHAS": "nmmfit.infer.jr_dataset",
    "generate_dataset": "nmmfit.infer.jr_dataset",
    "sample_params": "nmmfit.infer.jr_dataset",
    "LevelData": "nmmfit.infer.benchmark",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
