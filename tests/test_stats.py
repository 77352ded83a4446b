"""FC, FCD, their summary and the FC+FCD cost against naive reference implementations."""

import warnings

import numpy as np
import pytest

from nmmfit.data.target import Target
from nmmfit.stats import (
    SENTINEL_COST,
    FCDMatrix,
    FCDSpec,
    FrameCountWarning,
    cdf_from_counts,
    distance,
    fc_fcd_cost,
    fc_matrix,
    fcd_histogram,
    fcd_matrix,
    fisher_mean,
    sampled_fcd_matrix,
    summarise,
    upper_tri,
    values_to_cdf,
    window_fc,
)
from nmmfit.stats.cost import fc_level, ks_distance
from nmmfit.stats.fc import FISHER_CLIP


def _bold(rng, shape, ar=0.8):
    """Autocorrelated random BOLD [..., N, T] with some shared signal."""
    x = rng.standard_normal(shape)
    for t in range(1, shape[-1]):
        x[..., t] += ar * x[..., t - 1]
    common = x[..., :1, :].copy()
    return x + 0.5 * common + 100.0


def _naive_window_fc(x, w, s):
    """[N, T] -> [W, E] by a loop over windows with np.corrcoef."""
    n, t = x.shape
    iu = np.triu_indices(n, 1)
    return np.array([np.corrcoef(x[:, k:k + w])[iu] for k in range(0, t - w + 1, s)])


def _naive_hist(vals, n_bins, lo=-1.0, hi=1.0):
    return np.histogram(np.clip(vals, lo, hi), bins=n_bins, range=(lo, hi))[0]


# ---------------------------------------------------------------------------- FC


def test_fc_matrix_matches_corrcoef_on_batches():
    rng = np.random.default_rng(0)
    x = _bold(rng, (2, 3, 7, 60))
    fc = fc_matrix(x)
    assert fc.shape == (2, 3, 7, 7)
    for a in range(2):
        for b in range(3):
            np.testing.assert_allclose(fc[a, b], np.corrcoef(x[a, b]), atol=1e-12)
    fc32 = fc_matrix(x.astype(np.float32))
    np.testing.assert_allclose(fc32, fc, atol=1e-5)


def test_upper_tri_and_fisher_mean():
    rng = np.random.default_rng(1)
    fcs = fc_matrix(_bold(rng, (4, 6, 40)))
    iu = np.triu_indices(6, 1)
    np.testing.assert_array_equal(upper_tri(fcs), fcs[:, iu[0], iu[1]])
    m = fisher_mean(fcs)
    off = ~np.eye(6, dtype=bool)
    ref = np.tanh(np.arctanh(fcs[:, off]).mean(0))
    np.testing.assert_allclose(m[off], ref, atol=1e-12)
    np.testing.assert_array_equal(np.diag(m), 1.0)
    # Fisher mean differs from the plain mean
    assert np.abs(m[off] - fcs.mean(0)[off]).max() > 1e-4
    # |r| is clipped to FISHER_CLIP, or to ``clip``, before arctanh
    near = np.array([[[1.0, 0.9999999999], [0.9999999999, 1.0]]])
    assert fisher_mean(near)[0, 1] == np.tanh(np.arctanh(FISHER_CLIP))
    assert fisher_mean(near, clip=0.99)[0, 1] == np.tanh(np.arctanh(0.99))
    np.testing.assert_array_equal(fisher_mean(fcs, clip=0.999999), m)  # no |r| near 1 here


# ---------------------------------------------------------------------------- FCD spec


def test_fcd_spec_window_counts():
    d = FCDSpec.delssome(0.72)
    assert (d.window_frames, d.step_frames, d.n_bins) == (83, 1, 10000)
    assert d.n_windows(1200) == 1118
    assert d.n_values(1200) == 624403
    f = FCDSpec.from_seconds(60, 0.72, 0.72)
    assert (f.window_frames, f.step_frames) == (83, 1)
    assert FCDSpec.from_seconds(60, 5.0, 2.0).step_frames == 2  # round(2.5) = 2 (to even)
    c = FCDSpec.cubnm(30, 5, 0.72)
    assert (c.window_frames, c.step_frames) == (43, 7)
    assert c.n_windows(1200) == (1200 - 43) // 7 + 1 == 166
    assert FCDSpec(10, 3).n_windows(9) == 0
    with pytest.raises(ValueError, match="window_frames"):
        FCDSpec(1, 1)
    with pytest.raises(ValueError, match="step_frames"):
        FCDSpec(10, 0)
    assert FCDSpec.from_dict(c.to_dict()) == c


