"""EEG observation model: lead field, noise covariance and draws, SNR, epochs vs MNE."""

from __future__ import annotations

import numpy as np
import pytest

from nmmfit.eeg.epochs import EpochDesign, epoch_average, mne_evoked_from_raw
from nmmfit.eeg.erp import ERPConfig, ERPSimulator, simulate_source
from nmmfit.eeg.leadfield import CHANNELS_60, LeadField, check_channels, sphere_leadfield
from nmmfit.eeg.noise import (
    EvokedNoiseSampler,
    check_alpha,
    draw_raw_noise,
    make_noise_model,
    reference_matrix,
    snr_db,
    snr_db_expected,
)
from nmmfit.models import jansen_rit as jr

SHORT = ERPConfig(stimulus=jr.Stimulus(n_pulses=3))


@pytest.fixture(scope="module")
def lf():
    return sphere_leadfield()


@pytest.fixture(scope="module")
def sim(lf):
    return ERPSimulator(SHORT, leadfield=lf)


def test_leadfield_geometry(lf):
    assert lf.gain.shape == (60,) and lf.ch_names == CHANNELS_60
    assert lf.gain_bg.shape[0] == 60 and lf.gain_bg.shape[1] > 300
    # left frontal source: largest gain over left fronto-central channels, positive there
    top = lf.ch_names[int(np.argmax(lf.gain))]
    assert top in {"FC3", "F3", "FC1", "FC5", "C3", "F1"}
    r = np.linalg.norm(np.subtract(lf.meta["source_head_m"], lf.meta["sphere_r0_m"]))
    assert 0.04 < r < lf.meta["brain_radius_m"]


def test_channel_mismatch_errors(lf):
    with pytest.raises(ValueError, match=r"channel mismatch.*XYZ.*\(60,\)"):
        check_channels(lf, ["Fp1", "XYZ"])
    with pytest.raises(ValueError, match=r"gain has shape \(59,\).*60"):
        LeadField(gain=np.zeros(59), gain_bg=np.zeros((60, 3)), ch_names=CHANNELS_60)
    with pytest.raises(ValueError, match="channel mismatch"):
        sphere_leadfield(ch_names=("Fp1", "NotAChannel"))


def test_negative_alpha_rejected(lf):
    for bad in (-0.1, np.nan, [0.1, 0.2]):
        with pytest.raises(ValueError, match="alpha"):
            check_alpha(bad)
    model = make_noise_model(lf)
    with pytest.raises(ValueError, match="alpha"):
        draw_raw_noise(model, -1.0, 10, np.random.default_rng(0))


def test_raw_noise_covariance_matches_alpha_sigma(lf):
    model = make_noise_model(lf)
    alpha = 0.42
    x = draw_raw_noise(model, alpha, 40000, np.random.default_rng(1))
    emp = x @ x.T / x.shape[1]
    target = alpha * model.cov
    assert np.linalg.norm(emp - target) / np.linalg.norm(target) < 0.03
    np.testing.assert_allclose(np.diag(emp), np.diag(target), rtol=0.05)
    assert np.isclose(np.sqrt(np.mean(np.diag(model.cov))), 5e-6)
    # the background sources give strong between-channel correlation (not a diagonal Sigma)
    corr = model.cov / np.sqrt(np.outer(np.diag(model.cov), np.diag(model.cov)))
    assert np.mean(np.abs(corr[np.triu_indices(60, 1)])) > 0.2


def test_sampler_time_covariance_is_exact():
    """A A^T equals the epoch-overlap count matrix (1/n^2) #{(k, j): e_k + t1 = e_j + t2}."""
    design = EpochDesign(onsets=np.array([100, 160, 221, 281]), sfreq=100.0, tmin=-0.2,
                         tmax=0.8)
    samp = EvokedNoiseSampler(design)
    off = design.offsets
    t = design.onsets[:, None] + off[None]
    n = design.n_events
    count = (t.ravel()[:, None] == t.ravel()[None, :]).astype(float)
    tau = np.tile(np.arange(off.size), n)
    k = np.zeros((off.size, off.size))
    np.add.at(k, (tau[:, None].repeat(tau.size, 1), tau[None, :].repeat(tau.size, 0)), count)
    np.testing.assert_allclose(samp.time_cov(baseline=False), k / n**2, atol=1e-15)


