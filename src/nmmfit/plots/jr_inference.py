"""Figures of the Jansen-Rit inference benchmark: r vs alpha, one-at-a-time, posteriors, SBC,
coverage. Small PNGs (dpi 70)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nmmfit.models import jansen_rit as jr
from nmmfit.plots._common import pyplot, save

DPI = 70


def _save(fig, path) -> Path:
    return save(fig, path, dpi=DPI)


def _label(name: str) -> str:
    u = jr.PARAM_BY_NAME[name].unit
    return f"{name} ({u})" if u else f"{name} (x C)"


def plot_r_vs_alpha(levels: dict, path, npe: dict | None = None, paper=None,
                    metric: str = "pearson", title: str | None = None) -> Path:
    """Correlation (``metric``) against alpha, one panel per parameter (paper Figure 3).

    levels : alpha_key -> {"metrics": name -> {metric, metric_ci}} (Bi-LSTM); npe : alpha_key
    -> name -> {"pearson": r} (posterior mean), drawn too when given; paper : the
    :data:`nmmfit.infer.benchmark.PAPER` dict (reported values as markers); title : the
    figure title (default: a generic one).
    """
    plt = pyplot()
    keys = sorted(levels, key=float)
    a = np.array([float(k) for k in keys])
    names = list(levels[keys[0]]["metrics"])
    fig, axes = plt.subplots(2, 4, figsize=(10, 4.6), sharex=True, constrained_layout=True)
    for ax, n in zip(axes.ravel(), names, strict=False):
        r = np.array([levels[k]["metrics"][n][metric] for k in keys])
        ci = np.array([levels[k]["metrics"][n][f"{metric}_ci"] for k in keys])
        ax.fill_between(a, ci[:, 0], ci[:, 1], color="C0", alpha=0.2, lw=0)
        ax.plot(a, r, "o-", color="C0", ms=3, label=f"Bi-LSTM ({metric})")
        if npe:
            nk = [k for k in sorted(npe, key=float) if n in npe[k]]
            ax.plot([float(k) for k in nk], [npe[k][n]["pearson"] for k in nk], "s--",
                    color="C2", ms=3, label="NPE posterior mean")
        if paper and n in paper:
            p = paper[n]
            if "alpha0" in p:
                ax.plot([0, 0.95], [p["alpha0"], p["alpha095"]], "r*", ms=7, label="paper")
            if "band" in p:
                ax.axhspan(*p["band"], color="r", alpha=0.12, label="paper band")
        ax.set_title(_label(n), fontsize=9)
        ax.set_ylim(-0.2, 1.02)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[1]:
        ax.set_xlabel("noise factor alpha", fontsize=8)
    axes[0, 0].legend(fontsize=6, loc="lower left")
    fig.suptitle(title or "JR parameter recovery vs noise (test split, 95% bootstrap CI)",
                 fontsize=10)
    return _save(fig, path)


def plot_one_at_a_time(oat: dict, all_at_once: dict | None, path) -> Path:
    """Bar chart: r when one parameter varies alone vs all 8 at once (alpha = 0)."""
    plt = pyplot()
    names = list(oat)
    r1 = [oat[n]["metrics"][n]["pearson"] for n in names]
    fig, ax = plt.subplots(figsize=(6, 2.8), constrained_layout=True)
    x = np.arange(len(names))
    ax.bar(x - 0.2, r1, 0.4, label="one at a time")
    if all_at_once:
        ax.bar(x + 0.2, [all_at_once["metrics"][n]["pearson"] for n in names], 0.4,
               label="all 8 varied")
    ax.set_xticks(x, names)
    ax.set_ylabel("Pearson r (test)")
    ax.set_ylim(min(0, *r1) - 0.05, 1.05)
    ax.axhline(1, color="k", lw=0.5)
    ax.legend(fontsize=7)
    ax.set_title("Bi-LSTM, noise-free: one parameter at a time (paper Fig. 5)", fontsize=9)
    return _save(fig, path)


def plot_pair(samples: np.ndarray, truth: np.ndarray, names, path, title: str = "",
              max_points: int = 400) -> Path:
    """Posterior pair plot for one ERP: samples [S, P] (physical units), truth [P].

    Plain matplotlib rather than ``sbi.analysis.pairplot``: sbi 0.27's ``sbi.analysis``
    imports ``six``, which sbi does not declare as a dependency, so it fails to import in an
    environment without it.
    """
    plt = pyplot()
    p = len(names)
    s = samples[:max_points]
    lo, hi = jr.bounds(names)
    fig, axes = plt.subplots(p, p, figsize=(8, 8), constrained_layout=True)
    for i in range(p):
        for j in range(p):
            ax = axes[i, j]
            ax.tick_params(labelsize=5)
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                ax.hist(samples[:, i], bins=30, range=(lo[i], hi[i]), color="C0")
                ax.axvline(truth[i], color="r", lw=1)
                ax.set_yticks([])
            else:
                ax.plot(s[:, j], s[:, i], ".", ms=1, alpha=0.4, color="C0")
                ax.plot(truth[j], truth[i], "r+", ms=8)
                ax.set_xlim(lo[j], hi[j])
                ax.set_ylim(lo[i], hi[i])
            if i == p - 1:
                ax.set_xlabel(names[j], fontsize=7)
            if j == 0:
                ax.set_ylabel(names[i], fontsize=7)
    fig.suptitle(title or "NPE posterior (red: true values; axes span the prior)", fontsize=9)
    return _save(fig, path)


def plot_sbc(npe_levels: dict, path, alphas=None) -> Path:
    """SBC rank histograms: rows = noise levels (default: first, middle, last), cols = params."""
    plt = pyplot()
    keys = sorted(npe_levels, key=float)
    if alphas is None:
        keys = [keys[0], keys[len(keys) // 2], keys[-1]]
    else:
        keys = [k for k in keys if float(k) in [float(a) for a in alphas]]
    names = list(npe_levels[keys[0]])
    fig, axes = plt.subplots(len(keys), len(names), figsize=(11, 1.5 * len(keys) + 0.6),
                             constrained_layout=True, squeeze=False)
    for r, k in enumerate(keys):
        for c, n in enumerate(names):
            h = np.asarray(npe_levels[k][n]["sbc_hist"])
            ax = axes[r, c]
            ax.bar(np.arange(len(h)), h, width=1.0, color="C0")
            ax.axhline(h.sum() / len(h), color="k", lw=0.7)
            ax.set_xticks([])
            ax.tick_params(labelsize=6)
            ax.set_title(f"{n} a={k} p={npe_levels[k][n]['sbc_ks_p']:.2f}", fontsize=7)
    fig.suptitle("SBC rank histograms (flat = calibrated; KS p-value)", fontsize=9)
    return _save(fig, path)


def plot_coverage(npe_levels: dict, path) -> Path:
    """Empirical coverage of the 50% and 90% credible intervals vs alpha, per parameter."""
    plt = pyplot()
    keys = sorted(npe_levels, key=float)
    a = [float(k) for k in keys]
    names = list(npe_levels[keys[0]])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    for ax, lvl in zip(axes, (50, 90), strict=True):
        for i, n in enumerate(names):
            ax.plot(a, [npe_levels[k][n][f"coverage{lvl}"] for k in keys], "o-", ms=3,
                    color=f"C{i}", label=n)
        ax.axhline(lvl / 100, color="k", lw=1)
        if lvl == 90:
            ax.axhspan(0.85, 0.95, color="g", alpha=0.1)
        ax.set_xlabel("noise factor alpha")
        ax.set_ylabel(f"coverage of {lvl}% intervals")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle("NPE calibration (held-out simulations)", fontsize=9)
    return _save(fig, path)


#: Curves of :func:`plot_ceiling`: results key, label, style.
CEILING_CURVES = (
    ("crlb_r_ceiling", "information ceiling (CRLB)", dict(color="k", ls="--")),
    ("best_pearson", "source boosting ensemble, 10,000 sims", dict(color="C3", marker="o")),
    ("best_n1000_pearson", "source boosting ensemble, 800 sims", dict(color="C1", marker="s")),
    ("baseline_pearson", "baseline PCA(50) + boosting, 800 sims", dict(color="C0", marker="^")),
    ("baseline_mlp_pearson", "baseline PCA(50) + MLP, 800 sims", dict(color="C2", marker="v")),
    ("bilstm_pearson", "paper's Bi-LSTM, 800 sims (100-sim test)", dict(color="C7", marker=".")),
)


def plot_ceiling(res: dict, path) -> Path:
    """Pearson r against alpha for every estimator beside the Cramer-Rao ceiling, one panel
    per parameter. ``res``: the benchmark's results dict (keys of :data:`CEILING_CURVES`,
    each alpha_key -> parameter -> r); absent keys are skipped."""
    plt = pyplot()
    present = [(k, lab, st) for k, lab, st in CEILING_CURVES if k in res]
    if not present:
        raise ValueError("no estimator results to plot (run the crlb / estimators stages)")
    names = list(next(iter(res[present[0][0]].values())))
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.2), sharex=True, constrained_layout=True)
    for ax, n in zip(axes.ravel(), names, strict=False):
        for key, lab, st in present:
            keys = sorted(res[key], key=float)
            ax.plot([float(k) for k in keys], [res[key][k].get(n, np.nan) for k in keys],
                    label=lab, ms=3, lw=1.2, **st)
        ax.set_title(_label(n), fontsize=9)
        ax.set_ylim(-0.1, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("noise factor alpha")
    for ax in axes[:, 0]:
        ax.set_ylabel("Pearson r (test)")
    axes[0, 0].legend(fontsize=6, loc="lower left")
    fig.suptitle("JR parameter recovery against the information ceiling "
                 "(1,000 held-out simulations per level)", fontsize=10)
    return _save(fig, path)
