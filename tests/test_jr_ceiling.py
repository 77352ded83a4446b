"""The information ceiling (nmmfit.infer.fisher), the GLS source filter and the estimators
that the JR benchmark sets against it (nmmfit.infer.estimators)."""

import numpy as np
import pytest

from nmmfit.eeg.erp import ERPSimulator
from nmmfit.infer.benchmark import LevelData
from nmmfit.infer.estimators import PCAMLP, PCABoosting, SourceBoostingEnsemble
from nmmfit.infer.fisher import ERPFisher, erp_fisher, prior_variance_scaled
from nmmfit.infer.jr_dataset import sample_params
from nmmfit.models import jansen_rit as jr


@pytest.fixture(scope="module")
def sim():
    return ERPSimulator()


def test_source_filter_reads_the_source_and_its_noise_covariance(sim):
    theta = sample_params(400, np.random.default_rng(0))
    clean = sim.clean(theta, seed=1)
    w = sim.source_filter()
    # unbiased: the filter returns the source ERP from the clean projection
    np.testing.assert_allclose(np.einsum("c,bct->bt", w, sim.clean_eeg(clean)),
                               clean.source, atol=1e-9 * np.abs(clean.source).max())
    noisy = sim.noisy_eeg(clean, 0.5, seed=2, dtype=np.float64)[0]
    resid = np.einsum("c,bct->bt", w, noisy) - clean.source
    cov = sim.source_noise_cov(0.5)
    ratio = np.diag(resid.T @ resid / resid.shape[0]) / np.diag(cov)
    assert abs(ratio.mean() - 1) < 0.03          # 400 draws x 722 samples
    v = np.cumsum(np.random.default_rng(3).standard_normal(cov.shape[0]))
    assert abs(np.var(resid @ v) / (v @ cov @ v) - 1) < 0.25  # a correlated direction
    # GLS beats the plain channel average of the gain direction in noise variance
    g = sim.gain_ref / (sim.config.source_scale * 1e-9 * sim.gain_ref @ sim.gain_ref)
    r = np.eye(len(g)) - 1 / len(g)
    sig = r @ sim.noise_model.cov @ r.T
    assert w @ sig @ w < g @ sig @ g


@pytest.fixture(scope="module")
def fisher(sim):
    theta = sample_params(2, np.random.default_rng(4))
    return erp_fisher(theta, alphas=(0.0, 0.5, 1.0), simulator=sim, n_cov=760, n_jac=30,
                      seed=5)


def test_fisher_is_symmetric_psd_and_falls_with_noise(fisher):
    f = fisher.fisher
    assert f.shape == (3, 2, 8, 8)
    np.testing.assert_allclose(f, np.swapaxes(f, -1, -2), rtol=1e-8, atol=1e-12 * np.abs(f).max())
    assert (np.linalg.eigvalsh(f) > -1e-8 * np.abs(f).max()).all()
    # more sensor noise: the information can only fall (Loewner order) and so can the ceiling
    for k in range(2):
        assert (np.linalg.eigvalsh(f[0, k] - f[1, k]) > -1e-6 * np.abs(f[0, k]).max()).all()
        assert (np.linalg.eigvalsh(f[1, k] - f[2, k]) > -1e-6 * np.abs(f[1, k]).max()).all()
    r = fisher.r_ceiling()
    for p in fisher.names:
        assert 0 <= r["1.0"][p] <= r["0.5"][p] + 1e-12 <= r["0.0"][p] + 2e-12 <= 1 + 2e-12
    # knowing the other parameters can only help
    r1 = fisher.r_ceiling(one_at_a_time=True)
    assert all(r1[a][p] >= r[a][p] - 1e-12 for a in r for p in fisher.names)
    # A_i and b_i shape the ERP strongly: near-perfect ceilings at alpha 0
    assert r["0.0"]["A_i"] > 0.95 and r["0.0"]["b_i"] > 0.95


def test_r_ceiling_is_the_gaussian_posterior_r():
    v = prior_variance_scaled()
    assert v == pytest.approx(0.25**2 * 0.7737, rel=1e-3)  # truncated at +-2 sd
    f = np.zeros((1, 2, 2, 2))
    f[0, 0] = np.diag([1 / v, 0.0])   # posterior var v/2 and v
    f[0, 1] = np.diag([3 / v, 1e12])  # v/4 and ~0
    fi = ERPFisher(names=("x", "y"), alphas=(0.0,), theta=np.zeros((2, 2)), fisher=f,
                   n_cov=1, n_jac=1, step=0.01)
    r = fi.r_ceiling()["0.0"]
    assert r["x"] == pytest.approx(np.sqrt(1 - (0.5 + 0.25) / 2))
    assert r["y"] == pytest.approx(np.sqrt(1 - 0.5), rel=1e-6)


