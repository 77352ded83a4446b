"""Tests of the DELSSOME surrogate networks (features, networks, training, store).

Tiny on purpose: N = 8 regions, 50 FCD bins, d_model 16, one layer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nmmfit.surrogate import (
    CostPredictor,
    MLPCostPredictor,
    Normaliser,
    StructuredCostPredictor,
    TrainConfig,
    ValidityClassifier,
    batch_tensors,
    check_table,
    cost_mask,
    cost_metrics,
    data_hash,
    load_model,
    predict_costs,
    predict_valid_proba,
    prepare_targets,
    roc_auc,
    save_model,
    train_classifier,
    train_cost_predictor,
)

torch.set_num_threads(1)

N, NB, T = 8, 50, 3


def _targets(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sc = rng.random((T, N, N))
    sc = (sc + sc.transpose(0, 2, 1)) / 2
    sc[:, np.arange(N), np.arange(N)] = 0.0
    sc *= 0.02 / sc.max(axis=(1, 2), keepdims=True)
    fc = np.stack([np.corrcoef(rng.standard_normal((N, 40))) for _ in range(T)])
    pdf = rng.dirichlet(np.ones(NB), size=T)
    return {"sc": sc, "fc": fc, "fcd_pdf": pdf}


def _table(m: int, seed: int) -> dict[str, np.ndarray]:
    """Synthetic table; costs are smooth functions of the inputs, ~10% rows invalid."""
    rng = np.random.default_rng(seed)
    tab = {
        "wEE": rng.uniform(1.0, 10.0, (m, N)),
        "wEI": rng.uniform(1.0, 5.0, (m, N)),
        "sigma": rng.uniform(0.0005, 0.01, (m, N)),
        "G": rng.uniform(0.5, 3.0, m),
        "target_idx": rng.integers(0, T, m),
    }
    z = {k: (tab[k] - lo - (hi - lo) / 2) / ((hi - lo) / np.sqrt(12)) for k, lo, hi in
         (("wEE", 1, 10), ("wEI", 1, 5), ("sigma", 0.0005, 0.01), ("G", 0.5, 3))}
    a, b, s = (np.sqrt(N) * z[k].mean(axis=1) for k in ("wEE", "wEI", "sigma"))
    g = z["G"]
    t = np.array([-1.0, 0.0, 1.0])[tab["target_idx"]]

    def sig(x):
        return 1 / (1 + np.exp(-x))

    costs = np.stack([2 * sig(0.9 * a - 0.5 * g + 0.5 * t),
                      2 * sig(-1.0 + 0.7 * b + 0.3 * a),
                      sig(0.8 * s + 0.6 * g - 0.4 * t)], axis=1)
    valid = rng.random(m) > 0.1
    costs[~valid] = 5.0
    costs[~valid & (rng.random(m) < 0.5)] = np.nan
    tab["costs"], tab["valid"] = costs, valid
    return tab


def _tiny(cls=CostPredictor, **kw):
    torch.manual_seed(0)
    base = dict(d_model=16, n_layers=1, n_heads=2, dropout=0.0)
    base.update(kw)
    return cls(N, NB, **base).eval()


@pytest.fixture(scope="module")
def data():
    targets = _targets()
    train, val = _table(1200, 1), _table(300, 2)
    norm = Normaliser.fit(train, targets)
    return train, val, targets, norm


def test_batch_shapes_and_normaliser_roundtrip(data):
    train, _, targets, norm = data
    rows = np.arange(5)
    tok, sc, fcu, pdf = batch_tensors(train, targets, rows, norm)
    assert tok.shape == (5, N, 3) and sc.shape == (5, N, N)
    assert fcu.shape == (5, N * (N - 1) // 2) and pdf.shape == (5, NB)
    assert all(x.dtype == torch.float32 for x in (tok, sc, fcu, pdf))
    # G scales the target's SC row-wise; the FC triangle is row-major k=1
    t0 = train["target_idx"][0]
    np.testing.assert_allclose(sc[0].numpy(), train["G"][0] * targets["sc"][t0] / norm.sc_scale,
                               rtol=1e-5)
    iu = np.triu_indices(N, 1)
    np.testing.assert_allclose(fcu[0].numpy(), targets["fc"][t0][iu], rtol=1e-6)
    back = Normaliser.from_dict(json.loads(json.dumps(norm.as_dict())))
    assert back == norm
    assert abs(float(tok.reshape(-1, 3).mean())) < 0.5  # z-scored


def test_output_shapes_and_ranges(data):
    train, _, targets, norm = data
    x = batch_tensors(train, targets, np.arange(16), norm)
    mlp = MLPCostPredictor(N, NB, width=16, mlp_hidden=(16,)).eval()
    for model in (_tiny(), mlp):
        with torch.no_grad():
            out = model(*x)
        assert out.shape == (16, 3)
        assert (out[:, :2] >= 0).all() and (out[:, :2] <= 2).all()
        assert (out[:, 2] >= 0).all() and (out[:, 2] <= 1).all()
    clf = _tiny(ValidityClassifier)
    with torch.no_grad():
        assert clf(*x).shape == (16,)
    assert predict_costs(_tiny(), train, targets, norm).shape == (1200, 3)
    p = predict_valid_proba(clf, val_tab := _table(10, 5), targets, norm)
    assert p.shape == (10,) and p.dtype == np.float32 and ((p >= 0) & (p <= 1)).all()
    assert val_tab["wEE"].shape == (10, N)


def test_region_permutation_invariance(data):
    """Permuting region tokens with the SC rows leaves the CLS output (and so the costs, with
    the FC / FCD embeddings held fixed) unchanged; SC columns are a fixed feature order."""
    train, _, targets, norm = data
    tok, sc, fcu, pdf = batch_tensors(train, targets, np.arange(6), norm)
    model = _tiny(n_layers=2)
    perm = torch.from_numpy(np.random.default_rng(3).permutation(N))
    with torch.no_grad():
        cls = model.trunk(tok, sc)
        cls_p = model.trunk(tok[:, perm], sc[:, perm])
        out, out_p = model(tok, sc, fcu, pdf), model(tok[:, perm], sc[:, perm], fcu, pdf)
        # the region tokens themselves are permutation-equivariant
        all_tok = model.trunk(tok, sc, return_all=True)[:, 1:]
        all_tok_p = model.trunk(tok[:, perm], sc[:, perm], return_all=True)[:, 1:]
        cls_cols = model.trunk(tok[:, perm], sc[:, perm][:, :, perm])
    torch.testing.assert_close(cls_p, cls, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_p, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(all_tok_p, all_tok[:, perm], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(cls_cols, cls, atol=1e-4)  # the SC embedder is a dense layer


@pytest.mark.parametrize("cls", ["CostPredictor", "MLPCostPredictor",
                                 "StructuredCostPredictor", "ValidityClassifier",
                                 "MLPValidityClassifier"])
def test_search_path_matches_the_full_forward(data, cls):
    """The evaluator's per-target path (SC row statistics scaled by G, the target's share of
    the first fusion layer folded into a bias) gives what the full forward gives."""
    from nmmfit.surrogate.fastpath import FoldedSearchContext, SearchContext
    from nmmfit.surrogate.features import candidate_tokens, prepare_targets, token_affine_map
    from nmmfit.surrogate.networks import MODEL_CLASSES

    train, _, targets, norm = data
    rows = np.flatnonzero(train["target_idx"] == 1)[:9]
    kw = ({"d_model": 16, "n_layers": 1, "n_heads": 2} if "MLP" not in cls
          and "Structured" not in cls else {"width": 16, "mlp_hidden": (16, 8)})
    if cls == "StructuredCostPredictor":
        kw["n_cdf_points"] = 10
    torch.manual_seed(1)
    model = MODEL_CLASSES[cls](N, NB, **kw).eval()
    full = model(*batch_tensors(train, targets, rows, norm))
    prep = prepare_targets({k: v[1:2] for k, v in targets.items()}, norm)
    sub = {k: train[k][rows] for k in ("wEE", "wEI", "sigma", "G")}
    with torch.inference_mode():
        emb = model.embed_target(torch.from_numpy(prep.fc_upper), torch.from_numpy(prep.fcd_pdf))
        ctx = model.search_context(torch.from_numpy(prep.sc), emb)
        # a typed per-target context: the MLP family's folded layers, or the generic one
        assert isinstance(ctx, FoldedSearchContext if ("MLP" in cls or "Structured" in cls)
                          else SearchContext)
        fast = model.forward_search(torch.from_numpy(candidate_tokens(sub, norm)),
                                    torch.from_numpy(sub["G"].astype(np.float32)), ctx)
    assert fast.shape == full.shape
    torch.testing.assert_close(fast, full.detach(), atol=1e-5, rtol=1e-5)
    # with a token map the nets take search vectors: here regional = x @ D per parameter
    rng = np.random.default_rng(3)
    design = rng.normal(size=(N, 2))

    def regional(x):
        return {k: x[:, 2 * j:2 * j + 2] @ design.T for j, k in enumerate(("wEE", "wEI",
                                                                           "sigma"))}

    xs = rng.normal(size=(len(rows), 6))
    tmap = token_affine_map(regional, 6, norm)
    with torch.inference_mode():
        ctx_map = model.search_context(torch.from_numpy(prep.sc), emb,
                                       token_map=tuple(torch.from_numpy(t) for t in tmap))
        g = torch.from_numpy(sub["G"].astype(np.float32))
        via_map = model.forward_search(torch.from_numpy(xs.astype(np.float32)), g, ctx_map)
        via_tokens = model.forward_search(
            torch.from_numpy(candidate_tokens(regional(xs), norm)), g, ctx)
    torch.testing.assert_close(via_map, via_tokens, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="token_map must be"):
        model.search_context(torch.from_numpy(prep.sc), emb, token_map=(tmap[0][:, :-1], tmap[1]))
    if "MLP" in cls or "Structured" in cls:
        with pytest.raises(ValueError, match="one target"):
            model.search_context(torch.from_numpy(prep.sc).repeat(2, 1, 1), emb)
        model.train()
        with pytest.raises(RuntimeError, match="inference"):
            model.search_context(torch.from_numpy(prep.sc), emb)


def test_token_affine_map_reads_an_affine_expansion_and_refuses_others():
    from nmmfit.surrogate.features import Normaliser, candidate_tokens, token_affine_map

    norm = Normaliser(token_mean=[1.0, 2.0, 0.005], token_std=[2.0, 1.5, 0.002])
    rng = np.random.default_rng(0)
    design = rng.normal(size=(5, 3))

    def affine(x):
        return {"wEE": 3.0 + x[:, 0:3] @ design.T, "wEI": x[:, 3:6] @ design.T,
                "sigma": 0.004 + 1e-3 * x[:, 6:9] @ design.T}

    a, a0 = token_affine_map(affine, 9, norm)
    assert a.shape == (9, 15) and a0.shape == (15,)
    x = rng.normal(size=(4, 9))
    np.testing.assert_allclose(x @ a + a0, candidate_tokens(affine(x), norm, np.float64)
                               .reshape(4, -1), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="not an affine function"):
        token_affine_map(lambda x: {**affine(x), "wEE": affine(x)["wEE"] ** 2}, 9, norm)


@pytest.mark.parametrize("kind", ["transformer", "mlp"])
def test_training_learns_smooth_costs(data, kind):
    train, val, targets, norm = data
    if kind == "mlp":
        torch.manual_seed(0)
        model = MLPCostPredictor(N, NB, width=32, mlp_hidden=(32,), dropout=0.0)
    else:
        model = _tiny()
    cfg = TrainConfig(lr=3e-3, gamma=0.97, batch_size=64, max_epochs=15, patience=5, seed=0)
    model, hist = train_cost_predictor(model, train, val, targets, norm, cfg)
    assert not model.training
    assert hist["epochs_run"] <= 15 and 1 <= hist["best_epoch"] <= hist["epochs_run"]
    assert hist["best_val_loss"] == min(hist["val_loss"])
    assert hist["best_val_loss"] < 0.2 * hist["val_loss"][0]
    assert hist["n_train"] == int(cost_mask(train).sum())  # invalid rows left out
    ok = cost_mask(val)
    m = cost_metrics(predict_costs(model, val, targets, norm)[ok], val["costs"][ok])
    assert m["r_total"] > 0.9, m
    # the best epoch's weights were restored: re-evaluating gives the best validation loss
    pred = predict_costs(model, val, targets, norm)[ok]
    mse = float(np.mean(np.mean((pred - val["costs"][ok]) ** 2, axis=1)))
    assert mse == pytest.approx(hist["best_val_loss"], rel=1e-4)


def test_folded_normal_mean_matches_sampling():
    from nmmfit.surrogate.networks import folded_normal_mean

    rng = np.random.default_rng(0)
    for mu, s in ((0.0, 0.05), (0.03, 0.02), (-0.1, 0.04), (0.2, 0.01)):
        mc = np.abs(rng.normal(mu, s, 400_000)).mean()
        got = float(folded_normal_mean(torch.tensor(mu), torch.tensor(s)))
        assert got == pytest.approx(mc, rel=5e-3, abs=2e-4)
    # a tiny spread gives |mu|
    assert float(folded_normal_mean(torch.tensor(-0.3), torch.tensor(1e-6))) == pytest.approx(0.3)


def test_structured_predictor_computes_l1_and_ks_from_the_target(data):
    """With the summary head fixed (simulated FC mean 0.3, no scatter, uniform FCD masses, no
    noise floor), fc_l1 is |0.3 - mean target FC| and fcd_ks the largest CDF gap at the
    sampled bins, computed here independently; both ignore the FC pattern."""
    train, _, targets, norm = data
    torch.manual_seed(0)
    k = 10
    model = StructuredCostPredictor(N, NB, width=16, mlp_hidden=(16,), dropout=0.0,
                                    n_cdf_points=k).eval()
    last = model.sim_head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[0] = float(np.arctanh(0.3))
        last.bias[1] = last.bias[2] = -40.0  # softplus ~ 0: no scatter, no noise floor
    tok, sc, fcu, pdf = batch_tensors(train, targets, np.arange(12), norm)
    with torch.no_grad():
        out = model(tok, sc, fcu, pdf).numpy()
    t_idx = train["target_idx"][:12]
    iu = np.triu_indices(N, 1)
    m_emp = np.array([targets["fc"][t][iu].mean() for t in t_idx])
    np.testing.assert_allclose(out[:, 1], np.abs(0.3 - m_emp), atol=2e-4)
    cdf = np.cumsum(targets["fcd_pdf"], axis=1)
    cdf /= cdf[:, -1:]
    pts = np.round(np.linspace(0, NB - 1, k + 1)[:-1]).astype(int)
    sim = np.arange(1, k + 1) / (k + 1)
    ks = np.abs(sim[None] - cdf[t_idx][:, pts]).max(axis=1)
    np.testing.assert_allclose(out[:, 2], ks, atol=1e-5)
    assert (out[:, 0] >= 0).all() and (out[:, 0] <= 2).all()
    # a different FC pattern with the same mean changes neither term (fc_corr may change)
    perm = torch.randperm(fcu.shape[1])
    with torch.no_grad():
        out_p = model(tok, sc, fcu[:, perm], pdf).numpy()
    np.testing.assert_allclose(out_p[:, 1:], out[:, 1:], atol=1e-6)


def test_structured_terms_agree_with_the_cost_on_the_same_inputs():
    """The structured predictor's fc_l1 and fcd_ks (its target embedding, then
    structured_terms) equal the cost's distance when fed a simulation's own summary with no
    scatter and no noise floor, its CDF compared at every bin: one definition for both."""
    from nmmfit.data.target import Target
    from nmmfit.stats import FCDSpec, distance, summarise
    from nmmfit.stats.cost import fc_level, ks_distance
    from nmmfit.surrogate.networks import structured_terms

    rng = np.random.default_rng(3)
    spec = FCDSpec(12, 2, n_bins=NB)

    def bold(shape):
        x = rng.standard_normal(shape)
        for k in range(1, shape[-1]):
            x[..., k] += 0.7 * x[..., k - 1]
        return x + 0.4 * x[..., :1, :]

    sc = rng.random((N, N))
    target = Target.from_bold(sc + sc.T, [bold((N, 80)) for _ in range(2)], tr=0.72,
                              fcd_spec=spec, name="t")
    summary = summarise(bold((5, 2, N, 80)), spec)
    ref = distance(summary, target)
    assert ref.valid.all()
    torch.manual_seed(0)
    model = StructuredCostPredictor(N, NB, width=16, mlp_hidden=(16,), dropout=0.0,
                                    n_cdf_points=NB - 1).double().eval()
    with torch.no_grad():
        _, m_emp, cdf_emp = model.embed_target(torch.from_numpy(target.fc_upper)[None],
                                               torch.from_numpy(target.fcd_pdf)[None])
        mu = torch.from_numpy(fc_level(summary.fc_upper))[:, None]
        cdf_sim = torch.from_numpy(summary.fcd_cdf)[:, model.cdf_index]
        l1, ks = structured_terms(mu, torch.full_like(mu, 1e-12), torch.zeros_like(mu),
                                  cdf_sim, m_emp, cdf_emp)
    np.testing.assert_allclose(l1[:, 0].numpy(), ref.fc_l1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ks[:, 0].numpy(), ref.fcd_ks, rtol=0, atol=1e-12)
    # the shared KS gives the same on tensors as on arrays
    a, b = rng.random((4, 9)), rng.random(9)
    np.testing.assert_array_equal(ks_distance(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                                  ks_distance(a, b))


def test_costs_and_summaries_come_from_one_pass(data, monkeypatch):
    """forward_with_summaries equals forward then summaries in eval mode, and in training mode
    draws the candidate features once, so the supervised summaries are the ones (same dropout
    draw) that the fc_l1 and fcd_ks costs were computed from."""
    train, _, targets, norm = data
    torch.manual_seed(0)
    model = StructuredCostPredictor(N, NB, width=16, mlp_hidden=(16,), dropout=0.3,
                                    n_cdf_points=10).eval()
    tok, sc, fcu, pdf = batch_tensors(train, targets, np.arange(12), norm)
    with torch.no_grad():
        both = model.forward_with_summaries(tok, sc, fcu, pdf)
        apart = torch.cat([model(tok, sc, fcu, pdf), model.summaries(tok, sc)], dim=-1)
    assert both.shape == (12, 3 + 1 + 10)
    torch.testing.assert_close(both, apart)
    calls = []
    real = model._candidate
    monkeypatch.setattr(model, "_candidate", lambda *a: calls.append(1) or real(*a))
    model.train()
    from nmmfit.surrogate.train import _WithSummaries

    with torch.no_grad():
        out = _WithSummaries(model).train()(tok, sc, fcu, pdf)
    assert out.shape == (12, 14) and len(calls) == 1


def test_structured_predictor_trains(data):
    train, val, targets, norm = data
    torch.manual_seed(0)
    model = StructuredCostPredictor(N, NB, width=32, mlp_hidden=(32,), dropout=0.0,
                                    n_cdf_points=20)
    cfg = TrainConfig(lr=3e-3, gamma=0.97, batch_size=64, max_epochs=8, patience=None, seed=0)
    model, hist = train_cost_predictor(model, train, val, targets, norm, cfg)
    assert hist["best_val_loss"] < 0.5 * hist["val_loss"][0]


def test_summary_supervision_teaches_the_summaries(data):
    """Simulated summaries given to training pull the predicted FC mean and FCD CDF towards
    them (rows without a summary, NaN, are left out); other models refuse them."""
    train, val, targets, norm = data
    k = 10
    m = train["wEE"].shape[0]
    z = (train["wEE"].mean(axis=1) - 5.5) / 3.0
    summ = {"m_sim": 0.2 + 0.1 * z,
            "cdf": np.clip(np.linspace(0.05, 0.95, k)[None] + 0.05 * z[:, None], 0, 1)}
    summ["m_sim"][::4] = np.nan
    summ["cdf"][::4] = np.nan
    tok, sc, _, _ = batch_tensors(train, targets, np.arange(m), norm)
    have = np.isfinite(summ["m_sim"])
    want = np.concatenate([summ["m_sim"][:, None], summ["cdf"]], axis=1)[have]

    def summary_mse(model):
        with torch.no_grad():
            got = model.summaries(tok, sc).numpy()[have]
        return float(np.mean((got - want) ** 2))

    cfg = TrainConfig(lr=3e-3, batch_size=64, max_epochs=6, patience=None, seed=0)
    errs, hists, models = {}, {}, {}
    for label, s in (("with", summ), ("without", None)):
        torch.manual_seed(0)
        model = StructuredCostPredictor(N, NB, width=32, mlp_hidden=(32,), dropout=0.0,
                                        n_cdf_points=k)
        model, hists[label] = train_cost_predictor(model, train, val, targets, norm, cfg,
                                                   summaries=s, summary_weight=5.0)
        errs[label] = summary_mse(model)
        models[label] = model
    assert errs["with"] < 0.2 * errs["without"], errs
    # the rows that carried a summary: usable cost rows whose summary is not NaN
    assert hists["with"]["n_rows_with_summaries"] == int((cost_mask(train) & have).sum())
    assert "n_rows_with_summaries" not in hists["without"]
    # through the training wrapper the best epoch's weights are restored into the model, and
    # its validation loss is the cost MSE alone
    ok = cost_mask(val)
    pred = predict_costs(models["with"], val, targets, norm)[ok]
    mse = float(np.mean(np.mean((pred - val["costs"][ok]) ** 2, axis=1)))
    assert mse == pytest.approx(hists["with"]["best_val_loss"], rel=1e-4)
    with pytest.raises(ValueError, match="structured predictor"):
        train_cost_predictor(MLPCostPredictor(N, NB, width=8), train, val, targets, norm, cfg,
                             summaries=summ)
    with pytest.raises(ValueError, match=r"cdf \[\d+, 10\]"):
        train_cost_predictor(model, train, val, targets, norm, cfg,
                             summaries={**summ, "cdf": summ["cdf"][:, :5]})


def test_training_is_seeded(data):
    train, val, targets, norm = data
    cfg = TrainConfig(batch_size=128, max_epochs=2, patience=None, seed=4)
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = MLPCostPredictor(N, NB, width=8, mlp_hidden=(), dropout=0.2)
        runs.append(train_cost_predictor(model, train, val, targets, norm, cfg)[1]["val_loss"])
    assert runs[0] == runs[1]


def test_classifier_learns_rule(data):
    train, val, targets, norm = data

    def relabel(tab):
        z = (tab["wEE"].mean(axis=1) - 5.5) / 0.9 + (tab["G"] - 1.75) / 0.72
        return {**tab, "valid": z < 0.3}
    tr, va = relabel(train), relabel(val)
    clf = _tiny(ValidityClassifier)
    cfg = TrainConfig(lr=3e-3, batch_size=64, max_epochs=15, patience=4, seed=1,
                      balance_classes=True)
    clf, hist = train_classifier(clf, tr, va, targets, norm, cfg)
    proba = predict_valid_proba(clf, va, targets, norm)
    acc = float(np.mean((proba > 0.5) == va["valid"]))
    assert acc > 0.9, hist
    assert max(hist["val_accuracy"]) > hist["chance_rate"]
    assert roc_auc(proba, va["valid"]) > 0.95


def test_roc_auc_matches_pairwise():
    rng = np.random.default_rng(0)
    s = np.round(rng.random(60), 1)  # with ties
    y = rng.random(60) > 0.4
    pos, neg = s[y], s[~y]
    brute = np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None]))
    assert roc_auc(s, y) == pytest.approx(brute)


def test_save_load_roundtrip(tmp_path, data):
    train, val, targets, norm = data
    model = _tiny(dropout=0.1)
    path = save_model(tmp_path / "cost.pt", model, "cost_predictor", norm,
                      {"parcellation": "toy8", "data_hash": data_hash(train, targets),
                       "sim_settings": {"dt": 0.006, "n_dup": np.int64(2)},
                       "seeds": [0, 1], "metrics": {"r_total": np.float32(0.5)}})
    loaded = load_model(path, n_regions=N, parcellation="toy8")
    assert loaded.kind == "cost_predictor" and loaded.normaliser == norm
    assert loaded.meta["n_fcd_bins"] == NB and loaded.meta["torch_version"] == torch.__version__
    assert loaded.meta["sim_settings"]["n_dup"] == 2
    np.testing.assert_array_equal(predict_costs(loaded.model, val, targets, loaded.normaliser),
                                  predict_costs(model, val, targets, norm))
    with pytest.raises(ValueError, match=r"\b8\b.*\b100\b"):
        load_model(path, n_regions=100)
    with pytest.raises(ValueError, match="toy8.*schaefer100"):
        load_model(path, parcellation="schaefer100")


def test_float16_storage_halves_the_file_and_loads_as_float32(tmp_path, data):
    train, val, targets, norm = data
    model = _tiny()
    p32 = save_model(tmp_path / "a.pt", model, "cost_predictor", norm)
    p16 = save_model(tmp_path / "b.pt", model, "cost_predictor", norm, weights_dtype="float16")
    n_weights = sum(v.numel() for v in model.state_dict().values())
    assert p32.stat().st_size - p16.stat().st_size > n_weights  # ~2 bytes saved per weight
    loaded = load_model(p16)
    assert loaded.meta["weights_dtype"] == "float16"
    assert all(v.dtype == torch.float32 for v in loaded.model.state_dict().values()
               if v.is_floating_point())
    a = predict_costs(loaded.model, val, targets, norm)
    b = predict_costs(model, val, targets, norm)
    assert not np.array_equal(a, b) and np.allclose(a, b, atol=5e-3)
    with pytest.raises(ValueError, match="weights_dtype"):
        save_model(tmp_path / "c.pt", model, "cost_predictor", norm, weights_dtype="int8")


def test_bad_shapes_name_the_array(data):
    train, _, targets, norm = data
    model = _tiny()
    tok, sc, fcu, pdf = batch_tensors(train, targets, np.arange(4), norm)
    with pytest.raises(ValueError, match="tokens"):
        model(tok[:, :-1], sc, fcu, pdf)
    with pytest.raises(ValueError, match="sc_rows"):
        model(tok, sc[:, :, :-1], fcu, pdf)
    with pytest.raises(ValueError, match="fc_upper"):
        model(tok, sc, fcu[:, :-1], pdf)
    with pytest.raises(ValueError, match="fcd_pdf"):
        model(tok, sc, fcu, pdf[:, :-1])
    bad = {**train, "sigma": train["sigma"][:, :-1]}
    with pytest.raises(ValueError, match=r"table\['sigma'\]"):
        check_table(bad)
    with pytest.raises(ValueError, match=r"targets\['fcd_pdf'\]"):
        predict_costs(model, train, {**targets, "fcd_pdf": targets["fcd_pdf"][:, :10]}, norm)
    with pytest.raises(ValueError, match="target_idx"):
        predict_costs(model, {**train, "target_idx": train["target_idx"] + T}, targets, norm)
    with pytest.raises(ValueError, match="regions"):
        prepare_targets(targets, norm, n_regions=N + 1)


def test_surrogate_figures_are_written(tmp_path):
    from nmmfit.plots.surrogate import (
        plot_classifier,
        plot_ei_agreement,
        plot_fit_comparison,
        plot_predictor,
    )

    rng = np.random.default_rng(0)
    true = rng.random((50, 3))
    paths = [plot_predictor(true + 0.1 * rng.random((50, 3)), true, tmp_path / "p.png"),
             plot_classifier(rng.random(40), rng.random(40) > 0.5, tmp_path / "c.png")]
    run = {"train_best_per_epoch": [2.0, 1.5, 1.2], "val_cost_per_epoch": [2.1, 1.7, 1.4]}
    paths.append(plot_fit_comparison({"0": {"euler": run, "surrogate": run}},
                                     tmp_path / "f.png"))
    maps = {f"ds:s{i}": rng.random(6) + i for i in range(4)}
    paths.append(plot_ei_agreement(maps, {k: v + 0.1 for k, v in maps.items()},
                                   tmp_path / "e.png"))
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
