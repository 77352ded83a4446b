"""The outcome of a fit (:class:`FitResult`), its file form, and the choice of one fit among
several by validation (:func:`best_by_validation`).

``FitResult.save(path)`` writes one NetCDF4 file (xarray + h5netcdf) that
``FitResult.load(path)`` reads back into an equal object: the fitted coefficients and
regional parameters, the E/I map with its spread, the cost terms of every phase (training
epochs, validation epochs, tested candidates), the test simulation's FC and FCD beside the
target's, one simulated FCD matrix (and the target's empirical one when it has one), the
parametrisation (maps, bounds), and the config (preset, SC recipe, start,
seeds) and package versions as JSON attributes. Arrays carry labelled dimensions (``region``
with the regions' names, ``param`` with the search vector's layout, ``term``). In the file,
an invalid candidate's cost terms are missing values (NaN, ``null`` in JSON) beside a
validity flag, never the sentinel cost that the search uses in memory; loading puts the
sentinel back, so a loaded result equals the saved one.

The FCD matrices (``sim_fcd``, ``emp_fcd``: [W', W'] float32 on window-centre times in
seconds, at most :data:`~nmmfit.stats.fcd.MAX_KEPT_WINDOWS` per side) are stored gzip
compressed (about 0.43 MB each for a 1200-frame DELSSOME run, beside about 0.63 MB for the
rest of a 100-region result). Files written before they were kept load with None there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmmfit._json import to_builtin
from nmmfit._netcdf import encode_fcd_matrix, get_fcd_matrix, put_fcd_matrix, read_netcdf
from nmmfit.fit.cmaes import EpochSummary, SearchHistory
from nmmfit.fit.parametrise import Parametrisation, RegionalParams
from nmmfit.stats.cost import SENTINEL_COST, TERM_NAMES
from nmmfit.stats.fcd import FCDMatrix

__all__ = ["FitResult", "best_by_validation", "regional_dict"]


@dataclass
class FitResult:
    """Outcome of :func:`~nmmfit.fit.protocol.fit`.

    Attributes
    ----------
    run_id, preset, seed, config : identity and settings (the run id hashes config without
        ``n_epochs``, so a run can be extended).
    parametrisation : the map parametrisation; best_x [dim] : the tested best candidate.
    regional : its expanded parameters (wEE, wEI, sigma [N]; G scalar).
    train : search history (best child per epoch).
    val_epochs [E], val_terms [E, 3], val_total [E], val_valid [E], val_x [E, dim].
    test : one dict per tested candidate (terms mean/std over duplicate groups, E/I).
    test_cost : fc_corr, fc_l1, fcd_ks, total of the best candidate (mean over groups).
    ei_map, ei_map_std : [N] regional E/I ratio of the best candidate, mean / std over valid
        test duplicates.
    sim_fc [N, N], sim_fcd_cdf [bins] : test simulation's FC (mean over valid duplicates)
        and FCD CDF; emp_fc, emp_fcd_cdf : the test target's.
    timings : seconds (train, val, test, per epoch); versions : package versions.
    region_labels : N region names of the test target (None: ``region_001``...).
    sim_fcd : :class:`~nmmfit.stats.fcd.FCDMatrix` of the first valid test duplicate of the
        tested best candidate: values [W', W'] float32 (FC correlation between windows, the
        test target's ``fcd_spec``), time_s [W'] window centres in seconds, every
        ``stride``-th window (at most :data:`~nmmfit.stats.fcd.MAX_KEPT_WINDOWS`). None
        when no test duplicate was valid, or for results saved before it was kept.
    emp_fcd : the test target's empirical FCD matrix (:attr:`Target.fcd_matrix
        <nmmfit.data.target.Target.fcd_matrix>`, its first BOLD run); None when the target
        holds only the FCD distribution (e.g. the bundled group targets).

    ``save(path)`` / ``FitResult.load(path)``: NetCDF file (module docstring).
    """

    run_id: str
    preset: str
    seed: int
    config: dict
    parametrisation: Parametrisation
    best_x: np.ndarray
    regional: dict
    train: SearchHistory
    val_epochs: np.ndarray
    val_terms: np.ndarray
    val_total: np.ndarray
    val_valid: np.ndarray
    val_x: np.ndarray
    test: list[dict]
    test_cost: dict
    ei_map: np.ndarray
    ei_map_std: np.ndarray
    sim_fc: np.ndarray
    sim_fcd_cdf: np.ndarray
    emp_fc: np.ndarray
    emp_fcd_cdf: np.ndarray
    timings: dict
    versions: dict
    store_path: str = ""
    region_labels: list[str] | None = None
    sim_fcd: FCDMatrix | None = None
    emp_fcd: FCDMatrix | None = None

    @property
    def best_val_cost(self) -> float:
        """Lowest validation total over epochs (valid candidates)."""
        ok = self.val_valid
        return float(self.val_total[ok].min()) if ok.any() else float("nan")

    def summary(self) -> dict:
        """JSON-ready summary (no large matrices)."""
        ei = self.ei_map
        return {
            "run_id": self.run_id, "preset": self.preset, "seed": self.seed,
            "store": self.store_path,
            "n_epochs": len(self.train.epochs),
            "n_evaluations": len(self.train.epochs) * int(
                self.config["preset"]["search"]["popsize"]),
            # invalid candidates: null with a validity flag, not the sentinel cost
            "train_best_total": [float(e.best_total) if e.best_valid else None
                                 for e in self.train.epochs],
            "train_best_valid": [bool(e.best_valid) for e in self.train.epochs],
            "val_total": [float(v) if ok else None
                          for v, ok in zip(self.val_total, self.val_valid, strict=True)],
            "val_valid": [bool(v) for v in self.val_valid],
            "best_val_cost": self.best_val_cost,
            "test_cost": self.test_cost,
            "test": [{k: (v.item() if isinstance(v, np.generic) else v)
                      for k, v in t.items() if not isinstance(v, np.ndarray)}
                     for t in self.test],
            "best_x": {n: float(v) for n, v in zip(self.parametrisation.names, self.best_x,
                                                   strict=True)},
            "regional": {k: np.asarray(v).tolist() for k, v in self.regional.items()},
            "ei_ratio": {"mean": float(np.nanmean(ei)) if np.isfinite(ei).any() else None,
                         "per_region": [None if not np.isfinite(v) else float(v) for v in ei],
                         "per_region_std": [None if not np.isfinite(v) else float(v)
                                            for v in self.ei_map_std]},
            "timings": self.timings, "versions": self.versions, "config": self.config,
        }

    def save(self, path) -> Path:
        """Write the result to a NetCDF4 file (module docstring); returns the path."""
        path = Path(path)
        _to_dataset(self).to_netcdf(path, engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path) -> FitResult:
        """Read a result written by :meth:`save`; ``ValueError`` naming the file otherwise."""
        ds = read_netcdf(path, "fit result")
        if ds.attrs.get("format") != _FORMAT:
            raise ValueError(f"{path}: not an nmmfit fit result (format attribute "
                             f"{ds.attrs.get('format')!r}, want {_FORMAT!r})")
        return _from_dataset(ds)


def best_by_validation(results: Sequence[FitResult]) -> FitResult:
    """The fit with the lowest validation cost among several (seeds, starts or recipes).

    Zhang et al. 2024 ran five CMA-ES seeds and tested the solutions that validated best
    over all of them; their published test cost is that of the best-validated solution. The
    test costs of ``results`` play no part in the choice. Raises ``ValueError`` when
    ``results`` is empty or no fit has a valid validation candidate.
    """
    results = list(results)
    ok = [r for r in results if np.isfinite(r.best_val_cost)]
    if not ok:
        raise ValueError(f"none of the {len(results)} fits has a valid validation candidate")
    return min(ok, key=lambda r: r.best_val_cost)


def regional_dict(reg: RegionalParams) -> dict:
    """:attr:`FitResult.regional` from the expansion of one candidate (``reg`` of length 1):
    wEE, wEI, sigma [N] and G (float)."""
    return {"wEE": reg.wEE[0], "wEI": reg.wEI[0], "G": float(reg.G[0]), "sigma": reg.sigma[0]}


_FORMAT = "nmmfit.FitResult/1"
_EPOCH_SCALARS = ("epoch", "restart", "n_valid", "n_draws", "seed", "wall_s", "eval_s")
#: dimensions of a tested candidate's arrays (others get dimensions named after them)
_TEST_DIMS = {"ei_map": ("region",), "ei_map_std": ("region",),
              "sim_fc": ("region", "region_b"), "sim_fcd_cdf": ("fcd_bin",), "x": ("param",)}


def _masked(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``values`` with NaN where the candidate is invalid (rows along the first axis)."""
    out = np.array(values, dtype=np.float64)
    out[~np.asarray(valid, dtype=bool)] = np.nan
    return out


def _unmasked(values: np.ndarray, valid: np.ndarray, sentinel: float) -> np.ndarray:
    """``values`` with ``sentinel`` put back where the candidate is invalid."""
    out = np.array(values, dtype=np.float64)
    bad = ~np.asarray(valid, dtype=bool)
    out[bad] = sentinel
    return out


def _to_dataset(res: FitResult):
    """The xarray Dataset of :meth:`FitResult.save`."""
    import xarray as xr

    param = res.parametrisation
    n = param.n_regions
    labels = list(res.region_labels or [f"region_{i + 1:03d}" for i in range(n)])
    ep = res.train.epochs
    tvalid = np.array([e.best_valid for e in ep], dtype=bool)
    terms = np.array([e.best_terms for e in ep], dtype=np.float64).reshape(len(ep), 3)
    totals = np.array([e.best_total for e in ep], dtype=np.float64)
    coords = {"region": labels, "region_b": labels, "param": param.names,
              "term": list(TERM_NAMES), "map": list(param.map_names),
              "epoch": np.array([e.epoch for e in ep], dtype=np.int64),
              "val_epoch": np.asarray(res.val_epochs, dtype=np.int64),
              "fcd_bin": np.arange(np.asarray(res.sim_fcd_cdf).shape[0]),
              "test_rank": np.arange(len(res.test))}
    data = {
        "best_x": (("param",), np.asarray(res.best_x, dtype=np.float64)),
        "wEE": (("region",), np.asarray(res.regional["wEE"])),
        "wEI": (("region",), np.asarray(res.regional["wEI"])),
        "sigma": (("region",), np.asarray(res.regional["sigma"]), {"units": "nA"}),
        "ei_map": (("region",), np.asarray(res.ei_map),
                   {"long_name": "E/I ratio (mean S_E / mean S_I), mean over valid test "
                                 "duplicates"}),
        "ei_map_std": (("region",), np.asarray(res.ei_map_std)),
        "sim_fc": (("region", "region_b"), np.asarray(res.sim_fc)),
        "emp_fc": (("region", "region_b"), np.asarray(res.emp_fc)),
        "sim_fcd_cdf": (("fcd_bin",), np.asarray(res.sim_fcd_cdf)),
        "emp_fcd_cdf": (("fcd_bin",), np.asarray(res.emp_fcd_cdf)),
        "maps": (("map", "region"), np.asarray(param.maps)),
        "train_best_total": (("epoch",), _masked(totals, tvalid)),
        "train_best_terms": (("epoch", "term"), _masked(terms, tvalid)),
        "train_best_valid": (("epoch",), tvalid),
        "train_best_x": (("epoch", "param"),
                         np.array([e.best_x for e in ep]).reshape(len(ep), param.dim)),
        "val_total": (("val_epoch",), _masked(res.val_total, res.val_valid)),
        "val_terms": (("val_epoch", "term"), _masked(res.val_terms, res.val_valid)),
        "val_valid": (("val_epoch",), np.asarray(res.val_valid, dtype=bool)),
        "val_x": (("val_epoch", "param"), np.asarray(res.val_x, dtype=np.float64)),
    }
    for k in _EPOCH_SCALARS:
        data[f"train_{k}"] = (("epoch",), np.array([getattr(e, k) for e in ep]))
    # tested candidates: arrays as variables along test_rank, scalars as JSON
    arrays = sorted({k for t in res.test for k, v in t.items() if isinstance(v, np.ndarray)})
    for k in arrays:
        stack = np.stack([np.asarray(t[k]) for t in res.test])
        dims = _TEST_DIMS.get(k, tuple(f"{k}_{i}" for i in range(stack.ndim - 1)))
        data[f"test_{k}"] = (("test_rank", *dims), stack)
    scalars = [{k: v for k, v in t.items() if k not in arrays} for t in res.test]
    # the sentinel values that invalid rows held in memory (restored on load)
    sentinel = {"val_total": _sentinel(res.val_total, res.val_valid),
                "train_best_total": _sentinel(totals, tvalid)}
    attrs = {
        "format": _FORMAT, "run_id": res.run_id, "preset": res.preset, "seed": int(res.seed),
        "store_path": res.store_path, "G": float(res.regional["G"]),
        "config": _dumps(res.config),
        "test_scalars": _dumps(scalars),
        "test_arrays": json.dumps(arrays),
        "test_cost": _dumps(res.test_cost),
        "timings": _dumps(res.timings),
        "versions": _dumps(res.versions),
        "bounds": json.dumps({k: list(v) for k, v in param.bounds.items()}),
        "spatial_constraint": json.dumps(param.spatial_constraint),
        "search": _dumps({"run_id": res.train.run_id, "kind": res.train.kind,
                          "stopped": res.train.stopped, "resumed_from": res.train.resumed_from,
                          "info": [e.info for e in ep]}),
        "sentinel": json.dumps(sentinel),
        "has_region_labels": int(res.region_labels is not None),
    }
    for name in ("sim_fcd", "emp_fcd"):
        put_fcd_matrix(data, coords, name, getattr(res, name))
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    for name in ("sim_fcd", "emp_fcd"):
        encode_fcd_matrix(ds, name)
    return ds


def _dumps(obj) -> str:
    """JSON of a file attribute: NumPy values as Python ones; NaN kept (as ``NaN``), so that
    a missing value (None) and an undefined one (NaN) stay apart."""
    return json.dumps(obj, default=to_builtin)


def _sentinel(values, valid) -> float:
    bad = ~np.asarray(valid, dtype=bool)
    vals = np.unique(np.asarray(values, dtype=np.float64)[bad])
    return float(vals[0]) if vals.size == 1 else float(SENTINEL_COST * len(TERM_NAMES))


def _from_dataset(ds) -> FitResult:
    """The :class:`FitResult` of a Dataset written by :func:`_to_dataset`."""
    v = {k: ds[k].values for k in ds.data_vars}
    names = [str(s) for s in ds["map"].values]
    maps = {nm: v["maps"][i] for i, nm in enumerate(names)}
    param = Parametrisation(maps, bounds=json.loads(ds.attrs["bounds"]),
                            spatial_constraint=json.loads(ds.attrs["spatial_constraint"]),
                            n_regions=int(ds.sizes["region"]))
    sent = json.loads(ds.attrs["sentinel"])
    search = json.loads(ds.attrs["search"])
    tvalid = v["train_best_valid"].astype(bool)
    totals = _unmasked(v["train_best_total"], tvalid, sent["train_best_total"])
    terms = _unmasked(v["train_best_terms"], tvalid, SENTINEL_COST)
    epochs = [EpochSummary(
        epoch=int(v["train_epoch"][i]), restart=int(v["train_restart"][i]),
        best_total=float(totals[i]), best_terms=terms[i], best_x=v["train_best_x"][i],
        best_valid=bool(tvalid[i]), n_valid=int(v["train_n_valid"][i]),
        n_draws=int(v["train_n_draws"][i]), seed=int(v["train_seed"][i]),
        wall_s=float(v["train_wall_s"][i]), eval_s=float(v["train_eval_s"][i]),
        info=search["info"][i]) for i in range(int(ds.sizes["epoch"]))]
    history = SearchHistory(run_id=search["run_id"], kind=search["kind"], epochs=epochs,
                            stopped=search["stopped"], resumed_from=int(search["resumed_from"]))
    tests = json.loads(ds.attrs["test_scalars"])
    for k in json.loads(ds.attrs["test_arrays"]):
        for i, t in enumerate(tests):
            t[k] = v[f"test_{k}"][i]
    vvalid = v["val_valid"].astype(bool)
    labels = [str(s) for s in ds["region"].values] if ds.attrs["has_region_labels"] else None
    test_cost = json.loads(ds.attrs["test_cost"])
    return FitResult(
        run_id=str(ds.attrs["run_id"]), preset=str(ds.attrs["preset"]),
        seed=int(ds.attrs["seed"]), config=json.loads(ds.attrs["config"]),
        parametrisation=param, best_x=v["best_x"],
        regional={"wEE": v["wEE"], "wEI": v["wEI"], "G": float(ds.attrs["G"]),
                  "sigma": v["sigma"]},
        train=history, val_epochs=ds["val_epoch"].values, val_terms=_unmasked(
            v["val_terms"], vvalid, SENTINEL_COST),
        val_total=_unmasked(v["val_total"], vvalid, sent["val_total"]), val_valid=vvalid,
        val_x=v["val_x"], test=tests, test_cost=test_cost, ei_map=v["ei_map"],
        ei_map_std=v["ei_map_std"], sim_fc=v["sim_fc"], sim_fcd_cdf=v["sim_fcd_cdf"],
        emp_fc=v["emp_fc"], emp_fcd_cdf=v["emp_fcd_cdf"],
        timings=json.loads(ds.attrs["timings"]), versions=json.loads(ds.attrs["versions"]),
        store_path=str(ds.attrs["store_path"]), region_labels=labels,
        sim_fcd=get_fcd_matrix(ds, "sim_fcd"), emp_fcd=get_fcd_matrix(ds, "emp_fcd"))
