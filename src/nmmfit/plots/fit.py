"""Figures of a pFIC fit (:class:`nmmfit.fit.FitResult`), written as PNG with the Agg backend.

- ``<prefix>_cost.png``: best training cost per epoch (and running best), labelled as
  simulated or surrogate-predicted, and the (simulated) validation cost of each epoch's best
  child, with the candidate chosen for the test marked; optionally a second search (e.g.
  random) for comparison;
- ``<prefix>_fc.png``: empirical and simulated FC matrices with regions ordered by Yeo-7
  network (boundaries and names drawn when the region names give the networks), one shared
  colour bar, and their upper-triangle scatter; the title gives the printed cost term
  (1 - r, mean over duplicate groups) beside the r of the two matrices shown;
- ``<prefix>_fcd.png``: the FCD matrices, empirical (the test target's first BOLD run, when
  it has one; a group target holds only the FCD distribution, and the figure says so) and
  simulated (the first valid test duplicate of the tested candidate), time in minutes on
  both axes and one colour bar; beside them the empirical and simulated FCD CDFs (KS
  distance marked). A result without matrices (saved before they were kept) gets the CDFs
  only;
- ``<prefix>_maps.png``: regional E/I ratio (mean +- std over test duplicates) and the fitted
  wEE, wEI and sigma maps;
- ``<prefix>_ei.png``: the E/I ratio by Yeo-7 network (when the region names give the
  networks) and against each map of the parametrisation (e.g. myelin, FC gradient).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from nmmfit.data.dataset import YEO7_NAMES
from nmmfit.plots._common import pyplot, save

__all__ = ["plot_fit", "plot_cost_history", "plot_fc", "plot_fcd_cdf", "plot_fcd_matrices",
           "plot_fcd", "plot_maps", "plot_ei", "network_order"]


def network_order(res) -> tuple[np.ndarray, np.ndarray | None]:
    """(order [N], networks [N] or None): regions sorted by Yeo-7 network (stable, so the
    atlas order is kept within a network) when the fit's region names give the networks."""
    from nmmfit.population.analysis import networks_for  # its pandas/statsmodels stay lazy

    labels = res.region_labels
    n = res.parametrisation.n_regions
    net = None
    if labels:
        parc = "schaefer" if any("Networks_" in s for s in labels) else "aal2"
        net = networks_for(parc, labels)
    if net is None:
        return np.arange(n), None
    return np.argsort(np.where(net < 0, 99, net), kind="stable"), np.asarray(net)


def _search_label(res) -> str:
    ev = (res.config.get("train_evaluator") or {})
    return "simulated" if ev.get("evaluator", "euler") == "euler" else "surrogate-predicted"


def _val_curve(res) -> tuple[np.ndarray, np.ndarray]:
    tot = np.where(res.val_valid, res.val_total, np.nan)
    return res.val_epochs, tot


