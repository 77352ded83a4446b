"""Jansen-Rit inference: Bi-LSTM estimator, benchmark metrics, NPE diagnostics (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from nmmfit.infer.benchmark import correlations, paper_table, split_indices
from nmmfit.infer.bilstm import BiLSTMConfig, BiLSTMEstimator, snr_db_loss
from nmmfit.infer.npe import coverage, rank_uniformity, sbc_ranks
from nmmfit.models import jansen_rit as jr

N_CH, N_T = 4, 24
FAST = BiLSTMConfig(hidden=8, max_epochs=2, patience=2, threads=1)


def _toy(n=160, seed=0, names=("A_e", "b_i")):
    """ERPs whose channel-0 amplitude encodes the first parameter and whose frequency encodes
    the second (scaled to [0, 1]); small noise. A trivially learnable mapping."""
    rng = np.random.default_rng(seed)
    lo = np.array([jr.PARAM_BY_NAME[p].lower for p in names])
    hi = np.array([jr.PARAM_BY_NAME[p].upper for p in names])
    u = rng.random((n, len(names)))
    t = np.linspace(0, 1, N_T)
    x = np.zeros((n, N_CH, N_T), dtype=np.float32)
    x[:, 0] = u[:, :1] * np.ones(N_T)
    x[:, 1] = np.sin(2 * np.pi * (1 + 3 * u[:, 1:2]) * t)
    x += 0.01 * rng.standard_normal(x.shape)
    return (x * 1e-6).astype(np.float32), lo + u * (hi - lo)


def test_learns_trivial_mapping():
    x, th = _toy(400)
    cfg = BiLSTMConfig(hidden=16, max_epochs=25, patience=25, threads=1, loss="mse", lr=1e-2)
    est = BiLSTMEstimator(cfg, params=("A_e", "b_i")).fit(x[:300], th[:300])
    pred = est.predict(x[300:])
    r = correlations(th[300:], pred, ["A_e", "b_i"], n_boot=50)
    assert r["A_e"]["pearson"] > 0.95, r
    assert r["b_i"]["pearson"] > 0.8, r
    assert est.meta_.history["epochs_run"] >= 1
    # an untrained-but-fitted-on-noise model would not: shuffled targets give r ~ 0
    est2 = BiLSTMEstimator(cfg, params=("A_e", "b_i")).fit(x[:300], th[np.roll(np.arange(300),
                                                                                 7)])
    assert abs(correlations(th[300:], est2.predict(x[300:]), ["A_e", "b_i"],
                            n_boot=20)["A_e"]["pearson"]) < 0.5


def test_save_load_roundtrip_and_channel_mismatch(tmp_path):
    x, th = _toy(60)
    est = BiLSTMEstimator(FAST, params=("A_e", "b_i")).fit(
        x, th, channel_names=[f"E{i}" for i in range(N_CH)])
    p1 = est.predict(x[:7])
    path = est.save(tmp_path / "m.pt")
    est2 = BiLSTMEstimator.load(path, n_channels=N_CH)
    np.testing.assert_array_equal(p1, est2.predict(x[:7]))
    assert est2.meta_.param_names == ["A_e", "b_i"]
    assert est2.meta_.x_std == est.meta_.x_std
    with pytest.raises(ValueError, match=r"trained on 4 channels.*60 channels"):
        BiLSTMEstimator.load(path, n_channels=60)
    with pytest.raises(ValueError, match="trained on channels"):
        BiLSTMEstimator.load(path, channel_names=["a", "b", "c", "d"])


def test_bad_shapes_raise_clear_errors():
    x, th = _toy(40)
    est = BiLSTMEstimator(FAST, params=("A_e", "b_i"))
    with pytest.raises(ValueError, match=r"X must be 3-D, got shape \(40, 96\)"):
        est.fit(x.reshape(40, -1), th)
    with pytest.raises(ValueError, match=r"theta has shape \(40, 3\)"):
        est.fit(x, np.zeros((40, 3)))
    with pytest.raises(RuntimeError, match="not fitted"):
        est.predict(x)
    est.fit(x, th)
    with pytest.raises(ValueError, match=r"X has shape \(2, 60, 24\).*4 channels, 24 samples"):
        est.predict(np.zeros((2, 60, N_T), dtype=np.float32))
    with pytest.raises(ValueError, match=r"X has shape \(2, 4, 30\)"):
        est.predict(np.zeros((2, N_CH, 30), dtype=np.float32))
    bad = x[:2].copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        est.predict(bad)
    with pytest.raises(ValueError, match="unknown parameter"):
        BiLSTMEstimator(params=("A_e", "nope"))
    with pytest.raises(ValueError, match="loss"):
        BiLSTMConfig(loss="mae")


def test_frame_reshape_is_lossless_and_scaling_roundtrip():
    x, th = _toy(40)
    est = BiLSTMEstimator(BiLSTMConfig(hidden=4, max_epochs=1, frame=4, threads=1),
                          params=("A_e", "b_i")).fit(x, th)
    seq = est._to_seq(x[:3]).numpy()
    assert seq.shape == (3, N_T // 4, N_CH * 4)
    padded = BiLSTMEstimator(BiLSTMConfig(hidden=4, max_epochs=1, frame=5, threads=1),
                             params=("A_e", "b_i")).fit(x, th)
    assert padded._to_seq(x[:2]).shape == (2, 5, N_CH * 5)  # 24 samples -> 5 steps, padded
    assert padded.predict(x[:2]).shape == (2, 2)
    z = (x[:3] - np.array(est.meta_.x_mean, dtype=np.float32)[None, :, None]) \
        / np.array(est.meta_.x_std, dtype=np.float32)[None, :, None]
    np.testing.assert_allclose(seq[1, 2, N_CH:2 * N_CH], z[1, :, 9], rtol=1e-6)
    np.testing.assert_allclose(est.unscale_targets(est.scale_targets(th)), th)
    u = est.scale_targets(th)
    assert u.min() >= 0 and u.max() <= 1


def test_snr_db_loss_definition():
    import torch

    y = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    yh = y + torch.tensor([[0.1, -0.1], [0.1, -0.1]])
    expect = 10 * np.log10(0.01 / np.mean([1, 4, 9, 16]))
    assert float(snr_db_loss(y, yh)) == pytest.approx(expect, rel=1e-5)


def test_correlations_and_split():
    rng = np.random.default_rng(1)
    t = rng.random((200, 2))
    p = np.stack([t[:, 0] + 0.01 * rng.standard_normal(200), rng.random(200)], axis=1)
    r = correlations(t, p, ["x", "y"], n_boot=300, seed=3)
    assert r["x"]["pearson"] > 0.99 and abs(r["y"]["pearson"]) < 0.2
    assert r["x"]["pearson_ci"][0] <= r["x"]["pearson"] <= r["x"]["pearson_ci"][1]
    assert r["y"]["spearman_ci"][0] < 0 < r["y"]["spearman_ci"][1]
    tr, va, te = split_indices(1000)
    assert (len(tr), len(va), len(te)) == (800, 100, 100)
    assert len(np.unique(np.concatenate([tr, va, te]))) == 1000
    rows = paper_table({"0.0": {"A_e": 0.99}, "0.95": {"A_e": 0.8}})
    assert rows[0]["param"] == "A_e" and rows[0]["ours_alpha_max"] == 0.8


def test_coverage_and_sbc_on_known_gaussian_posterior():
    """Exact posterior of a conjugate Gaussian model: coverage ~ nominal, ranks uniform;
    an over-confident posterior (sd / 3) under-covers and fails the uniformity test."""
    rng = np.random.default_rng(0)
    n, s, sig = 4000, 400, 0.5
    theta = rng.standard_normal((n, 2))                  # prior N(0, 1)
    x = theta + sig * rng.standard_normal((n, 2))        # likelihood N(theta, sig^2)
    post_var = 1 / (1 + 1 / sig**2)
    mean = post_var * x / sig**2
    draws = mean + np.sqrt(post_var) * rng.standard_normal((s, n, 2))
    cov = coverage(draws, theta)
    np.testing.assert_allclose(cov[0.9], 0.9, atol=0.02)
    np.testing.assert_allclose(cov[0.5], 0.5, atol=0.03)
    ranks = sbc_ranks(draws, theta)
    assert ranks.min() >= 0 and ranks.max() <= s
    assert (rank_uniformity(ranks, s)["ks_p"] > 0.001).all()
    narrow = mean + np.sqrt(post_var) / 3 * rng.standard_normal((s, n, 2))
    assert (coverage(narrow, theta)[0.9] < 0.6).all()
    assert (rank_uniformity(sbc_ranks(narrow, theta), s)["ks_p"] < 1e-6).all()
    with pytest.raises(ValueError, match=r"samples has shape \(400, 4000, 2\).*\(4000, 3\)"):
        coverage(draws, np.zeros((n, 3)))


def test_training_prior_is_the_scaled_truncated_normal_of_sample_params():
    """The torch prior handed to sbi is the distribution sample_params draws from, in the
    scaled space: same draws (KS), scipy's truncnorm density, normalised, accepted by sbi's
    prior checks as it is (no wrapper, no warning), support the closed box [0, 1]^P."""
    import warnings

    import torch
    from sbi.utils.sbiutils import within_support
    from sbi.utils.user_input_checks import process_prior
    from scipy.integrate import trapezoid
    from scipy.stats import kstest, truncnorm

    from nmmfit.infer.jr_dataset import PRIOR_LOC, PRIOR_SCALE, TruncatedNormalPrior, sample_params

    names = ("A_e", "b_i", "a3")
    prior = TruncatedNormalPrior(len(names))
    assert prior.batch_shape == () and prior.event_shape == (3,)
    ref = truncnorm(-PRIOR_LOC / PRIOR_SCALE, (1 - PRIOR_LOC) / PRIOR_SCALE, loc=PRIOR_LOC,
                    scale=PRIOR_SCALE)
    torch.manual_seed(0)
    u = prior.sample((4000,))
    assert u.dtype == torch.float32 and u.shape == (4000, 3)
    lo, hi = jr.bounds(names)
    cols = [jr.PARAM_NAMES.index(n) for n in names]
    v = (sample_params(4000, np.random.default_rng(1), names)[:, cols] - lo) / (hi - lo)
    for j in range(3):
        assert kstest(u[:, j].numpy(), ref.cdf).pvalue > 0.01
        assert kstest(u[:, j].numpy(), v[:, j]).pvalue > 0.01      # two-sample: same law
        assert kstest(u[:, j].numpy(), "uniform").pvalue < 1e-6     # not the old box
    np.testing.assert_allclose(prior.mean.numpy(), ref.mean(), rtol=1e-6)
    np.testing.assert_allclose(prior.variance.numpy(), ref.var(), rtol=1e-6)
    pts = torch.tensor([[0.0, 0.5, 1.0], [0.1, 0.9, 0.37]], dtype=torch.float64)
    np.testing.assert_allclose(prior.log_prob(pts).numpy(), ref.logpdf(pts.numpy()).sum(1),
                               rtol=1e-12)
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64)[:, None]
    one = TruncatedNormalPrior(1)
    assert trapezoid(one.log_prob(grid).exp().numpy(), grid[:, 0].numpy()) == \
        pytest.approx(1.0, abs=1e-7)
    out = torch.tensor([[-1e-6, 0.5, 0.5], [0.5, 0.5, 1.0 + 1e-6]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same, numel, returns_numpy = process_prior(prior)
        assert prior.log_prob(out).isneginf().all()   # sbi turned sample validation off
    assert same is prior and numel == 3 and not returns_numpy
    assert within_support(prior, torch.cat([pts.float(), out])).tolist() == \
        [True, True, False, False]


class _DrawnPosterior:
    """Stand-in for an sbi posterior for ``run_sbc``: serves precomputed draws [S, N, P] for
    observations xs [N, 1] that hold the ERP's index."""

    def __init__(self, draws):
        import torch

        self.draws = torch.as_tensor(draws)

    def sample_batched(self, sample_shape, x, **kwargs):
        assert tuple(sample_shape) == (self.draws.shape[0],)
        return self.draws[:, x[:, 0].long()]


