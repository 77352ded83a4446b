"""One-at-a-time sensitivity of the ERP to the 8 JR parameters (paper Figs 2 and 6).

Each parameter takes ``n_values`` (200) evenly spaced values over its range while the
others stay at mid-range (the paper's text; ``base="typical"`` uses the JR typical values, as
the paper's code did). Noise-free: no background noise, no sensor noise. For a chosen
channel, per value v and time t:

- ERP m_v(t) (uV) and the sweep mean m(t);
- log10 squared relative error: log10(d^2 / m^2), d = m_v - m. It is squared *before* the
  log (the reference code clipped the signed ratio first, flooring every negative deviation to
  -24). Where |m| is tiny, m^2 is floored at (1e-3 max|m|)^2 to keep the map finite.
- squared absolute error d^2 (uV^2).

The ranking table orders parameters by the normalised RMS deviation
sqrt(mean_{v,t} d^2) / sqrt(mean_t m^2).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from nmmfit.eeg.erp import ERPConfig, ERPSimulator
from nmmfit.models import jansen_rit as jr


def sweep_thetas(n_values: int = 200, params=jr.INFERRED, base: str = "mid") -> np.ndarray:
    """Parameter sets [len(params) * n_values, 9] for the one-at-a-time sweep."""
    if base not in ("mid", "typical"):
        raise ValueError(f"base must be 'mid' or 'typical', got {base!r}")
    if n_values < 2:
        raise ValueError(f"n_values must be >= 2, got {n_values}")
    ref = jr.midpoints() if base == "mid" else jr.defaults()
    ref[8] = jr.PARAM_BY_NAME["C"].default
    rows = []
    for name in params:
        p = jr.PARAM_BY_NAME[name]
        block = np.tile(ref, (n_values, 1))
        block[:, jr.PARAM_NAMES.index(name)] = np.linspace(p.lower, p.upper, n_values)
        rows.append(block)
    return np.concatenate(rows)


def sensitivity_metrics(erp: np.ndarray, floor_rel: float = 1e-3) -> dict[str, np.ndarray]:
    """Metrics for one sweep: ``erp`` [n_values, n_times] (uV) -> dict of arrays (see module)."""
    mean = erp.mean(axis=0)
    d = erp - mean
    floor = (floor_rel * np.abs(mean).max()) ** 2 or 1e-30
    rel2 = d**2 / np.maximum(mean**2, floor)
    log_rel = np.log10(np.maximum(rel2, 1e-30))
    return {"erp": erp, "mean": mean, "log_rel_sq": log_rel, "abs_sq": d**2,
            "nrms": np.sqrt(np.mean(d**2)) / np.sqrt(np.mean(mean**2)),
            "range_uv": float(np.ptp(erp.min(axis=1)))}


def run_sensitivity(n_values: int = 200, params=jr.INFERRED, base: str = "mid",
                    channel: str | None = None, config: ERPConfig | None = None,
                    simulator: ERPSimulator | None = None, seed: int = 0,
                    progress: bool = False):
    """Simulate the sweep and return an xarray Dataset (param, value, time) with the metrics.

    ``attrs['ranking']`` is a JSON list of {param, nrms, range_uv}, most influential first.
    """
    import xarray as xr
    from tqdm.auto import tqdm

    cfg = config or ERPConfig()
    cfg = replace(cfg, constants=replace(cfg.constants, sigma=0.0))
    sim = simulator.with_config(constants=cfg.constants) if simulator else ERPSimulator(cfg)
    names = list(params)
    for n in names:
        if n not in jr.PARAM_BY_NAME:
            raise ValueError(f"unknown parameter {n!r}; expected one of {jr.PARAM_NAMES}")
    if channel is None:
        channel = sim.ch_names[int(np.argmax(np.abs(sim.gain_ref)))]
    if channel not in sim.ch_names:
        raise ValueError(f"channel {channel!r} is not among the lead field's "
                         f"{len(sim.ch_names)} channels")
    ch = sim.ch_names.index(channel)
    theta = sweep_thetas(n_values, names, base)
    bar = tqdm(total=theta.shape[0], desc="JR sensitivity", disable=not progress, unit="sim")
    clean = sim.clean(theta, seed=seed, progress=bar.update)
    bar.close()
    erp = (sim.clean_eeg(clean.source)[:, ch, :] * 1e6).reshape(len(names), n_values, -1)
    out = {k: [] for k in ("erp", "mean", "log_rel_sq", "abs_sq")}
    ranking = []
    for i, name in enumerate(names):
        m = sensitivity_metrics(erp[i])
        for k in out:
            out[k].append(m[k])
        ranking.append({"param": name, "nrms": float(m["nrms"]), "range_uv": m["range_uv"]})
    ranking.sort(key=lambda r: -r["nrms"])
    for rank, r in enumerate(ranking, 1):
        r["rank"] = rank
    values = theta[:, [jr.PARAM_NAMES.index(n) for n in names]].reshape(len(names), n_values,
                                                                        len(names))
    vals = np.stack([values[i, :, i] for i in range(len(names))])
    ds = xr.Dataset(
        {"erp": (("param", "value", "time"), np.stack(out["erp"]), {"units": "uV"}),
         "mean_erp": (("param", "time"), np.stack(out["mean"]), {"units": "uV"}),
         "log_rel_sq": (("param", "value", "time"), np.stack(out["log_rel_sq"])),
         "abs_sq": (("param", "value", "time"), np.stack(out["abs_sq"]), {"units": "uV^2"}),
         "param_value": (("param", "value"), vals),
         "diverged": (("param", "value"), clean.diverged.reshape(len(names), n_values))},
        coords={"param": names, "value": np.arange(n_values), "time": sim.design.times,
                "param_unit": ("param", [jr.PARAM_BY_NAME[n].unit for n in names])},
        attrs={"channel": channel, "base": base, "n_values": n_values, "seed": seed,
               "ranking": json.dumps(ranking), "config": json.dumps(cfg.as_dict(), default=str)},
    )
    return ds


def ranking_table(ds) -> str:
    """The ranking as a plain-text table."""
    rows = json.loads(ds.attrs["ranking"])
    lines = [f"{'rank':>4}  {'param':<5} {'nRMS dev':>9} {'ERP-min range (uV)':>19}"]
    lines += [f"{r['rank']:>4}  {r['param']:<5} {r['nrms']:>9.3f} {r['range_uv']:>19.3f}"
              for r in rows]
    return "\n".join(lines)
