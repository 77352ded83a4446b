"""Target: construction, SC normalisation, FC gradients, input errors, persistence, bootstrap."""

import numpy as np
import pytest

from nmmfit.data.dataset import Dataset, FCDValues, Group, Subject
from nmmfit.data.gradients import fc_gradients
from nmmfit.data.sc import SC_MAX, normalise_sc
from nmmfit.data.target import Target
from nmmfit.stats import (
    FCDSpec,
    cdf_from_counts,
    fc_matrix,
    fcd_histogram,
    fcd_matrix,
    fisher_mean,
)

N, T = 8, 100
SPEC = FCDSpec(12, 2, n_bins=300)


def _bold(rng, n=N, t=T):
    x = rng.standard_normal((n, t))
    for k in range(1, t):
        x[:, k] += 0.7 * x[:, k - 1]
    return x + 0.4 * x[:1]


def _sc(rng, n=N, density=0.8):
    a = rng.random((n, n)) * 1000.0
    a = (a + a.T) / 2
    a[rng.random((n, n)) > density] = 0.0
    a = np.triu(a, 1)
    return a + a.T


@pytest.fixture(scope="module")
def cohort():
    """A synthetic 5-subject Dataset with 2 runs each, a group with pooled FCD values."""
    rng = np.random.default_rng(11)
    subjects = {}
    for k in range(5):
        sid = f"s{k}"
        subjects[sid] = Subject(id=sid, sc=_sc(rng), bold=[_bold(rng), _bold(rng)],
                                run_names=["r1", "r2"])
    g_fc = fisher_mean(fc_matrix(np.stack([b for s in subjects.values() for b in s.bold])))
    vals = rng.uniform(-0.5, 1.0, 5000)
    group = Group(name="all5", n_subjects=5, sc=_sc(rng), fc=g_fc,
                  fcd=FCDValues(values=vals, window_frames=10, step_frames=3, tr=0.72,
                                note="synthetic"))
    maps = {"myelin": rng.standard_normal(N)}
    return Dataset(name="synth", parcellation="synth-8", tr=0.72,
                   region_labels=[f"r{i}" for i in range(N)], subjects=subjects,
                   groups={"all5": group}, maps=maps)


# ---------------------------------------------------------------------------- construction


