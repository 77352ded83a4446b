"""Surrogate pipeline: Euler generation into the store (resumable), the training table, and the
surrogate evaluator inside the unchanged fit. Tiny synthetic targets and short simulations."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from synthetic import tiny_target

from nmmfit.data.sc import DEFAULT_SC_NORMALISATION
from nmmfit.fit import Parametrisation, fit, get_preset
from nmmfit.fit.store import Store
from nmmfit.stats.cost import SENTINEL_COST
from nmmfit.surrogate import (
    CostPredictor,
    Normaliser,
    TrainConfig,
    ValidityClassifier,
    load_model,
    save_model,
    train_classifier,
    train_cost_predictor,
)
from nmmfit.surrogate.compact import compact_run_ids, export_compact, import_compact, merge_stores
from nmmfit.surrogate.evaluator import SurrogateEvaluator
from nmmfit.surrogate.generate import run_jobs
from nmmfit.surrogate.jobs import GenJob, plan_jobs
from nmmfit.surrogate.shipped import model_files
from nmmfit.surrogate.table import build_table, table_hash

N = 6
PRESET = replace(get_preset("quick", popsize=8, mu=2, n_dup_train=1), duration_s=43.2,
                 test_duration_s=43.2,
                 burn_in_s=0.0, warmup_steps=200, n_dup_val=1, n_dup_test=2, test_group=1,
                 test_dt=0.003)


def _target(seed, name, n=N):
    return tiny_target(n=n, seed=seed, name=name, n_bins=200)


@pytest.fixture(scope="module")
def targets():
    return {"train": [_target(0, "a"), _target(1, "b")], "val": [_target(2, "c")],
            "test": [_target(3, "d")]}


JOBS = [GenJob("a", "train", "cmaes", 0, 3, 8), GenJob("a", "train", "random", 0, 2, 8),
        GenJob("b", "train", "random", 0, 2, 8), GenJob("c", "val", "random", 0, 2, 8)]


@pytest.fixture(scope="module")
def store(targets, tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "gen.db"
    out = run_jobs(JOBS, targets, path, preset=PRESET, threads=1)
    assert out["jobs_finished"] == len(JOBS) and not out["stopped_early"]
    assert out["evaluations_written"] == 8 * (3 + 2 + 2 + 2)
    return path


def test_generation_is_stored_and_resumes(targets, store, tmp_path):
    with Store(store) as st:
        n = st.count()
        assert n == 8 * 9
        cfg = st.run_config(JOBS[0].run_id)
        assert cfg["generator"] == "nmmfit.surrogate.generate" and cfg["role"] == "train"
    again = run_jobs(JOBS, targets, store, preset=PRESET, threads=1)
    assert again["evaluations_written"] == 0 and again["jobs_finished"] == len(JOBS)
    # a budget that runs out after the first epoch stops early; re-running completes it, and
    # the rows equal those of the uninterrupted generation
    part = tmp_path / "part.db"
    first = run_jobs(JOBS[:1], targets, part, preset=PRESET, threads=1, max_seconds=0.0)
    assert first["stopped_early"]
    with Store(part) as st:
        assert st.count() == 8
    run_jobs(JOBS[:1], targets, part, preset=PRESET, threads=1)
    with Store(part) as a, Store(store) as b:
        ea, eb = a.evaluations(JOBS[0].run_id), b.evaluations(JOBS[0].run_id)
    np.testing.assert_array_equal(ea["params"], eb["params"])
    np.testing.assert_array_equal(ea["terms"], eb["terms"])
    # merging a store from another machine appends only the runs it lacks
    other = tmp_path / "other.db"
    run_jobs(JOBS[3:], targets, other, preset=PRESET, threads=1)
    assert merge_stores(store, other)["runs_added"] == 3
    assert merge_stores(store, other)["runs_added"] == 0
    with Store(other) as st:
        assert st.count() == 8 * 9


def test_build_table_expands_the_stored_vectors(targets, store):
    table, tg = build_table(store)
    m = table["G"].shape[0]
    assert m == 8 * 9 and table["wEE"].shape == (m, N) and table["costs"].shape == (m, 3)
    assert tg["names"] == ["a", "b", "c"] and tg["sc"].shape == (3, N, N)
    assert tg["fcd_pdf"].shape == (3, 200)
    np.testing.assert_allclose(tg["fcd_pdf"].sum(axis=1), 1.0)
    with Store(store) as st:
        ev = st.evaluations(JOBS[0].run_id)
    param = Parametrisation(targets["train"][0].maps)
    rows = np.flatnonzero((table["target_idx"] == 0) & (table["kind"] == "cmaes"))
    np.testing.assert_allclose(table["wEE"][rows], param.expand(ev["params"]).wEE)
    assert np.isnan(table["costs"][~table["valid"]]).all()
    assert np.isfinite(table["costs"][table["valid"]]).all()
    assert set(table["role"]) == {"train", "val"}
    train_only, _ = build_table(store, roles=("train",))
    assert train_only["G"].shape[0] == 8 * 7
    assert table_hash(table) == table_hash(build_table(store)[0])
    assert table_hash(table) != table_hash(train_only)


def test_compact_export_rebuilds_a_store_that_resumes(targets, store, tmp_path):
    info = export_compact(store, tmp_path / "gen.npz")
    assert info["runs"] == len(JOBS) and info["rows"] == 8 * 9
    rebuilt = tmp_path / "rebuilt.db"
    assert import_compact(tmp_path / "gen.npz", rebuilt)["runs_added"] == len(JOBS)
    assert import_compact(tmp_path / "gen.npz", rebuilt)["runs_added"] == 0
    a, _ = build_table(store)
    b, _ = build_table(rebuilt)
    assert table_hash(a) == table_hash(b)
    # an extension file holds only the runs a base file lacks; both together give the union
    base = tmp_path / "base.db"
    merge_stores(store, base)
    with Store(base) as st:
        st.delete_run(JOBS[2].run_id)
    export_compact(base, tmp_path / "base.npz")
    assert compact_run_ids(tmp_path / "base.npz") == [j.run_id for j in JOBS if j != JOBS[2]]
    ext = export_compact(store, tmp_path / "ext.npz",
                         exclude=compact_run_ids(tmp_path / "base.npz"))
    assert ext["runs"] == 1 and ext["rows"] == 8 * 2
    assert compact_run_ids(tmp_path / "ext.npz") == [JOBS[2].run_id]
    union = tmp_path / "union.db"
    import_compact(tmp_path / "base.npz", union)
    import_compact(tmp_path / "ext.npz", union)
    u, _ = build_table(union)  # the same rows (in the order the runs were imported)
    key, ref = (np.lexsort(np.c_[t["G"], t["wEE"]].T) for t in (u, a))
    assert u["G"].shape == a["G"].shape
    np.testing.assert_array_equal(u["wEE"][key], a["wEE"][ref])
    np.testing.assert_array_equal(u["costs"][key], a["costs"][ref])
    with pytest.raises(ValueError, match="no generation runs"):
        export_compact(store, tmp_path / "none.npz", exclude=[j.run_id for j in JOBS])
    # generation continues from the imported optimiser state exactly as from the original
    longer = [replace(JOBS[0], n_epochs=4)]
    copy = tmp_path / "copy.db"
    merge_stores(store, copy)
    run_jobs(longer, targets, copy, preset=PRESET, threads=1)
    run_jobs(longer, targets, rebuilt, preset=PRESET, threads=1)
    with Store(copy) as x, Store(rebuilt) as y:
        ex, ey = x.evaluations(JOBS[0].run_id), y.evaluations(JOBS[0].run_id)
    assert ex["params"].shape[0] == 8 * 4
    np.testing.assert_array_equal(ex["params"], ey["params"])
    np.testing.assert_array_equal(ex["terms"], ey["terms"])


@pytest.fixture(scope="module")
def trained(store, tmp_path_factory):
    """(folder, predictor, classifier): small models trained once on the store's table."""
    d = tmp_path_factory.mktemp("models")
    table, tg = build_table(store)
    return (d, *_models(table, tg, d))