def plot_cost_history(res, ax, compare=None) -> None:
    """Training best per epoch (simulated or surrogate-predicted, as labelled), its running
    minimum, the simulated validation cost per epoch, and the candidate chosen for the test."""
    runs = [(res, "CMA-ES" if res.train.kind == "cmaes" else res.train.kind, "C0")]
    if compare is not None:
        runs.append((compare, "random" if compare.train.kind == "random" else
                     compare.train.kind, "C3"))
    for r, label, col in runs:
        how = _search_label(r)
        ep = np.array([e.epoch for e in r.train.epochs])
        tb = np.array([e.best_total if e.best_valid else np.nan for e in r.train.epochs])
        ax.plot(ep, tb, ".", color=col, alpha=0.4, ms=4)
        ax.plot(ep, np.fmin.accumulate(tb), "-", color=col,
                label=f"{label} training, {how} (best so far)")
        ve, vt = _val_curve(r)
        ax.plot(ve, vt, "--", color=col, alpha=0.8, label=f"{label} validation, simulated")
    best = res.test[0]
    ax.plot([best["epoch"]], [res.best_val_cost], "*", color="k", ms=11,
            label=f"tested candidate (epoch {int(best['epoch'])}): test total "
                  f"{res.test_cost['total']:.3f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("total cost (fc_corr + fc_l1 + fcd_ks)")
    ax.legend(fontsize=7)
    ax.set_title("cost per epoch (invalid children omitted)", fontsize=9)


def plot_fc(res, axes) -> None:
    """Empirical FC, simulated FC (test, mean over valid duplicates), ordered by network,
    with one colour bar, and their upper-triangle scatter."""
    emp, sim = np.asarray(res.emp_fc), np.asarray(res.sim_fc)
    order, net = network_order(res)
    for ax, mat, title in ((axes[0], emp, "empirical FC (test)"),
                           (axes[1], sim, "simulated FC (test, mean of valid duplicates)")):
        im = ax.imshow(mat[np.ix_(order, order)], vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if net is not None:
            sn = net[order]
            cuts = np.flatnonzero(np.diff(sn)) + 0.5
            for c in cuts:
                ax.axhline(c, color="k", lw=0.5)
                ax.axvline(c, color="k", lw=0.5)
            starts = np.concatenate([[0], np.ceil(cuts).astype(int)])
            ends = np.concatenate([np.ceil(cuts).astype(int), [len(sn)]])
            ax.set_yticks((starts + ends - 1) / 2,
                          [YEO7_NAMES[k] if k >= 0 else "other" for k in sn[starts]],
                          fontsize=6)
    axes[1].figure.colorbar(im, ax=list(axes[:2]), fraction=0.025, pad=0.02,
                            label="Pearson r")
    iu = np.triu_indices(emp.shape[0], 1)
    x, y = emp[iu], sim[iu]
    ok = np.isfinite(x) & np.isfinite(y)
    axes[2].plot(x[ok], y[ok], ".", ms=1.5, alpha=0.4)
    r = float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    lim = [min(x[ok].min(initial=0), y[ok].min(initial=0)), 1.0]
    axes[2].plot(lim, lim, "k:", lw=0.8)
    axes[2].set_xlabel("empirical FC")
    axes[2].set_ylabel("simulated FC")
    g = res.test[0].get("group", "?")
    axes[2].set_title(f"cost term 1 - r = {res.test_cost['fc_corr']:.3f} (mean over groups of "
                      f"{g} duplicates)\nr of the matrices shown (all valid duplicates) = "
                      f"{r:.3f}", fontsize=8)


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


def _fcd_range(mats) -> tuple[float, float]:
    """Shared colour range of FCD matrices: [min(0, 1st percentile off the diagonal), 1]."""
    lows = []
    for m in mats:
        v = np.asarray(m.values, dtype=np.float64)
        off = v[~np.eye(v.shape[0], dtype=bool)]
        off = off[np.isfinite(off)]
        if off.size:
            lows.append(float(np.percentile(off, 1)))
    return min([0.0, *[np.floor(lo * 10) / 10 for lo in lows]]), 1.0


def _fcd_image(ax, fcd, title: str, vmin: float, vmax: float):
    """One FCD matrix on window-centre times in minutes; returns the image."""
    t = np.asarray(fcd.time_s) / 60.0
    h = 0.5 * float(t[1] - t[0]) if t.size > 1 else 0.5
    im = ax.imshow(fcd.values, extent=(t[0] - h, t[-1] + h, t[-1] + h, t[0] - h),
                   vmin=vmin, vmax=vmax, cmap="viridis", interpolation="nearest")
    ax.set_xlabel("window centre (min)")
    ax.set_ylabel("window centre (min)")
    every = "" if fcd.stride == 1 else f"; one window in {fcd.stride} shown"
    ax.set_title(f"{title}\n{fcd.label}{every}", fontsize=8)
    return im


def _no_matrix(ax, text: str) -> None:
    ax.text(0.5, 0.5, textwrap.fill(text, 45), ha="center", va="center", fontsize=9,
            transform=ax.transAxes)
    ax.set_axis_off()


def plot_fcd_matrices(res, axes) -> None:
    """Empirical FCD matrix (``res.emp_fcd``) in ``axes[0]``, simulated (``res.sim_fcd``)
    in ``axes[1]``: time in minutes on both axes, one colour bar ("FC correlation between
    windows", shared range); a missing matrix gets a sentence saying why."""
    test = (res.config.get("targets") or {}).get("test") or {}
    shown = [m for m in (res.emp_fcd, res.sim_fcd) if m is not None]
    vmin, vmax = _fcd_range(shown)
    im = None
    if res.emp_fcd is not None:
        im = _fcd_image(axes[0], res.emp_fcd, "empirical FCD (test target)", vmin, vmax)
    else:
        _no_matrix(axes[0], f"no empirical FCD matrix: the test target "
                            f"{test.get('name', '')!r} holds only the FCD distribution "
                            "(its CDF, right), not BOLD runs (e.g. a bundled group)")
    if res.sim_fcd is not None:
        im = _fcd_image(axes[1], res.sim_fcd, "simulated FCD (tested candidate)", vmin, vmax)
    else:
        _no_matrix(axes[1], "no simulated FCD matrix: no valid test duplicate, or a run "
                            "tested before matrices were kept")
    if im is not None:
        axes[1].figure.colorbar(im, ax=list(axes[:2]), fraction=0.025, pad=0.02,
                                label="FC correlation between windows")


def plot_fcd(res, path) -> Path:
    """Write the FCD figure to ``path``: the FCD matrices and the CDFs
    (:func:`plot_fcd_matrices`, :func:`plot_fcd_cdf`), or the CDFs alone for a result that
    holds no matrix (saved before matrices were kept)."""
    plt = pyplot()
    if res.sim_fcd is None and res.emp_fcd is None:
        fig, ax = plt.subplots(figsize=(6, 4))
        plot_fcd_cdf(res, ax)
    else:
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained",
                                 gridspec_kw={"width_ratios": [
                                     1 if res.emp_fcd is not None else 0.6, 1, 1.2]})
        plot_fcd_matrices(res, axes)
        plot_fcd_cdf(res, axes[2])
    return _save(fig, Path(path))


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


def plot_ei(res, axes) -> None:
    """E/I ratio by Yeo-7 network (strip plot with the network means) and against each map."""
    ei = np.asarray(res.ei_map)
    _, net = network_order(res)
    ax = axes[0]
    if net is not None:
        rng = np.random.default_rng(0)
        ks = [k for k in range(len(YEO7_NAMES)) if (net == k).any()]
        for i, k in enumerate(ks):
            v = ei[net == k]
            ax.plot(i + rng.uniform(-0.15, 0.15, v.size), v, ".", ms=4, alpha=0.6)
            ax.plot([i - 0.3, i + 0.3], [np.nanmean(v)] * 2, "k-", lw=1.5)
        ax.set_xticks(range(len(ks)), [YEO7_NAMES[k] for k in ks], rotation=30, fontsize=7)
        ax.set_title("E/I ratio by Yeo-7 network (bar: mean)", fontsize=9)
    else:
        ax.text(0.5, 0.5, "no network labels for these regions", ha="center",
                transform=ax.transAxes, fontsize=8)
        ax.set_xticks([])
    ax.set_ylabel("E/I ratio (S_E / S_I)")
    param = res.parametrisation
    for ax, (name, m) in zip(axes[1:], zip(param.map_names, param.maps, strict=True),
                             strict=False):
        ok = np.isfinite(ei)
        r = float(np.corrcoef(m[ok], ei[ok])[0, 1]) if ok.sum() > 2 else float("nan")
        ax.plot(m, ei, ".", ms=4, alpha=0.7)
        ax.set_xlabel(f"{name} map")
        ax.set_title(f"E/I vs {name}: r = {r:.2f}", fontsize=9)
    for ax in axes[1 + param.n_maps:]:
        ax.set_visible(False)


def plot_fit(res, out_dir, prefix: str = "fit", compare=None) -> list[Path]:
    """Write the five figures of a fit to ``out_dir``; returns their paths."""
    plt = pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.2))
    plot_cost_history(res, ax, compare=compare)
    paths.append(_save(fig, out / f"{prefix}_cost.png"))

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    plot_fc(res, axes)
    paths.append(_save(fig, out / f"{prefix}_fc.png"))

    paths.append(plot_fcd(res, out / f"{prefix}_fcd.png"))

    fig, axes = plt.subplots(4, 1, figsize=(10, 8), sharex=True)
    plot_maps(res, axes)
    paths.append(_save(fig, out / f"{prefix}_maps.png"))

    n_panels = 1 + max(res.parametrisation.n_maps, 1)
    fig, axes = plt.subplots(1, n_panels, figsize=(4.2 * n_panels, 3.6), layout="constrained")
    plot_ei(res, np.atleast_1d(axes))
    paths.append(_save(fig, out / f"{prefix}_ei.png"))
    return paths


def _save(fig, path: Path) -> Path:
    return save(fig, path, dpi=110, bbox_inches="tight")
