"""The papers' train / validation / test protocol: :func:`fit`.

Zhang et al. 2024 (pFIC) and Zeng et al. 2026 (DELSSOME).

1. **Train**: CMA-ES over the map coefficients against the training Target; every child is
   scored by the training evaluator (Euler by default: ``n_dup_train`` duplicates at
   ``train_dt``). A surrogate evaluator may replace it; validation and test stay Euler.
2. **Validation**: the best child of every training epoch is re-simulated at ``val_dt`` with
   ``n_dup_val`` duplicates against the validation Target (its own SC).
3. **Test**: the ``test_top`` best validated candidates, distinct by Zhang's rule, are
   simulated ``n_dup_test`` times at ``test_dt`` against the test Target and scored in groups
   of ``test_group`` duplicates (:mod:`nmmfit.fit.heldout`). The FCD matrix of the first valid
   test duplicate of the best candidate is kept for figures (``FitResult.sim_fcd``; stored
   as the run's artefact ``test0_fcd``, so a resumed run returns it too).

The settings of the phases are a :class:`~nmmfit.fit.presets.Preset`; the default data are
:func:`~nmmfit.fit.presets.default_targets`; the outcome is a
:class:`~nmmfit.fit.result.FitResult`. Everything is stored (:mod:`nmmfit.fit.store`); running
the same call again resumes.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

import nmmfit
from nmmfit.fit.cmaes import SearchHistory, epoch_seed, run_search
from nmmfit.fit.evaluator import EulerEvaluator, Evaluator, check_target_regions
from nmmfit.fit.heldout import distinct_top, score_candidate
from nmmfit.fit.parametrise import Parametrisation
from nmmfit.fit.presets import Preset, get_preset, sim_config_for
from nmmfit.fit.result import FitResult, regional_dict
from nmmfit.fit.spotcheck import SpotCheckEvaluator
from nmmfit.fit.store import EpochRecord, Store, config_hash
from nmmfit.fit.warm_start import INITS, linear_fc_start
from nmmfit.sim import SimConfig
from nmmfit.stats.cost import TERM_NAMES
from nmmfit.stats.fcd import FCDMatrix

__all__ = ["fit", "DEFAULT_STORE"]

#: Default store path (relative to the working directory).
DEFAULT_STORE = "nmmfit_fit.db"


def _versions() -> dict[str, str]:
    import cma
    import numba
    import scipy

    return {"nmmfit": nmmfit.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__, "cma": cma.__version__,
            "python": platform.python_version()}


def fit(train, val=None, test=None, *, preset: str | Preset = "quick",
        maps: Sequence[str] | None = ("myelin", "fc_gradient"),
        bounds: Mapping[str, Sequence[float]] | None = None,
        wei_rule: str | Sequence[float] | None = None,
        spatial_constraint: Mapping[str, int] | None = None,
        seed: int = 0, engine: str = "numba", threads: int | None = None,
        store: str | Path | Store = DEFAULT_STORE, run_id: str | None = None,
        resume: bool = True, evaluator: Evaluator | None = None, search: str = "cmaes",
        progress: bool = False, callback: Callable[[str, dict], None] | None = None,
        spot_check: int = 0, init: str | None = None, **overrides) -> FitResult:
    """Fit the pFIC model: CMA-ES training, per-epoch validation, test.

    Parameters
    ----------
    train, val, test : Targets (val defaults to train, test to val). All must have the
        training SC's region count.
    preset : "paper", "quick" or a :class:`Preset`; ``overrides`` replace its fields (e.g.
        ``n_epochs=5, popsize=10, n_dup_test=20``).
    maps, bounds, wei_rule, spatial_constraint : see
        :meth:`~nmmfit.fit.parametrise.Parametrisation.from_target` (maps of ``train``).
    seed : run seed; every sampling and noise seed derives from it.
    engine, threads : simulation engine and CPU threads.
    store : SQLite path or an open :class:`Store`.
    run_id : default ``"<search>-<config hash>"``, so the same call resumes.
    resume : False deletes a stored run with this id and starts afresh.
    evaluator : training evaluator (default :class:`EulerEvaluator` with the preset); e.g. a
        surrogate. Validation and test are always Euler.
    spot_check : with a non-Euler ``evaluator``, simulate this many of its best-scored
        candidates per epoch at the training setting and use their simulated scores
        (:class:`~nmmfit.fit.spotcheck.SpotCheckEvaluator`); 0 = off.
    search : "cmaes", or "random" (the baseline: same budget, no learning).
    init : where CMA-ES starts: "paper" (DELSSOME's random in-bounds draw) or "linear_fc"
        (the vector whose closed-form linearised FC best matches ``train.fc``, found in about
        two minutes for 100 regions; :mod:`nmmfit.fit.warm_start`). None = the preset's
        (``Preset.init``; "paper" for ``search="random"``, which has no start). Stored in the
        run's config (``config["init"]``, and the start vector as ``preset.search.x0``).
    progress : show tqdm progress bars; callback : called as callback(phase, info).

    Returns
    -------
    :class:`~nmmfit.fit.result.FitResult`.
    """
    pre = get_preset(preset, **overrides)
    if search not in ("cmaes", "random"):
        raise ValueError(f"search must be 'cmaes' or 'random', got {search!r}")
    val = train if val is None else val
    test = val if test is None else test
    param = (evaluator.parametrisation if evaluator is not None else
             Parametrisation.from_target(train, maps, bounds=bounds, wei_rule=wei_rule,
                                         spatial_constraint=spatial_constraint))
    for tgt, role in ((train, "training"), (val, "validation"), (test, "test")):
        check_target_regions(tgt, param.n_regions, what=f"the {role} parametrisation/SC")
    if init is None:
        init = pre.init if search == "cmaes" else "paper"
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if init != "paper" and search != "cmaes":
        raise ValueError(f"init={init!r} sets CMA-ES's start; search={search!r} has none")
    if spot_check and (evaluator is None or isinstance(evaluator, EulerEvaluator)):
        raise ValueError("spot_check re-scores a surrogate's candidates by simulation; pass "
                         "a surrogate evaluator (evaluator=...) or spot_check=0")
    if evaluator is None:
        evaluator = EulerEvaluator(train, param, config=sim_config_for(train, pre, "train"),
                                   n_dup=pre.n_dup_train, engine=engine, threads=threads)
    elif spot_check:
        evaluator = SpotCheckEvaluator.at_training_setting(evaluator, pre, spot_check,
                                                           engine=engine, threads=threads)
    val_ev = EulerEvaluator(val, param, config=sim_config_for(val, pre, "val"),
                            n_dup=pre.n_dup_val, engine=engine, threads=threads)
    test_cfg = sim_config_for(test, pre, "test")
    warm = None
    if init == "linear_fc":
        if callback is not None:
            callback("init", {"init": init})
        warm = linear_fc_start(train, param, seed=seed, n_iter=pre.init_iter)
        pre = replace(pre, search=replace(pre.search, x0=tuple(float(v) for v in warm.x)))
    config = {
        "preset": pre.as_dict(), "search": search, "seed": int(seed),
        "parametrisation": param.describe(), "train_evaluator": evaluator.describe(),
        "val_evaluator": val_ev.describe(), "test_sim": test_cfg.as_dict(),
        "targets": {"train": train.fingerprint(), "val": val.fingerprint(),
                    "test": test.fingerprint()},
    }
    if warm is not None:  # (runs with the paper's start keep the configs and hashes they had)
        config["init"] = {"init": init, **{k: v for k, v in warm.as_dict().items()
                                           if k != "wall_s"}}
    # n_epochs is left out of the hash: epoch e never depends on it, so re-running with more
    # epochs extends a stored run and gives what an uninterrupted longer run would give; the
    # preset's free-text note and name do not change results either
    hashed = {**config, "preset": {**config["preset"], "note": None, "name": None,
                                   "search": {**config["preset"]["search"], "n_epochs": None}}}
    rid = run_id or f"{search}-{config_hash(hashed)}"
    own = not isinstance(store, Store)
    st = Store(store) if own else store
    versions = _versions()
    try:
        if not resume:
            st.delete_run(rid)
        st.ensure_run(rid, hashed, dataset=str(train.meta.get("dataset", "")),
                      target=train.name, kind=search, seed=seed, engine=engine,
                      versions=versions)
        t0 = time.perf_counter()
        log.info("run %s: train %s, %d epochs of %d (%s) against %s", rid, search,
                 pre.search.n_epochs, pre.search.popsize, evaluator.name, train.name)
        history = _train(evaluator, pre, seed, st, rid, search, progress, callback)
        t1 = time.perf_counter()
        log.info("run %s: trained in %.1f s; validate on %s", rid, t1 - t0, val.name)
        val_rows = _validate(history, val_ev, seed, st, rid, progress, callback)
        t2 = time.perf_counter()
        log.info("run %s: validated in %.1f s; test on %s (%d duplicates, dt %g s)", rid,
                 t2 - t1, test.name, pre.n_dup_test, test_cfg.dt)
        tests, sim_fcd = _test(val_rows, param, test, test_cfg, pre, seed, engine, threads,
                               st, rid, callback, progress)
        t3 = time.perf_counter()
        n_ep = pre.search.n_epochs  # a store may hold more epochs of this run than asked
        epochs = [e for e in st.epoch_rows(rid, "train") if e["epoch"] < n_ep]
        walls = np.array([e["wall_s"] for e in epochs])
        timings = {"train_s_this_call": t1 - t0, "val_s_this_call": t2 - t1,
                   "test_s_this_call": t3 - t2,
                   "seconds_per_epoch": float(walls.mean()) if walls.size else float("nan"),
                   "train_s_total": float(walls.sum()),
                   "val_s_total": float(sum(e["wall_s"] for e in st.epoch_rows(rid, "val")
                                            if e["epoch"] < n_ep)),
                   "test_s_total": float(sum(t.get("sim_s", 0.0) for t in tests))}
        if warm is not None:
            timings["init_s_this_call"] = warm.wall_s
    finally:
        if own:
            st.close()
    best = tests[0]
    bx = np.asarray(best["x"])
    return FitResult(
        run_id=rid, preset=pre.name, seed=int(seed), config=config, parametrisation=param,
        best_x=bx, regional=regional_dict(param.expand(bx[None])), train=history,
        val_epochs=val_rows["epoch"], val_terms=val_rows["terms"], val_total=val_rows["total"],
        val_valid=val_rows["valid"], val_x=val_rows["x"],
        test=tests, test_cost={k: best[k] for k in (*TERM_NAMES, "total")},
        ei_map=np.asarray(best["ei_map"]), ei_map_std=np.asarray(best["ei_map_std"]),
        sim_fc=np.asarray(best["sim_fc"]), sim_fcd_cdf=np.asarray(best["sim_fcd_cdf"]),
        emp_fc=test.fc, emp_fcd_cdf=test.fcd_cdf, timings=timings, versions=versions,
        store_path=str(st.path), region_labels=test.region_labels, sim_fcd=sim_fcd,
        emp_fcd=test.fcd_matrix)


log = logging.getLogger(__name__)


def _bar(progress: bool, total: int, initial: int, desc: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="epoch")


def _train(evaluator, pre: Preset, seed: int, st: Store, rid: str, search: str,
           progress: bool, callback) -> SearchHistory:
    done = st.last_epoch(rid, "train") + 1
    bar = _bar(progress, pre.search.n_epochs, done, f"train ({search})")
    best = [min([e["best_total"] for e in st.epoch_rows(rid, "train")], default=np.inf)]

    def on_epoch(e) -> None:
        if e.best_valid:
            best[0] = min(best[0], e.best_total)
        if bar is not None:
            bar.set_postfix(best=f"{best[0]:.4f}", epoch_best=f"{e.best_total:.4f}",
                            s_per_epoch=f"{e.wall_s:.1f}", valid=f"{e.n_valid}")
            bar.update(1)
        if callback is not None:
            callback("train", {"epoch": e.epoch, "best_total": best[0],
                               "epoch_best": e.best_total, "wall_s": e.wall_s,
                               "n_valid": e.n_valid})

    try:
        hist = run_search(evaluator, pre.search, seed=seed, store=st, run_id=rid, kind=search,
                          callback=on_epoch)
    finally:
        if bar is not None:
            bar.close()
    return hist


def _validate(history: SearchHistory, val_ev: EulerEvaluator, seed: int, st: Store, rid: str,
              progress: bool, callback) -> dict:
    """Re-simulate every epoch's best child against the validation target.

    All epochs are simulated in one batched call (seed ``epoch_seed(seed, 0, 2)``; epoch e is
    candidate e of the batch, so its noise does not depend on how the run was interrupted) and
    written in one transaction.
    """
    done = set(st.completed_epochs(rid, "val"))
    epochs = [e for e in history.epochs]
    if epochs and not all(e.epoch in done for e in epochs):
        t0 = time.perf_counter()
        s = epoch_seed(seed, 0, 2)
        xs = np.array([e.best_x for e in epochs])
        ev = val_ev.evaluate(xs, s, progress=(f"validate ({len(epochs)} epoch bests x "
                                              f"{val_ev.n_dup}, dt {val_ev.config.dt:g} s)"
                                              if progress else None))
        wall = (time.perf_counter() - t0) / len(epochs)
        items = []
        for i, e in enumerate(epochs):
            rec = EpochRecord(x=xs[i:i + 1], terms=ev.terms[i:i + 1], total=ev.total[i:i + 1],
                              valid=ev.valid[i:i + 1], n_valid=ev.n_valid[i:i + 1],
                              ei_mean=ev.ei_mean[i:i + 1], ei_map=ev.ei_map[i:i + 1], seed=s,
                              wall_s=wall, candidates=[i])
            items.append((e.epoch, rec, {"restart": e.restart,
                                         "info": {"train_total": e.best_total}}))
        st.write_epochs(rid, "val", items, dataset=str(val_ev.target.meta.get("dataset", "")),
                        target=val_ev.target.name, engine=val_ev.engine)
        if callback is not None:
            for i, e in enumerate(epochs):
                callback("val", {"epoch": e.epoch, "total": float(ev.total[i]),
                                 "valid": bool(ev.valid[i])})
    ev = st.evaluations(rid, "val")
    want = {e.epoch for e in epochs}
    keep = np.array([ep in want for ep in ev["epoch"]], dtype=bool)
    order = np.argsort(ev["epoch"][keep], kind="stable")
    return {"epoch": ev["epoch"][keep][order], "terms": ev["terms"][keep][order],
            "total": ev["total"][keep][order], "valid": ev["valid"][keep][order],
            "x": ev["params"][keep][order]}


def _test(val_rows: dict, param: Parametrisation, target, config: SimConfig, pre: Preset,
          seed: int, engine: str, threads: int | None, st: Store, rid: str,
          callback, progress: bool = False) -> tuple[list[dict], FCDMatrix | None]:
    """Score the distinct best validated candidates on the test target (stored, so a resumed
    run re-reads them); returns their dicts (best first) and the FCD matrix of the best one's
    first valid duplicate (None when none was valid, or when a run stored before it was kept
    is resumed)."""
    if val_rows["total"].size == 0:
        raise RuntimeError(f"run {rid!r} has no validated epoch to test")
    score = np.where(val_rows["valid"], val_rows["total"], np.inf)
    order = np.lexsort((val_rows["epoch"], score))
    chosen = distinct_top(order, val_rows["x"], param, pre.test_top)
    out = []
    sim_fcd = None
    for rank, i in enumerate(chosen):
        name = f"test{rank}"
        got = st.get_artefact(rid, name)
        x = val_rows["x"][i]
        if got is not None and np.array_equal(got[0]["x"], x):
            arrays, info = got
            res = {**info, **{k: v for k, v in arrays.items() if k != "x"}}
            if rank == 0:
                sim_fcd = _stored_fcd(st, rid, x)
        else:
            s = epoch_seed(seed, rank, 3)
            res = score_candidate(x, target, param, config, pre, s, engine, threads,
                                  progress=(f"test candidate {rank} (dt {config.dt:g} s)"
                                            if progress else None), keep_fcd=rank == 0)
            if rank == 0:
                sim_fcd = res.pop("sim_fcd")
                if sim_fcd is not None:  # written before test0, whose presence means done
                    st.put_artefact(rid, _FCD_ARTEFACT,
                                    {"values": sim_fcd.values, "time_s": sim_fcd.time_s,
                                     "x": x},
                                    {"stride": sim_fcd.stride, "label": sim_fcd.label})
            res.update(epoch=int(val_rows["epoch"][i]), val_total=float(val_rows["total"][i]),
                       rank=rank, seed=s)
            arrays = {k: np.asarray(res[k]) for k in ("ei_map", "ei_map_std", "sim_fc",
                                                       "sim_fcd_cdf")}
            arrays["x"] = x
            info = {k: v for k, v in res.items() if k not in arrays}
            terms = np.array([[res[t] for t in TERM_NAMES]])
            rec = EpochRecord(x=x[None], terms=terms, total=np.array([res["total"]]),
                              valid=np.array([res["valid"]]),
                              n_valid=np.array([res["n_valid_dups"]]),
                              ei_mean=np.array([res["ei_mean"]]),
                              ei_map=np.asarray(res["ei_map"])[None], seed=s,
                              wall_s=res["sim_s"])
            st.write_epoch(rid, "test", rank, rec, info=info,
                           dataset=str(target.meta.get("dataset", "")), target=target.name,
                           engine=engine)
            st.put_artefact(rid, name, arrays, info)
        res["x"] = x
        if callback is not None:
            callback("test", {"rank": rank, "total": res["total"]})
        out.append(res)
    return out, sim_fcd


#: the store artefact holding the FCD matrix of the best tested candidate
_FCD_ARTEFACT = "test0_fcd"


def _stored_fcd(st: Store, rid: str, x: np.ndarray) -> FCDMatrix | None:
    """The stored FCD matrix of the best tested candidate ``x``; None when there is none for
    this candidate (none was valid, or it was stored before matrices were kept)."""
    got = st.get_artefact(rid, _FCD_ARTEFACT)
    if got is None or not np.array_equal(got[0]["x"], x):
        return None
    arrays, info = got
    return FCDMatrix(values=arrays["values"], time_s=arrays["time_s"], stride=info["stride"],
                     label=info["label"])
