"""Population figures (written by ``nmmfit population report``; PNG, Agg backend).

- :func:`plot_group_maps`: regional E/I, mean +/- s.e.m. over subjects per group, regions
  ordered by Yeo-7 network (coloured bands, names staggered above the axes; the regions
  without a network last, named honestly, e.g. "subcortical (no Yeo-7)" for AAL2);
- :func:`plot_network_ei`: each subject's mean E/I per network (one dot per subject and
  network, mean +/- sd over subjects beside) and the sensory-motor minus association
  contrast per subject, with the contrast's mean, t, p and n
  (:func:`nmmfit.population.analysis.network_means` and
  :func:`~nmmfit.population.analysis.network_contrast`: the numbers of the report JSON);
- :func:`plot_fit_quality`: each subject's test cost, its three terms stacked (1 - r of the
  FC, |difference of mean FC|, FCD KS distance), subjects sorted from best to worst fit;
- :func:`plot_trajectory`: subjects' E/I against age with the fitted regression curve.

E/I ratios are S_E / S_I (mean excitatory over mean inhibitory synaptic gating; no unit).
"""

from __future__ import annotations

import numpy as np

from nmmfit.plots._common import pyplot, save

__all__ = ["plot_trajectory", "plot_group_maps", "plot_network_ei", "plot_fit_quality",
           "YEO7_COLOURS", "EI_LABEL"]

#: Yeo et al. (2011)'s network colours (Vis, SomMot, DorsAttn, SalVentAttn, Limbic, Cont,
#: Default); Limbic darkened from its pale cream so that it shows on white; grey for regions
#: without a network
YEO7_COLOURS = ("#781286", "#4682b4", "#00760e", "#c43afa", "#a3b84a", "#e69422", "#cd3e4e")
_NO_NETWORK_COLOUR = "#8c8c8c"
#: y-axis label of E/I ratios
EI_LABEL = "E/I ratio S_E / S_I (no unit)"


def _net_colour(k: int) -> str:
    return YEO7_COLOURS[k] if 0 <= k < len(YEO7_COLOURS) else _NO_NETWORK_COLOUR


def _subject_colours(n: int) -> list:
    plt = pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)] if n <= 20 else ["0.3"] * n