@pytest.fixture()
def setting(targets, trained):
    """The first training target, its validation/test targets, parametrisation and models."""
    tr, va, te = targets["train"][0], targets["val"][0], targets["test"][0]
    return tr, va, te, Parametrisation.from_target(tr, ("m1", "m2")), trained[1], trained[2]


def _models(table, tg, tmp_path):
    torch.manual_seed(0)
    norm = Normaliser.default(n_fcd_bins=tg["fcd_pdf"].shape[1])
    # (the plumbing is what is tested here; training quality is in test_surrogate_nets.py)
    is_va = np.random.default_rng(0).random(table["G"].shape[0]) < 0.3
    tr = {k: v[~is_va] for k, v in table.items()}
    va = {k: v[is_va] for k, v in table.items()}
    cfg = TrainConfig(max_epochs=2, batch_size=16, threads=1)
    pred = CostPredictor(N, tg["fcd_pdf"].shape[1], d_model=16, n_layers=1, n_heads=2)
    pred, _ = train_cost_predictor(pred, tr, va, tg, norm, cfg)
    clf = ValidityClassifier(N, tg["fcd_pdf"].shape[1], d_model=16, n_layers=1, n_heads=2)
    clf, _ = train_classifier(clf, tr, va, tg, norm, cfg)
    # the tiny targets are built with the default SC recipe; the models record it
    meta = {"parcellation": "tiny", "data_hash": table_hash(table),
            "sc_normalisation": DEFAULT_SC_NORMALISATION}
    save_model(tmp_path / "predictor.pt", pred, "cost_predictor", norm, meta)
    save_model(tmp_path / "classifier.pt", clf, "classifier", norm, meta)
    return load_model(tmp_path / "predictor.pt"), load_model(tmp_path / "classifier.pt")


