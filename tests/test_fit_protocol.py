"""Euler evaluator, the train/validation/test protocol, kill-and-resume, CLI and figures.

Everything runs on a 6-region synthetic target with 43 s simulations, so each test takes
seconds.
"""

import json
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from synthetic import sigkill_when, tiny_target

from nmmfit.data.target import Target
from nmmfit.fit import EulerEvaluator, Parametrisation, fit, get_preset, sim_config_for
from nmmfit.fit.store import Store
from nmmfit.sim import simulate
from nmmfit.stats.cost import SENTINEL_COST, fc_fcd_cost
from nmmfit.stats.fcd import FCDSpec

N = 6
#: preset overrides for a tiny, fast protocol run
TINY = dict(popsize=6, mu=3, n_epochs=4, duration_s=43.2, test_duration_s=43.2,
            burn_in_s=0.0, warmup_steps=200,
            n_dup_train=2, n_dup_val=2, n_dup_test=4, test_group=2, test_dt=0.003)


def _target(n=N, seed=0, name="tiny") -> Target:
    return tiny_target(n=n, seed=seed, name=name)


@pytest.fixture(scope="module")
def targets():
    return _target(seed=0, name="train"), _target(seed=1, name="val"), _target(seed=2,
                                                                               name="test")


def _fit(targets, store, **kw):
    tr, va, te = targets
    args = {**TINY, **kw}
    return fit(tr, va, te, preset="quick", maps=("m1", "m2"), store=store, seed=3, **args)


# ------------------------------------------------------------------------- evaluator


def test_euler_evaluator_matches_simulate_and_cost(targets):
    tr = targets[0]
    pre = get_preset("quick", **TINY)
    param = Parametrisation.from_target(tr, ("m1", "m2"))
    cfg = sim_config_for(tr, pre, "train")
    ev = EulerEvaluator(tr, param, config=cfg, n_dup=2)
    # four random starts (all invalid on this target) and two uniform candidates at the
    # gate-passing rate (wEE, wEI, G, sigma = 2, 1, 0.5, 0.001 and 1.5, 0.5, 0.2, 0.0005)
    uniform = np.zeros((2, param.dim))
    for row, vals in enumerate(((2.0, 1.0, 0.5, 0.001), (1.5, 0.5, 0.2, 0.0005))):
        for name, v in zip(("wEE:1", "wEI:1", "G", "sigma:1"), vals, strict=True):
            uniform[row, param.names.index(name)] = v
    x = np.concatenate([[param.initial_vector(np.random.default_rng(k)) for k in range(4)],
                        uniform])
    out = ev.evaluate(x, seed=11)
    assert out.terms.shape == (6, 3) and out.total.shape == (6,) and out.ei_map.shape == (6, N)
    reg = param.expand(x)
    res = simulate(tr.sc, reg.wEE, reg.wEI, reg.G, reg.sigma, config=cfg, n_dup=2, seed=11)
    ct = fc_fcd_cost(res.bold, tr, valid=res.valid)
    np.testing.assert_array_equal(out.total, ct.total)
    np.testing.assert_array_equal(out.valid, ct.valid)
    # E/I: the mean over each valid candidate's valid duplicates (needs valid candidates)
    ok = out.valid
    assert ok.any(), "no candidate is valid: the E/I check would test nothing"
    for i in np.flatnonzero(ok):
        v = res.valid[i]
        np.testing.assert_allclose(out.ei_map[i], res.ei_ratio[i][v].mean(axis=0))
        assert out.ei_mean[i] == pytest.approx(out.ei_map[i].mean())
    assert np.isnan(out.ei_map[~ok]).all()
    # same seed -> same scores; threads do not matter
    again = EulerEvaluator(tr, param, config=cfg, n_dup=2, threads=1).evaluate(x, seed=11)
    np.testing.assert_array_equal(out.total, again.total)


def test_invalid_candidates_get_the_sentinel(targets):
    tr = targets[0]
    param = Parametrisation.from_target(tr, ("m1", "m2"))
    cfg = replace(sim_config_for(tr, get_preset("quick", **TINY), "train"),
                  rate_gate=(100.0, 200.0))  # no simulation can pass this gate
    out = EulerEvaluator(tr, param, config=cfg, n_dup=1).evaluate(
        param.initial_vector(np.random.default_rng(0))[None], seed=0)
    assert not out.valid[0] and out.total[0] == 3 * SENTINEL_COST
    assert np.isnan(out.ei_mean[0]) and np.isnan(out.ei_map).all()


