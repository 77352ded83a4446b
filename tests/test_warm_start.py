"""The linearised pFIC + Balloon model (closed-form BOLD FC) and the CMA-ES warm start built
on it. A 6-region synthetic target; the simulation comparisons use long, low-noise runs."""

from dataclasses import replace

import numpy as np
import pytest
from synthetic import tiny_target

from nmmfit.fit import Parametrisation, fit
from nmmfit.fit.cmaes import CMAESConfig, CMAESSampler
from nmmfit.fit.warm_start import linear_fc_start
from nmmfit.models import balloon, linearised
from nmmfit.sim import SimConfig, simulate
from nmmfit.stats.fc import fc_matrix, upper_tri

N = 6
TINY = dict(popsize=6, mu=3, n_epochs=2, duration_s=43.2, test_duration_s=43.2,
            burn_in_s=0.0, warmup_steps=200, n_dup_train=1, n_dup_val=1, n_dup_test=2,
            test_group=1, test_dt=0.003)


@pytest.fixture(scope="module")
def target():
    return tiny_target(n=N, seed=0, name="train")


def test_balloon_steady_state_is_a_rest_point():
    s = 0.2
    x = linearised.balloon_steady_state(s)
    z, f, v, q = x
    c = balloon.DEFAULT_BALLOON
    assert z == pytest.approx(0.0, abs=1e-12) and f > 1 and v > 1 and q > 0
    # the transfer function at zero frequency is the steady-state BOLD gain: d BOLD / d S_E
    h0 = linearised.balloon_transfer(np.array([0.0]), s, c)[0]
    eps = 1e-5

    def bold(se):
        _, _, vv, qq = linearised.balloon_steady_state(se)
        return balloon.bold_signal(vv, qq, c)

    slope = (bold(s + eps) - bold(s - eps)) / (2 * eps)
    assert abs(slope) > 0 and abs(h0) == pytest.approx(abs(slope), rel=1e-3)
    # and the rest point is one: the Balloon right-hand side vanishes there
    np.testing.assert_allclose(balloon.rhs(s, z, f, v, q, c), 0.0, atol=1e-10)


def test_linearised_fc_matches_a_long_low_noise_simulation(target):
    wee = np.full(N, 3.0)
    wei = np.full(N, 2.5)
    G, sigma = 1.5, 0.001
    lin = linearised.bold_fc(wee, wei, G, sigma, target.sc)[0]
    assert lin.shape == (N, N) and np.allclose(np.diag(lin), 1.0)
    cfg = SimConfig(dt=0.006, duration_s=720.0, tr=0.72, burn_in_s=72.0)
    res = simulate(target.sc, wee, wei, G, sigma,
                   config=cfg, n_dup=1, seed=4)
    assert bool(res.valid[0, 0])
    sim = fc_matrix(np.asarray(res.bold[0, 0], dtype=float))
    r = np.corrcoef(upper_tri(sim), upper_tri(lin))[0, 1]
    assert r > 0.8, r
    # a random FC is not matched (the comparison can fail)
    rnd = np.corrcoef(np.random.default_rng(0).standard_normal((N, 200)))
    assert np.corrcoef(upper_tri(rnd), upper_tri(lin))[0, 1] < r


def test_linearised_fc_is_nan_past_the_stability_boundary(target):
    wee = np.full((2, N), 3.0)
    wei = np.full((2, N), 2.5)
    fc = linearised.bold_fc(wee, wei, np.array([0.5, 500.0]), np.full((2, N), 0.005),
                            target.sc)
    assert np.isfinite(fc[0]).all() and np.isnan(fc[1]).all()


def test_linear_fc_start_is_in_bounds_deterministic_and_better_than_the_paper_start(target):
    param = Parametrisation.from_target(target, ("m1", "m2"))
    ws = linear_fc_start(target, param, seed=0, popsize=12, n_iter=40)
    assert ws.x.shape == (param.dim,) and param.in_bounds(ws.x)[0]
    again = linear_fc_start(target, param, seed=0, popsize=12, n_iter=40)
    np.testing.assert_array_equal(ws.x, again.x)
    emp = upper_tri(target.fc)

    def lin_cost(x):
        reg = param.expand(np.asarray(x)[None])
        fc = linearised.bold_fc(reg.wEE, reg.wEI, reg.G, reg.sigma, target.sc)[0]
        u = upper_tri(fc)
        return 1 - np.corrcoef(u, emp)[0, 1] + abs(u.mean() - emp.mean())

    assert lin_cost(ws.x) == pytest.approx(ws.fc_corr + ws.fc_l1, abs=1e-9)
    # here every one of DELSSOME's random starts has an unstable fixed point; the warm start
    # also beats the homogeneous model wEE 3, wEI 2.5 at every G where it is stable (G 3 is not)
    paper = [lin_cost(param.initial_vector(np.random.default_rng(k))) for k in range(5)]
    assert not np.isfinite(paper).any() and np.isfinite(lin_cost(ws.x))
    homo = [lin_cost([3.0, 0, 0, 2.5, 0, 0, g, 0.005, 0, 0]) for g in (0.5, 1.0, 2.0, 3.0)]
    assert np.isfinite(homo[:3]).all() and np.isnan(homo[3])
    assert lin_cost(ws.x) < min(homo[:3])


