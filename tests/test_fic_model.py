"""The pFIC model definition: fixed point, FIC solve, transfer function, stability."""

from dataclasses import replace

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


def test_constants_reproduce_the_reference_codes_steady_state():
    """Zhang's code hard-codes a steady state computed with the published constants
    (Zhang et al. 2024's released code): S_E = 0.1641205151 and I_E = 0.3772259651 (r_E about
    3.063 Hz), I_I = 0.296385800197336 and S_I = 0.1433408985 (those of wEI = 7). Our
    equations, at that rate, must give the same numbers; a 0.1 % error in any of I0, W_I,
    J_NMDA, a/b/d_E, a/b/d_I, tau_E, tau_I or gamma breaks this (W_E enters wIE alone)."""
    s_e_ref, i_e_ref = 0.1641205151, 0.3772259651
    i_i_ref, s_i_ref = 0.296385800197336, 0.1433408985
    c = fic.DEFAULT_CONSTANTS
    # the excitatory pair is a fixed point: kinetics and transfer function agree on the rate
    rate = s_e_ref / (c.tau_E * c.gamma * (1.0 - s_e_ref))
    assert fic.transfer(i_e_ref, c.a_E, c.b_E, c.d_E) == pytest.approx(rate, rel=1e-8)
    assert rate == pytest.approx(3.0631, abs=1e-4)
    # and the FIC solve at that rate reproduces all four values
    at_rate = replace(c, r_E_target=rate)
    s_e, i_e = fic.excitatory_fixed_point(at_rate)
    assert s_e == pytest.approx(s_e_ref, abs=1e-9)
    assert i_e == pytest.approx(i_e_ref, abs=1e-9)
    fp = fic.solve_wie(np.full((1, 2), 3.0), np.full((1, 2), 7.0), np.array([1.0]),
                       np.array([[0.0, 0.02], [0.02, 0.0]]), at_rate)
    np.testing.assert_allclose(fp.I_I, i_i_ref, atol=1e-6)
    np.testing.assert_allclose(fp.S_I, s_i_ref, atol=1e-6)


def test_analytic_wie_holds_3hz_in_simulation(small_sc):
    """Noise-free simulations at the FIC solution stay at r_E = 3 Hz in every region, for
    heterogeneous parameter sets across the search box whose fixed point is stable (a fine
    step, so that Euler holds it: see the last test); the simulator agrees with
    :mod:`nmmfit.models.fic`."""
    from nmmfit.sim import SimConfig, simulate

    rng = np.random.default_rng(3)
    n = small_sc.shape[0]
    base = np.array([(1.5, 0.5, 0.5), (2.5, 1.5, 2.0), (3.5, 3.0, 0.5), (5.0, 4.5, 2.0),
                     (8.0, 4.5, 0.5)])  # (wEE, wEI, G), regional values within 5 % of these
    jitter = 1 + 0.05 * rng.uniform(-1, 1, (2, len(base), n))
    wee, wei, g = base[:, :1] * jitter[0], base[:, 1:2] * jitter[1], base[:, 2]
    assert (fic.jacobian_max_real_eig(wee, wei, g, small_sc) < 0).all()
    cfg = SimConfig(dt=0.0005, duration_s=7.2, burn_in_s=0.0, warmup_steps=0, rate_gate=None)
    res = simulate(small_sc, wee, wei, g, 0.0, config=cfg)
    np.testing.assert_allclose(res.mean_rE, 3.0, atol=1e-6)


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


def test_balloon_impulse_response_has_the_haemodynamic_shape():
    """A 0.1 s burst of S_E from rest gives the haemodynamic response: a positive BOLD peak a
    few seconds later (3.35 s with these constants), a post-stimulus undershoot of about a
    seventh of the peak near 9 s, and a return to baseline. Wrong rates (kappa, gamma_h,
    tau, alpha) or a sign error in the k's change this shape."""
    dt, n = 1e-3, 30_000
    z, f, v, q = balloon.initial_state(1)
    bold = np.empty(n)
    for k in range(n):
        s_e = np.array([0.1 if k * dt < 0.1 else 0.0])
        dz, df, dv, dq = balloon.rhs(s_e, z, f, v, q)
        z, f, v, q = z + dt * dz, f + dt * df, v + dt * dv, q + dt * dq
        bold[k] = balloon.bold_signal(v, q)[0]
    t = np.arange(n) * dt
    peak, trough = int(bold.argmax()), int(bold.argmin())
    assert bold[peak] > 0 and 2.5 < t[peak] < 4.5
    assert t[peak] < t[trough] and 7.0 < t[trough] < 12.0
    assert 0.05 < -bold[trough] / bold[peak] < 0.3
    assert abs(bold[-1]) < 1e-3 * bold[peak]


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
