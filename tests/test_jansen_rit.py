"""Jansen-Rit model and engines: TVB oracle, engine parity, parameter checks, dataset."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from nmmfit.eeg.erp import ERPConfig, simulate_source, simulate_states
from nmmfit.models import jansen_rit as jr

REF = Path(__file__).parent / "data" / "tvb_jansenrit_reference.npz"
SHORT = ERPConfig(stimulus=jr.Stimulus(n_pulses=3))


def _random_theta(n, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = jr.bounds()
    return lo + rng.random((n, 9)) * (hi - lo)


def tvb_max_rel_dev(engine: str = "numba") -> dict[str, float]:
    """max over states of max_t |ours - tvb| / max_t |tvb|, per (parameter set, integrator)."""
    ref = np.load(REF)
    meta = json.loads(str(ref["meta"]))
    out = {}
    for i, params in enumerate(meta["param_sets_tvb_units"]):
        theta, consts = jr.from_tvb(params)
        y0 = jr.state_from_tvb(meta["y_init_tvb_units"])[None]
        for integ, method in (("HeunDeterministic", "heun"),
                              ("RungeKutta4thOrderDeterministic", "rk4")):
            tvb = jr.state_from_tvb(ref[f"set{i}_{integ}"])
            ours = simulate_states(theta, consts, y0, meta["dt_ms"] / 1e3, tvb.shape[0] - 1,
                                   method=method, engine=engine)[0]
            out[f"set{i}_{method}"] = float(
                (np.abs(ours - tvb).max(axis=0) / np.abs(tvb).max(axis=0)).max())
    return out


def test_tvb_oracle_within_1_percent():
    """All six states match tvb-library's JansenRit over 2 s (recorded by tvb_oracle.py)."""
    dev = tvb_max_rel_dev()
    assert len(dev) == 6
    assert max(dev.values()) < 0.01, dev
    assert max(dev.values()) < 1e-9, dev  # same scheme and dt: agreement to rounding


def test_numba_matches_numpy_reference_rk4():
    """The fast kernel equals a plain RK4 on jr.dfun (the one model definition)."""
    theta = jr.as_params(_random_theta(3, 1))
    c = jr.JRConstants(sigma=0.0)
    dt, n = 1 / 600.0, 300
    i_p = np.where((np.arange(n + 1) > 50) & (np.arange(n + 1) < 80), 60.0, 0.0)
    i_i = 0.56 * i_p
    y = np.zeros((6, 3))
    ref = [y.copy()]
    for k in range(n):
        def f(yy, k=k):
            return jr.dfun(yy, theta, c.mu, i_p[k], i_i[k], c)
        k1 = f(y)
        k2 = f(y + dt / 2 * k1)
        k3 = f(y + dt / 2 * k2)
        k4 = f(y + dt * k3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        ref.append(y.copy())
    ref = np.stack(ref).transpose(2, 0, 1)
    ours = simulate_states(theta, c, np.zeros((3, 6)), dt, n, "rk4", i_p=i_p, i_i=i_i)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_torch_matches_numba_with_noise():
    theta = _random_theta(4, 2)
    cfg = ERPConfig(stimulus=jr.Stimulus(n_pulses=1, t_first_s=0.2), tmin=-0.1, tmax=0.3)
    a, _ = simulate_source(theta, cfg, seed=5, engine="numba")
    b, _ = simulate_source(theta, cfg, seed=5, engine="torch")
    assert cfg.constants.sigma > 0
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * np.abs(a).max())


def _paper_v1_euler(theta, i_p, i_i, dt, n):
    """The equations of the code released with v1 of the preprint (C1 = a1 not scaled by C;
    I_i into the pyramidal PSP; I_p into both interneuron PSPs; no drive)."""
    a_e, a_i, b_e, b_i, a1, a2, a3, a4, c = theta.T
    def s(v):
        return 5.0 * expit(0.56 * (v - 6.0))
    y = np.zeros((6, theta.shape[0]))
    out = [y[1] - y[2]]
    for k in range(n):
        y0, y1, y2, y3, y4, y5 = y
        d = np.stack([y3, y4, y5,
                      a_e * b_e * (i_i[k] + s(y1 - y2)) - 2 * b_e * y3 - b_e**2 * y0,
                      a_e * b_e * (i_p[k] + a2 * c * s(a1 * y0)) - 2 * b_e * y4 - b_e**2 * y1,
                      a_i * b_i * (i_p[k] + a4 * c * s(a3 * c * y0)) - 2 * b_i * y5
                      - b_i**2 * y2])
        y = y + dt * d
        out.append(y[1] - y[2])
    return np.stack(out, axis=1)


