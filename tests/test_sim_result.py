"""Labelled, saveable simulation output (nmmfit.sim.result): SimResult <-> xarray/NetCDF."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from nmmfit.data.bundled import load as load_bundled
from nmmfit.sim import SimConfig, simulate
from nmmfit.sim.result import SimResult


@pytest.fixture(scope="module")
def small():
    sc = load_bundled("hcp_schaefer100", include_bold=False).groups["train706"].sc
    sc = sc[:6, :6] / sc[:6, :6].sum(axis=1).mean()
    labels = load_bundled("hcp_schaefer100", include_bold=False).region_labels[:6]
    cfg = SimConfig(dt=0.006, duration_s=7.2, burn_in_s=1.44, warmup_steps=50)
    res = simulate(sc, wEE=[[3.0] * 6, [3.5] * 6], wEI=2.5, G=[0.5, 1.0],
                   sigma=np.linspace(0.004, 0.006, 6), config=cfg, n_dup=2, seed=3)
    return res, labels


def test_to_xarray_labels_dims_and_units(small):
    res, labels = small
    ds = res.to_xarray(labels)
    assert ds["bold"].dims == ("set", "duplicate", "region", "time")
    assert ds["bold"].shape == res.bold.shape == (2, 2, 6, 10)
    assert list(ds["region"].values) == labels and labels[0] == "7Networks_LH_Vis_1"
    np.testing.assert_allclose(ds["time"].values, np.arange(10) * 0.72)
    assert ds["time"].attrs["units"] == "s" and ds["mean_rE"].attrs["units"] == "Hz"
    # parameters travel as coordinates, broadcast to full shape
    np.testing.assert_array_equal(ds["G"].values, [0.5, 1.0])
    np.testing.assert_array_equal(ds["wEE"].sel(set=1).values, [3.5] * 6)
    np.testing.assert_allclose(ds["sigma"].sel(set=0).values, np.linspace(0.004, 0.006, 6))
    # label-based selection gives the same numbers as positional indexing
    np.testing.assert_array_equal(ds["ei_ratio"].sel(region=labels[2]).values,
                                  res.ei_ratio[:, :, 2])
    with pytest.raises(ValueError, match="region_labels has 5 names"):
        res.to_xarray(labels[:5])


def test_netcdf_round_trip_every_field(small, tmp_path):
    res, labels = small
    path = res.to_netcdf(tmp_path / "sim.nc", region_labels=labels)
    back = SimResult.load(path)
    for f in dataclasses.fields(SimResult):
        a, b = getattr(res, f.name), getattr(back, f.name)
        if f.name == "params":
            for p in ("wEE", "wEI", "G", "sigma"):
                np.testing.assert_array_equal(getattr(a, p), getattr(b, p))
        elif f.name == "meta":
            assert b["seed"] == 3 and b == json.loads(json.dumps(a))  # JSON: tuples as lists
        elif isinstance(a, np.ndarray):
            assert a.dtype == b.dtype, f.name
            np.testing.assert_array_equal(a, b, err_msg=f.name)
        else:
            assert a == b, f.name  # the SimConfig (constants included)


def test_load_names_a_bad_file(tmp_path):
    bad = tmp_path / "x.nc"
    bad.write_text("not netcdf")
    with pytest.raises(ValueError, match="x.nc"):
        SimResult.load(bad)
    with pytest.raises(FileNotFoundError, match="nope.nc"):
        SimResult.load(tmp_path / "nope.nc")