def plot_trajectory(df, path, y: str = "ei", x: str = "age", formula: str | None = None,
                    hue: str = "sex", title: str | None = None):
    """Subjects' ``y`` against ``x`` (points, coloured by ``hue`` when present) and the fitted
    curve of :func:`nmmfit.population.analysis.regress` (other covariates at their first
    level / mean). When the regression cannot be fitted, the points are drawn alone and a
    UserWarning says why. ``df``: one row per subject (:func:`subject_frame`); ``title``:
    a first title line (e.g. the cohort and n). Returns the PNG path."""
    import pandas as pd

    from nmmfit.population.analysis import DEFAULT_FORMULA, regress

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    groups = df[hue].astype(str) if hue in df.columns else pd.Series(["all"] * len(df))
    for g in dict.fromkeys(groups):
        m = (groups == g).to_numpy()
        ax.scatter(df.loc[m, x], df.loc[m, y], s=18, alpha=0.8, label=str(g))
    try:
        f = formula or DEFAULT_FORMULA
        f = f.replace("ei ~", f"{y} ~", 1) if f.startswith("ei ~") else f
        reg = regress(df, f)
        grid = pd.DataFrame({x: np.linspace(df[x].min(), df[x].max(), 100)})
        data = reg["model"].model.data.frame
        for c in data.columns:
            if c not in (x, y):
                # hold other covariates at their mean (numeric) or first level (categorical,
                # object or pandas string dtype)
                grid[c] = (data[c].mean() if pd.api.types.is_numeric_dtype(data[c])
                           else data[c].iloc[0])
        ax.plot(grid[x], reg["model"].predict(grid), color="k", lw=2, label="fit")
        sub = f"{reg['formula']}  (R² {reg['rsquared']:.2f}, n {reg['nobs']})"
    except (ValueError, KeyError) as err:  # e.g. too few subjects: points only, and say so
        import warnings

        warnings.warn(f"E/I trajectory: no regression curve drawn ({err})", stacklevel=2)
        sub = f"no fit: {err}"[:80]
    ax.set_xlabel("age (years)" if x == "age" else x)
    ax.set_ylabel(EI_LABEL if y == "ei" else y)
    ax.set_title(f"{title}\n{sub}" if title else sub, fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return save(fig, path)


def _network_order(networks, n: int) -> np.ndarray:
    """[N] region order: by Yeo-7 index (stable: atlas order within a network), regions
    without a network (-1) last."""
    if networks is None:
        return np.arange(n)
    net = np.asarray(networks)
    return np.argsort(np.where(net < 0, len(YEO7_COLOURS), net), kind="stable")


def plot_group_maps(maps: dict, path, networks=None, labels=None, title: str | None = None,
                    unassigned: str = "no Yeo-7 network"):
    """Regional E/I (mean +/- s.e.m. over subjects) per group.

    maps : :func:`nmmfit.population.analysis.group_maps`'s output ({group: {"mean": [N],
        "sem": [N], "n": subjects}}).
    networks : [N] Yeo-7 index per region (-1: none) or None. When given, regions are sorted
        by network (the ones without a network last, named ``unassigned``), each network's
        block is shaded in its colour and named above the axes (names alternate between two
        rows, so narrow neighbouring blocks do not overlap).
    labels : [N] region names, written under the axis (up to 150 regions); else indices.
    title : the figure title (e.g. cohort and n).

    Returns the PNG path.
    """
    from nmmfit.data.dataset import YEO7_NAMES

    plt = pyplot()
    first = next(iter(maps.values()))
    n = len(first["mean"])
    order = _network_order(networks, n)
    named = labels is not None and len(labels) == n and n <= 150
    width = max(8.0, n * 0.13) if named else max(6.0, n * 0.08)
    fig, ax = plt.subplots(figsize=(width, 5.2 if named else 3.8))
    xs = np.arange(n)
    one = len(maps) == 1  # one group: black on the network colours
    for g, m in maps.items():
        mu, se = np.asarray(m["mean"])[order], np.asarray(m["sem"])[order]
        line, = ax.plot(xs, mu, lw=1.2, marker=".", ms=3, color="k" if one else None,
                        label=f"{g} (n = {m['n']} subjects)")
        ax.fill_between(xs, mu - se, mu + se, alpha=0.25 if one else 0.2,
                        color="0.45" if one else line.get_color(),
                        label="± s.e.m. over subjects" if one else None)
    if networks is not None:
        net = np.asarray(networks)[order]
        starts = np.r_[0, np.flatnonzero(np.diff(net)) + 1]
        ends = np.r_[starts[1:], n]
        for row, (a, b) in enumerate(zip(starts, ends, strict=True)):
            v = int(net[a])
            ax.axvspan(a - 0.5, b - 0.5, color=_net_colour(v), alpha=0.13, lw=0)
            name = YEO7_NAMES[v] if v >= 0 else unassigned
            ax.text((a + b - 1) / 2, 1.01 + 0.055 * (row % 2), f"{name} ({b - a})",
                    fontsize=7, ha="center", va="bottom", color=_net_colour(v),
                    fontweight="bold", transform=ax.get_xaxis_transform())
    ax.set_xlim(-0.5, n - 0.5)
    if named:
        ax.set_xticks(xs, [labels[i] for i in order], rotation=90, fontsize=5.5)
        ax.set_xlabel("region" + (" (by Yeo-7 network; number of regions in brackets)"
                                  if networks is not None else ""))
    else:
        ax.set_xlabel("region (index" + (", by Yeo-7 network)" if networks is not None
                                         else ")"))
    ax.set_ylabel(EI_LABEL)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9, pad=28 if networks is not None else 6)
    fig.tight_layout()
    return save(fig, path, dpi=140 if named else 110)  # small region names: more pixels


