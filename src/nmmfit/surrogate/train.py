"""Training, prediction and metrics for the surrogate networks.

- :func:`train_cost_predictor`: MSE on the 3 costs (fc_corr, fc_l1, fcd_ks) over the usable
  rows only (``valid``, finite costs below the sentinel; see :func:`features.cost_mask`).
- :func:`train_classifier`: BCE-with-logits on ``valid`` over all rows.

Both use Adam (``lr``), ExponentialLR (``gamma`` per epoch), shuffled mini-batches, and early
stopping on the validation loss with the best weights restored. Seeds are explicit: the batch
order comes from ``numpy.random.default_rng(seed)`` and dropout from ``torch.manual_seed(seed)``
inside ``torch.random.fork_rng``, so the global torch RNG is left untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from nmmfit._validate import as_array
from nmmfit.surrogate.features import (
    COST_NAMES,
    Normaliser,
    PreparedTargets,
    batch_arrays,
    check_table,
    cost_mask,
    prepare_targets,
)

__all__ = [
    "TrainConfig",
    "train_cost_predictor",
    "train_classifier",
    "predict_costs",
    "predict_valid_proba",
    "pearson_r",
    "cost_metrics",
    "accuracy",
    "chance_rate",
    "roc_auc",
    "classifier_metrics",
]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainConfig:
    """Training settings (defaults: DELSSOME group level, §5.4 of the reference notes).

    lr : Adam learning rate. gamma : ExponentialLR factor per epoch.
    batch_size : rows per step. max_epochs : upper bound on epochs.
    patience : stop after this many epochs without a validation-loss improvement larger than
        ``min_delta`` (None: never stop early). The best epoch's weights are restored either way.
    seed : batch order and dropout. threads : torch intra-op threads while training (None: as is).
    dtype : "float32" (default) or "float64" (the paper's choice).
    eval_batch_size : rows per forward pass when evaluating.
    weight_decay : Adam L2 penalty.
    balance_classes : classifier only; weight the positive class by n_neg / n_pos.
    """

    lr: float = 1e-3
    gamma: float = 0.98
    batch_size: int = 256
    max_epochs: int = 15
    patience: int | None = 3
    min_delta: float = 0.0
    seed: int = 0
    threads: int | None = None
    dtype: str = "float32"
    eval_batch_size: int = 2048
    weight_decay: float = 0.0
    balance_classes: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        if self.batch_size < 1 or self.eval_batch_size < 1 or self.max_epochs < 1:
            raise ValueError(f"batch_size, eval_batch_size and max_epochs must be >= 1, got "
                             f"{self.batch_size}, {self.eval_batch_size}, {self.max_epochs}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")

    def as_dict(self) -> dict:
        """Plain dict, for metadata."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# batching


class _Batches:
    """Yields network inputs (and labels) for rows of a checked table, as torch tensors."""

    def __init__(self, tab: dict, prep: PreparedTargets, normaliser: Normaliser,
                 dtype: torch.dtype) -> None:
        self.tab, self.prep, self.normaliser, self.dtype = tab, prep, normaliser, dtype

    def inputs(self, rows: np.ndarray) -> tuple[torch.Tensor, ...]:
        arrs = batch_arrays(self.tab, self.prep, rows, self.normaliser, checked=True)
        return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(self.dtype) for a in arrs)


def _model_dtype(model: nn.Module) -> torch.dtype:
    p = next(model.parameters(), None)
    return torch.float32 if p is None else p.dtype


def _setup(model: nn.Module, table: Mapping, targets, normaliser: Normaliser, name: str,
           require_labels: bool, dtype: torch.dtype) -> _Batches:
    n_regions = getattr(model, "n_regions", None)
    n_bins = getattr(model, "n_fcd_bins", None)
    tab = check_table(table, n_regions=n_regions, require_labels=require_labels, name=name)
    prep = prepare_targets(targets, normaliser, n_regions=tab["wEE"].shape[1], n_fcd_bins=n_bins)
    tidx = tab["target_idx"]
    if tidx.size and tidx.max() >= prep.n_targets:
        raise ValueError(f"{name}['target_idx'] has entries up to {int(tidx.max())}, but the "
                         f"targets hold only {prep.n_targets} rows (sc shape {prep.sc.shape})")
    return _Batches(tab, prep, normaliser, dtype)


