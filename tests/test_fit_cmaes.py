"""CMA-ES driver (pycma), weights, rejection sampling, restarts and the store (fake evaluator)."""

import pickle

import numpy as np
import pytest

from nmmfit.fit.cmaes import (
    CMAESConfig,
    CMAESSampler,
    RandomSampler,
    SamplingError,
    epoch_seed,
    recombination_weights,
    run_search,
)
from nmmfit.fit.evaluator import Evaluation, Evaluator
from nmmfit.fit.parametrise import Parametrisation
from nmmfit.fit.store import EpochRecord, Store

N = 10
TRUTH = np.array([4.0, 0.5, -0.3, 2.5, 0.2, 0.1, 1.2, 0.004, 0.0005, 0.0002])


def _param() -> Parametrisation:
    rng = np.random.default_rng(0)
    return Parametrisation({"m1": rng.standard_normal(N), "m2": rng.standard_normal(N)})


class _Target:
    name = "fake"
    meta = {"dataset": "synthetic"}


class QuadEvaluator(Evaluator):
    """Scaled squared distance to TRUTH, split into three 'terms'; optional invalid mask."""

    name = "quad"

    def __init__(self, param, invalid_if=None):
        self.parametrisation = param
        self.target = _Target()
        self.invalid_if = invalid_if
        self.scale = param.initial_stds(TRUTH)
        self.calls = 0

    def describe(self):
        return {"evaluator": "quad"}

    def evaluate(self, x, seed):
        self.calls += 1
        d = (np.asarray(x) - TRUTH) / self.scale
        t = np.stack([np.sum(d[:, :3] ** 2, 1), np.sum(d[:, 3:7] ** 2, 1),
                      np.sum(d[:, 7:] ** 2, 1)], 1)
        valid = np.ones(len(x), bool) if self.invalid_if is None else ~self.invalid_if(x)
        t[~valid] = 5.0
        p = len(x)
        return Evaluation(terms=t, total=t.sum(1), valid=valid, n_valid=valid.astype(int),
                          ei_mean=np.full(p, 1.5), ei_map=np.full((p, N), 1.5), wall_s=0.0)


def _run(tmp_path, name, cfg, seed=1, kind="cmaes", ev=None, store=None):
    st = store or Store(tmp_path / f"{name}.db")
    st.ensure_run(name, {"cfg": cfg.as_dict(), "kind": kind})
    ev = ev or QuadEvaluator(_param())
    h = run_search(ev, cfg, seed=seed, store=st, run_id=name, kind=kind)
    return h, st


def test_recombination_weights():
    tot = np.array([0.5, 1.0, 2.0, 4.0])
    w = recombination_weights("inverse_loss", tot, mu=3)
    np.testing.assert_allclose(w, np.array([2.0, 1.0, 0.5]) / 3.5)
    w = recombination_weights("log", tot, mu=3)
    ref = np.log(3.5) - np.log([1, 2, 3])
    np.testing.assert_allclose(w, ref / ref.sum())
    np.testing.assert_allclose(recombination_weights("equal", tot, mu=2), [0.5, 0.5])
    # fewer valid children than mu: only those
    np.testing.assert_allclose(recombination_weights("inverse_loss", tot[:1], mu=3), [1.0])
    with pytest.raises(ValueError):
        recombination_weights("inverse_loss", np.zeros(0), mu=3)


def test_pycma_mean_is_inverse_loss_weighted_recombination():
    """After one tell, pycma's mean is sum_i w_i x_(i) with DELSSOME's 1/loss weights."""
    param = _param()
    s = CMAESSampler(param, CMAESConfig(popsize=12, mu=4, weights="inverse_loss"), seed=3)
    x, _ = s.ask()
    ev = QuadEvaluator(param).evaluate(x, 0)
    valid = np.ones(12, bool)
    valid[np.argmin(ev.total)] = False  # the best child is invalid: it must get no weight
    s.tell(x, ev.total, valid)
    order = np.argsort(np.where(valid, ev.total, np.inf))[:4]
    w = (1 / ev.total[order]) / (1 / ev.total[order]).sum()
    np.testing.assert_allclose(s.mean, w @ x[order], rtol=1e-10, atol=1e-14)


class _PlainPycmaSampler(CMAESSampler):
    """The sampler as plain pycma usage: ``ask`` with its archive of sent solutions, and
    ``tell`` with its default point checks (the reference for the shortcut)."""

    def __init__(self, *args, **kwargs):
        from cma.evolution_strategy import get_CMASolutionDict

        super().__init__(*args, **kwargs)
        self.es.sent_solutions = get_CMASolutionDict(True)()

    def ask(self):
        lam = self.config.popsize
        accepted, draws = [], 0
        while len(accepted) < lam:
            n = max(lam, 2 * (lam - len(accepted)))
            batch = np.asarray(self.es.ask(n), dtype=float)
            draws += n
            ok = self.param.in_bounds(batch)
            for x in batch[~ok]:
                self.es.sent_solutions.pop(x, None)
            accepted.extend(batch[ok])
        return np.array(accepted[:lam]), draws

    def tell(self, x, total, valid):
        es_tell = self.es.tell
        self.es.tell = lambda xs, f, **kw: es_tell(xs, f)  # pycma's default check_points
        try:
            super().tell(x, total, valid)
        finally:
            del self.es.tell