def plot_network_ei(ei, networks, path, subjects=None, contrast: dict | None = None,
                    title: str | None = None, unassigned: str = "no Yeo-7 network"):
    """E/I by network across subjects, and the sensory-motor minus association contrast.

    ei : [S, N] regional E/I maps (S subjects, N regions).
    networks : [N] Yeo-7 index per region (-1: none, drawn last as ``unassigned``).
    subjects : [S] subject ids (legend, when S <= 20).
    contrast : :func:`nmmfit.population.analysis.network_contrast`'s dict for the same
        ``ei`` and ``networks`` (computed here when None): its per-subject differences, mean,
        se, t, p and n are drawn in the right panel and its title.
    title : the figure title (e.g. cohort and n).

    Left: one dot per subject and network = the subject's mean E/I over the network's regions
    (:func:`nmmfit.population.analysis.network_means`; a subject keeps its colour and
    horizontal offset in every network), with the mean +/- sd over subjects beside. The dots
    of network ``name`` are the scatter with gid ``"network:<name>"``. Right: each subject's
    sensory-motor minus association E/I, mean +/- s.e.m. Returns the PNG path.
    """
    from nmmfit.population.analysis import (
        ASSOCIATION,
        SENSORY_MOTOR,
        network_contrast,
        network_means,
    )

    ei = np.atleast_2d(np.asarray(ei, dtype=float))
    s_n = ei.shape[0]
    subjects = [str(s) for s in (subjects if subjects is not None else range(s_n))]
    nm = network_means(ei, networks, unassigned)
    con = network_contrast(ei, networks, subjects) if contrast is None else contrast
    colours = _subject_colours(s_n)
    offsets = np.linspace(-0.2, 0.2, s_n) if s_n > 1 else np.zeros(1)

    plt = pyplot()
    fig, (ax, axc) = plt.subplots(1, 2, figsize=(11.5, 4.8), layout="constrained",
                                  gridspec_kw={"width_ratios": [4.2, 1.1]})
    ticks = []
    for j, (name, k, nreg) in enumerate(zip(nm["names"], nm["index"], nm["n_regions"],
                                            strict=True)):
        v = nm["values"][:, j]
        ax.axvspan(j - 0.5, j + 0.5, color=_net_colour(k), alpha=0.12, lw=0)
        ax.scatter(j + offsets, v, s=22, c=colours, edgecolors="k", linewidths=0.3, zorder=3,
                   gid=f"network:{name}")
        ok = np.isfinite(v)
        if ok.any():
            sd = float(np.std(v[ok], ddof=1)) if ok.sum() > 1 else 0.0
            ax.errorbar(j + 0.34, float(np.mean(v[ok])), yerr=sd, fmt="s", color="k", ms=4,
                        capsize=3, lw=1.2, zorder=4, label="mean ± sd over subjects"
                        if j == 0 else None)
        role = ("\n(sensory-motor)" if name in SENSORY_MOTOR else "\n(association)"
                if name in ASSOCIATION else "")
        ticks.append(f"{name.replace(' (', chr(10) + '(')}\n{nreg} regions{role}")
    ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
    ax.set_xlim(-0.5, len(ticks) - 0.5)
    ax.set_xlabel("network (dot: one subject's mean E/I over the network's regions)",
                  fontsize=8)
    ax.set_ylabel(EI_LABEL)
    ax.legend(fontsize=7, frameon=False, loc="best")

    if "skipped" in con:
        axc.text(0.5, 0.5, f"contrast skipped:\n{con['skipped']}", ha="center", va="center",
                 fontsize=7, wrap=True, transform=axc.transAxes)
        axc.set_xticks([])
    else:
        diff = np.array([np.nan if v is None else v for v in con["per_subject"].values()],
                        dtype=float)
        axc.axhline(0, color="0.5", lw=0.8, ls="--")
        axc.scatter(offsets[:diff.size], diff, s=22, c=colours[:diff.size], edgecolors="k",
                    linewidths=0.3, zorder=3, gid="contrast")
        if con.get("mean") is not None:
            axc.errorbar(0.34, con["mean"], yerr=con.get("se", 0.0), fmt="s", color="k", ms=4,
                         capsize=3, lw=1.2, zorder=4)
        stats = (f"mean {con['mean']:+.3f}" if con.get("mean") is not None else "mean n/a")
        if "t" in con:
            stats += f"\nt({con['nobs'] - 1}) = {con['t']:.2f}, p = {con['p']:.3g}\n" \
                     f"n = {con['nobs']} subjects"
        axc.set_title(f"sensory-motor − association\n{stats}", fontsize=8)
        nr = con.get("n_regions", {})
        axc.set_xticks([0], [f"{'+'.join(SENSORY_MOTOR)} ({nr.get('sensory_motor', '?')})\n"
                             f"− {'+'.join(ASSOCIATION)}\n({nr.get('association', '?')} "
                             "regions)\nbar: mean ± s.e.m."], fontsize=6.5)
        axc.set_xlim(-0.6, 0.7)
        axc.set_ylabel("E/I difference (no unit)")
    if s_n <= 20:
        handles = [plt.Line2D([], [], ls="", marker="o", mfc=c, mec="k", mew=0.3, ms=5)
                   for c in colours]
        axc.legend(handles, subjects, title="subject", fontsize=6.5, title_fontsize=7,
                   frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, path)