def test_surrogate_evaluator_drops_into_the_fit(setting, tmp_path):
    tr, va, te, param, pred, clf = setting
    ev = SurrogateEvaluator(tr, param, pred, clf, threads=1)
    rng = np.random.default_rng(0)
    x = param.uniform_vectors(rng, 5000)
    x = x[param.in_bounds(x)][:20]
    out = ev.evaluate(x, seed=0)
    assert out.terms.shape == (20, 3) and out.valid.shape == (20,)
    assert np.all(out.terms[~out.valid] == SENTINEL_COST)
    ok = out.terms[out.valid]
    assert np.all((ok[:, :2] >= 0) & (ok[:, :2] <= 2)) and np.all((ok[:, 2] >= 0) & (ok[:, 2] <= 1))
    np.testing.assert_allclose(out.total, out.terms.sum(axis=1))
    # the cached-target fast path gives what the batch predictors give
    from nmmfit.surrogate import predict_costs, predict_valid_proba

    reg = param.expand(x)
    tab = {**reg.as_dict(), "G": reg.G.reshape(-1), "target_idx": np.zeros(20, dtype=np.int64)}
    tgt = {"sc": tr.sc[None], "fc": tr.fc[None], "fcd_pdf": tr.fcd_pdf[None]}
    proba = predict_valid_proba(clf.model, tab, tgt, clf.normaliser)
    np.testing.assert_array_equal(out.valid, proba >= 0.5)
    ref = predict_costs(pred.model, {k: v[out.valid] for k, v in tab.items()}, tgt,
                        pred.normaliser)
    np.testing.assert_allclose(out.terms[out.valid], ref, rtol=1e-5, atol=1e-6)
    xt, gt = (torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in (x, tab["G"]))
    np.testing.assert_allclose(ev._run(pred, xt, gt), predict_costs(pred.model, tab, tgt,
                                                                    pred.normaliser),
                               rtol=1e-5, atol=1e-6)  # all 20 rows, whatever the classifier
    assert np.isnan(out.ei_mean).all()
    # the MLP nets (the shipped kind) take the search vectors through their folded first
    # layers; untrained but random weights suffice to compare with the batch predictors
    from nmmfit.surrogate.networks import MLPCostPredictor, MLPValidityClassifier

    torch.manual_seed(2)
    nb = tr.fcd_pdf.shape[0]
    norm = replace(pred.normaliser, token_mean=[5.0, 2.0, 0.005])  # a token map with an offset
    for net, kind in ((MLPCostPredictor(N, nb, width=16, mlp_hidden=(16,)), "cost_predictor"),
                      (MLPValidityClassifier(N, nb, width=16, mlp_hidden=(16,)), "classifier")):
        save_model(tmp_path / f"mlp_{kind}.pt", net, kind, norm,
                   {"parcellation": "t", "sc_normalisation": tr.sc_normalisation})
    mlp_pred, mlp_clf = (load_model(tmp_path / f"mlp_{k}.pt") for k in ("cost_predictor",
                                                                        "classifier"))
    mlp = SurrogateEvaluator(tr, param, mlp_pred, mlp_clf, threads=1).evaluate(x, seed=0)
    proba = predict_valid_proba(mlp_clf.model, tab, tgt, mlp_clf.normaliser)
    np.testing.assert_allclose(mlp.meta["p_valid"], proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mlp.valid, proba >= 0.5)
    assert 0 < mlp.valid.sum()
    np.testing.assert_allclose(mlp.terms[mlp.valid], predict_costs(
        mlp_pred.model, {k: v[mlp.valid] for k, v in tab.items()}, tgt, mlp_pred.normaliser),
        rtol=1e-5, atol=1e-6)
    # deterministic: the seed does not change the scores
    np.testing.assert_array_equal(ev.evaluate(x, seed=5).terms, out.terms)
    # the unchanged fit runs with it; validation and test are Euler simulations
    res = fit(tr, va, te, preset=PRESET, maps=("m1", "m2"), evaluator=SurrogateEvaluator(
        tr, param, pred, None, threads=1), store=tmp_path / "fit.db", seed=1, n_epochs=2)
    assert res.config["train_evaluator"]["evaluator"] == "surrogate"
    assert res.config["val_evaluator"]["evaluator"] == "euler"
    assert np.isfinite(res.test_cost["total"])
    # models for another region count or the wrong kind are refused
    big = _target(9, "big", n=N + 2)
    with pytest.raises(ValueError, match="trained for 6 regions"):
        SurrogateEvaluator(big, Parametrisation.from_target(big, ("m1", "m2")), pred)
    with pytest.raises(ValueError, match="not a cost_predictor"):
        SurrogateEvaluator(tr, param, clf)
    # a target built with another SC recipe than the models were trained for is refused
    assert pred.meta["sc_normalisation"] == tr.sc_normalisation == "strength"
    other = replace(tr, sc_normalisation="delssome")
    with pytest.raises(ValueError, match="'strength' recipe, but target .* 'delssome'"):
        SurrogateEvaluator(other, param, pred, clf)
    saved = pred.meta.pop("sc_normalisation")  # a model saved without one: the legacy recipe
    try:
        with pytest.raises(ValueError, match="predictor .* 'delssome' recipe, but target .* "
                                             "'strength'"):
            SurrogateEvaluator(tr, param, pred, None)
        SurrogateEvaluator(other, param, pred, None)  # both sides 'delssome': accepted
        with pytest.raises(ValueError, match="the classifier .* 'strength' recipe"):
            SurrogateEvaluator(other, param, pred, clf)
    finally:
        pred.meta["sc_normalisation"] = saved


