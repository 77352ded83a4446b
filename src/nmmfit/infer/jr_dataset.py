"""Jansen-Rit ERP datasets for parameter inference: draws, simulation, noise levels, storage.

- Parameters: independent truncated normals, mean at mid-range, sd = range / 4, truncated
  to the range (the paper's text; its code used a plain normal, which gave negative values).
- The clean ERPs are simulated once and shared by every noise level, so alpha is the only
  thing that changes between levels. Each (alpha, simulation) gets its own noise key.
- Simulations that diverge are flagged, excluded from the arrays, and counted
  (``attrs['n_diverged']``, their parameters in ``diverged_theta``).
- Storage: one xarray Dataset (NetCDF4 via h5netcdf, zlib-compressed) with the noisy evoked
  EEG, the source ERPs, the parameters, the SNRs, the seeds/keys, and the config and versions
  as JSON attributes.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np
from scipy.stats import truncnorm

import nmmfit
from nmmfit.eeg.erp import ERPConfig, ERPSimulator, as_seedseq
from nmmfit.eeg.noise import check_alpha
from nmmfit.models import jansen_rit as jr

#: The paper's noise factors, linspace(0, 0.95, 10) rounded to 2 decimals.
ALPHAS: tuple[float, ...] = (0.0, 0.11, 0.21, 0.32, 0.42, 0.53, 0.63, 0.74, 0.84, 0.95)


def versions() -> dict[str, str]:
    """Versions of the packages that shape the results."""
    import mne
    import numba
    import scipy
    import xarray

    return {"nmmfit": nmmfit.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__, "mne": mne.__version__, "xarray": xarray.__version__,
            "python": sys.version.split()[0], "platform": platform.platform()}


def sample_params(n: int, rng: np.random.Generator, names=jr.INFERRED) -> np.ndarray:
    """n parameter sets [n, 9]: ``names`` from truncated normals, the rest at JR typical values."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    theta = np.tile(jr.defaults(), (n, 1))
    for name in names:
        if name not in jr.PARAM_BY_NAME:
            raise ValueError(f"unknown parameter {name!r}; expected one of {jr.PARAM_NAMES}")
        p = jr.PARAM_BY_NAME[name]
        mean, sd = (p.lower + p.upper) / 2, (p.upper - p.lower) / 4
        a, b = (p.lower - mean) / sd, (p.upper - mean) / sd
        theta[:, jr.PARAM_NAMES.index(name)] = truncnorm.rvs(a, b, loc=mean, scale=sd, size=n,
                                                            random_state=rng)
    return theta


def generate_dataset(n: int = 1000, alphas=ALPHAS, seed: int = 0, include_c: bool = False,
                     config: ERPConfig | None = None, simulator: ERPSimulator | None = None,
                     progress: bool = False):
    """Simulate ``n`` parameter sets and their noisy ERPs at every alpha; an xarray Dataset.

    Seeds: ``SeedSequence(seed)`` spawns (parameters, background drive, sensor noise); the
    sensor-noise child spawns one child per alpha, which gives one uint64 key per simulation.
    """
    import xarray as xr
    from tqdm.auto import tqdm

    al = [check_alpha(a) for a in alphas]
    if len(al) == 0:
        raise ValueError("alphas must hold at least one noise factor")
    sim = simulator or ERPSimulator(config or ERPConfig())
    cfg = sim.config
    root = as_seedseq(seed)
    s_par, s_drive, s_noise = root.spawn(3)
    names = jr.PARAM_NAMES if include_c else jr.INFERRED
    theta = sample_params(n, np.random.default_rng(s_par), names)
    drive_keys = s_drive.generate_state(n, dtype=np.uint64)
    bar = tqdm(total=n * (1 + len(al)), desc="JR dataset", disable=not progress, unit="sim")
    clean = sim.clean(theta, keys=drive_keys, progress=bar.update)
    ok = ~clean.diverged
    clean.source, clean.raw_power = clean.source[ok], clean.raw_power[ok]
    n_ok = int(ok.sum())
    noise_keys = np.stack([c.generate_state(n, dtype=np.uint64)
                           for c in s_noise.spawn(len(al))])[:, ok]
    eeg = np.empty((len(al), n_ok, len(sim.ch_names), sim.design.n_times), dtype=np.float32)
    snr = np.empty((len(al), n_ok))
    snr_ev = np.empty((len(al), n_ok))
    for i, a in enumerate(al):
        eeg[i], snr[i], snr_ev[i] = sim.noisy_eeg(clean, a, keys=noise_keys[i])
        bar.update(n)
    bar.close()
    params = list(names)
    cols = [jr.PARAM_NAMES.index(p) for p in params]
    ds = xr.Dataset(
        {
            "eeg": (("alpha", "sim", "channel", "time"), eeg,
                    {"units": "V", "long_name": "noisy evoked EEG (average reference)"}),
            "source": (("sim", "time"), clean.source,
                       {"units": "mV", "long_name": "averaged, baseline-corrected y1 - y2"}),
            "theta": (("sim", "param"), theta[ok][:, cols],
                      {"long_name": "JR parameters (a1..a4 as fractions of C)"}),
            "snr_db": (("alpha", "sim"), snr, {"units": "dB",
                                               "long_name": "SNR, paper Algorithm 2"}),
            "snr_evoked_db": (("alpha", "sim"), snr_ev, {"units": "dB"}),
            "drive_key": (("sim",), drive_keys[ok]),
            "noise_key": (("alpha", "sim"), noise_keys),
            "diverged_theta": (("diverged", "param"), theta[~ok][:, cols]),
        },
        coords={"alpha": np.array(al), "sim": np.flatnonzero(ok), "channel": list(sim.ch_names),
                "time": sim.design.times, "param": params,
                "param_unit": ("param", [jr.PARAM_BY_NAME[p].unit for p in params])},
        attrs={
            "n_requested": n, "n_diverged": int((~ok).sum()), "seed": str(seed),
            "config": json.dumps(cfg.as_dict(), default=str),
            "leadfield": json.dumps(sim.leadfield.meta, default=str),
            "noise": json.dumps(sim.noise_model.meta, default=str),
            "versions": json.dumps(versions()),
            "param_sampling": "truncated normal, mean mid-range, sd range/4, truncated to range",
        },
    )
    return ds


def save_dataset(ds, path) -> Path:
    """Write ``ds`` to NetCDF4 (h5netcdf, zlib level 4 on the EEG array)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = {"eeg": {"zlib": True, "complevel": 4}}
    ds.to_netcdf(path, engine="h5netcdf", encoding=enc)
    return path


def load_dataset(path):
    """Read a dataset written by :func:`save_dataset` (into memory)."""
    import xarray as xr

    return xr.load_dataset(Path(path), engine="h5netcdf")