@pytest.mark.parametrize("engine", ["numba", "torch"])
def test_paper_v1_mode_reproduces_the_paper_code_equations(engine):
    """ERPConfig.paper_v1(): routing, the a1 defect, no drive and Euler, as the v1 code."""
    theta = jr.as_params(_random_theta(3, 4))
    cfg = ERPConfig.paper_v1(stimulus=replace(jr.PAPER_V1_STIMULUS, n_pulses=1, t_first_s=0.2),
                             constants=replace(jr.PAPER_V1_CONSTANTS, sigma=0.0),
                             tmin=-0.1, tmax=0.3)
    ours, bad = simulate_source(theta, cfg, engine=engine)
    on = cfg.stimulus.pulses(cfg.sfreq, cfg.n_out)
    ref = _paper_v1_euler(theta, 60.0 * on, 33.6 * on, cfg.dt, cfg.n_out - 1)
    assert not bad.any() and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())
    # and it is a different model from the default one
    default, _ = simulate_source(theta, replace(cfg, stimulus=replace(
        cfg.stimulus, amp_i=33.6, amp_y=0.0), a1_unscaled=False), engine=engine)
    assert np.abs(default - ours).max() > 0.1 * np.abs(ref).max()


def test_lanes_independent_of_batch():
    """Counter-based noise: a lane's output depends on its key only, not on the batch."""
    theta = _random_theta(5, 3)
    cfg = ERPConfig(stimulus=jr.Stimulus(n_pulses=1, t_first_s=0.2), tmin=-0.1, tmax=0.3)
    keys = np.arange(5, dtype=np.uint64) * 7919
    full, _ = simulate_source(theta, cfg, keys=keys)
    one, _ = simulate_source(theta[3:4], cfg, keys=keys[3:4])
    np.testing.assert_array_equal(full[3], one[0])


def test_parameter_errors_name_parameter_and_shape():
    th = np.tile(jr.defaults(), (4, 1))
    th[2, 1] = 200.0  # A_i above 110 mV
    with pytest.raises(ValueError, match=r"A_i.*\(4, 9\)"):
        jr.as_params(th)
    with pytest.raises(ValueError, match=r"shape \(4, 7\)"):
        jr.as_params(np.ones((4, 7)))
    with pytest.raises(ValueError, match="unknown parameter"):
        jr.as_params({"A_x": 3.0})
    with pytest.raises(ValueError, match="b_e"):
        simulate_source({"b_e": 10.0}, SHORT)
    assert jr.as_params({"A_e": [3.0, 4.0]}).shape == (2, 9)
    assert jr.as_params(jr.defaults()[:8]).shape == (1, 9)


def test_param_spec_matches_paper_table():
    lo, hi = jr.bounds()
    spec = dict(zip(jr.PARAM_NAMES, zip(lo, hi, strict=True), strict=True))
    assert spec["A_e"] == (2.6, 9.75) and spec["A_i"] == (17.6, 110.0)
    assert spec["b_e"] == (50.0, 150.0) and spec["b_i"] == (25.0, 75.0)
    assert spec["a1"] == (0.5, 1.5) and spec["a2"] == (0.4, 1.2)
    assert spec["a3"] == spec["a4"] == (0.125, 0.375)
    assert len(jr.INFERRED) == 8
    sub_lo, sub_hi = jr.bounds(["C", "A_e"])
    assert sub_lo.tolist() == [65.0, 2.6] and sub_hi.tolist() == [1350.0, 9.75]
    with pytest.raises(KeyError):
        jr.bounds(["nosuch"])


def test_default_drive_gives_evoked_response_not_alpha():
    """At JR typical values: a deflection after each pulse, a quiet pre-stimulus baseline."""
    cfg = ERPConfig(stimulus=jr.Stimulus(n_pulses=2), constants=jr.JRConstants(sigma=0.0))
    x, bad = simulate_source(jr.defaults(), cfg)
    assert not bad.any()
    on = cfg.stimulus.onsets(cfg.sfreq)
    pre = x[0, on[1] - 120:on[1]]
    post = x[0, on[1]:on[1] + 300]
    assert np.ptp(post) > 5.0  # mV
    assert np.ptp(pre) < 1e-3 * np.ptp(post)


def test_stimulus_layout():
    st = jr.Stimulus()
    sf = 600.614990234375
    on = st.onsets(sf)
    assert on.shape == (60,) and on[0] == 601 and st.width_samples(sf) == 30
    i_p, i_i = st.waveforms(sf, on[-1] + 602)
    assert i_p.max() == 60.0 and np.isclose(i_i.max(), 33.6)
    assert int((i_p > 0).sum()) == 60 * 30
    assert ERPConfig().design.n_times == 722


def test_truncated_normal_sampling_in_range():
    from nmmfit.infer.jr_dataset import sample_params

    th = sample_params(4000, np.random.default_rng(0))
    lo, hi = jr.bounds()
    assert (th >= lo).all() and (th <= hi).all()
    np.testing.assert_allclose(th[:, :8].mean(0), jr.midpoints()[:8],
                               rtol=0.02)
    assert np.all(th[:, 8] == 135.0)