def test_spot_check_replaces_the_best_scores_by_simulation(setting, tmp_path):
    from nmmfit.fit.spotcheck import SpotCheckEvaluator

    tr, va, te, param, pred, clf = setting
    sur = SurrogateEvaluator(tr, param, pred, clf, threads=1)
    euler = SpotCheckEvaluator.at_training_setting(sur, PRESET, 3, threads=1).simulator
    assert euler.n_dup == PRESET.n_dup_train and euler.config.dt == PRESET.train_dt
    x = param.uniform_vectors(np.random.default_rng(3), 5000)
    x = x[param.in_bounds(x)][:12]
    base = sur.evaluate(x, seed=4)
    ev = SpotCheckEvaluator(sur, euler, n_check=3)
    out = ev.evaluate(x, seed=4)
    rows = np.asarray(out.meta["checked"])
    assert rows.shape == (3,) and len(set(rows.tolist())) == 3
    # the checked rows: lowest predicted totals among those called valid, then the most
    # probably valid of the rest
    vi, ii = np.flatnonzero(base.valid), np.flatnonzero(~base.valid)
    want = [*vi[np.argsort(base.total[vi])], *ii[np.argsort(-base.meta["p_valid"][ii])]][:3]
    assert rows.tolist() == [int(r) for r in want]
    sim = euler.evaluate(x[rows], seed=4)
    np.testing.assert_array_equal(out.terms[rows], sim.terms)
    np.testing.assert_array_equal(out.valid[rows], sim.valid)
    np.testing.assert_array_equal(out.ei_map[rows], sim.ei_map)
    rest = np.setdiff1d(np.arange(12), rows)
    np.testing.assert_array_equal(out.terms[rest], base.terms[rest])
    assert np.isnan(out.ei_mean[rest]).all()
    assert out.meta["n_false_valid"] == int((base.valid[rows] & ~sim.valid).sum())
    assert ev.counts == {"batches": 1, "checked": 3, "false_valid": out.meta["n_false_valid"]}
    # through the fit: the spot-checked evaluator is recorded in the run's config
    res = fit(tr, va, te, preset=PRESET, maps=("m1", "m2"), evaluator=sur, spot_check=2,
              store=tmp_path / "spot.db", seed=1, n_epochs=2)
    assert res.config["train_evaluator"]["n_check"] == 2
    with pytest.raises(ValueError, match="n_check"):
        SpotCheckEvaluator(sur, euler, n_check=0)
    with pytest.raises(ValueError, match="surrogate evaluator"):
        fit(tr, va, te, preset=PRESET, maps=("m1", "m2"), spot_check=2,
            store=tmp_path / "spot.db", n_epochs=1)