def test_fisher_rejects_bad_settings(sim):
    th = sample_params(1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_cov"):
        erp_fisher(th, simulator=sim, n_cov=100)
    with pytest.raises(ValueError, match="step"):
        erp_fisher(th, simulator=sim, step=0.7)


@pytest.fixture(scope="module")
def small_data():
    tr = LevelData(300, (0.0, 0.5), seed=11)
    te = LevelData(200, (0.0, 0.5), seed=12)
    return tr, te


def _r(a, b):
    return np.array([np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(a.shape[1])])


def test_estimators_learn_and_report_physical_units(small_data):
    tr, te = small_data
    lo = np.array([jr.PARAM_BY_NAME[p].lower for p in jr.INFERRED])
    hi = np.array([jr.PARAM_BY_NAME[p].upper for p in jr.INFERRED])
    x, xt = tr.eeg(0.5), te.eeg(0.5)
    # the MLP baseline learns slowly from 300 simulations (see the benchmark's numbers)
    for est, floor in ((PCABoosting(seed=0), 0.5), (PCAMLP(seed=0), 0.2),
                       (SourceBoostingEnsemble(sizes=(20, 50), seed=0), 0.5)):
        pred = est.fit(x, tr.theta).predict(xt)
        assert pred.shape == te.theta.shape
        mid = (lo + hi) / 2
        assert (np.abs(pred.mean(0) - mid) < 0.3 * (hi - lo)).all()  # physical, not [0, 1]
        r = _r(te.theta, pred)
        assert r[jr.INFERRED.index("A_i")] > floor, type(est).__name__
    # the ensemble reads the source with the simulator's filter
    np.testing.assert_allclose(est.filter_, ERPSimulator().source_filter())


def test_estimator_input_errors(small_data):
    tr, _ = small_data
    x = tr.eeg(0.0)
    with pytest.raises(ValueError, match=r"theta has shape \(300, 7\)"):
        PCABoosting().fit(x, tr.theta[:, :7])
    est = SourceBoostingEnsemble(sizes=(10,)).fit(x, tr.theta)
    with pytest.raises(ValueError, match="fitted on"):
        est.predict(x[:, :30])
    with pytest.raises(ValueError, match="sizes"):
        SourceBoostingEnsemble(sizes=(500,)).fit(x[:100], tr.theta[:100])
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        est.predict(bad)


def test_plot_ceiling_draws_the_present_curves(tmp_path):
    from nmmfit.plots.jr_inference import plot_ceiling

    r = {p: 0.5 for p in jr.INFERRED}
    res = {"crlb_r_ceiling": {"0.0": r, "0.95": r}, "best_pearson": {"0.0": r}}
    out = plot_ceiling(res, tmp_path / "c.png")
    assert out.exists() and out.stat().st_size > 1000
    with pytest.raises(ValueError, match="no estimator results"):
        plot_ceiling({}, tmp_path / "d.png")


def test_eeg_and_infer_export_their_main_names():
    import nmmfit.eeg as eeg
    import nmmfit.infer as infer

    for mod in (eeg, infer):
        assert mod.__all__
        for name in mod.__all__:
            assert getattr(mod, name) is not None, (mod.__name__, name)
    assert infer.SourceBoostingEnsemble is SourceBoostingEnsemble
    with pytest.raises(AttributeError):
        infer.no_such_name  # noqa: B018


def test_summary_npe_reads_new_data_with_one_fold_model(small_data):
    from nmmfit.infer.npe import NPEConfig
    from nmmfit.infer.npe_summary import SummaryNPE

    tr, te = small_data
    cfg = NPEConfig(max_epochs=3, n_samples=50, threads=1, embedding="cnn")
    npe = SummaryNPE(cfg, n_folds=2, sizes=(10,)).fit(tr.eeg(0.0), tr.theta)
    assert npe.config.embedding == "mlp" and npe.estimator_.sizes == (10,)
    assert not hasattr(npe, "folds_")  # only the reading fold model is kept
    x = te.eeg(0.0)[:20]
    s = npe.summaries(x)
    assert s.shape == (20, 1, 8)
    lo, hi = jr.bounds(jr.INFERRED)
    np.testing.assert_allclose(s[:, 0], (npe.estimator_.predict(x) - lo) / (hi - lo))
    draws = npe.sample(x, 50)
    assert draws.shape == (50, 20, 8)
    assert ((draws >= lo) & (draws <= hi)).all()
    assert npe.meta_["summary"]["n_folds"] == 2
    with pytest.raises(ValueError, match="n_folds"):
        SummaryNPE(n_folds=1)