def _fit(model: nn.Module, train: _Batches, rows_tr: np.ndarray, y_tr: np.ndarray,
         val: _Batches, rows_va: np.ndarray, y_va: np.ndarray,
         loss_sum: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
         config: TrainConfig, progress: bool, desc: str,
         val_extra: Callable[[np.ndarray, np.ndarray], dict] | None = None) -> dict:
    """Generic loop: Adam + ExponentialLR, early stopping, best weights restored."""
    from tqdm.auto import tqdm

    if rows_tr.size == 0 or rows_va.size == 0:
        raise ValueError(f"{desc}: need at least one training and one validation row, got "
                         f"{rows_tr.size} and {rows_va.size}")
    dtype = _DTYPES[config.dtype]
    model.to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config.gamma)
    rng = np.random.default_rng(config.seed)
    y_tr_t = torch.from_numpy(np.ascontiguousarray(y_tr)).to(dtype)
    hist: dict = {"train_loss": [], "val_loss": [], "lr": [], "n_train": int(rows_tr.size),
                  "n_val": int(rows_va.size)}
    best, best_epoch, best_state, waited = np.inf, 0, None, 0
    old_threads = torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        if config.threads:
            torch.set_num_threads(int(config.threads))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            bar = tqdm(range(config.max_epochs), desc=desc, disable=not progress, leave=False)
            for epoch in bar:
                model.train()
                order = rng.permutation(rows_tr.size)
                total = 0.0
                for start in range(0, order.size, config.batch_size):
                    sel = order[start:start + config.batch_size]
                    out = model(*train.inputs(rows_tr[sel]))
                    loss = loss_sum(out, y_tr_t[sel]) / sel.size
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * sel.size
                hist["lr"].append(float(opt.param_groups[0]["lr"]))
                sched.step()
                pred = _predict(model, val, rows_va, config.eval_batch_size)
                with torch.no_grad():
                    vsum = loss_sum(torch.from_numpy(pred).to(torch.float64),
                                    torch.from_numpy(y_va).to(torch.float64))
                vloss = float(vsum) / y_va.shape[0]
                hist["train_loss"].append(total / rows_tr.size)
                hist["val_loss"].append(vloss)
                if val_extra is not None:
                    for key, v in val_extra(pred, y_va).items():
                        hist.setdefault(key, []).append(v)
                bar.set_postfix(train=f"{hist['train_loss'][-1]:.4g}", val=f"{vloss:.4g}")
                if vloss < best - config.min_delta:
                    best, best_epoch, waited = vloss, epoch + 1, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    waited += 1
                    if config.patience is not None and waited >= config.patience:
                        break
            bar.close()
    finally:
        torch.set_num_threads(old_threads)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist.update(epochs_run=len(hist["val_loss"]), best_epoch=int(best_epoch),
                best_val_loss=float(best),
                stopped_early=len(hist["val_loss"]) < config.max_epochs,
                wall_time_s=time.perf_counter() - t0, config=config.as_dict())
    return hist


def _predict(model: nn.Module, data: _Batches, rows: np.ndarray, batch_size: int) -> np.ndarray:
    """Raw network outputs for ``rows`` (eval mode, no grad), as a numpy array."""
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.no_grad():
            for start in range(0, rows.size, batch_size):
                outs.append(model(*data.inputs(rows[start:start + batch_size])).cpu().numpy())
    finally:
        model.train(was_training)
    if not outs:
        return np.zeros((0,), dtype=np.float32)
    return np.concatenate(outs, axis=0)


# --------------------------------------------------------------------------------------------
# public training / prediction