def test_from_bold_fc_fcd_recipes():
    rng = np.random.default_rng(0)
    runs = [[_bold(rng), _bold(rng, t=140)], [_bold(rng)]]
    tgt = Target.from_bold([_sc(rng), _sc(rng)], runs, tr=0.72, fcd_spec=SPEC, name="x")
    flat = [runs[0][0], runs[0][1], runs[1][0]]
    np.testing.assert_allclose(tgt.fc, fisher_mean(np.stack([np.corrcoef(r) for r in flat])),
                               atol=1e-10)
    # each run's CDF normalised to 1, then averaged: runs of different length weigh equally
    per_run = [cdf_from_counts(fcd_histogram(r, SPEC)) for r in flat]
    np.testing.assert_allclose(tgt.fcd_cdf, np.mean(per_run, axis=0), atol=1e-12)
    assert tgt.fcd_cdf[-1] == pytest.approx(1.0)
    assert tgt.fcd_spec == SPEC and tgt.n_frames == T and tgt.n_regions == N
    assert tgt.fc_upper.shape == (N * (N - 1) // 2,)
    assert list(tgt.maps) == ["fc_gradient"] and tgt.maps["fc_gradient"].shape == (N,)
    assert tgt.meta["n_runs"] == 3


def test_default_fcd_spec_is_delssome():
    rng = np.random.default_rng(1)
    tgt = Target.from_bold(_sc(rng), _bold(rng, t=200), tr=0.72)
    assert (tgt.fcd_spec.window_frames, tgt.fcd_spec.step_frames) == (83, 1)
    assert tgt.fcd_spec.n_bins == 10000


def test_from_dataset_group_uses_its_fcd_definition(cohort):
    tgt = Target.from_dataset(cohort, group="all5")
    spec = tgt.fcd_spec
    assert (spec.window_frames, spec.step_frames, spec.n_bins) == (10, 3, 10000)
    vals = cohort.groups["all5"].fcd.values
    ref = np.cumsum(np.histogram(vals, 10000, (-1, 1))[0]) / vals.size
    np.testing.assert_allclose(tgt.fcd_cdf, ref)
    np.testing.assert_array_equal(tgt.fc, cohort.groups["all5"].fc)
    assert tgt.n_frames == T
    assert set(tgt.maps) == {"myelin", "fc_gradient"}
    np.testing.assert_array_equal(tgt.maps["myelin"], cohort.maps["myelin"])
    with pytest.raises(ValueError, match="differs from the definition"):
        Target.from_dataset(cohort, group="all5", fcd_spec=FCDSpec(20, 1))
    with pytest.raises(ValueError, match="not in dataset"):
        Target.from_dataset(cohort, group="nope")


def test_from_dataset_subjects_and_missing_maps(cohort):
    tgt = Target.from_dataset(cohort, subjects=["s1", "s3"], fcd_spec=SPEC)
    assert tgt.meta["subjects"] == ["s1", "s3"] and tgt.meta["n_runs"] == 4
    with pytest.warns(UserWarning, match="thickness"):
        t2 = Target.from_dataset(cohort, subjects=["s1"], fcd_spec=SPEC,
                                 maps=("thickness", "fc_gradient", "fc_gradient2"))
    assert list(t2.maps) == ["fc_gradient", "fc_gradient2"]
    assert abs(np.corrcoef(t2.maps["fc_gradient"], t2.maps["fc_gradient2"])[0, 1]) < 0.5


def test_bundled_group_target():
    from nmmfit.datasets import load

    ds = load("hcp_schaefer100", include_bold=False)
    tgt = Target.from_dataset(ds, group="train706", n_frames=1200)
    assert (tgt.fcd_spec.window_frames, tgt.fcd_spec.step_frames) == (43, 7)
    # the default SC recipe scales to a mean node strength of 1; delssome's to a largest entry
    assert tgt.sc_normalisation == "strength" and tgt.n_regions == 100
    assert tgt.sc.sum(axis=1).mean() == pytest.approx(1.0) and np.diag(tgt.sc).max() == 0
    old = Target.from_dataset(ds, group="train706", n_frames=1200, sc_normalisation="delssome")
    assert old.sc.max() == pytest.approx(SC_MAX) and old.sc_normalisation == "delssome"
    assert set(tgt.maps) == {"myelin", "fc_gradient"}
    # our diffusion-map gradient of the group FC agrees with cuBNM's gradient map (and sign)
    assert np.corrcoef(fc_gradients(tgt.fc)[0], ds.maps["fc_gradient"])[0, 1] > 0.9


# ---------------------------------------------------------------------------- SC


def test_sc_normalisation_delssome():
    rng = np.random.default_rng(2)
    scs = np.stack([_sc(rng, density=1.0) for _ in range(3)])
    scs[:, np.arange(N), np.arange(N)] = 5.0
    scs[0, 0, 1] = scs[0, 1, 0] = 300.0  # non-zero in 1 of 3 subjects: masked
    scs[1:, 0, 1] = scs[1:, 1, 0] = 0.0
    scs[0, 2, 3] = scs[0, 3, 2] = 0.0  # non-zero in 2 of 3: kept, mean of the 2 non-zeros
    out, info = normalise_sc(scs, "delssome")
    assert out.max() == pytest.approx(SC_MAX)
    np.testing.assert_array_equal(np.diag(out), 0.0)
    np.testing.assert_array_equal(out, out.T)
    assert out[0, 1] == 0.0 and info["n_entries_masked"] == 2
    ref = np.log1p(scs.mean(0))
    ref[2, 3] = ref[3, 2] = np.log1p(scs[1:, 2, 3].mean())
    ref[0, 1] = ref[1, 0] = 0.0
    np.fill_diagonal(ref, 0.0)
    off = ~np.eye(N, dtype=bool)
    np.testing.assert_allclose(out[off] / out[2, 3], (ref / ref[2, 3])[off], rtol=1e-12)


def test_sc_normalisation_other_methods():
    rng = np.random.default_rng(3)
    sc = _sc(rng)
    np.fill_diagonal(sc, 7.0)
    m, _ = normalise_sc(sc, "max")
    np.testing.assert_allclose(m, sc * SC_MAX / sc.max())
    none, _ = normalise_sc(sc, "none")
    np.testing.assert_array_equal(none, sc)
    p, _ = normalise_sc(np.stack([sc, 2 * sc]), "pfic")
    ref = np.where(sc > 0, np.log(np.where(sc > 0, sc, 1.0)) + np.log(2) / 2, 0.0)
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(p, ref * SC_MAX / ref.max(), rtol=1e-12)
    asym = sc.copy()
    asym[0, 1] += 100.0
    s, info = normalise_sc(asym, "none")
    assert info["symmetrised"] and s[0, 1] == s[1, 0] == pytest.approx(sc[0, 1] + 50.0)
    with pytest.raises(ValueError, match="sc_normalisation must be one of"):
        normalise_sc(sc, "zscore")


# ---------------------------------------------------------------------------- gradients


def test_fc_gradient_separates_blocks_with_sign_rule():
    rng = np.random.default_rng(4)
    n = 20
    lab = np.r_[np.zeros(12), np.ones(8)]
    fc = np.where(lab[:, None] == lab[None], 0.6, 0.05) + 0.02 * rng.standard_normal((n, n))
    fc = (fc + fc.T) / 2
    np.fill_diagonal(fc, 1.0)
    g = fc_gradients(fc, n_components=2)
    assert g.shape == (2, n)
    np.testing.assert_allclose(g.mean(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(g.std(1), 1.0)
    assert abs(np.corrcoef(g[0], lab)[0, 1]) > 0.95
    assert np.all(g[np.arange(2), np.abs(g).argmax(1)] > 0)


# ---------------------------------------------------------------------------- errors


def test_bad_inputs_name_array_and_shape():
    rng = np.random.default_rng(5)
    sc, run = _sc(rng), _bold(rng)
    with pytest.raises(ValueError, match=r"sc must be a square.*\(8, 7\)"):
        Target.from_bold(sc[:, :7], run, tr=0.72, fcd_spec=SPEC)
    neg = sc.copy()
    neg[0, 1] = -1.0
    with pytest.raises(ValueError, match=r"sc \(shape \(8, 8\)\) has 1 negative"):
        Target.from_bold(neg, run, tr=0.72, fcd_spec=SPEC)
    with pytest.raises(ValueError, match=r"sc\[1\] has shape \(7, 7\)"):
        Target.from_bold([sc, sc[:7, :7]], run, tr=0.72, fcd_spec=SPEC)
    bad = run.copy()
    bad[2, 5] = np.nan
    with pytest.raises(ValueError, match=r"bold\[1\] \(shape \(8, 100\)\) contains 1 non-finite"):
        Target.from_bold(sc, [run, bad], tr=0.72, fcd_spec=SPEC)
    with pytest.raises(ValueError, match=r"bold\[0\]\[1\] has shape \(8, 10\).*shorter than one "
                                         r"FCD window of 12"):
        Target.from_bold(sc, [[run, run[:, :10]]], tr=0.72, fcd_spec=SPEC)
    with pytest.raises(ValueError, match=r"bold\[0\] has shape \(8, 13\).*at least 2"):
        Target.from_bold(sc, [run[:, :13]], tr=0.72, fcd_spec=SPEC)
    with pytest.raises(ValueError, match=r"bold has shape \(7, 100\): 7 regions.*SC has 8"):
        Target.from_bold(sc, run[:7], tr=0.72, fcd_spec=SPEC)
    with pytest.raises(ValueError, match=r"maps\['myelin'\] has shape \(9,\): 9 regions"):
        Target.from_bold(sc, run, tr=0.72, fcd_spec=SPEC, maps={"myelin": np.ones(9)})
    const = run.copy()
    const[4] = 3.0
    with pytest.raises(ValueError, match=r"bold \(shape \(8, 100\)\) has constant regions \[4\]"):
        Target.from_bold(sc, const, tr=0.72, fcd_spec=SPEC)
    with pytest.raises(ValueError, match="tr must be a positive"):
        Target.from_bold(sc, run, tr=0.0, fcd_spec=SPEC)


def test_a_run_constant_within_an_fcd_window_is_rejected():
    """Its FCD is undefined, as for a simulated run (which the cost leaves out)."""
    rng = np.random.default_rng(6)
    sc, run = _sc(rng), _bold(rng)
    bad = run.copy()
    bad[3, 20:50] = 0.0  # constant over whole windows, not over the run
    with pytest.raises(ValueError, match=r"BOLD run 1 \(shape \(8, 100\)\) has a region that "
                                         r"is constant within an FCD window of 12 frames"):
        Target.from_bold(sc, [run, bad], tr=0.72, fcd_spec=SPEC)


def test_exc_inter_style_nan_fc_is_rejected(cohort):
    g = cohort.groups["all5"]
    fc = g.fc.copy()
    fc[:4, 4:] = fc[4:, :4] = np.nan
    ds = Dataset(name="d", parcellation="p", tr=0.72, region_labels=cohort.region_labels,
                 subjects=cohort.subjects,
                 groups={"g": Group(name="g", n_subjects=5, sc=g.sc, fc=fc, fcd=g.fcd)})
    with pytest.raises(ValueError, match=r"groups\['g'\].fc \(shape \(8, 8\)\) has 32 non-fin"):
        Target.from_dataset(ds, group="g")


# ---------------------------------------------------------------------------- persistence


def test_save_load_round_trip(tmp_path, cohort):
    tgt = Target.from_dataset(cohort, subjects=["s0", "s2"], fcd_spec=SPEC, name="rt")
    path = tgt.save(tmp_path / "target.npz")
    back = Target.load(path)
    for k in ("sc", "fc", "fcd_cdf"):
        np.testing.assert_array_equal(getattr(back, k), getattr(tgt, k))
    assert back.fcd_spec == tgt.fcd_spec
    assert list(back.maps) == list(tgt.maps)
    for k in tgt.maps:
        np.testing.assert_array_equal(back.maps[k], tgt.maps[k])
    assert (back.tr, back.n_frames, back.name, back.sc_normalisation) == (
        tgt.tr, tgt.n_frames, "rt", tgt.sc_normalisation)
    assert back.meta["subjects"] == ["s0", "s2"]
    # the FCD matrix of the first run (subject s0's) travels with both file kinds
    want = fcd_matrix(cohort.subjects["s0"].bold[0], SPEC)
    np.testing.assert_array_equal(tgt.fcd_matrix.values, want)
    assert tgt.fcd_matrix.label.startswith("subject s0, ")
    for kind in (back, Target.load(tgt.save(tmp_path / "target.nc"))):
        got = kind.fcd_matrix
        assert got.values.dtype == np.float32 and got.label == tgt.fcd_matrix.label
        np.testing.assert_array_equal(got.values, want)
        np.testing.assert_array_equal(got.time_s, tgt.fcd_matrix.time_s)
    np.savez(tmp_path / "other.npz", sc=tgt.sc)
    with pytest.raises(ValueError, match="not a saved nmmfit Target"):
        Target.load(tmp_path / "other.npz")


def test_bootstrap_is_reproducible(cohort):
    a = Target.bootstrap(cohort, n_groups=3, group_size=3, seed=42, fcd_spec=SPEC, maps=())
    b = Target.bootstrap(cohort, n_groups=3, group_size=3, seed=42, fcd_spec=SPEC, maps=())
    c = Target.bootstrap(cohort, n_groups=3, group_size=3, seed=7, fcd_spec=SPEC, maps=())
    subs = [t.meta["subjects"] for t in a]
    assert subs == [t.meta["subjects"] for t in b]
    assert subs != [t.meta["subjects"] for t in c]
    assert all(len(set(s)) == 3 for s in subs)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.fc, y.fc)
        np.testing.assert_array_equal(x.fcd_cdf, y.fcd_cdf)
    assert a[0].meta["bootstrap"]["seed"] == 42 and a[2].name == "synth:boot2"
    with pytest.raises(ValueError, match="group_size 6 exceeds the 5 subjects"):
        Target.bootstrap(cohort, n_groups=1, group_size=6, seed=0)


def test_group_fcd_given_as_bin_counts(cohort):
    g = cohort.groups["all5"]
    counts = np.zeros(10000)
    counts[[100, 5000, 9999]] = [1.0, 2.0, 1.0]
    fcdv = FCDValues(values=g.fcd.values, window_frames=10, step_frames=3, tr=0.72)
    fcdv.counts = counts  # a loader may carry 10,000-bin counts instead of raw values
    ds = Dataset(name="d", parcellation="p", tr=0.72, region_labels=cohort.region_labels,
                 subjects=cohort.subjects,
                 groups={"g": Group(name="g", n_subjects=5, sc=g.sc, fc=g.fc, fcd=fcdv)})
    tgt = Target.from_dataset(ds, group="g", maps=())
    np.testing.assert_allclose(tgt.fcd_cdf, np.cumsum(counts) / 4.0)
    assert "bin counts" in tgt.meta["fcd_recipe"]