# -------------------------------------------------------------------------- protocol


def test_fit_protocol_result_and_resume(targets, tmp_path):
    db = tmp_path / "fit.db"
    res = _fit(targets, db)
    assert len(res.train.epochs) == 4
    assert res.val_total.shape == (4,) and list(res.val_epochs) == [0, 1, 2, 3]
    assert set(res.test_cost) == {"fc_corr", "fc_l1", "fcd_ks", "total"}
    t = res.test[0]
    assert t["n_groups"] == 2 and t["n_dup"] == 4
    assert res.ei_map.shape == (N,) and res.ei_map_std.shape == (N,)
    assert res.regional["wEE"].shape == (N,) and np.isscalar(res.regional["G"])
    # the tested candidate is the best validated one
    i = int(np.argmin(np.where(res.val_valid, res.val_total, np.inf)))
    np.testing.assert_array_equal(res.best_x, res.val_x[i])
    np.testing.assert_array_equal(res.val_x, [e.best_x for e in res.train.epochs])
    summ = res.summary()
    json.dumps(summ)  # JSON-ready
    assert summ["n_evaluations"] == 4 * 6
    with Store(db) as st:
        n_rows = st.count(res.run_id)
        assert st.count(res.run_id, "train") == 24 and st.count(res.run_id, "val") == 4
        cfg = st.run_config(res.run_id)
        assert cfg["seed"] == 3 and cfg["preset"]["search"]["popsize"] == 6
    # the same call resumes: nothing is re-evaluated and the result is identical
    again = _fit(targets, db)
    assert again.run_id == res.run_id
    with Store(db) as st:
        assert st.count(res.run_id) == n_rows
    assert again.test_cost == res.test_cost
    np.testing.assert_array_equal(again.ei_map, res.ei_map)
    # the best candidate's FCD matrix is kept, and a resumed run reads it back from the store
    assert res.sim_fcd is not None and res.sim_fcd.values.shape == (26, 26)
    np.testing.assert_array_equal(again.sim_fcd.values, res.sim_fcd.values)
    assert again.sim_fcd.label == res.sim_fcd.label
    assert res.emp_fcd is targets[2].fcd_matrix
    # resume=False starts afresh and reproduces it from the seed
    fresh = _fit(targets, db, resume=False)
    assert fresh.test_cost == res.test_cost
    np.testing.assert_array_equal(fresh.val_total, res.val_total)


