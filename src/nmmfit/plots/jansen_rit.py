"""Figures for the Jansen-Rit ERP benchmark: sensitivity heatmaps and SNR vs alpha."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nmmfit.plots._common import pyplot, save


def _panel_row(axes, ds, name: str, fig) -> None:
    sub = ds.sel(param=name)
    t = ds.time.values * 1e3
    vals = sub.param_value.values
    ext = [t[0], t[-1], vals[0], vals[-1]]
    unit = str(sub.param_unit.values)
    label = f"{name} ({unit})" if unit else f"{name} (x C)"
    panels = (("erp", "ERP (uV)", "coolwarm"),
              ("log_rel_sq", "log10 rel. error^2", "viridis"),
              ("abs_sq", "abs. error^2 (uV^2)", "magma"))
    for ax, (var, title, cmap) in zip(axes, panels, strict=True):
        data = sub[var].values
        kw = {}
        if var == "erp":
            lim = np.nanmax(np.abs(data))
            kw = {"vmin": -lim, "vmax": lim}
        im = ax.imshow(data, aspect="auto", origin="lower", extent=ext, cmap=cmap, **kw)
        ax.set_title(title, fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    axes[-1].set_xlabel("time (ms)", fontsize=8)


def plot_sensitivity(ds, name: str, path) -> Path:
    """One parameter: ERP, log10 squared relative error and squared absolute error heatmaps."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.6), constrained_layout=True)
    _panel_row(axes, ds, name, fig)
    for ax in axes:
        ax.set_xlabel("time (ms)", fontsize=8)
    fig.suptitle(f"JR sensitivity: {name}, channel {ds.attrs['channel']}", fontsize=9)
    return save(fig, path, dpi=60)


def plot_sensitivity_grid(ds, path, params=None) -> Path:
    """All swept parameters in one figure (rows: parameters; columns: the three metrics)."""
    plt = pyplot()
    names = list(params or ds.param.values)
    fig, axes = plt.subplots(len(names), 3, figsize=(10, 1.7 * len(names)),
                             constrained_layout=True, squeeze=False)
    for row, name in zip(axes, names, strict=True):
        _panel_row(row, ds, name, fig)
    fig.suptitle(f"JR one-at-a-time sensitivity, channel {ds.attrs['channel']}, "
                 f"others at {ds.attrs['base']}", fontsize=10)
    return save(fig, path, dpi=45)


def plot_snr_vs_alpha(alphas, snr_mean, snr_sd, path, snr_evoked=None) -> Path:
    """Measured SNR (dB, mean +- sd over simulations) against the noise factor alpha."""
    plt = pyplot()
    a = np.asarray(alphas, dtype=float)
    fig, ax = plt.subplots(figsize=(4.5, 3.2), constrained_layout=True)
    ax.errorbar(a, snr_mean, yerr=snr_sd, marker="o", capsize=3,
                label="continuous (Algorithm 2)")
    if snr_evoked is not None:
        ax.plot(a, snr_evoked, marker="s", label="evoked (after averaging)")
    ax.set_xlabel("noise factor alpha")
    ax.set_ylabel("SNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path, dpi=80)