def test_the_sampler_starts_at_x0_and_refuses_an_outside_one(target):
    param = Parametrisation.from_target(target, ("m1", "m2"))
    x0 = param.initial_vector(np.random.default_rng(5))
    s = CMAESSampler(param, CMAESConfig(popsize=6, mu=3, x0=tuple(x0)), seed=1)
    np.testing.assert_allclose(s.x0, x0)
    assert not np.allclose(CMAESSampler(param, CMAESConfig(popsize=6, mu=3), seed=1).x0, x0)
    bad = x0.copy()
    bad[param.names.index("G")] = param.bounds["G"][1] + 1.0
    with pytest.raises(ValueError, match="outside the box"):
        CMAESSampler(param, CMAESConfig(popsize=6, mu=3, x0=tuple(bad)), seed=1)


def test_fit_with_the_linear_fc_start(target, tmp_path):
    kw = dict(preset="quick", maps=("m1", "m2"), store=tmp_path / "f.db", seed=2, **TINY)
    res = fit(target, **kw, init="linear_fc")
    cfg = res.config
    assert cfg["init"]["init"] == "linear_fc"
    x0 = np.asarray(cfg["preset"]["search"]["x0"])
    np.testing.assert_allclose(x0, cfg["init"]["x"])
    param = res.parametrisation
    ws = linear_fc_start(target, param, seed=2)
    np.testing.assert_allclose(x0, ws.x)
    cold = fit(target, **kw)
    assert "init" not in cold.config and "x0" not in cold.config["preset"]["search"]
    assert cold.run_id != res.run_id
    # the same call resumes the same run
    assert fit(target, **kw, init="linear_fc").run_id == res.run_id
    with pytest.raises(ValueError, match="init must be one of"):
        fit(target, **kw, init="zero")
    with pytest.raises(ValueError, match="search='random' has none"):
        fit(target, **{**kw, "store": tmp_path / "g.db"}, init="linear_fc", search="random")


def test_the_preset_sets_the_default_start(target, tmp_path):
    from nmmfit.fit import PRESETS, Preset, get_preset

    assert PRESETS["paper"].init == "linear_fc" and PRESETS["quick"].init == "paper"
    assert "init" not in PRESETS["paper"].as_dict()  # recorded as config["init"] instead
    with pytest.raises(ValueError, match="init must be one of"):
        Preset(name="x", init="zero")
    warm_preset = get_preset("quick", init="linear_fc")
    kw = dict(maps=("m1", "m2"), store=tmp_path / "p.db", seed=2, **TINY)
    by_preset = fit(target, preset=warm_preset, **kw)
    explicit = fit(target, preset="quick", init="linear_fc", **kw)
    assert by_preset.config["init"]["init"] == "linear_fc"
    assert by_preset.run_id == explicit.run_id  # the same run, whichever way it was asked
    assert fit(target, preset=warm_preset, init="paper", **kw).run_id != explicit.run_id
    # a random search has no start: the preset's linear_fc does not apply to it
    rnd = fit(target, preset=warm_preset, search="random", **kw)
    assert "init" not in rnd.config


def test_replace_keeps_x0_in_the_preset():
    c = replace(CMAESConfig(), x0=(0.1, 0.2))
    assert c.as_dict()["x0"] == [0.1, 0.2] and "x0" not in CMAESConfig().as_dict()


def test_linear_fc_start_can_require_euler_stability(target):
    from nmmfit.models import fic

    param = Parametrisation.from_target(target, ("m1", "m2"))
    free = linear_fc_start(target, param, seed=0, popsize=12, n_iter=40)
    dt = 0.008  # a step at which the unconstrained start's Euler map is unstable
    reg = param.expand(free.x[None])
    assert fic.euler_spectral_radius(reg.wEE, reg.wEI, reg.G, target.sc, dt)[0] > 1
    ws = linear_fc_start(target, param, seed=0, popsize=12, n_iter=40, euler_dt=dt)
    reg = param.expand(ws.x[None])
    assert fic.euler_spectral_radius(reg.wEE, reg.wEI, reg.G, target.sc, dt)[0] < 1
    assert fic.jacobian_max_real_eig(reg.wEE, reg.wEI, reg.G, target.sc)[0] < 0
    assert param.in_bounds(ws.x)[0] and ws.fc_corr + ws.fc_l1 >= free.fc_corr + free.fc_l1 - 1e-9
