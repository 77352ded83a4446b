"""Figures of a pFIC fit (:class:`nmmfit.fit.FitResult`), written as PNG with the Agg backend.

- ``<prefix>_cost.png``: best training cost per epoch (and running best) and the validation
  cost of each epoch's best child; optionally a second search (e.g. random) for comparison;
- ``<prefix>_fc.png``: empirical and simulated FC matrices and their upper-triangle scatter;
- ``<prefix>_fcd.png``: empirical and simulated FCD CDFs (KS distance marked);
- ``<prefix>_maps.png``: regional E/I ratio (mean +- std over test duplicates) and the fitted
  wEE, wEI and sigma maps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nmmfit.plots._common import pyplot, save

__all__ = ["plot_fit", "plot_cost_history", "plot_fc", "plot_fcd_cdf", "plot_maps"]


def _val_curve(res) -> tuple[np.ndarray, np.ndarray]:
    tot = np.where(res.val_valid, res.val_total, np.nan)
    return res.val_epochs, tot


def plot_cost_history(res, ax, compare=None) -> None:
    """Training best per epoch, its running minimum, and validation cost per epoch."""
    runs = [(res, "CMA-ES" if res.train.kind == "cmaes" else res.train.kind, "C0")]
    if compare is not None:
        runs.append((compare, "random" if compare.train.kind == "random" else
                     compare.train.kind, "C3"))
    for r, label, col in runs:
        ep = np.array([e.epoch for e in r.train.epochs])
        tb = np.array([e.best_total if e.best_valid else np.nan for e in r.train.epochs])
        ax.plot(ep, tb, ".", color=col, alpha=0.4, ms=4)
        ax.plot(ep, np.fmin.accumulate(tb), "-", color=col, label=f"{label} train (best so far)")
        ve, vt = _val_curve(r)
        ax.plot(ve, vt, "--", color=col, alpha=0.8, label=f"{label} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("total cost (fc_corr + fc_l1 + fcd_ks)")
    ax.legend(fontsize=7)
    ax.set_title("cost per epoch (invalid children omitted)", fontsize=9)


def plot_fc(res, axes) -> None:
    """Empirical FC, simulated FC (test, mean over valid duplicates) and their scatter."""
    emp, sim = np.asarray(res.emp_fc), np.asarray(res.sim_fc)
    for ax, mat, title in ((axes[0], emp, "empirical FC (test)"),
                           (axes[1], sim, "simulated FC (test)")):
        im = ax.imshow(mat, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].figure.colorbar(im, ax=axes[1], fraction=0.046, pad=0.03)
    iu = np.triu_indices(emp.shape[0], 1)
    x, y = emp[iu], sim[iu]
    ok = np.isfinite(x) & np.isfinite(y)
    axes[2].plot(x[ok], y[ok], ".", ms=1.5, alpha=0.4)
    r = float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    lim = [min(x[ok].min(initial=0), y[ok].min(initial=0)), 1.0]
    axes[2].plot(lim, lim, "k:", lw=0.8)
    axes[2].set_xlabel("empirical FC")
    axes[2].set_ylabel("simulated FC")
    axes[2].set_title(f"upper triangle: r = {r:.3f}", fontsize=9)


def plot_fcd_cdf(res, ax) -> None:
    """Empirical and simulated FCD CDFs on the bins' centres."""
    emp, sim = np.asarray(res.emp_fcd_cdf), np.asarray(res.sim_fcd_cdf)
    edges = np.linspace(-1, 1, emp.shape[0] + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    ax.plot(centres, emp, label="empirical (test)")
    ax.plot(centres, sim, label="simulated (test)")
    if np.isfinite(sim).all():
        k = int(np.argmax(np.abs(sim - emp)))
        ax.vlines(centres[k], emp[k], sim[k], colors="k", linestyles=":",
                  label=f"KS = {abs(sim[k] - emp[k]):.3f}")
    ax.set_xlabel("FCD value (correlation of window FCs)")
    ax.set_ylabel("CDF")
    ax.legend(fontsize=7)


def plot_maps(res, axes) -> None:
    """Regional E/I (mean +- std over test duplicates) and fitted wEE, wEI, sigma."""
    n = res.parametrisation.n_regions
    idx = np.arange(n)
    axes[0].errorbar(idx, res.ei_map, yerr=res.ei_map_std, fmt=".", ms=3, lw=0.6)
    axes[0].set_ylabel("E/I ratio\n(S_E / S_I)")
    axes[0].set_title("regional E/I ratio: mean +- std over test duplicates", fontsize=9)
    for ax, key, lab in ((axes[1], "wEE", "wEE"), (axes[2], "wEI", "wEI"),
                         (axes[3], "sigma", "sigma (nA)")):
        ax.plot(idx, np.asarray(res.regional[key]), ".-", ms=3, lw=0.6)
        ax.set_ylabel(lab)
    axes[3].set_xlabel(f"region (G = {float(res.regional['G']):.3f})")


def plot_fit(res, out_dir, prefix: str = "fit", compare=None) -> list[Path]:
    """Write the four figures of a fit to ``out_dir``; returns their paths."""
    plt = pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(6.5, 4))
    plot_cost_history(res, ax, compare=compare)
    paths.append(_save(fig, out / f"{prefix}_cost.png"))

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    plot_fc(res, axes)
    paths.append(_save(fig, out / f"{prefix}_fc.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    plot_fcd_cdf(res, ax)
    paths.append(_save(fig, out / f"{prefix}_fcd.png"))

    fig, axes = plt.subplots(4, 1, figsize=(10, 8), sharex=True)
    plot_maps(res, axes)
    paths.append(_save(fig, out / f"{prefix}_maps.png"))
    return paths


def _save(fig, path: Path) -> Path:
    return save(fig, path, dpi=110, bbox_inches="tight")
