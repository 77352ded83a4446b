"""The pFIC model definition: fixed point, FIC solve, transfer function, stability."""

import numpy as np
import pytest

from nmmfit.models import balloon, fic


def test_transfer_is_continuous_through_its_singularity():
    c = fic.DEFAULT_CONSTANTS
    i_star = c.b_E / c.a_E  # a*I - b = 0 here
    xs = i_star + np.array([-1e-7, -1e-12, 0.0, 1e-12, 1e-7])
    h = fic.transfer(xs, c.a_E, c.b_E, c.d_E)
    assert np.all(np.isfinite(h))
    assert np.allclose(h, 1.0 / c.d_E, rtol=1e-4)
    assert np.all(np.diff(h) >= 0)


def test_excitatory_fixed_point_gives_target_rate():
    c = fic.DEFAULT_CONSTANTS
    s_e, i_e = fic.excitatory_fixed_point(c)
    assert fic.transfer(i_e, c.a_E, c.b_E, c.d_E) == pytest.approx(3.0, abs=1e-10)
    # S_E* balances decay and drive at r = 3 Hz
    assert -s_e / c.tau_E + (1 - s_e) * c.gamma * 3.0 == pytest.approx(0.0, abs=1e-12)
    assert s_e == pytest.approx(0.16128, abs=1e-5)


def test_solve_wie_makes_the_fixed_point_stationary(small_sc):
    rng = np.random.default_rng(1)
    n = small_sc.shape[0]
    wee = rng.uniform(1, 10, (5, n))
    wei = rng.uniform(0, 5, (5, n))
    g = rng.uniform(0, 3, 5)
    fp = fic.solve_wie(wee, wei, g, small_sc)
    ds_e, ds_i, r_e, _ = fic.rhs(fp.S_E, fp.S_I, wee, wei, fp.wIE, g, small_sc)
    assert np.abs(ds_e).max() < 1e-10
    assert np.abs(ds_i).max() < 1e-10
    assert np.allclose(r_e, 3.0, atol=1e-9)
    assert fp.wIE.shape == (5, n)


def test_jacobian_matches_finite_differences(small_sc):
    n = small_sc.shape[0]
    for wee, wei, g in [(2.0, 1.5, 1.0), (8.0, 1.0, 2.0)]:
        we, wi, gg = np.full((1, n), wee), np.full((1, n), wei), np.array([g])
        fp = fic.solve_wie(we, wi, gg, small_sc)
        x0 = np.concatenate([fp.S_E[0], fp.S_I[0]])

        def f(x, we=we, wi=wi, gg=gg, fp=fp):
            a, b, _, _ = fic.rhs(x[None, :n], x[None, n:], we, wi, fp.wIE, gg, small_sc)
            return np.concatenate([a[0], b[0]])

        jac = np.empty((2 * n, 2 * n))
        for k in range(2 * n):
            e = np.zeros(2 * n)
            e[k] = 1e-7
            jac[:, k] = (f(x0 + e) - f(x0 - e)) / 2e-7
        expect = np.linalg.eigvals(jac).real.max()
        got = fic.jacobian_max_real_eig(we, wi, gg, small_sc)[0]
        assert got == pytest.approx(expect, rel=1e-4, abs=1e-3)


def test_balloon_rest_is_stationary_and_bold_zero():
    z, f, v, q = balloon.initial_state(3)
    dz, df, dv, dq = balloon.rhs(np.zeros(3), z, f, v, q)
    for d in (dz, df, dv, dq):
        assert np.allclose(d, 0.0)
    assert np.allclose(balloon.bold_signal(v, q), 0.0)
    c = balloon.DEFAULT_BALLOON
    assert c.k1 == pytest.approx(4.3 * 28.265 * 3 * 0.0331 * 0.34)
    assert c.k2 == pytest.approx(0.47 * 110 * 0.0331 * 0.34)


def test_param_spec_bounds_are_delssome_box():
    p = fic.PARAM_BY_NAME
    assert (p["wEE"].lower, p["wEE"].upper) == (1.0, 10.0)
    assert (p["wEI"].lower, p["wEI"].upper) == (0.0, 5.0)
    assert (p["G"].lower, p["G"].upper) == (0.0, 3.0)
    assert (p["sigma"].lower, p["sigma"].upper) == (0.0005, 0.01)
    with pytest.raises(ValueError, match=r"wEE.*shape \(2,\)"):
        p["wEE"].check(np.array([0.5, 3.0]))


def test_euler_instability_at_search_dt_is_predicted(small_sc):
    """A stable fixed point that explicit Euler at dt = 0.006 s cannot hold (stiff inhibition)."""
    from nmmfit.sim import SimConfig, simulate

    n = small_sc.shape[0]
    we, wi, g = np.full((1, n), 4.8), np.full((1, n), 4.9), np.array([2.3])
    assert fic.jacobian_max_real_eig(we, wi, g, small_sc)[0] < 0
    assert fic.euler_spectral_radius(we, wi, g, small_sc, 0.006)[0] > 1
    assert fic.euler_spectral_radius(we, wi, g, small_sc, 0.0005)[0] < 1
    cfg = SimConfig(duration_s=7.2, burn_in_s=0.0, warmup_steps=0, rate_gate=None)
    coarse = simulate(small_sc, we, wi, g, 0.0, config=cfg)
    fine = simulate(small_sc, we, wi, g, 0.0, config=SimConfig(
        dt=0.0005, duration_s=7.2, burn_in_s=0.0, warmup_steps=0, rate_gate=None))
    assert np.abs(coarse.mean_rE - 3).max() > 0.1
    assert np.abs(fine.mean_rE - 3).max() < 1e-6
