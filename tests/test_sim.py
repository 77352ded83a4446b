"""The three pFIC engines: parity, reproducibility, validity flags, bad input."""

import numpy as np
import pytest
from scipy import stats

from nmmfit.sim import SimConfig, simulate

SHORT = SimConfig(duration_s=14.4, burn_in_s=1.44, warmup_steps=50)


def _params(n, b=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(1.0, 3.0, (b, n)), rng.uniform(1.0, 2.5, (b, n)),
            rng.uniform(0.2, 1.5, b))


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_deterministic_parity_with_fast_engine(small_sc, engine):
    n = small_sc.shape[0]
    wee, wei, g = _params(n)
    # start away from the fixed point so that the dynamics are not trivial
    ref = simulate(small_sc, wee, wei, g, 0.0, config=SHORT, engine="numba", start="zero")
    other = simulate(small_sc, wee, wei, g, 0.0, config=SHORT, engine=engine, start="zero")
    assert ref.bold.std() > 1e-3  # something happened
    scale = np.abs(ref.bold).max()
    assert np.max(np.abs(other.bold - ref.bold)) / scale < 1e-5
    assert np.allclose(other.mean_rE, ref.mean_rE, rtol=1e-5)
    assert np.allclose(other.mean_SI, ref.mean_SI, rtol=1e-5)


def test_torch_and_numba_share_the_noise_stream(small_sc):
    n = small_sc.shape[0]
    wee, wei, g = _params(n)
    a = simulate(small_sc, wee, wei, g, 0.005, config=SHORT, engine="numba", n_dup=2, seed=7)
    b = simulate(small_sc, wee, wei, g, 0.005, config=SHORT, engine="torch", n_dup=2, seed=7)
    assert np.max(np.abs(a.bold - b.bold)) / np.abs(a.bold).max() < 1e-5


def test_stochastic_numpy_reference_agrees_in_distribution(small_sc):
    cfg = SimConfig(duration_s=7.2, burn_in_s=0.72, warmup_steps=50)
    kw = dict(config=cfg, n_dup=48, seed=3)
    a = simulate(small_sc, 2.0, 1.5, 1.0, 0.01, engine="numba", **kw)
    b = simulate(small_sc, 2.0, 1.5, 1.0, 0.01, engine="numpy", **kw)
    # per-duplicate summaries: temporal BOLD std of region 0 and mean S_E of region 0
    for fa, fb in [(a.bold[0, :, 0].std(axis=-1), b.bold[0, :, 0].std(axis=-1)),
                   (a.mean_SE[0, :, 0], b.mean_SE[0, :, 0])]:
        assert stats.ks_2samp(fa, fb).pvalue > 1e-3
    # and the two engines did not share noise: the trajectories differ
    assert np.abs(a.bold - b.bold).max() > 1e-4


def test_same_seed_same_result_and_lane_independent_of_batch(small_sc):
    n = small_sc.shape[0]
    wee, wei, g = _params(n)
    a = simulate(small_sc, wee, wei, g, 0.005, config=SHORT, seed=11, n_dup=2)
    b = simulate(small_sc, wee, wei, g, 0.005, config=SHORT, seed=11, n_dup=2, threads=1)
    assert np.array_equal(a.bold, b.bold)
    c = simulate(small_sc, wee, wei, g, 0.005, config=SHORT, seed=12, n_dup=2)
    assert not np.allclose(a.bold, c.bold)
    # duplicates differ from one another
    assert not np.allclose(a.bold[:, 0], a.bold[:, 1])


def test_fixed_point_start_holds_rate_without_noise(small_sc):
    n = small_sc.shape[0]
    r = simulate(small_sc, 2.0, 1.5, 1.0, 0.0, config=SHORT)
    assert np.abs(r.mean_rE - 3.0).max() < 1e-6
    assert r.valid.all()
    assert np.allclose(r.ei_ratio, r.mean_SE / r.mean_SI)
    assert r.bold.shape == (1, 1, n, SHORT.n_frames)


def test_out_of_gate_and_diverging_runs_are_flagged_not_raised(small_sc):
    # very strong noise drives the rates far from 3 Hz: flagged invalid, no exception
    r = simulate(small_sc, 3.0, 2.0, 1.0, [[0.5] * small_sc.shape[0]], config=SHORT)
    assert not r.valid.any()
    # without the gate the same run is valid (finite)
    from dataclasses import replace

    r2 = simulate(small_sc, 3.0, 2.0, 1.0, 0.5, config=replace(SHORT, rate_gate=None))
    assert r2.valid.all() and r2.finite.all()


def test_bad_input_names_the_array_and_shape(small_sc):
    with pytest.raises(ValueError, match=r"sc.*square.*\(8, 7\)"):
        simulate(small_sc[:, :7], 2.0, 1.0, 1.0, 0.005, config=SHORT)
    neg = small_sc.copy()
    neg[0, 1] = -1.0
    with pytest.raises(ValueError, match=r"sc.*negative"):
        simulate(neg, 2.0, 1.0, 1.0, 0.005, config=SHORT)
    with pytest.raises(ValueError, match=r"wEE has shape \(5,\).*8 regions"):
        simulate(small_sc, np.ones(5), 1.0, 1.0, 0.005, config=SHORT)
    with pytest.raises(ValueError, match="engine"):
        simulate(small_sc, 2.0, 1.0, 1.0, 0.005, config=SHORT, engine="cuda")
    with pytest.raises(ValueError, match="multiple of dt"):
        SimConfig(dt=0.007)


def test_config_for_tr_snaps_dt_and_durations():
    cfg = SimConfig.for_tr(2.0, dt=0.006, duration_s=710.0, burn_in_s=14.4)
    assert cfg.steps_per_frame == 334 and abs(cfg.dt - 2.0 / 334) < 1e-15
    assert cfg.n_frames == 355 and cfg.burn_in_s == 14.0
    same = SimConfig.for_tr(0.72)
    assert same.dt == 0.006 and same.n_frames == 1200 and same.n_burn_frames == 200