class _WithSummaries(nn.Module):
    """Training view of a structured predictor: in training mode it outputs [B, 3 + 1 + K] =
    the costs, then the predicted simulation summaries, from one forward pass (the same dropout
    draw feeds both), so one loss can supervise both; in eval mode (validation, which scores
    costs only) just the costs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens, sc_rows, fc_upper, fcd_pdf):
        if not self.training:
            return self.model(tokens, sc_rows, fc_upper, fcd_pdf)
        return self.model.forward_with_summaries(tokens, sc_rows, fc_upper, fcd_pdf)


def _summary_labels(summaries: Mapping, n_rows: int, model: nn.Module) -> np.ndarray:
    """[n_rows, 1 + K] summary labels aligned with the training table (NaN: none)."""
    m = np.asarray(summaries["m_sim"], dtype=np.float64)
    cdf = np.asarray(summaries["cdf"], dtype=np.float64)
    k = int(model.config["n_cdf_points"])
    if m.shape != (n_rows,) or cdf.shape != (n_rows, k):
        raise ValueError(f"summaries must hold m_sim [{n_rows}] and cdf [{n_rows}, {k}] aligned "
                         f"with table_train's rows, got shapes {m.shape} and {cdf.shape}")
    return np.concatenate([m[:, None], cdf], axis=1)


def train_cost_predictor(model: nn.Module, table_train: Mapping, table_val: Mapping,
                         targets: Mapping | PreparedTargets, normaliser: Normaliser,
                         config: TrainConfig | None = None,
                         progress: bool = False, summaries: Mapping | None = None,
                         summary_weight: float = 1.0) -> tuple[nn.Module, dict]:
    """Train a cost predictor with MSE on (fc_corr, fc_l1, fcd_ks) over usable rows only.

    ``table_train`` / ``table_val``: evaluation tables with labels, indexing the same
    ``targets``. Returns (model with the best validation weights, in eval mode; history with
    per-epoch ``train_loss``, ``val_loss``, ``lr`` and ``val_r_total``, plus ``epochs_run``,
    ``best_epoch``, ``best_val_loss``, ``wall_time_s``, ``n_train``, ``n_val``, ``config``).

    ``summaries`` (a :class:`~nmmfit.surrogate.networks.StructuredCostPredictor` only):
    simulated summaries of the training rows, ``m_sim`` [R] (FC mean) and ``cdf`` [R, K]
    (FCD CDF at the model's ``cdf_index`` bins), NaN where a row has none
    (:func:`nmmfit.surrogate.summaries.simulate_summaries`). Their squared errors, times
    ``summary_weight``, join the training loss, so the predicted summaries are pinned by
    simulations rather than only through the cost terms. Validation loss and early stopping
    use the costs alone.
    """
    config = config or TrainConfig()
    dtype = _DTYPES[config.dtype]
    tr = _setup(model, table_train, targets, normaliser, "table_train", True, dtype)
    va = _setup(model, table_val, tr.prep, normaliser, "table_val", True, dtype)
    rows_tr = np.flatnonzero(cost_mask(tr.tab))
    rows_va = np.flatnonzero(cost_mask(va.tab))
    y_tr = tr.tab["costs"].astype(np.float32)
    y_va = va.tab["costs"][rows_va].astype(np.float64)
    net = model
    if summaries is not None:
        if not hasattr(model, "forward_with_summaries"):
            raise ValueError(f"summaries need a structured predictor, got {type(model).__name__}")
        aux = _summary_labels(summaries, tr.tab["G"].shape[0], model)
        y_tr = np.concatenate([y_tr, aux.astype(np.float32)], axis=1)
        net = _WithSummaries(model)
    w_aux = float(summary_weight)

    def loss_sum(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cost = ((out[:, :3] - y[:, :3]) ** 2).mean(dim=-1).sum()
        if y.shape[1] == 3:  # validation: costs only
            return cost
        lab = y[:, 3:]
        have = torch.isfinite(lab)
        err = torch.where(have, out[:, 3:] - torch.nan_to_num(lab), torch.zeros_like(lab))
        # FC mean and the CDF weigh equally: each is the mean square over its own entries
        fc_mean = (err[:, 0] ** 2).sum()
        cdf = ((err[:, 1:] ** 2).mean(dim=-1)).sum()
        return cost + w_aux * (fc_mean + cdf)

    def extra(pred: np.ndarray, y: np.ndarray) -> dict:
        return {"val_r_total": pearson_r(pred.sum(axis=1), y.sum(axis=1))}

    # y_tr is indexed by position in rows_tr inside the loop: pass the usable rows' labels.
    hist = _fit(net, tr, rows_tr, y_tr[rows_tr], va, rows_va, y_va, loss_sum, config,
                progress, "cost predictor", extra)
    if summaries is not None:
        hist["n_rows_with_summaries"] = int(np.isfinite(aux[rows_tr, 0]).sum())
        hist["summary_weight"] = w_aux
    return model, hist


def train_classifier(model: nn.Module, table_train: Mapping, table_val: Mapping,
                     targets: Mapping | PreparedTargets, normaliser: Normaliser,
                     config: TrainConfig | None = None,
                     progress: bool = False) -> tuple[nn.Module, dict]:
    """Train a validity classifier with BCE-with-logits on ``valid`` over all rows.

    With ``config.balance_classes`` the positive class is weighted by n_neg / n_pos (training
    set). Returns (model, history) as :func:`train_cost_predictor`, with per-epoch
    ``val_accuracy`` and ``val_auc`` and the validation ``chance_rate``.
    """
    config = config or TrainConfig()
    dtype = _DTYPES[config.dtype]
    tr = _setup(model, table_train, targets, normaliser, "table_train", False, dtype)
    va = _setup(model, table_val, tr.prep, normaliser, "table_val", False, dtype)
    for name, d in (("table_train", tr), ("table_val", va)):
        if "valid" not in d.tab:
            raise ValueError(f"{name} lacks the array 'valid' needed to train a classifier")
    y_tr = tr.tab["valid"].astype(np.float32)
    y_va = va.tab["valid"].astype(np.float64)
    pos_weight = None
    if config.balance_classes:
        n_pos = float(y_tr.sum())
        pos_weight = (y_tr.size - n_pos) / max(n_pos, 1.0)

    def loss_sum(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=out.dtype)
        return nn.functional.binary_cross_entropy_with_logits(out, y, pos_weight=pw,
                                                              reduction="sum")

    def extra(logits: np.ndarray, y: np.ndarray) -> dict:
        proba = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        return {"val_accuracy": accuracy(proba, y), "val_auc": roc_auc(proba, y)}

    hist = _fit(model, tr, np.arange(y_tr.size), y_tr, va, np.arange(y_va.size), y_va,
                loss_sum, config, progress, "classifier", extra)
    hist["chance_rate"] = chance_rate(y_va)
    hist["pos_weight"] = pos_weight
    return model, hist


def predict_costs(model: nn.Module, table: Mapping, targets: Mapping | PreparedTargets,
                  normaliser: Normaliser, batch_size: int = 2048) -> np.ndarray:
    """Predicted costs [M, 3] (fc_corr, fc_l1, fcd_ks), float32, for every row of ``table``.

    Runs in eval mode under ``torch.no_grad``; labels in the table are ignored.
    """
    data = _setup(model, table, targets, normaliser, "table", False, _model_dtype(model))
    rows = np.arange(data.tab["wEE"].shape[0])
    out = _predict(model, data, rows, batch_size)
    return out.reshape(rows.size, len(COST_NAMES)).astype(np.float32)


def predict_valid_proba(model: nn.Module, table: Mapping, targets: Mapping | PreparedTargets,
                        normaliser: Normaliser, batch_size: int = 2048) -> np.ndarray:
    """Probability [M] (float32) that each row's simulation is valid (sigmoid of the logit)."""
    data = _setup(model, table, targets, normaliser, "table", False, _model_dtype(model))
    rows = np.arange(data.tab["wEE"].shape[0])
    logits = _predict(model, data, rows, batch_size).reshape(rows.size).astype(np.float64)
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


# --------------------------------------------------------------------------------------------
# metrics (numpy only)


def pearson_r(x, y) -> float:
    """Pearson correlation of two equal-length 1-D arrays (NaN if either is constant)."""
    a = as_array(x, "x", ndim=1)
    b = as_array(y, "y", ndim=1)
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same shape, got {a.shape} and {b.shape}")
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def cost_metrics(pred, true) -> dict[str, float]:
    """Pearson r and MSE per term and for the total (sum of the 3 terms).

    pred, true : [M, 3] (fc_corr, fc_l1, fcd_ks). Keys ``r_<term>``, ``mse_<term>``, ``r_total``,
    ``mse_total``, ``n``.
    """
    p = as_array(pred, "pred", ndim=2)
    t = as_array(true, "true", ndim=2)
    if p.shape != t.shape or p.shape[1] != 3:
        raise ValueError(f"pred and true must both be [M, 3], got shapes {p.shape} and {t.shape}")
    out: dict[str, float] = {"n": int(p.shape[0])}
    for j, name in enumerate(COST_NAMES):
        out[f"r_{name}"] = pearson_r(p[:, j], t[:, j])
        out[f"mse_{name}"] = float(np.mean((p[:, j] - t[:, j]) ** 2))
    out["r_total"] = pearson_r(p.sum(axis=1), t.sum(axis=1))
    out["mse_total"] = float(np.mean((p.sum(axis=1) - t.sum(axis=1)) ** 2))
    return out


def accuracy(proba, labels, threshold: float = 0.5) -> float:
    """Fraction of rows where ``proba > threshold`` equals the boolean label."""
    p = as_array(proba, "proba", ndim=1)
    y = as_array(labels, "labels", ndim=1).astype(bool)
    if p.shape != y.shape:
        raise ValueError(f"proba and labels must have the same shape, got {p.shape}, {y.shape}")
    return float(np.mean((p > threshold) == y)) if p.size else float("nan")


def chance_rate(labels) -> float:
    """Accuracy of always predicting the majority class."""
    y = as_array(labels, "labels", ndim=1).astype(bool)
    if y.size == 0:
        return float("nan")
    frac = float(y.mean())
    return max(frac, 1.0 - frac)


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve (Mann-Whitney U with tie-averaged ranks); NaN with one class."""
    s = as_array(scores, "scores", ndim=1)
    y = as_array(labels, "labels", ndim=1).astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same shape, got {s.shape}, {y.shape}")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank per unique value
    ranks = avg_rank[inv.ravel()]
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def classifier_metrics(proba, labels, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, majority-class chance rate, ROC AUC and the number of rows."""
    return {"accuracy": accuracy(proba, labels, threshold), "chance_rate": chance_rate(labels),
            "auc": roc_auc(proba, labels), "n": int(np.asarray(labels).size)}
