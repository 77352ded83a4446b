"""Jansen-Rit ERP datasets for parameter inference: draws, simulation, noise levels, storage.

- Parameters: independent truncated normals, mean at mid-range, sd = range / 4, truncated
  to the range (the paper's text; its code used a plain normal, which gave negative values).
  :data:`PRIOR_LOC` and :data:`PRIOR_SCALE` define it once: :func:`sample_params` draws from
  it in physical units, and :class:`TruncatedNormalPrior` is the same distribution as a torch
  ``Distribution`` in the scaled space ``u = (theta - lower) / (upper - lower)`` (the prior
  given to sbi by :class:`nmmfit.infer.npe.NPEstimator`).
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
import math
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import truncnorm
from torch.distributions import Distribution, constraints

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


#: The parameters' prior, in units of each parameter's spec range (lower -> 0, upper -> 1):
#: a normal with mean ``PRIOR_LOC`` and sd ``PRIOR_SCALE``, truncated to [0, 1] (the range).
PRIOR_LOC: float = 0.5
PRIOR_SCALE: float = 0.25


def sample_params(n: int, rng: np.random.Generator, names=jr.INFERRED) -> np.ndarray:
    """n parameter sets [n, 9] (physical units, :data:`jr.PARAM_NAMES` order): ``names`` drawn
    independently from the truncated normal of :data:`PRIOR_LOC` / :data:`PRIOR_SCALE` mapped
    to each parameter's range, the others at the JR typical values."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    theta = np.tile(jr.defaults(), (n, 1))
    for name in names:
        if name not in jr.PARAM_BY_NAME:
            raise ValueError(f"unknown parameter {name!r}; expected one of {jr.PARAM_NAMES}")
        p = jr.PARAM_BY_NAME[name]
        # lower * (1 - loc) + upper * loc: for loc = 0.5 bit-identical to (lower + upper) / 2
        mean = p.lower * (1 - PRIOR_LOC) + p.upper * PRIOR_LOC
        sd = (p.upper - p.lower) * PRIOR_SCALE
        a, b = (p.lower - mean) / sd, (p.upper - mean) / sd
        theta[:, jr.PARAM_NAMES.index(name)] = truncnorm.rvs(a, b, loc=mean, scale=sd, size=n,
                                                            random_state=rng)
    return theta


class TruncatedNormalPrior(Distribution):
    """The prior of :func:`sample_params` in the scaled space, as a torch ``Distribution``.

    ``dim`` independent coordinates ``u = (theta - lower) / (upper - lower)`` (dimensionless),
    each a normal with mean ``loc`` and sd ``scale`` truncated to [0, 1]. Batch shape [],
    event shape [dim]; support [0, 1]^dim (closed, as sbi's :func:`within_support` checks it).

    - ``sample(sample_shape)``: float32 [*sample_shape, dim], by the inverse CDF
      (``ndtri(ndtr(a) + U * (ndtr(b) - ndtr(a)))``, computed in float64) from torch's global
      generator, so ``torch.manual_seed`` makes it reproducible.
    - ``log_prob(u)``: [*batch] for u [*batch, dim], the normalised log density (the sum over
      coordinates; -inf outside [0, 1]^dim), in u's floating dtype.
    - ``mean``, ``variance``: [dim], those of the truncated normal.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.independent(constraints.unit_interval, 1)
    has_rsample = False

    def __init__(self, dim: int, loc: float = PRIOR_LOC, scale: float = PRIOR_SCALE,
                 validate_args: bool | None = None) -> None:
        if int(dim) < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.loc = torch.full((self.dim,), float(loc))
        self.scale = torch.full((self.dim,), float(scale))
        self._a = (0.0 - self.loc.double()) / self.scale.double()  # standardised bounds
        self._b = (1.0 - self.loc.double()) / self.scale.double()
        self._cdf_a = torch.special.ndtr(self._a)
        self._mass = torch.special.ndtr(self._b) - self._cdf_a
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size((self.dim,)),
                         validate_args=validate_args)

    def sample(self, sample_shape=()) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            p = self._cdf_a + torch.rand(shape, dtype=torch.float64) * self._mass
            z = torch.special.ndtri(p)
            u = self.loc.double() + self.scale.double() * z
            return u.to(torch.float32).clamp_(0.0, 1.0)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        v = torch.as_tensor(value)
        dtype = v.dtype if v.is_floating_point() else torch.get_default_dtype()
        x = v.double()
        z = (x - self.loc.double()) / self.scale.double()
        lp = (-0.5 * z**2 - torch.log(self.scale.double()) - 0.5 * math.log(2 * math.pi)
              - torch.log(self._mass))
        lp = torch.where((x >= 0.0) & (x <= 1.0), lp, -math.inf)
        return lp.sum(-1).to(dtype)

    def _phi_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        pdf = lambda t: torch.exp(-0.5 * t**2) / math.sqrt(2 * math.pi)  # noqa: E731
        return pdf(self._a), pdf(self._b)

    @property
    def mean(self) -> torch.Tensor:
        pa, pb = self._phi_terms()
        return (self.loc.double() + self.scale.double() * (pa - pb) / self._mass).float()

    @property
    def variance(self) -> torch.Tensor:
        pa, pb = self._phi_terms()
        d = (pa - pb) / self._mass
        v = 1 + (self._a * pa - self._b * pb) / self._mass - d**2
        return (self.scale.double() ** 2 * v).float()


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
            "param_sampling": f"truncated normal, mean lower + {PRIOR_LOC:g} x range, sd "
                              f"{PRIOR_SCALE:g} x range, truncated to range",
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
