"""FitResult and Target files: save, load, and compare every field."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from synthetic import tiny_target

from nmmfit.data.target import Target
from nmmfit.fit import FitResult, fit
from nmmfit.fit.cmaes import EpochSummary
from nmmfit.stats.cost import SENTINEL_COST

TINY = dict(popsize=6, mu=3, n_epochs=3, duration_s=43.2, test_duration_s=43.2,
            burn_in_s=0.0, warmup_steps=200, n_dup_train=2, n_dup_val=2, n_dup_test=4,
            test_group=2, test_dt=0.003, test_top=2)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tr, va, te = (tiny_target(n=6, seed=s, name=n) for s, n in ((0, "train"), (1, "val"),
                                                                 (2, "test")))
    db = tmp_path_factory.mktemp("fr") / "fit.db"
    res = fit(tr, va, te, preset="quick", maps=("m1", "m2"), store=db, seed=3, **TINY)
    # one validation epoch made invalid as the search records it (sentinel terms), so that
    # both kinds of row are exercised
    valid, terms, total = res.val_valid.copy(), res.val_terms.copy(), res.val_total.copy()
    valid[0], terms[0], total[0] = False, SENTINEL_COST, 3 * SENTINEL_COST
    return dataclasses.replace(res, val_valid=valid, val_terms=terms, val_total=total)


def _same(a, b, what):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, what
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            np.testing.assert_array_equal(a.astype(float), b.astype(float), err_msg=what)
        else:
            np.testing.assert_array_equal(a, b, err_msg=what)
    elif isinstance(a, dict):
        assert set(a) == set(b), what
        for k in a:
            _same(a[k], b[k], f"{what}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{what}[{i}]")
    elif isinstance(a, float | np.floating) and np.isnan(a):
        assert np.isnan(b), what
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{what}.{f.name}")
    else:
        assert a == b, what


def test_fit_result_round_trip_every_field(result, tmp_path):
    res = result
    path = res.save(tmp_path / "fit.nc")
    back = FitResult.load(path)
    for f in dataclasses.fields(FitResult):
        a, b = getattr(res, f.name), getattr(back, f.name)
        if f.name == "parametrisation":
            assert a.describe() == b.describe()
            np.testing.assert_array_equal(a.maps, b.maps)
        elif f.name in ("config", "timings", "versions"):
            assert b == json.loads(json.dumps(a, default=str)), f.name  # JSON: tuples as lists
        elif f.name == "train":
            assert (a.run_id, a.kind, a.resumed_from) == (b.run_id, b.kind, b.resumed_from)
            assert b.stopped == json.loads(json.dumps(a.stopped))
            assert len(a.epochs) == len(b.epochs) == 3
            for ea, eb in zip(a.epochs, b.epochs, strict=True):
                assert isinstance(eb, EpochSummary)
                _same(ea, eb, "epoch")
        else:
            _same(a, b, f.name)
    assert back.best_val_cost == res.best_val_cost
    assert back.summary()["test_cost"] == res.summary()["test_cost"]


def test_fit_result_keeps_fcd_matrices_compressed(result, tmp_path):
    """The simulated FCD matrix (first valid test duplicate) and the test target's empirical
    one (its first run) are float32 [W, W] on window-centre times, gzip-compressed in the
    file, and read back equal (dtype included)."""
    import xarray as xr

    res = result
    assert res.sim_fcd is not None and res.emp_fcd is not None
    for m in (res.sim_fcd, res.emp_fcd):
        assert m.values.shape == (26, 26) and m.values.dtype == np.float32 and m.stride == 1
    path = res.save(tmp_path / "fit.nc")
    back = FitResult.load(path)
    for name in ("sim_fcd", "emp_fcd"):
        a, b = getattr(res, name), getattr(back, name)
        assert b.values.dtype == np.float32 and b.label == a.label and b.stride == a.stride
        np.testing.assert_array_equal(b.values, a.values)
        np.testing.assert_array_equal(b.time_s, a.time_s)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["sim_fcd"].dims == ("sim_fcd_time", "sim_fcd_time_b")
        assert ds["sim_fcd"].encoding["zlib"] and ds["sim_fcd"].encoding["shuffle"]
        assert ds["sim_fcd_time"].attrs["units"] == "s"


def test_fcd_figure_with_and_without_matrices(result, tmp_path):
    """fit_fcd.png is written for a result with both matrices, for one whose test target is
    a group (no empirical matrix: the figure says so), and for a file written before the
    matrices were kept (no variables: loads with None, CDFs only)."""
    import xarray as xr

    from nmmfit.plots._common import pyplot
    from nmmfit.plots.fit import plot_fcd, plot_fcd_matrices

    res = result
    full = plot_fcd(res, tmp_path / "full_fcd.png")
    group = dataclasses.replace(res, emp_fcd=None)
    fig, axes = pyplot().subplots(1, 3)
    plot_fcd_matrices(group, axes)
    assert "holds only the FCD distribution" in axes[0].texts[0].get_text().replace("\n", " ")
    assert axes[1].images[0].colorbar.ax.get_ylabel() == "FC correlation between windows"
    assert "min" in axes[1].get_xlabel() and "min" in axes[1].get_ylabel()
    pyplot().close(fig)
    grp = plot_fcd(group, tmp_path / "group_fcd.png")
    # an older file: the same result without the FCD matrix variables
    new = res.save(tmp_path / "new.nc")
    with xr.open_dataset(new, engine="h5netcdf") as ds:
        old_ds = ds.load().drop_vars(["sim_fcd", "emp_fcd", "sim_fcd_time", "sim_fcd_time_b",
                                      "emp_fcd_time", "emp_fcd_time_b"])
    old_ds.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    old = FitResult.load(tmp_path / "old.nc")
    assert old.sim_fcd is None and old.emp_fcd is None
    cdf_only = plot_fcd(old, tmp_path / "old_fcd.png")
    for p in (full, grp, cdf_only):
        assert p.stat().st_size > 5000
    assert (tmp_path / "old.nc").stat().st_size < new.stat().st_size


def test_fit_result_file_has_no_sentinel_and_labels(result, tmp_path):
    import xarray as xr

    res = result
    path = res.save(tmp_path / "fit.nc")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        # invalid candidates are missing values beside a validity flag, never the sentinel
        assert not (ds["val_terms"].values == SENTINEL_COST).any()
        bad = ~ds["val_valid"].values
        assert bad.any() and (~bad).any()  # both kinds are exercised
        assert np.isnan(ds["val_total"].values[bad]).all()
        assert np.isfinite(ds["val_total"].values[~bad]).all()
        assert list(ds["param"].values) == res.parametrisation.names
        assert ds["ei_map"].dims == ("region",) and ds["sim_fc"].dims == ("region", "region_b")
        assert json.loads(ds.attrs["config"])["seed"] == 3
    summ = res.summary()
    assert all((v is None) == (not ok) for v, ok in zip(summ["val_total"], summ["val_valid"],
                                                       strict=True))


def test_fit_result_load_names_a_bad_file(tmp_path):
    bad = tmp_path / "x.nc"
    bad.write_text("nope")
    with pytest.raises(ValueError, match="x.nc"):
        FitResult.load(bad)
    with pytest.raises(FileNotFoundError, match="gone.nc"):
        FitResult.load(tmp_path / "gone.nc")


def test_target_netcdf_round_trip_every_field(tmp_path):
    from nmmfit import datasets

    tgt = Target.from_dataset(datasets.load("hcp_schaefer100"), group="train706")
    path = tgt.save(tmp_path / "t.nc")
    back = Target.load(path)
    for f in dataclasses.fields(Target):
        a, b = getattr(tgt, f.name), getattr(back, f.name)
        if f.name == "meta":
            assert b == json.loads(json.dumps(a))
        elif f.name == "fcd_spec":
            assert a.to_dict() == b.to_dict()
        else:
            _same(a, b, f.name)
    assert back.region_labels[0] == "7Networks_LH_Vis_1"
    assert tgt.fcd_matrix is None and back.fcd_matrix is None  # a group: FCD values only
    assert back.fingerprint() == tgt.fingerprint()


def test_fc_figure_orders_networks_and_states_the_printed_cost(result):
    """On the bundled Schaefer-100 names the regions are grouped by network; the FC title
    gives the printed cost term beside the r of the matrices shown."""
    from nmmfit.datasets import load
    from nmmfit.plots._common import pyplot
    from nmmfit.plots.fit import network_order, plot_fc

    names = load("hcp_schaefer100", include_bold=False).region_labels
    six = [names[i] for i in (60, 0, 95, 10, 1, 40)]  # SomMot, Vis, Default, SomMot, Vis, Def
    res = dataclasses.replace(result, region_labels=six)
    order, net = network_order(res)
    assert list(net) == [1, 0, 6, 1, 0, 6] and list(order) == [1, 4, 0, 3, 2, 5]
    fig, axes = pyplot().subplots(1, 3)
    plot_fc(res, axes)
    assert f"1 - r = {res.test_cost['fc_corr']:.3f}" in axes[2].get_title()
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["Vis", "SomMot", "Default"]
    pyplot().close(fig)