def test_evoked_noise_draws_match_analytic_covariance(lf):
    design = EpochDesign(onsets=np.array([30, 90, 151]), sfreq=60.0, tmin=-0.2, tmax=1.0)
    samp = EvokedNoiseSampler(design)
    model = make_noise_model(lf)
    alpha = 0.7
    draws = samp.draw(model, alpha, np.arange(6000, dtype=np.uint64) + 11, dtype=np.float64)
    kt = samp.time_cov()
    p = reference_matrix(60)
    sig = alpha * p @ model.cov @ p
    for ti in (0, 20, design.n_times - 1):
        emp = draws[:, :, ti].T @ draws[:, :, ti] / draws.shape[0]
        target = kt[ti, ti] * sig
        assert np.linalg.norm(emp - target) / np.linalg.norm(target) < 0.06
    # same key -> same draw; different key -> different draw
    a = samp.draw(model, alpha, np.array([5, 6], dtype=np.uint64))
    b = samp.draw(model, alpha, np.array([5], dtype=np.uint64))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], a[1])


def test_array_path_equals_mne_evoked(sim, lf):
    """Clean + explicit raw noise, epoched by MNE (Epochs + average reference) vs arrays."""
    th = jr.as_params({"A_e": [3.25, 6.0]})
    x, _ = simulate_source(th, SHORT, seed=3)
    design = sim.design
    scale = SHORT.source_scale * 1e-9
    raw = scale * lf.gain[:, None] * x[1][None, :]  # [60, n_raw] V, unreferenced
    raw = raw + draw_raw_noise(sim.noise_model, 0.3, raw.shape[1], np.random.default_rng(4))
    ev_mne = mne_evoked_from_raw(raw, lf.info(), design)
    ours = reference_matrix(60) @ epoch_average(raw, design)
    assert ev_mne.data.shape == (60, 722) and ev_mne.nave == 3
    np.testing.assert_allclose(ev_mne.times, design.times, atol=1e-12)
    np.testing.assert_allclose(ev_mne.data, ours, rtol=1e-10, atol=1e-10 * np.abs(ours).max())
    # the fast path (project the averaged source) equals MNE on the noise-free raw
    clean = sim.clean(th, seed=3)
    fast = sim.clean_eeg(clean)[1]
    raw0 = scale * lf.gain[:, None] * x[1][None, :]
    ev0 = mne_evoked_from_raw(raw0, lf.info(), design)
    np.testing.assert_allclose(ev0.data, fast, rtol=1e-9, atol=1e-9 * np.abs(fast).max())
    # Evoked on request holds exactly the array
    evk = sim.to_evoked(fast)
    np.testing.assert_allclose(evk.data, fast, rtol=0, atol=1e-20)
    assert evk.ch_names == list(CHANNELS_60)


def test_snr_algorithm2_expected_matches_explicit(sim, lf):
    th = jr.defaults()
    x, _ = simulate_source(th, SHORT, seed=1)
    lo, hi = sim.design.span
    raw = SHORT.source_scale * 1e-9 * lf.gain[:, None] * x[0][None, lo:hi]
    alpha = 0.53
    noise = draw_raw_noise(sim.noise_model, alpha, raw.shape[1], np.random.default_rng(2))
    explicit = snr_db(raw, raw + noise)
    clean = sim.clean(th, seed=1)
    expected = snr_db_expected(clean.raw_power, sim.noise_model, alpha)[0]
    assert abs(explicit - expected) < 0.05
    assert snr_db(raw, raw) == np.inf
    with pytest.raises(ValueError, match="shape"):
        snr_db(raw, raw[:, :-1])


def test_noisy_eeg_shapes_and_monotone_snr(sim):
    clean = sim.clean(jr.as_params({"A_i": [22.0, 40.0, 60.0]}), seed=0)
    snrs = []
    for a in (0.11, 0.42, 0.95):
        eeg, snr, snr_ev = sim.noisy_eeg(clean, a, seed=7)
        assert eeg.shape == (3, 60, 722) and eeg.dtype == np.float32
        snrs.append(snr.mean())
        np.testing.assert_allclose(snr, snr_db_expected(clean.raw_power, sim.noise_model, a))
    assert snrs[0] > snrs[1] > snrs[2]
    np.testing.assert_allclose(snrs[0] - snrs[2], 10 * np.log10(0.95 / 0.11))
    with pytest.raises(ValueError, match="alpha"):
        sim.noisy_eeg(clean, -0.5)


def test_tvb_data_leadfield_optional():
    """Only where the optional tvb-data package is installed (it is not a dependency)."""
    pytest.importorskip("tvb_data")
    lf = __import__("nmmfit.eeg.leadfield", fromlist=["tvb_leadfield"]).tvb_leadfield()
    assert lf.gain.shape == (63,) and lf.gain_bg.shape == (63, 76)
    assert lf.meta["dropped_rows"] == [18, 19] and np.isfinite(lf.gain_bg).all()