def test_small_dataset_roundtrip(tmp_path):
    from nmmfit.infer.jr_dataset import generate_dataset, load_dataset, save_dataset

    ds = generate_dataset(n=6, alphas=(0.0, 0.5), seed=1, config=SHORT)
    assert ds.eeg.shape == (2, 6, 60, 722) and ds.attrs["n_diverged"] == 0
    # the clean ERPs are shared: the alpha = 0 slice is the clean projection of `source`
    from nmmfit.eeg.erp import ERPSimulator

    clean = ERPSimulator(SHORT).clean_eeg(ds.source.values)
    np.testing.assert_allclose(ds.eeg.sel(alpha=0.0).values, clean, rtol=1e-6,
                               atol=1e-6 * np.abs(clean).max())
    assert np.isinf(ds.snr_db.sel(alpha=0.0)).all() and np.isfinite(ds.snr_db.sel(alpha=0.5)).all()
    back = load_dataset(save_dataset(ds, tmp_path / "d.nc"))
    np.testing.assert_array_equal(back.eeg.values, ds.eeg.values)
    assert json.loads(back.attrs["config"])["method"] == "rk4"
    with pytest.raises(ValueError, match="alpha"):
        generate_dataset(n=2, alphas=(-0.1,), config=SHORT)


def test_divergence_is_flagged_not_raised():
    """An exploding lane (Euler, huge step) is flagged; the others are unaffected."""
    from dataclasses import replace

    cfg = replace(SHORT, method="euler", sfreq=60.0)  # b dt = 1.67 (stable), 2.5 (not)
    theta = np.tile(jr.defaults(), (2, 1))
    theta[1, 2] = 150.0
    theta[1, 3] = 75.0
    x, bad = simulate_source(theta, cfg, check=False)
    assert bad.tolist() == [False, True]
    assert np.isfinite(x[0]).all()


def test_sensitivity_metrics_and_ranking():
    from nmmfit.infer.sensitivity import run_sensitivity, sensitivity_metrics, sweep_thetas

    th = sweep_thetas(5, ("A_e", "b_i"), base="typical")
    assert th.shape == (10, 9)
    np.testing.assert_allclose(th[:5, 0], np.linspace(2.6, 9.75, 5))
    assert np.all(th[5:, 0] == 3.25) and np.all(th[:5, 3] == 50.0)
    # squared before the log: a negative deviation gives the same value as a positive one
    erp = np.array([[1.0, -2.0], [3.0, -4.0]])
    m = sensitivity_metrics(erp)
    np.testing.assert_allclose(m["log_rel_sq"][0], m["log_rel_sq"][1])
    np.testing.assert_allclose(m["abs_sq"], [[1.0, 1.0], [1.0, 1.0]])
    ds = run_sensitivity(n_values=3, config=SHORT)
    assert ds.erp.shape == (8, 3, 722) and np.isfinite(ds.log_rel_sq).all()
    ranks = json.loads(ds.attrs["ranking"])
    assert sorted(r["param"] for r in ranks) == sorted(jr.INFERRED)
    assert ranks[0]["nrms"] >= ranks[-1]["nrms"]
    with pytest.raises(ValueError, match="channel"):
        run_sensitivity(n_values=3, config=SHORT, channel="XYZ")


def test_cli_simulate_and_sensitivity(tmp_path, capsys):
    from nmmfit.cli_jr import main

    assert main(["jr", "simulate", "--A_e", "3.25", "5.0", "--alpha", "0.3", "--n-pulses", "3",
                 "--json", "--out", str(tmp_path / "s.npz")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shape"] == [2, 60, 722] and summary["n_diverged"] == 0
    assert np.load(tmp_path / "s.npz")["eeg"].shape == (2, 60, 722)
    assert main(["jr", "simulate", "--paper-v1", "--n-pulses", "3", "--sigma", "0", "--json",
                 "--out", str(tmp_path / "v1.npz")]) == 0
    capsys.readouterr()
    cfg = json.loads(str(np.load(tmp_path / "v1.npz")["config"]))
    assert cfg["a1_unscaled"] and cfg["method"] == "euler" and cfg["constants"]["mu"] == 0.0
    assert cfg["constants"]["sigma"] == 0.0 and cfg["stimulus"]["amp_y"] == 33.6
    assert cfg["stimulus"]["n_pulses"] == 3
    assert main(["jr", "simulate", "--alpha", "-1", "--n-pulses", "3"]) == 2
    assert "alpha" in capsys.readouterr().err
    assert main(["jr", "sensitivity", "--n-values", "3", "--n-pulses", "2", "--json",
                 "--out", str(tmp_path / "sens")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["figures"]) == 9
    assert all(Path(f).exists() for f in summary["figures"])