def test_test_phase_summarises_each_duplicate_once(targets):
    """The test phase's group costs are the cost of the grouped duplicates, and its simulated
    FC and FCD CDF the mean FC and pooled FCD of all valid duplicates, from one summary."""
    from nmmfit.fit.heldout import score_candidate
    from nmmfit.stats import cdf_from_counts, fc_matrix, fcd_histogram

    te = targets[2]
    pre = get_preset("quick", **{**TINY, "n_dup_test": 6, "test_group": 2})
    param = Parametrisation.from_target(te, ("m1", "m2"))
    cfg = sim_config_for(te, pre, "test")
    x = param.initial_vector(np.random.default_rng(12))
    out = score_candidate(x, te, param, cfg, pre, 7, "numba", 1)
    reg = param.expand(x[None])
    res = simulate(te.sc, reg.wEE, reg.wEI, reg.G, reg.sigma, config=cfg, n_dup=6, seed=7,
                   threads=1)
    v = res.valid[0]
    assert out["n_valid_dups"] == int(v.sum()) > 0
    ct = fc_fcd_cost(res.bold[0].reshape(3, 2, N, -1), te, valid=v.reshape(3, 2),
                     warn_frames=False)
    assert out["n_valid_groups"] == int(ct.valid.sum())
    for k in ("fc_corr", "fc_l1", "fcd_ks", "total"):
        assert out[k] == getattr(ct, k)[ct.valid].mean()
    runs = res.bold[0][v]
    np.testing.assert_allclose(out["sim_fc"], fc_matrix(runs).mean(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out["sim_fcd_cdf"],
                                  cdf_from_counts(fcd_histogram(runs, te.fcd_spec).sum(axis=0)))


def test_test_phase_keeps_the_first_valid_duplicates_fcd_matrix(targets, monkeypatch):
    """The kept simulated FCD matrix is that of the first duplicate that enters the test's
    FC and FCD (here the second valid one: the first is marked invalid): fcd_matrix of that
    duplicate's BOLD, bit for bit, with window centres in seconds. (A float64 loop over
    windows is no reference here: in the start transient of these burn-in-free runs every
    window FC is close to 1 and float32 FCD entries differ from float64 by up to 1e-2;
    test_stats checks the sampled matrix against such a loop on well-conditioned BOLD.)"""
    import nmmfit.fit.heldout as heldout
    from nmmfit.stats import fcd_matrix

    te = targets[2]
    pre = get_preset("quick", **{**TINY, "n_dup_test": 6, "test_group": 2})
    param = Parametrisation.from_target(te, ("m1", "m2"))
    cfg = sim_config_for(te, pre, "test")
    x = param.initial_vector(np.random.default_rng(12))
    seen = {}

    def simulate_first_valid_dropped(*args, **kw):
        res = simulate(*args, **kw)
        ok = np.flatnonzero(res.valid[0])
        assert ok.size >= 2, "needs two valid duplicates to tell the first from the second"
        res.valid[0, ok[0]] = False
        seen["bold"], seen["k"] = res.bold[0].copy(), int(ok[1])
        return res

    monkeypatch.setattr(heldout, "simulate", simulate_first_valid_dropped)
    out = heldout.score_candidate(x, te, param, cfg, pre, 7, "numba", 1, keep_fcd=True)
    got, k = out["sim_fcd"], seen["k"]
    run = seen["bold"][k]
    assert got.label == f"test duplicate {k + 1} of 6 (the first valid one)"
    assert got.values.dtype == np.float32 and got.stride == 1
    np.testing.assert_array_equal(got.values, fcd_matrix(run, te.fcd_spec, threads=1))
    assert got.values.shape == (26, 26)  # 60 frames, 10-frame windows, step 2
    np.testing.assert_allclose(got.time_s, (np.arange(26) * 2 + 4.5) * cfg.tr)
    assert "sim_fcd" not in heldout.score_candidate(x, te, param, cfg, pre, 7, "numba", 1)


def test_extending_a_run_equals_a_longer_run(targets, tmp_path):
    db = tmp_path / "ext.db"
    short = _fit(targets, db, n_epochs=2)
    longer = _fit(targets, db, n_epochs=4)  # same run id: epochs 0-1 are reused
    assert longer.run_id == short.run_id and longer.train.resumed_from == 1
    ref = _fit(targets, tmp_path / "ref.db", n_epochs=4)
    np.testing.assert_array_equal(longer.val_total, ref.val_total)
    np.testing.assert_array_equal(longer.best_x, ref.best_x)
    assert longer.test_cost == ref.test_cost


def _exact_target(name="pinned") -> Target:
    """A 6-region target whose arrays are exact binary fractions, so that its bytes (and
    hashes) are the same on every platform."""
    n = 6
    i, j = np.indices((n, n))
    sc = ((i + j) % 4 + 1) / 8.0
    np.fill_diagonal(sc, 0)
    fc = np.where(i == j, 1.0, ((i * j) % 3) / 4.0 - 0.25)
    maps = {"m1": np.array([-1.5, -1.0, -0.5, 0.5, 1.0, 1.5]),
            "m2": np.array([0.25, -0.75, 1.0, -0.5, 0.0, 0.5])}
    return Target(sc=sc, fc=fc, fcd_cdf=np.arange(1, 65) / 64.0,
                  fcd_spec=FCDSpec(window_frames=10, step_frames=2, n_bins=64), maps=maps,
                  tr=0.72, n_frames=60, name=name, sc_normalisation="custom")


def test_target_fingerprint_and_run_id_are_pinned(tmp_path):
    """Run ids hash the targets' fingerprints: stored runs are found again only while both
    stay what they were (values computed with the code that wrote the stored runs)."""
    tgt = _exact_target()
    assert tgt.fingerprint() == {"name": "pinned", "n_regions": 6, "tr": 0.72,
                                 "sha256": "eb237ab50e94c61b"}
    res = fit(tgt, preset="quick", maps=("m1", "m2"), store=tmp_path / "pin.db", seed=3,
              threads=1, **{**TINY, "n_epochs": 1})
    assert res.run_id == "cmaes-3bbecf096ab40052"
    assert res.config["targets"]["train"] == tgt.fingerprint()


def test_distinct_top_skips_repeats_and_near_copies(targets):
    """Zhang's test selection: an exact repeat, or a candidate whose wEE, wEI and sigma
    profiles all correlate > 0.98 with a chosen one, is passed over."""
    from nmmfit.fit.heldout import distinct_top

    param = Parametrisation.from_target(targets[0], ("m1", "m2"))
    x0 = param.initial_vector(np.random.default_rng(0))
    scaled = x0.copy()
    scaled[param.names.index("wEE:m1")] *= 1.01  # same profiles up to a hair: a near copy
    other = x0.copy()
    for name in ("wEE:m1", "wEI:m1", "sigma:m1"):  # profiles along the other map
        other[param.names.index(name)] = 0.0
    xs = np.array([x0, x0, scaled, other])
    assert distinct_top(np.arange(4), xs, param, k=3) == [0, 3]
    assert distinct_top(np.array([3, 2, 1, 0]), xs, param, k=3) == [3, 2]
    assert distinct_top(np.arange(4), xs, param, k=1) == [0]
    assert distinct_top(np.arange(4), xs, param, k=4, thr=1.0) == [0, 2, 3]


def test_random_search_uses_the_same_protocol(targets, tmp_path):
    res = _fit(targets, tmp_path / "r.db", search="random", n_epochs=2)
    assert res.run_id.startswith("random-") and len(res.train.epochs) == 2
    assert res.val_total.shape == (2,)


def test_bad_configuration_errors(targets, tmp_path):
    tr, va, te = targets
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        fit(tr, va, te, preset="nope", store=tmp_path / "x.db")
    other = _target(n=N + 1, seed=5, name="seven")
    with pytest.raises(ValueError, match=r"target 'seven' has SC \(7, 7\).*6 regions"):
        fit(tr, other, te, preset="quick", maps=("m1", "m2"), store=tmp_path / "x.db")
    with pytest.raises(ValueError, match=r"bounds\['G'\] = \(2.0, 1.0\): min > max"):
        fit(tr, va, te, preset="quick", maps=("m1", "m2"), bounds={"G": (2.0, 1.0)},
            store=tmp_path / "x.db")
    with pytest.raises(ValueError, match=r"maps \['myelin'\] are not in target"):
        fit(tr, va, te, preset="quick", maps=("myelin",), store=tmp_path / "x.db")
    with pytest.raises(ValueError, match="unknown preset settings"):
        get_preset("quick", n_epoch=3)
    with pytest.raises(ValueError, match="multiple of test_group"):
        get_preset("quick", n_dup_test=7, test_group=2)
    # maps with the wrong length for the SC
    with pytest.raises(ValueError, match=r"maps\['m1'\] has shape \(5,\).*6 regions"):
        Parametrisation({"m1": np.zeros(5) + np.arange(5)}, n_regions=N)


# --------------------------------------------------------------------- kill & resume

_CHILD = """
import sys, time
from nmmfit.data.target import Target
from nmmfit.fit import fit
d, store = sys.argv[1], sys.argv[2]
tr, va, te = (Target.load(d + "/" + k + ".npz") for k in ("train", "val", "test"))
def slow(phase, info):
    if phase == "train":
        time.sleep(0.4)  # widen the window in which the parent kills us
fit(tr, va, te, preset="quick", maps=("m1", "m2"), store=store, seed=3, run_id="killme",
    callback=slow, **TINY_SETTINGS)
"""


def _last_epoch(db: Path) -> int:
    if not db.exists():
        return -1
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute("SELECT MAX(epoch) FROM epochs WHERE run_id = 'killme' AND "
                              "phase = 'train'").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError:
        return -1
    return -1 if row[0] is None else int(row[0])


def test_killed_fit_resumes_to_the_same_result(targets, tmp_path):
    tiny = {**TINY, "n_epochs": 5}
    for t, k in zip(targets, ("train", "val", "test"), strict=True):
        t.save(tmp_path / f"{k}.npz")
    script = tmp_path / "child.py"
    script.write_text(f"TINY_SETTINGS = {tiny!r}\n" + _CHILD)
    db = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(db)])
    k = 1
    sigkill_when(proc, lambda: _last_epoch(db) >= k)
    killed_at = _last_epoch(db)
    assert k <= killed_at < tiny["n_epochs"] - 1
    with Store(db) as st:  # nothing of later phases, no half-written epoch
        assert st.count("killme", "val") == 0
        assert st.count("killme", "train") == 6 * (killed_at + 1)
    tr, va, te = targets
    resumed = fit(tr, va, te, preset="quick", maps=("m1", "m2"), store=db, seed=3,
                  run_id="killme", **tiny)
    assert resumed.train.resumed_from == killed_at
    ref = fit(tr, va, te, preset="quick", maps=("m1", "m2"), store=tmp_path / "ref.db", seed=3,
              run_id="killme", **tiny)
    with Store(db) as a, Store(tmp_path / "ref.db") as b:
        ea, eb = a.evaluations("killme"), b.evaluations("killme")
    np.testing.assert_array_equal(ea["params"], eb["params"])
    np.testing.assert_array_equal(ea["total"], eb["total"])
    assert ea["phase"] == eb["phase"]
    np.testing.assert_array_equal(resumed.best_x, ref.best_x)
    assert resumed.test_cost == ref.test_cost
    np.testing.assert_array_equal(resumed.ei_map, ref.ei_map)
    np.testing.assert_array_equal(resumed.val_total, ref.val_total)