def test_sbc_ranks_and_ks_agree_with_sbi_run_sbc_and_check_sbc():
    """On the exact posterior of a conjugate Gaussian model, sbi's run_sbc gives the very
    ranks of sbc_ranks (also with many ties: both count draws strictly below the truth), and
    check_sbc's KS p-value is the one of a KS statistic within 0.5 / (S + 1) of ours (it
    tests rank / S, we test (rank + 0.5) / (S + 1))."""
    import torch
    from sbi.diagnostics import check_sbc, run_sbc
    from scipy.stats import kstwo

    rng = np.random.default_rng(3)
    n, s, sig = 300, 200, 0.5
    theta = rng.standard_normal((n, 2)).astype(np.float32)
    x = theta + sig * rng.standard_normal((n, 2))
    post_var = 1 / (1 + 1 / sig**2)
    draws = (post_var * x / sig**2 + np.sqrt(post_var) * rng.standard_normal((s, n, 2)))
    draws = draws.astype(np.float32)
    idx = torch.arange(n, dtype=torch.float32)[:, None]
    for th, dr in ((theta, draws), (np.round(theta, 1), np.round(draws, 1))):
        ranks_sbi, dap = run_sbc(torch.from_numpy(th), idx, _DrawnPosterior(dr),
                                 num_posterior_samples=s, show_progress_bar=False)
        np.testing.assert_array_equal(ranks_sbi.numpy(), sbc_ranks(dr, th))
        np.testing.assert_array_equal(dap.numpy(), dr[0])
    assert (np.round(draws, 1) == np.round(theta, 1)[None]).sum() > 1000  # ties were tested
    ranks = sbc_ranks(draws, theta)
    torch.manual_seed(0)
    chk = check_sbc(torch.from_numpy(ranks).float(), torch.from_numpy(theta),
                    torch.from_numpy(draws[0]), num_posterior_samples=s)
    ours = rank_uniformity(ranks, s)
    d = 0.5 / (s + 1)
    p_sbi = chk["ks_pvals"].numpy()
    assert (p_sbi >= kstwo.sf(ours["ks_stat"] + d, n) - 1e-6).all()
    assert (p_sbi <= kstwo.sf(ours["ks_stat"] - d, n) + 1e-6).all()
    assert (p_sbi > 0.01).all() and (ours["ks_p"] > 0.01).all()
    assert (chk["c2st_dap"].numpy() < 0.6).all()  # data-averaged posterior ~ prior


