"""DELSSOME deep-learning surrogates: cost predictors and a validity classifier.

Units and shapes (M table rows, B batch rows, N regions, T targets, K = N(N-1)/2):

- table: ``wEE``, ``wEI`` [M, N] (dimensionless), ``sigma`` [M, N] (nA), ``G`` [M],
  ``target_idx`` [M] int into the targets, and for training ``costs`` [M, 3]
  (fc_corr, fc_l1, fcd_ks; NaN or 5.0 where invalid) and ``valid`` [M] bool;
- targets: ``sc`` [T, N, N] (normalised SC, max 0.02), ``fc`` [T, N, N], ``fcd_pdf``
  [T, n_bins] (sums to 1);
- network inputs (float32): tokens [B, N, 3], G-scaled SC rows [B, N, N], FC upper triangle
  [B, K], FCD PDF [B, n_bins] (see :class:`Normaliser` for the scalings);
- outputs: costs [B, 3] with fc_corr, fc_l1 in [0, 2] and fcd_ks in [0, 1]; classifier logits
  [B] (sigmoid = probability that the simulation is valid).

Modules: :mod:`.features` (inputs), :mod:`.networks` (torch modules), :mod:`.fastpath` (their
per-target inference path), :mod:`.train` (training, prediction, metrics), :mod:`.store`
(one-file save / load with metadata), :mod:`.shipped` (model folders and the shipped models),
:mod:`.evaluator` (the fit's surrogate evaluator), :mod:`.spotcheck`. Training data:
:mod:`.targets` (the split), :mod:`.jobs` (planning), :mod:`.generate` (the driver),
:mod:`.table` (the training table), :mod:`.compact` (moving runs between stores and files),
:mod:`.summaries`; :mod:`.workflow` trains and evaluates from a store.
"""

from nmmfit.surrogate.features import (
    COST_NAMES,
    PARAM_NAMES,
    Normaliser,
    PreparedTargets,
    batch_arrays,
    batch_tensors,
    check_table,
    check_targets,
    cost_mask,
    prepare_targets,
    stack_targets,
)
from nmmfit.surrogate.networks import (
    CostPredictor,
    MLPCostPredictor,
    MLPValidityClassifier,
    RegionTransformer,
    StructuredCostPredictor,
    ValidityClassifier,
    build_model,
)
from nmmfit.surrogate.store import LoadedModel, data_hash, load_model, save_model
from nmmfit.surrogate.train import (
    TrainConfig,
    accuracy,
    chance_rate,
    classifier_metrics,
    cost_metrics,
    pearson_r,
    predict_costs,
    predict_valid_proba,
    roc_auc,
    train_classifier,
    train_cost_predictor,
)

__all__ = [
    "COST_NAMES",
    "PARAM_NAMES",
    "Normaliser",
    "PreparedTargets",
    "batch_arrays",
    "batch_tensors",
    "check_table",
    "check_targets",
    "cost_mask",
    "prepare_targets",
    "stack_targets",
    "CostPredictor",
    "MLPCostPredictor",
    "StructuredCostPredictor",
    "MLPValidityClassifier",
    "RegionTransformer",
    "ValidityClassifier",
    "build_model",
    "LoadedModel",
    "data_hash",
    "load_model",
    "save_model",
    "TrainConfig",
    "accuracy",
    "chance_rate",
    "classifier_metrics",
    "cost_metrics",
    "pearson_r",
    "predict_costs",
    "predict_valid_proba",
    "roc_auc",
    "train_classifier",
    "train_cost_predictor",
]