# ------------------------------------------------------------------------ CLI, figures


def _parser():
    from nmmfit.cli import build_parser

    return build_parser()  # the console command's parser: `fit` must be registered there


def _tiny_fit_args(targets, tmp_path, *extra):
    """Parsed ``nmmfit fit`` arguments on the saved tiny targets (2 epochs, lambda 4)."""
    for t, k in zip(targets, ("train", "val", "test"), strict=True):
        t.save(tmp_path / f"{k}.npz")
    return _parser().parse_args([
        "fit", "--train", str(tmp_path / "train.npz"), "--val", str(tmp_path / "val.npz"),
        "--test", str(tmp_path / "test.npz"), "--maps", "m1", "m2", "--epochs", "2",
        "--popsize", "4", "--mu", "2", "--n-dup", "1", "--n-dup-test", "2", "--test-group", "2",
        *extra])


def test_cli_fit_json_and_figures(targets, tmp_path, capsys):
    args = _tiny_fit_args(targets, tmp_path, "--store", str(tmp_path / "cli.db"), "--out",
                          str(tmp_path / "out"), "--json")
    assert args.func.__name__ == "cmd_fit"
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_epochs"] == 2 and set(out["test_cost"]) == {"fc_corr", "fc_l1", "fcd_ks",
                                                             "total"}
    figs = [Path(f) for f in out["figures"]]
    assert [f.name for f in figs] == ["fit_cost.png", "fit_fc.png", "fit_fcd.png",
                                      "fit_maps.png", "fit_ei.png"]
    assert all(f.stat().st_size > 5000 for f in figs)
    assert (tmp_path / "out" / "summary.json").exists()
    # the saved result is the fit that was printed
    from nmmfit.fit import FitResult

    back = FitResult.load(out["result_file"])
    assert back.test_cost == out["test_cost"] and back.run_id == out["run_id"]