def test_for_fit_uses_the_fits_parametrisation_and_warns_on_another_preset(targets, trained,
                                                                          tmp_path):
    import warnings

    tr = targets["train"][0]
    # the same models, recorded as trained on paper-preset simulations
    for lm, path in zip(trained[1:], model_files(tmp_path), strict=True):
        save_model(path, lm.model, lm.kind, lm.normaliser,
                   {**lm.meta, "sim": {"preset": "paper"}})
    bounds = {"G": (0.0, 2.0)}
    with pytest.warns(UserWarning, match="'paper'-preset simulations but the fit uses preset "
                      "'quick'"):
        ev = SurrogateEvaluator.for_fit(tr, ("m1", "m2"), preset="quick", bounds=bounds,
                                        folder=tmp_path, threads=1)
    assert (ev.parametrisation.describe()
            == Parametrisation.from_target(tr, ("m1", "m2"), bounds=bounds).describe())
    assert ev.predictor.meta["sim"] == {"preset": "paper"} and ev.classifier is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SurrogateEvaluator.for_fit(tr, ("m1", "m2"), preset="paper", folder=tmp_path)


def test_cli_fit_with_surrogate_models(targets, trained, tmp_path, capsys):
    import json

    from nmmfit.cli import main

    models = trained[0]
    names = {}
    for key, t in (("train", targets["train"][0]), ("val", targets["val"][0]),
                   ("test", targets["test"][0])):
        names[key] = str(t.save(tmp_path / f"{key}.npz"))

    def argv(models):
        return ["fit", "--train", names["train"], "--val", names["val"], "--test",
                names["test"], "--maps", "m1", "m2", "--evaluator", "surrogate", "--models",
                str(models), "--epochs", "2", "--popsize", "6", "--mu", "2", "--n-dup-test", "2",
                "--test-group", "1", "--store", str(tmp_path / "cli.db"), "--out",
                str(tmp_path / "out"), "--no-figures", "--json"]

    assert main(argv(models)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_epochs"] == 2 and np.isfinite(out["test_cost"]["total"])
    # the search really ran on the surrogate (and validation stayed Euler)
    assert out["config"]["train_evaluator"]["evaluator"] == "surrogate"
    assert out["config"]["val_evaluator"]["evaluator"] == "euler"
    # a model folder without models is a clear error, not a traceback
    assert main(argv(tmp_path / "none")) == 2
    assert "no surrogate model file" in capsys.readouterr().err


@pytest.mark.parametrize("parc, n, test_names", [
    ("schaefer100", 100, ["hcp_schaefer100:test303"]),
    ("aal2", 94, ["hcp_aal:213522", "hcp_aal:377451"]),
])
def test_shipped_models_load_and_never_saw_their_test_targets(parc, n, test_names):
    from nmmfit.surrogate.shipped import load_shipped
    from nmmfit.surrogate.workflow import SHIPPED_ARCH, SHIPPED_SUMMARY_ROWS

    pred, clf = load_shipped(parc, n_regions=n)
    for m in (pred, clf):
        assert m.meta["parcellation"] == parc and m.meta["n_regions"] == n
        assert m.meta["weights_dtype"] == "float16"
        assert m.meta["sim"]["preset"] == "quick"
        # split by subject: no test subject or group inside any training target's name
        held = [t.split(":")[1] for t in test_names]
        assert not [t for t in m.meta["train_targets"] if any(h in t for h in held)]
    assert pred.kind == "cost_predictor" and clf.kind == "classifier"
    # the shipped predictor is the architecture that `nmmfit surrogate train` builds by default
    assert pred.meta["arch"] == SHIPPED_ARCH[pred.meta["dataset"]]
    # ... with simulated-summary supervision exactly where the recipe says so
    n_summ = SHIPPED_SUMMARY_ROWS.get(pred.meta["dataset"])
    assert (pred.meta.get("summaries") is not None) == bool(n_summ)
    if n_summ:
        assert pred.meta["history"]["n_rows_with_summaries"] > 0.9 * n_summ
    with pytest.raises(ValueError, match=f"{n} regions.*{n + 1} regions"):
        load_shipped(parc, n_regions=n + 1)


def test_from_shipped_finds_the_models_by_parcellation_or_region_count(tmp_path):
    """One constructor for the shipped surrogates: the set of the named parcellation (either
    spelling) or of the target's region count, or a model folder; a target built with another
    SC recipe is refused as by the plain constructor; missing files and unknown region counts
    are named."""
    from nmmfit import datasets
    from nmmfit.data.sc import LEGACY_SC_RECIPE
    from nmmfit.data.target import Target
    from nmmfit.surrogate import shipped

    ds = datasets.load("hcp_aal")
    tgt = Target.from_dataset(ds, subjects=[sorted(ds.subjects)[0]], maps=("fc_gradient",),
                              sc_normalisation=LEGACY_SC_RECIPE)
    param = Parametrisation.from_target(tgt, ("fc_gradient",))
    x = param.uniform_vectors(np.random.default_rng(0), 2000)
    x = x[param.in_bounds(x)][:10]
    pred, clf = shipped.load_shipped("aal2", n_regions=94)
    ref = SurrogateEvaluator(tgt, param, pred, clf, threads=1).evaluate(x, 0)
    runs = {parc: SurrogateEvaluator.from_shipped(tgt, param, parc, threads=1)
            for parc in (None, "aal2", "aal2-94")}
    runs["folder"] = SurrogateEvaluator.from_shipped(
        tgt, param, "schaefer100", folder=shipped.shipped_dir("aal2"), threads=1)
    for ev in runs.values():
        assert ev.predictor.meta["parcellation"] == "aal2" and ev.classifier.kind == "classifier"
        out = ev.evaluate(x, 0)
        np.testing.assert_array_equal(out.terms, ref.terms)
        np.testing.assert_array_equal(out.meta["p_valid"], ref.meta["p_valid"])
    with pytest.raises(ValueError, match="100 regions, but 94 regions were requested"):
        SurrogateEvaluator.from_shipped(tgt, param, "schaefer-100")
    other = replace(tgt, sc_normalisation="strength")
    with pytest.raises(ValueError, match="predictor .* 'delssome' recipe, but target .* "
                                         "'strength'; build the target with "
                                         "sc_normalisation='delssome'"):
        SurrogateEvaluator.from_shipped(other, param)
    with pytest.raises(FileNotFoundError, match=r"parcellation 'user' \(missing .*predictor\.pt"):
        SurrogateEvaluator.from_shipped(tgt, param, "user")
    small = _target(0, "small")
    with pytest.raises(ValueError, match=r"no shipped surrogate for 6 regions \(shipped: "
                                         r"100 = Schaefer-100, 94 = AAL2\)"):
        SurrogateEvaluator.from_shipped(small, Parametrisation.from_target(small, ("m1",)))
    with pytest.raises(FileNotFoundError, match="no surrogate model file"):
        SurrogateEvaluator.from_shipped(tgt, param, folder=tmp_path)
    # a model folder's two files, spelled in one place
    assert [p.name for p in shipped.model_files(tmp_path)] == ["predictor.pt", "classifier.pt"]
    assert len(shipped.missing_model_files(tmp_path)) == 2
    assert shipped.missing_model_files(shipped.shipped_dir("aal2-94")) == []
    assert shipped.PARCELLATION == {"hcp_schaefer100": "schaefer100", "hcp_aal": "aal2",
                                    "gw_aal": "aal2"}


def test_cli_train_defaults_to_the_shipped_architecture(targets, store, tmp_path, capsys,
                                                        monkeypatch):
    """`nmmfit surrogate train` without --arch trains the data set's shipped architecture, and
    its summary quotes the validation r of the kept (best) epoch."""
    import json

    import nmmfit.surrogate.workflow as wf
    from nmmfit.cli import main
    from nmmfit.surrogate.workflow import SHIPPED_ARCH

    # the tiny store's validation target has no valid row: validate on a third of the
    # training rows instead (the plumbing is what is tested)
    original = wf.build_table

    def third_as_val(st, roles=("train", "val")):
        table, tg = original(st, roles=roles)
        role = table["role"].copy()
        role[np.flatnonzero(role == "train")[::3]] = "val"
        return {**table, "role": role}, tg

    monkeypatch.setattr(wf, "build_table", third_as_val)
    out = tmp_path / "m"
    assert main(["surrogate", "train", "--dataset", "hcp_aal", "--store", str(store), "--out",
                 str(out), "--epochs", "3", "--patience", "3", "--classifier-epochs", "1",
                 "--batch-size", "16", "--threads", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    pred = load_model(out / "predictor.pt")
    assert summary["predictor_arch"] == SHIPPED_ARCH["hcp_aal"] == pred.meta["arch"]
    assert type(pred.model).__name__ == "StructuredCostPredictor"
    h = pred.meta["history"]
    assert summary["predictor_val_r_total"] == pytest.approx(h["val_r_total"][h["best_epoch"] - 1])
    assert summary["predictor_best_val_loss"] == pytest.approx(min(h["val_loss"]))
    assert "summaries" not in pred.meta

    # with simulated summaries of some training rows (aligned through the same table)
    from nmmfit.surrogate.summaries import simulate_summaries

    table, tg = wf.build_table(store)
    summ = tmp_path / "new_folder" / "summ.npz"  # the folder is created
    res = simulate_summaries(table, tg, {t.name: t for t in targets["train"]}, summ,
                             preset=PRESET, max_rows=6, batch=6, threads=1)
    assert np.isfinite(res["m_sim"][res["rows"][:4]]).sum() >= 1
    out2 = tmp_path / "m2"
    assert main(["surrogate", "train", "--dataset", "hcp_aal", "--store", str(store), "--out",
                 str(out2), "--epochs", "2", "--classifier-epochs", "1", "--batch-size", "16",
                 "--threads", "1", "--summaries", str(summ), "--summary-rows", "4",
                 "--json"]) == 0
    capsys.readouterr()
    pred2 = load_model(out2 / "predictor.pt")
    assert pred2.meta["summaries"]["file"] == "summ.npz"
    # --summary-rows 4: the file's first 4 planned rows only
    assert pred2.meta["summaries"]["rows_used"] == 4
    assert pred2.meta["history"]["n_rows_with_summaries"] == int(
        np.isfinite(res["m_sim"][res["rows"][:4]]).sum())
    # a summaries file of another table is refused with a clear error
    np.savez(tmp_path / "bad.npz", **{**dict(np.load(summ)), "n_table_rows": np.array(3)})
    assert main(["surrogate", "train", "--dataset", "hcp_aal", "--store", str(store), "--out",
                 str(tmp_path / "m3"), "--epochs", "1", "--classifier-epochs", "1",
                 "--summaries", str(tmp_path / "bad.npz")]) == 2
    assert "summaries file" in capsys.readouterr().err


def test_simulated_summaries_match_a_direct_simulation_and_resume(targets, store, tmp_path):
    from nmmfit.fit import sim_config_for
    from nmmfit.sim import simulate
    from nmmfit.stats.fc import fc_matrix, triu_indices
    from nmmfit.stats.fcd import cdf_from_counts, fcd_histogram
    from nmmfit.surrogate.networks import cdf_points
    from nmmfit.surrogate.summaries import batch_seed, load_summaries, simulate_summaries

    table, tg = build_table(store, roles=("train", "val"))
    objs = {t.name: t for t in targets["train"]}
    path = tmp_path / "summ.npz"
    kw = dict(n_points=20, preset=PRESET, max_rows=6, batch=3, threads=1, seed=5)
    a = simulate_summaries(table, tg, objs, path, **kw)
    rows = a["rows"]
    assert a["done"] == 6 and rows.size == 6
    assert set(table["role"][rows]) == {"train"} and table["valid"][rows].all()
    # a row of the first batch recomputed independently from its batch's seed
    first = [r for r in rows[:3] if np.isfinite(a["m_sim"][r])]
    assert first, "no valid re-simulation in the first batch"
    r = first[0]
    ti = int(table["target_idx"][r])
    tgt = objs[tg["names"][ti]]
    part = rows[:3][table["target_idx"][rows[:3]] == ti]
    res = simulate(tgt.sc, table["wEE"][part], table["wEI"][part], table["G"][part],
                   table["sigma"][part], config=sim_config_for(tgt, PRESET, "train"), n_dup=1,
                   threads=1, seed=batch_seed(5, 0, ti))
    k = int(np.flatnonzero(part == r)[0])
    bold = res.bold[k:k + 1, 0]
    iu, ju = triu_indices(N)
    # (stored as float32)
    assert a["m_sim"][r] == pytest.approx(fc_matrix(bold)[0, iu, ju].mean(), abs=1e-6)
    cdf = cdf_from_counts(fcd_histogram(bold, tgt.fcd_spec, threads=1))[0]
    np.testing.assert_allclose(a["cdf"][r], cdf[cdf_points(200, 20)], atol=1e-6)
    good = np.isfinite(a["m_sim"])
    assert good.sum() >= 1 and not good[np.setdiff1d(np.arange(good.size), rows)].any()
    assert (np.diff(a["cdf"][good], axis=1) >= 0).all()
    # a run killed after its first batch resumes to the same result
    z = dict(np.load(path))
    z["done"] = np.array(3)
    z["m_sim"][3:] = 0.5  # stale values past `done` must be recomputed
    np.savez(path, **z)
    assert np.isnan(load_summaries(path, table["G"].size, 20)["m_sim"][rows[3:]]).all()
    with pytest.raises(ValueError, match="3 simulated rows, fewer than the 5"):
        load_summaries(path, table["G"].size, 20, max_rows=5)
    b = simulate_summaries(table, tg, objs, path, **kw)
    np.testing.assert_array_equal(b["m_sim"], a["m_sim"])
    np.testing.assert_array_equal(b["cdf"], a["cdf"])
    got = load_summaries(path, table["G"].size, 20)
    np.testing.assert_array_equal(got["m_sim"], a["m_sim"])
    # the first 4 planned rows are the rows a 4-row plan simulates; loading 4 keeps just them
    from nmmfit.surrogate.summaries import _rows_to_simulate

    np.testing.assert_array_equal(_rows_to_simulate(table, 4, 5), rows[:4])
    four = load_summaries(path, table["G"].size, 20, max_rows=4)
    np.testing.assert_array_equal(four["m_sim"][rows[:4]], a["m_sim"][rows[:4]])
    assert np.isnan(four["m_sim"][rows[4:]]).all() and four["done"] == 4
    assert load_summaries(path, table["G"].size, 20, max_rows=99)["done"] == 6
    with pytest.raises(ValueError, match="other rows"):
        simulate_summaries(table, tg, objs, path, **{**kw, "seed": 6})
    with pytest.raises(ValueError, match="more than the 4 planned"):
        simulate_summaries(table, tg, objs, path, **{**kw, "max_rows": 4})
    # a plan of whole batches (3 rows, batch 3) is served from the longer file unchanged, and
    # equals a fresh 3-row simulation
    before = path.read_bytes()
    three = simulate_summaries(table, tg, objs, path, **{**kw, "max_rows": 3})
    assert path.read_bytes() == before and three["done"] == 3
    fresh = simulate_summaries(table, tg, objs, tmp_path / "three.npz", **{**kw, "max_rows": 3})
    np.testing.assert_array_equal(three["m_sim"], fresh["m_sim"])
    np.testing.assert_array_equal(three["cdf"], fresh["cdf"])
    assert np.isfinite(fresh["m_sim"][rows[:3]]).any() and np.isnan(fresh["m_sim"][rows[3:]]).all()
    np.testing.assert_array_equal(
        load_summaries(path, table["G"].size, 20, max_rows=3)["cdf"], fresh["cdf"])
    with pytest.raises(ValueError, match="batches of 3, not 2"):
        simulate_summaries(table, tg, objs, path, **{**kw, "batch": 2})
    with pytest.raises(ValueError, match="20 CDF bins"):
        load_summaries(path, table["G"].size + 1, 20)


def test_more_bootstrap_groups_keep_the_first_ones():
    """AAL2: a larger n_boot adds distinct groups of training subjects after the shipped
    table's six (same names), never a held-out subject; every group, then an error."""
    from nmmfit.surrogate.targets import surrogate_targets, training_targets

    six = surrogate_targets("hcp_aal")
    every = surrogate_targets("hcp_aal", n_boot=None)
    names = [t.name for t in every["train"]]
    assert names[:len(six["train"])] == [t.name for t in six["train"]]
    boots = [n.split(":")[-1] for n in names if ":boot" in n]
    assert len(boots) == len(set(boots)) == 10  # C(4, 2) + C(4, 3)
    train_ids = {n.split(":")[1] for n in names if ":boot" not in n}
    held_out = {t.name.split(":")[1] for r in ("val", "test") for t in every[r]}
    assert all(set(b.split("+")) <= train_ids for b in boots) and not train_ids & held_out
    assert list(training_targets("hcp_aal")) == names  # the lookup covers every group
    with pytest.raises(ValueError, match=r"n_boot must be an int in \[0, 10\]"):
        surrogate_targets("hcp_aal", n_boot=11)


def test_plan_jobs_selects_kinds_and_targets(targets):
    jobs = plan_jobs(targets, {"train": 3}, seeds=(2, 3), kinds=("cmaes",), only=["a"])
    assert [(j.target, j.kind, j.seed, j.n_epochs) for j in jobs] == [
        ("a", "cmaes", 2, 3), ("a", "cmaes", 3, 3)]
    assert len(plan_jobs(targets, seeds=(0,))) == 2 * 4  # both kinds, every target
    with pytest.raises(ValueError, match=r"unknown target\(s\) \['z'\]"):
        plan_jobs(targets, only=["z"])
    with pytest.raises(ValueError, match="kinds must be"):
        plan_jobs(targets, kinds=("grid",))


def test_cli_export_writes_an_extension(store, tmp_path, capsys):
    from nmmfit.cli import main

    base = tmp_path / "base.npz"
    export_compact(store, base, exclude=[JOBS[3].run_id])
    ext = tmp_path / "ext.npz"
    assert main(["surrogate", "export", "--store", str(store), "--out", str(ext),
                 "--exclude", str(base), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["runs"] == 1 and compact_run_ids(ext) == [JOBS[3].run_id]
    assert main(["surrogate", "export", "--store", str(store), "--out", str(ext),
                 "--exclude", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz" in capsys.readouterr().err
