"""Figures of the surrogates: predicted against simulated cost, and the classifier's ROC and
confusion matrix (matplotlib, Agg; PNG files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nmmfit.plots._common import pyplot, save

__all__ = ["plot_predictor", "plot_classifier", "plot_fit_comparison", "plot_ei_agreement"]

_TERMS = ("fc_corr", "fc_l1", "fcd_ks", "total")


def plot_predictor(pred: np.ndarray, true: np.ndarray, path: str | Path,
                   title: str = "") -> Path:
    """Scatter of predicted [M, 3] against simulated [M, 3] costs, per term and total, with r."""
    plt = pyplot()
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
    plt = pyplot()
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


def plot_fit_comparison(runs: dict, path: str | Path, title: str = "") -> Path:
    """Euler against surrogate CMA-ES per epoch, one line per seed.

    runs : seed -> {"euler": {...}, "surrogate": {...}}, each with ``train_best_per_epoch``
    [E] (the best training cost of the epoch: simulated for Euler, *predicted* for the
    surrogate) and ``val_cost_per_epoch`` [E] (Euler-simulated validation cost of the epoch's
    best candidate, for both).
    """
    from nmmfit.stats.cost import SENTINEL_COST

    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    top = []
    for seed, pair in runs.items():
        for kind, style in (("euler", "-"), ("surrogate", "--")):
            r = pair[kind]
            a1.plot(np.asarray(r["train_best_per_epoch"], float), style,
                    label=f"{kind}, seed {seed}")
            v = np.asarray(r["val_cost_per_epoch"], float)
            bad = v >= 3 * SENTINEL_COST - 1e-9  # the epoch's best was invalid when simulated
            line, = a2.plot(np.where(bad, np.nan, v), style,
                            label=f"{kind}, seed {seed} ({bad.sum()} invalid)")
            top.append((np.flatnonzero(bad), line.get_color()))
    lo, hi = a2.get_ylim()
    y_bad = hi + 0.04 * (hi - lo)
    for idx, colour in top:  # invalid validations: crosses along the top
        a2.plot(idx, np.full(idx.size, y_bad), "x", color=colour)
    a2.set_ylim(lo, hi + 0.08 * (hi - lo))
    a1.set(xlabel="epoch", ylabel="best training cost",
           title="training (Euler: simulated; surrogate: predicted)")
    a2.set(xlabel="epoch", ylabel="validation cost (Euler)",
           title="validation, both simulated (x: invalid simulation)")
    a2.legend(fontsize=7)
    fig.suptitle(title or "Euler CMA-ES against surrogate CMA-ES")
    fig.tight_layout()
    return save(fig, path)


def plot_ei_agreement(euler: dict, surrogate: dict, path: str | Path, title: str = "") -> Path:
    """Mean cortical E/I per subject (left) and all regional E/I values (right), surrogate
    CMA-ES against Euler CMA-ES. euler, surrogate : subject -> regional E/I map [N]."""
    plt = pyplot()
    names = sorted(euler)
    eu = [np.asarray(euler[k], float) for k in names]
    su = [np.asarray(surrogate[k], float) for k in names]
    m_e = np.array([np.nanmean(v) for v in eu])
    m_s = np.array([np.nanmean(v) for v in su])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    r = np.corrcoef(m_e, m_s)[0, 1] if len(names) > 2 else np.nan
    a1.scatter(m_e, m_s)
    for k, x, y in zip(names, m_e, m_s, strict=True):
        a1.annotate(k.split(":")[-1], (x, y), fontsize=6)
    lo, hi = min(m_e.min(), m_s.min()), max(m_e.max(), m_s.max())
    a1.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    a1.set(xlabel="Euler CMA-ES mean E/I", ylabel="surrogate CMA-ES mean E/I",
           title=f"subjects, r = {r:.2f}")
    for k, e, s_ in zip(names, eu, su, strict=True):
        a2.scatter(e, s_, s=4, alpha=0.5, label=k.split(":")[-1])
    a2.set(xlabel="Euler regional E/I", ylabel="surrogate regional E/I",
           title="regions (colour: subject)")
    a2.legend(fontsize=6, markerscale=3)
    fig.suptitle(title or "E/I ratio: surrogate against Euler CMA-ES")
    fig.tight_layout()
    return save(fig, path)
