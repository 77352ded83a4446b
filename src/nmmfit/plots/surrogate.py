"""Figures of the surrogates: predicted against simulated cost, and the classifier's ROC and
confusion matrix (matplotlib, Agg; PNG files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nmmfit.plots._common import pyplot, save

__all__ = ["plot_predictor", "plot_classifier"]

_TERMS = ("fc_corr", "fc_l1", "fcd_ks", "total")


def _plt():
    return pyplot()


def plot_predictor(pred: np.ndarray, true: np.ndarray, path: str | Path,
                   title: str = "") -> Path:
    """Scatter of predicted [M, 3] against simulated [M, 3] costs, per term and total, with r."""
    plt = _plt()
    p = np.column_stack([pred, pred.sum(axis=1)])
    t = np.column_stack([true, true.sum(axis=1)])
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    for j, (ax, name) in enumerate(zip(axes, _TERMS, strict=True)):
        r = np.corrcoef(p[:, j], t[:, j])[0, 1] if len(t) > 2 else np.nan
        ax.scatter(t[:, j], p[:, j], s=3, alpha=0.3, rasterized=True)
        lo, hi = np.nanmin([t[:, j].min(), p[:, j].min()]), np.nanmax([t[:, j].max(),
                                                                       p[:, j].max()])
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set(xlabel=f"simulated {name}", ylabel=f"predicted {name}", title=f"r = {r:.3f}")
    fig.suptitle(title or "cost predictor on held-out targets")
    fig.tight_layout()
    return save(fig, path)


def plot_classifier(proba: np.ndarray, valid: np.ndarray, path: str | Path,
                    title: str = "") -> Path:
    """ROC curve (with AUC) and the confusion matrix at threshold 0.5."""
    plt = _plt()
    y = np.asarray(valid, dtype=bool)
    s = np.asarray(proba, dtype=float)
    order = np.argsort(-s)
    tp = np.cumsum(y[order])
    fp = np.cumsum(~y[order])
    tpr = np.concatenate([[0], tp / max(y.sum(), 1)])
    fpr = np.concatenate([[0], fp / max((~y).sum(), 1)])
    auc = float(np.trapezoid(tpr, fpr))
    yhat = s >= 0.5
    conf = np.array([[(~y & ~yhat).sum(), (~y & yhat).sum()], [(y & ~yhat).sum(),
                                                               (y & yhat).sum()]])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
    a1.plot(fpr, tpr)
    a1.plot([0, 1], [0, 1], "k--", lw=0.8)
    a1.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC, AUC {auc:.3f}")
    a2.imshow(conf, cmap="Blues")
    for i in range(2):
        for j in range(2):
            a2.text(j, i, str(conf[i, j]), ha="center", va="center")
    a2.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["invalid", "valid"],
           yticklabels=["invalid", "valid"], xlabel="predicted", ylabel="simulated",
           title=f"accuracy {(conf[0, 0] + conf[1, 1]) / conf.sum():.3f}")
    fig.suptitle(title or "within-range classifier on held-out targets")
    fig.tight_layout()
    return save(fig, path)