@pytest.mark.filterwarnings("ignore:Maximum number of epochs")
@pytest.mark.filterwarnings("ignore:You are computing SBC checks with less than 100")
def test_npe_fit_sample_evaluate_and_errors(tmp_path):
    from nmmfit.infer.jr_dataset import TruncatedNormalPrior
    from nmmfit.infer.npe import NPEConfig, NPEstimator

    x, th = _toy(200, names=("A_e", "b_i"))
    cfg = NPEConfig(max_epochs=3, stop_after_epochs=2, n_samples=40, batch_size=50, threads=1,
                    transforms=2, hidden=16, n_features=8)
    npe = NPEstimator(cfg, params=("A_e", "b_i")).fit(x[:160], th[:160])
    inf, prior = npe._build(N_CH, N_T)  # the prior sbi gets is the training draws' law
    assert isinstance(prior, TruncatedNormalPrior) and prior.event_shape == (2,)
    assert inf._prior is prior
    assert isinstance(npe.posterior_.prior, TruncatedNormalPrior)
    draws = npe.sample(x[160:170], 40)
    assert draws.shape == (40, 10, 2)
    lo, hi = npe._bounds()
    assert (draws >= lo - 1e-9).all() and (draws <= hi + 1e-9).all()
    leak = npe.leakage_  # fixed-budget rejection: every ERP accounted for
    assert leak["n_erps"] == 10 and leak["proposal_draws"] == 4 * 40
    assert 0 <= leak["n_short"] + leak["n_empty"] <= 10 and 0 < leak["mean_inside_fraction"] <= 1
    ev = npe.evaluate(x[160:], th[160:])
    assert set(ev["A_e"]) >= {"pearson", "coverage50", "coverage90", "sbc_ks_p",
                              "sbc_ks_p_sbi", "sbc_c2st_ranks", "sbc_c2st_dap"}
    assert 0 <= ev["A_e"]["sbc_ks_p_sbi"] <= 1 and 0 <= ev["b_i"]["sbc_c2st_dap"] <= 1
    assert "sbc_c2st_dap" not in npe.evaluate(x[160:], th[160:], sbi_checks=False)["A_e"]
    assert 0 <= ev["b_i"]["coverage90"] <= 1
    with pytest.raises(ValueError, match=r"X has shape \(3, 5, 24\)"):
        npe.sample(np.zeros((3, 5, N_T), dtype=np.float32))
    path = npe.save(tmp_path / "npe.pt")
    with pytest.raises(ValueError, match="trained on 4 channels"):
        NPEstimator.load(path, n_channels=60)
    again = NPEstimator.load(path, n_channels=N_CH)
    assert isinstance(again.posterior_.prior, TruncatedNormalPrior)
    np.testing.assert_array_equal(again.sample(x[160:163], 20), npe.sample(x[160:163], 20))
    with pytest.raises(ValueError, match="embedding"):
        NPEConfig(embedding="gru")
    with pytest.raises(ValueError, match="proposal_factor"):
        NPEConfig(proposal_factor=0)