def test_sampler_draws_and_updates_as_plain_pycma():
    """ask_geno without pycma's archive is only a shortcut: every child, draw count, mean and
    step size equal those of pycma's own ask / tell, bit for bit."""
    param = _param()
    cfg = CMAESConfig(popsize=20, mu=5, sigma0=0.6)
    fast, ref = CMAESSampler(param, cfg, seed=4), _PlainPycmaSampler(param, cfg, seed=4)
    ev = QuadEvaluator(param, invalid_if=lambda x: x[:, 0] > 4.5)
    for epoch in range(8):
        (x, n), (x_ref, n_ref) = fast.ask(), ref.ask()
        np.testing.assert_array_equal(x, x_ref)
        assert n == n_ref and n > cfg.popsize  # some draws were rejected
        e = ev.evaluate(x, epoch)
        fast.tell(x, e.total, e.valid)
        ref.tell(x_ref, e.total, e.valid)
        np.testing.assert_array_equal(fast.mean, ref.mean)
        assert fast.sigma == ref.sigma


def test_rejection_sampling_and_cap():
    param = _param()
    s = CMAESSampler(param, CMAESConfig(popsize=30, mu=5, sigma0=0.5), seed=0)
    x, draws = s.ask()
    assert x.shape == (30, 10) and param.in_bounds(x).all()
    assert draws >= 30
    # an impossible box: every draw is rejected -> clear error at the cap
    param.bounds["wEE"] = (100.0, 101.0)
    s.config = CMAESConfig(popsize=30, mu=5, max_draws=500)
    with pytest.raises(SamplingError, match=r"cap max_draws=500.*wEE: \d+/"):
        s.ask()


def test_cmaes_converges_and_beats_random(tmp_path):
    cfg = CMAESConfig(popsize=16, mu=4, n_epochs=40)
    h, _ = _run(tmp_path, "c", cfg)
    hr, _ = _run(tmp_path, "r", cfg, kind="random")
    assert len(h.epochs) == 40 and len(hr.epochs) == 40
    assert h.best_so_far[-1] < 0.05 * h.best_so_far[0]
    assert h.best_so_far[-1] < hr.best_so_far[-1]
    best = h.best()
    assert np.abs(best.best_x - TRUTH).max() < 0.5


def test_seeds_are_explicit_and_reproducible(tmp_path):
    cfg = CMAESConfig(popsize=8, mu=3, n_epochs=3)
    a, sa = _run(tmp_path, "a", cfg, seed=5)
    b, sb = _run(tmp_path, "b", cfg, seed=5)
    c, _ = _run(tmp_path, "c", cfg, seed=6)
    np.testing.assert_array_equal(sa.evaluations("a")["params"], sb.evaluations("b")["params"])
    assert not np.array_equal(a.epochs[0].best_x, c.epochs[0].best_x)
    # pycma never touched the global numpy state
    st0 = np.random.get_state()[1].copy()  # noqa: NPY002
    _run(tmp_path, "d", cfg, seed=5)
    np.testing.assert_array_equal(st0, np.random.get_state()[1])  # noqa: NPY002
    assert epoch_seed(5, 0) != epoch_seed(5, 1) and epoch_seed(5, 0) == epoch_seed(5, 0)


def test_resume_in_process_gives_identical_rows(tmp_path):
    full_cfg = CMAESConfig(popsize=10, mu=3, n_epochs=6)
    _, s_full = _run(tmp_path, "full", full_cfg, seed=2)
    # a run that stopped after 3 epochs, then is resumed with the same store and run id
    st = Store(tmp_path / "part.db")
    st.ensure_run("part", {"x": 1})
    ev = QuadEvaluator(_param())
    run_search(ev, CMAESConfig(popsize=10, mu=3, n_epochs=3), seed=2, store=st,
               run_id="part")
    calls_before = ev.calls
    h = run_search(ev, full_cfg, seed=2, store=st, run_id="part")
    assert ev.calls - calls_before == 3  # only the missing epochs were evaluated
    assert h.resumed_from == 2 and len(h.epochs) == 6
    a, b = s_full.evaluations("full"), st.evaluations("part")
    np.testing.assert_array_equal(a["params"], b["params"])
    np.testing.assert_array_equal(a["total"], b["total"])


def test_restart_when_no_valid_child(tmp_path):
    cfg = CMAESConfig(popsize=8, mu=3, n_epochs=4, restarts=2)
    ev = QuadEvaluator(_param(), invalid_if=lambda x: np.ones(len(x), bool))
    h, st = _run(tmp_path, "x", cfg, ev=ev)
    infos = [e.info for e in h.epochs]
    assert infos[0].get("restarted") == 1 and infos[1].get("restarted") == 2
    assert "restarted" not in infos[2]  # no restart left: keeps going, never crashes
    assert [r["restart"] for r in st.epoch_rows("x")] == [0, 1, 2, 2]
    assert all(not e.best_valid for e in h.epochs)