#: the cost terms of a subject table (``test_<term>`` columns) and how they are drawn
_TERMS = (("fc_corr", "1 − r of FC (fc_corr)", "#4c72b0"),
          ("fc_l1", "|Δ mean FC| (fc_l1)", "#55a868"),
          ("fcd_ks", "FCD KS distance (fcd_ks)", "#c44e52"))


def plot_fit_quality(table, path, title: str | None = None, cost_label: str = "test cost"):
    """Each subject's test cost and its three terms, subjects sorted from best to worst.

    table : one row per subject with ``subject``, ``test_total``, ``test_fc_corr``,
        ``test_fc_l1``, ``test_fcd_ks`` (and optionally ``test_total_std``: its sd over the
        groups of test duplicates, drawn as an error bar) -- :meth:`ResultsDB.table`.
    cost_label : what the costs are (e.g. :func:`nmmfit.population.results.test_protocol`'s
        "test cost at full length (...)"), written in the title and on the y axis.

    Up to 40 subjects: one stacked bar per subject (the three terms; with unit weights they
    add up to the total, written above the bar; a total that differs from their sum is
    marked by a black dash). More: the terms stacked against the subjects' rank. Costs have
    no unit. Returns the PNG path.
    """
    df = table.sort_values("test_total", kind="stable").reset_index(drop=True)
    n = len(df)
    plt = pyplot()
    many = n > 40
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * n + 2.5) if not many else 8.0, 4.4))
    xs = np.arange(n)
    bottom = np.zeros(n)
    for term, name, colour in _TERMS:
        v = df[f"test_{term}"].to_numpy(dtype=float)
        if many:
            ax.fill_between(xs, bottom, bottom + v, color=colour, alpha=0.8, label=name, lw=0)
        else:
            ax.bar(xs, v, bottom=bottom, color=colour, width=0.7, label=name)
        bottom = bottom + np.nan_to_num(v)
    total = df["test_total"].to_numpy(dtype=float)
    err = df["test_total_std"].to_numpy(dtype=float) if "test_total_std" in df else None
    off = ~np.isclose(bottom, total, rtol=1e-6, atol=1e-9)
    if many:
        ax.plot(xs, total, "k-", lw=0.8, label="total")
        ax.set_xlabel("subjects, ranked by test total (best first)")
    else:
        if err is not None and np.isfinite(err).any():
            ax.errorbar(xs, total, yerr=err, fmt="none", ecolor="k", capsize=3, lw=0.8,
                        label="± sd of the total over groups of test duplicates")
        if off.any():
            ax.plot(xs[off], total[off], "k_", ms=18, mew=2, label="total (weighted)")
        top = np.fmax(total, bottom) + (np.nan_to_num(err) if err is not None else 0)
        for x, t, h in zip(xs, total, top, strict=True):
            ax.text(x, h + 0.02, f"{t:.3f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(xs, df["subject"].astype(str), rotation=45 if n > 12 else 0,
                      fontsize=7)
        ax.set_xlabel("subject (sorted from best to worst fit)")
    ax.set_ylabel(f"{cost_label.split(' (')[0]} (no unit)", fontsize=8)
    ax.set_ylim(0, float(np.nanmax(np.r_[bottom, total])) * 1.22 + 1e-9)
    ax.legend(fontsize=7, frameon=False, loc="upper left", ncol=2)
    head = f"{title}\n" if title else ""
    ax.set_title(f"{head}{cost_label}; lower is better", fontsize=8)
    fig.tight_layout()
    return save(fig, path)