# ---------------------------------------------------------------------------- FCD


@pytest.mark.parametrize("w,s", [(12, 1), (15, 4), (10, 12)])
def test_window_fc_matches_naive_loop(w, s):
    rng = np.random.default_rng(2)
    x = _bold(rng, (2, 8, 70))
    spec = FCDSpec(w, s, n_bins=100)
    got = window_fc(x, spec)
    n_win = spec.n_windows(70)
    assert got.shape == (2, n_win, 28) and got.dtype == np.float32
    for b in range(2):
        np.testing.assert_allclose(got[b], _naive_window_fc(x[b], w, s), atol=2e-6)


def test_fcd_matrix_and_histogram_match_naive():
    rng = np.random.default_rng(3)
    x = _bold(rng, (3, 9, 90))
    spec = FCDSpec(14, 2, n_bins=64)
    n_win = spec.n_windows(90)
    fcd = fcd_matrix(x, spec)
    counts = fcd_histogram(x, spec)
    assert fcd.shape == (3, n_win, n_win)
    assert counts.shape == (3, 64) and counts.dtype == np.int64
    iu = np.triu_indices(n_win, 1)
    for b in range(3):
        ref = np.corrcoef(_naive_window_fc(x[b], 14, 2))
        np.testing.assert_allclose(fcd[b], ref, atol=2e-5)
        assert counts[b].sum() == n_win * (n_win - 1) // 2
        # float32 vs float64 may move a value that sits on a bin edge by one bin
        assert np.abs(counts[b] - _naive_hist(ref[iu], 64)).sum() <= 2


def test_sampled_fcd_matrix_strides_and_times():
    """The kept FCD matrix is fcd_matrix's entries at every stride-th window (first kept),
    with window centres in seconds; errors name the bad input."""
    rng = np.random.default_rng(6)
    x = _bold(rng, (7, 90))
    spec = FCDSpec(14, 2, n_bins=64)  # 39 windows
    full = fcd_matrix(x, spec, threads=1)
    one = sampled_fcd_matrix(x, spec, tr=0.5, threads=1, label="run 1")
    assert one.stride == 1 and one.label == "run 1" and one.values.dtype == np.float32
    np.testing.assert_array_equal(one.values, full)
    np.testing.assert_allclose(one.time_s, (np.arange(39) * 2 + 6.5) * 0.5)
    few = sampled_fcd_matrix(x, spec, tr=0.5, max_windows=10, threads=1)
    assert few.stride == 4 and few.n_windows == 10  # windows 0, 4, ..., 36
    np.testing.assert_array_equal(few.values, full[::4, ::4])
    np.testing.assert_array_equal(few.time_s, one.time_s[::4])
    ref = np.corrcoef(_naive_window_fc(x, 14, 2)[::4])
    np.testing.assert_allclose(few.values, ref, atol=2e-5)
    with pytest.raises(ValueError, match="one \\[N, T\\] BOLD run"):
        sampled_fcd_matrix(x[None], spec, tr=0.5)
    with pytest.raises(ValueError, match="values \\[W, W\\] and time_s \\[W\\]"):
        FCDMatrix(values=np.zeros((3, 3)), time_s=np.zeros(2))