def test_random_sampler_in_bounds():
    param = _param()
    s = RandomSampler(param, CMAESConfig(popsize=50, mu=5), seed=0)
    x, draws = s.ask()
    assert param.in_bounds(x).all() and draws > 50
    s2 = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(s.ask()[0], s2.ask()[0])


def test_config_errors():
    with pytest.raises(ValueError, match="mu = 20 exceeds popsize = 10"):
        CMAESConfig(popsize=10, mu=20)
    with pytest.raises(ValueError, match="weights must be one of"):
        CMAESConfig(weights="nope")
    with pytest.raises(ValueError, match="3 positive numbers"):
        CMAESConfig(popsize=6, mu=3, weights=(1.0, 2.0))
    assert CMAESConfig(popsize=6, mu=2, weights=[2, 1]).weights == (2.0, 1.0)
    with pytest.raises(ValueError, match="sigma0"):
        CMAESConfig(sigma0=-1.0)


# ---------------------------------------------------------------------------- store


def _rec(p=3, n=4, seed=7):
    rng = np.random.default_rng(seed)
    return EpochRecord(x=rng.standard_normal((p, 10)), terms=rng.random((p, 3)),
                       total=rng.random(p), valid=np.array([True, False, True][:p]),
                       n_valid=np.array([2, 0, 1][:p]), ei_mean=np.array([1.2, np.nan, 1.3][:p]),
                       ei_map=np.array([np.full(n, 1.2), np.full(n, np.nan),
                                        np.full(n, 1.3)])[:p], seed=seed, wall_s=0.3)


def test_store_roundtrip_and_config_hash(tmp_path):
    with Store(tmp_path / "s.db") as st:
        assert st.ensure_run("r", {"a": 1}) is False
        assert st.ensure_run("r", {"a": 1}) is True
        with pytest.raises(ValueError, match="config hash"):
            st.ensure_run("r", {"a": 2})
        rec = _rec()
        st.write_epoch("r", "train", 0, rec, state=b"abc", n_draws=9, info={"k": 1},
                       dataset="d", target="t", engine="numba")
        ev = st.evaluations("r", "train")
        np.testing.assert_array_equal(ev["params"], rec.x)  # float64 exact through JSON
        np.testing.assert_array_equal(ev["terms"], rec.terms)
        assert list(ev["valid"]) == [True, False, True]
        assert np.isnan(ev["ei_mean"][1]) and np.isnan(ev["ei_map"][1]).all()
        assert ev["ei_map"][0, 0] == 1.2
        assert st.last_epoch("r") == 0 and st.last_epoch("r", "val") == -1
        state, info = st.epoch_state("r", "train", 0)
        assert state == b"abc" and info == {"k": 1}
        st.put_artefact("r", "a", {"z": np.arange(3)}, {"u": 2})
        arr, inf = st.get_artefact("r", "a")
        np.testing.assert_array_equal(arr["z"], np.arange(3))
        assert inf == {"u": 2}
        st.delete_run("r")
        assert st.count() == 0 and st.last_epoch("r") == -1


def test_store_epoch_is_atomic(tmp_path):
    with Store(tmp_path / "s.db") as st:
        st.ensure_run("r", {})
        bad = _rec()
        bad.n_valid = np.array([1])  # too short: fails after the first row was inserted
        with pytest.raises(IndexError):
            st.write_epoch("r", "train", 0, bad)
        assert st.count("r") == 0 and st.last_epoch("r") == -1
        with pytest.raises(ValueError, match="unknown run"):
            st.write_epoch("nope", "train", 0, _rec())


def test_epoch_record_from_evaluation_stores_the_same_rows(tmp_path):
    rec = _rec()
    ev = Evaluation(terms=rec.terms, total=rec.total, valid=rec.valid, n_valid=rec.n_valid,
                    ei_mean=rec.ei_mean, ei_map=rec.ei_map, wall_s=9.0, meta={"k": 1})
    same = EpochRecord.from_evaluation(rec.x, ev, seed=rec.seed, wall_s=rec.wall_s)
    assert isinstance(same, Evaluation) and len(same) == 3 and same.meta == {"k": 1}
    np.testing.assert_array_equal(same.term("fc_l1"), rec.terms[:, 1])
    assert EpochRecord.from_evaluation(rec.x, ev, seed=1).wall_s == 9.0
    rows = []
    for name, r in (("a", rec), ("b", same)):
        with Store(tmp_path / f"{name}.db") as st:
            st.ensure_run("r", {})
            st.write_epoch("r", "train", 0, r, dataset="d", target="t", engine="numba")
            rows.append(st.conn.execute(
                "SELECT run_id, phase, epoch, candidate, params, fc_corr, fc_l1, fcd_ks, total, "
                "valid, n_valid, ei_mean, ei_map, seed, wall_s FROM evaluations "
                "ORDER BY id").fetchall())
    assert len(rows[0]) == 3 and rows[0] == rows[1]
