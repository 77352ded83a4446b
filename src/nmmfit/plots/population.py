"""Population figures: E/I trajectory against age, and regional E/I maps per group."""

from __future__ import annotations

import numpy as np

from nmmfit.plots._common import pyplot, save

__all__ = ["plot_trajectory", "plot_group_maps"]


def plot_trajectory(df, path, y: str = "ei", x: str = "age", formula: str | None = None,
                    hue: str = "sex"):
    """Subjects' ``y`` against ``x`` (points, coloured by ``hue`` when present) and the fitted
    curve of :func:`nmmfit.population.analysis.regress` (other covariates at their first
    level / mean). When the regression cannot be fitted, the points are drawn alone and a
    UserWarning says why. Returns the PNG path."""
    import pandas as pd

    from nmmfit.population.analysis import DEFAULT_FORMULA, regress

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    groups = df[hue].astype(str) if hue in df.columns else pd.Series(["all"] * len(df))
    for g in dict.fromkeys(groups):
        m = (groups == g).to_numpy()
        ax.scatter(df.loc[m, x], df.loc[m, y], s=18, alpha=0.8, label=str(g))
    title = y
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
        title = f"{reg['formula']}  (R² {reg['rsquared']:.2f}, n {reg['nobs']})"
    except (ValueError, KeyError) as err:  # e.g. too few subjects: points only, and say so
        import warnings

        warnings.warn(f"E/I trajectory: no regression curve drawn ({err})", stacklevel=2)
        title = f"no fit: {err}"[:80]
    ax.set_xlabel(x)
    ax.set_ylabel("E/I ratio" if y == "ei" else y)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return save(fig, path)


def plot_group_maps(maps: dict, path, networks=None, labels=None):
    """Regional E/I (mean +/- s.e.m.) per group, regions on x (sorted by network when
    known). ``maps`` is :func:`nmmfit.population.analysis.group_maps`'s output."""
    plt = pyplot()
    first = next(iter(maps.values()))
    n = len(first["mean"])
    order = np.argsort(networks, kind="stable") if networks is not None else np.arange(n)
    fig, ax = plt.subplots(figsize=(max(6, n * 0.08), 3.5))
    xs = np.arange(n)
    for g, m in maps.items():
        mu, se = np.asarray(m["mean"])[order], np.asarray(m["sem"])[order]
        ax.plot(xs, mu, lw=1.2, label=f"{g} (n={m['n']})")
        ax.fill_between(xs, mu - se, mu + se, alpha=0.25)
    if networks is not None:
        from nmmfit.data.dataset import YEO7_NAMES

        net = np.asarray(networks)[order]
        for k in np.flatnonzero(np.diff(net)) + 0.5:
            ax.axvline(k, color="0.8", lw=0.6)
        for v in np.unique(net):
            idx = np.flatnonzero(net == v)
            ax.text(idx.mean(), 1.0, YEO7_NAMES[v] if v >= 0 else "n/a", fontsize=6, ha="center",
                    transform=ax.get_xaxis_transform(), va="bottom")
    if labels is not None and n <= 40:
        ax.set_xticks(xs, [labels[i] for i in order], rotation=90, fontsize=6)
    ax.set_xlabel("region" + (" (by network)" if networks is not None else ""))
    ax.set_ylabel("E/I ratio")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return save(fig, path)