def test_fcd_histogram_is_thread_invariant_and_batched():
    rng = np.random.default_rng(4)
    x = _bold(rng, (5, 8, 80)).astype(np.float32)
    spec = FCDSpec(12, 1, n_bins=500)
    one = fcd_histogram(x, spec, threads=1)
    two = fcd_histogram(x, spec, threads=2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(fcd_histogram(x[3], spec), one[3])


def test_fcd_errors_and_degenerate_runs():
    rng = np.random.default_rng(5)
    spec = FCDSpec(20, 5, n_bins=50)
    with pytest.raises(ValueError, match=r"shape \(4, 10\).*shorter than one FCD window"):
        window_fc(rng.standard_normal((4, 10)), spec)
    with pytest.raises(ValueError, match="at least 2"):
        fcd_histogram(rng.standard_normal((4, 22)), spec)
    x = _bold(rng, (6, 60))
    x[2, 20:45] = 7.0  # region 2 constant inside some windows
    wfc = window_fc(x, spec)
    assert not np.isfinite(wfc).all()
    n_win = spec.n_windows(60)
    assert fcd_histogram(x, spec).sum() < n_win * (n_win - 1) // 2


def test_cdf_helpers():
    counts = np.array([[1, 0, 3], [0, 0, 0]])
    cdf = cdf_from_counts(counts)
    np.testing.assert_allclose(cdf[0], [0.25, 0.25, 1.0])
    assert np.isnan(cdf[1]).all()
    v = np.random.default_rng(6).uniform(-1, 1, 1000)
    v[0] = 1.0  # the right edge goes into the last bin, as np.histogram does
    spec = FCDSpec(2, 1, n_bins=40)
    ref = np.cumsum(np.histogram(v, 40, (-1, 1))[0]) / 1000
    np.testing.assert_allclose(values_to_cdf(v, spec), ref)


# ---------------------------------------------------------------------------- cost


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(7)
    n, t = 10, 120
    run = _bold(rng, (n, t))
    sc = rng.random((n, n))
    spec = FCDSpec(16, 2, n_bins=400)
    target = Target.from_bold(sc + sc.T, run, tr=0.72, fcd_spec=spec, name="one-run")
    return rng, run, target


def test_cost_zero_for_source_and_larger_when_shuffled(small):
    rng, run, target = small
    c = fc_fcd_cost(run[None], target)
    assert c.valid.all() and c.n_valid.tolist() == [1]
    assert c.fc_corr[0] < 1e-9 and c.fc_l1[0] < 1e-9 and c.fcd_ks[0] < 1e-12
    shuffled = np.array([rng.permutation(r) for r in run])
    s = fc_fcd_cost(shuffled[None], target)
    assert s.fc_corr[0] > 0.2 and s.fcd_ks[0] > 0.1
    assert s.total[0] == pytest.approx(s.fc_corr[0] + s.fc_l1[0] + s.fcd_ks[0])


def test_cost_uses_the_targets_fcd_spec(small):
    _, run, target = small
    other = Target.from_bold(target.sc, run, tr=0.72, fcd_spec=FCDSpec(30, 5, n_bins=400))
    # the same run scores KS = 0 against both targets only if each target's spec is used
    assert fc_fcd_cost(run[None], other).fcd_ks[0] < 1e-12
    assert fc_fcd_cost(run[None], target).fcd_ks[0] < 1e-12
    assert np.abs(other.fcd_cdf - target.fcd_cdf).max() > 0.01


def test_cost_excludes_invalid_duplicates(small):
    rng, run, target = small
    a = _bold(rng, run.shape)
    b = _bold(rng, run.shape)
    nan = a.copy()
    nan[3, 50] = np.nan
    alone = fc_fcd_cost(a[None, None], target)
    with_nan = fc_fcd_cost(np.stack([a, nan])[None], target)
    masked = fc_fcd_cost(np.stack([a, b])[None], target, valid=np.array([[True, False]]))
    for c in (with_nan, masked):
        assert c.n_valid.tolist() == [1] and c.valid.all()
        for k in ("fc_corr", "fc_l1", "fcd_ks", "total"):
            np.testing.assert_allclose(getattr(c, k), getattr(alone, k), rtol=0, atol=1e-12)
    # both valid: plain mean of the FC vectors and of the histograms
    both = fc_fcd_cost(np.stack([a, b])[None], target)
    fcv = upper_tri(fc_matrix(np.stack([a, b]))).mean(0)
    r = np.corrcoef(fcv, target.fc_upper)[0, 1]
    assert both.fc_corr[0] == pytest.approx(1 - r, abs=1e-9)
    assert both.fc_l1[0] == pytest.approx(abs(fcv.mean() - target.fc_upper.mean()), abs=1e-12)
    cdf = cdf_from_counts(fcd_histogram(np.stack([a, b]), target.fcd_spec).mean(0))
    assert both.fcd_ks[0] == pytest.approx(np.abs(cdf - target.fcd_cdf).max(), abs=1e-12)


def test_cost_all_invalid_gives_sentinel_without_raising(small):
    rng, run, target = small
    bad = np.full((2, 3) + run.shape, np.nan)
    bad[1, :, 0, 0] = np.inf
    bad[1, :, 1:] = 1.0
    c = fc_fcd_cost(bad, target)
    assert not c.valid.any()
    np.testing.assert_array_equal(c.fc_corr, SENTINEL_COST)
    np.testing.assert_array_equal(c.fcd_ks, SENTINEL_COST)
    np.testing.assert_array_equal(c.total, 3 * SENTINEL_COST)
    assert c.n_valid.tolist() == [0, 0]
    # constant (flat) BOLD cannot be scored either
    flat = fc_fcd_cost(np.ones((1,) + run.shape), target)
    assert not flat.valid[0] and flat.total[0] == 3 * SENTINEL_COST
    w = fc_fcd_cost(bad, target, weights=(1.0, 2.0, 0.5))
    np.testing.assert_allclose(w.total, 3.5 * SENTINEL_COST)


def test_cost_batch_equals_per_item(small):
    rng, run, target = small
    bold = _bold(rng, (4, 2) + run.shape).astype(np.float32)
    valid = np.array([[True, True], [True, False], [False, False], [False, True]])
    batch = fc_fcd_cost(bold, target, valid=valid, weights=(1.0, 0.5, 2.0))
    for p in range(4):
        one = fc_fcd_cost(bold[p:p + 1], target, valid=valid[p:p + 1], weights=(1.0, 0.5, 2.0))
        for k, v in batch.as_dict().items():
            np.testing.assert_allclose(v[p], getattr(one, k)[0], atol=1e-12, err_msg=k)
    assert batch.valid.tolist() == [True, True, False, True]


def test_cost_input_errors(small):
    rng, run, target = small
    with pytest.raises(ValueError, match=r"bold has shape \(1, 9, 120\).*9 regions.*10"):
        fc_fcd_cost(rng.standard_normal((1, 9, 120)), target)
    with pytest.raises(ValueError, match=r"valid must have shape \(2, 1\)"):
        fc_fcd_cost(np.stack([run, run]), target, valid=np.ones((3, 1), bool))
    with pytest.raises(ValueError, match="weights"):
        fc_fcd_cost(run[None], target, weights=(1, 1))


# ---------------------------------------------------------------------------- summary + distance


def test_summarise_then_distance_is_the_cost_bit_for_bit(small):
    rng, run, target = small
    bold = _bold(rng, (5, 3) + run.shape).astype(np.float32)
    valid = rng.random((5, 3)) > 0.3
    valid[2] = False
    bold[1, 0, 4, 30] = np.nan
    summary = summarise(bold, target.fcd_spec, valid=valid)
    got = distance(summary, target, weights=(1.0, 0.5, 2.0))
    ref = fc_fcd_cost(bold, target, valid=valid, weights=(1.0, 0.5, 2.0))
    for k, v in ref.as_dict().items():
        np.testing.assert_array_equal(getattr(got, k), v, err_msg=k)
    assert got.valid.tolist() == [True, valid[1, 1:].any(), False, True, True]


def test_summary_holds_sums_means_and_validity(small):
    rng, run, target = small
    spec = target.fcd_spec
    runs = _bold(rng, (3, 2) + run.shape)
    runs[0, 1, 3, 40] = np.inf  # non-finite BOLD
    runs[1, 0, 5] = 2.0  # a constant region: FC undefined
    runs[1, 1, 6, 10:40] = 2.0  # constant within windows: FCD incomplete
    s = summarise(runs, spec, valid=np.array([[True, True], [True, True], [True, False]]))
    n = run.shape[0]
    assert len(s) == 3 and s.n_regions == n and s.n_frames == run.shape[1] and s.spec == spec
    assert s.fc_sum.shape == (3, n, n) and s.fcd_counts.shape == (3, spec.n_bins)
    assert s.fcd_counts.dtype == np.int64
    assert s.valid.tolist() == [[True, False], [False, False], [True, False]]
    assert s.n_valid.tolist() == [1, 0, 1]
    fc0 = fc_matrix(runs[0, 0])
    np.testing.assert_array_equal(s.fc[0], fc0)
    np.testing.assert_array_equal(s.fc_upper[0], upper_tri(fc0))
    np.testing.assert_array_equal(s.fcd_counts[0], fcd_histogram(runs[0, 0], spec))
    np.testing.assert_allclose(s.fcd_cdf[0], cdf_from_counts(fcd_histogram(runs[0, 0], spec)),
                               rtol=0, atol=1e-15)
    # a set without a valid duplicate: zero sums, NaN means
    assert not s.fc_sum[1].any() and not s.fcd_counts[1].any()
    assert np.isnan(s.fc[1]).all() and np.isnan(s.fcd_cdf[1]).all()
    # two valid duplicates: plain means of the FC matrices and of the histograms
    two = summarise(runs[2:], spec)
    np.testing.assert_allclose(two.fc[0], fc_matrix(runs[2]).mean(axis=0), atol=1e-15)
    np.testing.assert_allclose(two.fcd_cdf[0],
                               cdf_from_counts(fcd_histogram(runs[2], spec).mean(axis=0)),
                               atol=1e-15)
    with pytest.raises(ValueError, match=r"valid must have shape \(3, 2\)"):
        summarise(runs, spec, valid=np.ones(3, bool))
    with pytest.raises(ValueError, match=r"bold must be \[P, D, N, T\]"):
        summarise(run, spec)
    with pytest.raises(ValueError, match="fewer than 2 FCD windows"):
        summarise(runs[..., :17], spec)


def test_pooled_single_runs_equal_the_grouped_summary_bit_for_bit(small):
    rng, run, target = small
    runs = _bold(rng, (6,) + run.shape)
    valid = np.array([True, True, False, True, True, True])
    singles = summarise(runs, target.fcd_spec, valid=valid)
    grouped = summarise(runs.reshape(3, 2, *run.shape), target.fcd_spec,
                        valid=valid.reshape(3, 2))
    pooled = singles.pool(2)
    for k in ("fc_sum", "fcd_counts", "valid"):
        np.testing.assert_array_equal(getattr(pooled, k), getattr(grouped, k), err_msg=k)
    for k, v in distance(grouped, target).as_dict().items():
        np.testing.assert_array_equal(getattr(distance(pooled, target), k), v, err_msg=k)
    whole = singles.pool(6)
    assert whole.valid.shape == (1, 6) and whole.n_valid.tolist() == [5]
    with pytest.raises(ValueError, match="cannot pool 6 sets in groups of 4"):
        singles.pool(4)


def test_distance_checks_the_summary_against_the_target(small):
    rng, run, target = small
    with pytest.raises(ValueError, match="differs from target 'one-run'"):
        distance(summarise(run[None], FCDSpec(16, 2, n_bins=300)), target)
    with pytest.raises(ValueError, match="9 regions, but the target 'one-run' has 10"):
        distance(summarise(run[None, :9], target.fcd_spec), target)
    with pytest.raises(ValueError, match="weights"):
        distance(summarise(run[None], target.fcd_spec), target, weights=(1.0, -1.0, 1.0))


def test_frame_count_warning_is_a_category_and_can_be_turned_off(small):
    rng, run, target = small
    short = _bold(rng, (1,) + (run.shape[0], 100))
    with pytest.warns(FrameCountWarning, match="simulated runs have 100 frames"):
        fc_fcd_cost(short, target)
    with pytest.warns(FrameCountWarning):
        distance(summarise(short, target.fcd_spec), target)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = fc_fcd_cost(short, target, warn_frames=False)
        distance(summarise(short, target.fcd_spec), target, warn_frames=False)
        fc_fcd_cost(run[None], target)  # the target's own length: no warning
    assert quiet.valid.all()


def test_shared_term_definitions(small):
    rng, run, target = small
    a = rng.random((4, 7))
    b = rng.random(7)
    np.testing.assert_array_equal(ks_distance(a, b), np.abs(a - b).max(axis=1))
    np.testing.assert_array_equal(fc_level(a), a.mean(axis=1))
    s = summarise(run[None], target.fcd_spec)
    c = distance(s, target)
    assert c.fc_l1[0] == abs(fc_level(s.fc_upper)[0] - fc_level(target.fc_upper))
    assert c.fcd_ks[0] == ks_distance(s.fcd_cdf, target.fcd_cdf)[0]