def test_cli_fit_bad_preset(tmp_path, capsys):
    args = _parser().parse_args(["fit", "--preset", "nope", "--store", str(tmp_path / "c.db")])
    assert args.func(args) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_cli_fit_several_seeds_reports_the_best_validated(targets, tmp_path, capsys):
    args = _tiny_fit_args(targets, tmp_path, "--seed", "0", "1", "--store",
                          str(tmp_path / "s.db"), "--out", str(tmp_path / "o"), "--no-figures",
                          "--json")
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    seeds = out["seeds"]
    assert [s["seed"] for s in seeds] == [0, 1]
    assert len({s["run_id"] for s in seeds}) == 2
    best = min(seeds, key=lambda s: float("inf") if s["best_val_cost"] is None
               else s["best_val_cost"])  # null: no valid validation candidate
    assert [s["chosen"] for s in seeds].count(True) == 1 and best["chosen"]
    assert out["seed"] == best["seed"] and out["best_val_cost"] == best["best_val_cost"]
    assert out["test_cost"] == best["test_cost"]


def test_best_by_validation_ignores_test_costs_and_invalid_fits():
    from types import SimpleNamespace

    from nmmfit.fit import best_by_validation

    a = SimpleNamespace(best_val_cost=0.9, test_cost={"total": 0.5})
    b = SimpleNamespace(best_val_cost=0.7, test_cost={"total": 1.5})
    nan = SimpleNamespace(best_val_cost=float("nan"), test_cost={"total": 0.1})
    assert best_by_validation([a, nan, b]) is b
    with pytest.raises(ValueError, match="none of the 1 fits"):
        best_by_validation([nan])
    with pytest.raises(ValueError, match="none of the 0 fits"):
        best_by_validation([])