def test_cli_infer_train_then_predict(tmp_path, capsys):
    import json

    from nmmfit.cli_jr import main
    from nmmfit.eeg.erp import ERPConfig
    from nmmfit.infer.jr_dataset import generate_dataset, save_dataset

    ds = generate_dataset(n=30, alphas=(0.0, 0.42), seed=3,
                          config=ERPConfig(stimulus=jr.Stimulus(n_pulses=2)))
    nc = save_dataset(ds, tmp_path / "d.nc")
    model = tmp_path / "m.pt"
    assert main(["jr", "infer", "--data", str(nc), "--alpha", "0.42", "--model", str(model),
                 "--train", "--frame", "38", "--max-epochs", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_train"] == 24 and set(summary["test_pearson"]) == set(jr.INFERRED)
    out = tmp_path / "pred.json"
    assert main(["jr", "infer", "--data", str(nc), "--model", str(model), "--out",
                 str(out)]) == 0
    pred = json.loads(out.read_text())
    assert np.array(pred["predictions"]).shape == (30, 8)
    assert main(["jr", "infer", "--data", str(nc), "--alpha", "0.5", "--model",
                 str(model)]) == 2
    assert "alpha 0.5 is not in" in capsys.readouterr().err


def test_predict_matches_channels_by_name_and_refuses_other_units():
    x, th = _toy(60)
    names = [f"E{i}" for i in range(N_CH)]
    est = BiLSTMEstimator(FAST, params=("A_e", "b_i")).fit(x, th, channel_names=names)
    ref = est.predict(x[:5])
    perm = [2, 0, 3, 1]
    np.testing.assert_array_equal(
        est.predict(x[:5, perm], channel_names=[names[i] for i in perm]), ref)
    # without names the permuted data give other (silently wrong) predictions
    assert not np.allclose(est.predict(x[:5, perm]), ref)
    with pytest.raises(ValueError, match=r"missing \['E3'\].*not in the model \['Cz'\]"):
        est.predict(x[:5], channel_names=["E0", "E1", "E2", "Cz"])
    with pytest.raises(ValueError, match="repeat"):
        est.predict(x[:5], channel_names=["E0", "E0", "E1", "E2"])
    with pytest.raises(ValueError, match=r"amplitude is 9\.\d+e\+05 times.*in volts"):
        est.predict(x[:5] * 1e6)  # microvolts
    with pytest.raises(ValueError, match=r"amplitude is 0\.0009\d+ times"):
        est.predict(x[:5] * 1e-3)
    assert 0.5 < est.amplitude_ratio(x[:5]) < 2.0


def test_cli_benchmark_runs_the_library_benchmark(tmp_path, capsys):
    """``nmmfit jr benchmark`` needs no source checkout: a tiny real run writes the JSON and
    figures (figures beside --out by default)."""
    import json

    from nmmfit.cli import main

    out = tmp_path / "res" / "jr.json"
    assert main(["jr", "benchmark", "--stages", "bilstm", "--n", "20", "--frame", "38",
                 "--cache", str(tmp_path / "cache"), "--out", str(out), "--extra",
                 "--alphas", "0.0", "--max-epochs", "1", "--n-boot", "10"]) == 0
    res = json.loads(out.read_text())
    assert set(res["bilstm_pearson"]) == {"0.0"}
    assert set(res["bilstm_pearson"]["0.0"]) == set(jr.INFERRED)
    assert res["config"]["n_per_level"] == 20 and res["config"]["bilstm"]["frame"] == 38
    assert res["commands"][-1]["argv"][:2] == ["--stages", "bilstm"]
    assert [r["param"] for r in res["paper_table"]] == list(jr.INFERRED)
    assert {"notes", "versions", "seeds", "n_diverged"} <= set(res)
    assert (out.parent / "figures" / "jr_inf_r_vs_alpha.png").is_file()
    assert "| A_e |" in capsys.readouterr().out


def test_benchmark_script_gives_the_repository_paths(monkeypatch):
    import runpy
    from pathlib import Path

    from nmmfit.infer import benchmark_run

    calls = []
    monkeypatch.setattr(benchmark_run, "run_benchmark",
                        lambda opts, argv=None: calls.append((opts, argv)) or {})
    here = Path(__file__).resolve().parents[1] / "benchmarks"
    script = runpy.run_path(str(here / "jr_inference.py"))
    assert script["main"](["--n", "3", "--stages", "oat"]) == 0
    opts, argv = calls[-1]
    assert (opts.n, opts.stages, argv) == (3, "oat", ["--n", "3", "--stages", "oat"])
    assert opts.out == here / "results" / "jr_inference.json"
    assert opts.fig_dir == here / "results" / "figures"
    assert opts.cache == here.parent / "runs" / "jr_inference"
