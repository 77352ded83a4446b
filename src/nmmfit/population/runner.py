"""Fit every subject of a cohort: one task per subject, serial or on Dask, resumable.

- :func:`fit_subject` (pure; what a worker runs): build the subject's Target, run the
  train / validation / test protocol (:func:`nmmfit.fit.fit`, single-threaded), and return a
  JSON-ready summary (parameters, test cost terms, regional E/I map and its spread over test
  duplicates, timings, worker). No time series leave the worker.
- :func:`run_cohort`: skips subjects already finished for this config (with the same input
  data: a subject whose files changed is fitted again), records an attempt row
  per subject ("running" when handed to a worker, then "done" or "failed" with the error)
  in the results table (:mod:`nmmfit.population.results`), committed as each subject ends.

Executors: ``"dask"`` (default) starts a ``distributed.LocalCluster`` on this machine
(processes, one thread each), or connects to ``scheduler="tcp://host:8786"``; ``"serial"``
runs in this process (tests, debugging). At most about one task per worker thread is in
flight, so the driver's and scheduler's memory stay bounded for any cohort size.

Seeds: subject ``s`` is fitted with ``subject_seed(seed, s)`` (from the cohort seed and the
subject id, not from the order of execution), so serial and Dask runs, and interrupted and
uninterrupted runs, give identical results.

The module holds one concept, running a cohort's fits; its length is the executors (serial,
LocalCluster, a remote scheduler) and their failure handling (lost workers, heartbeats,
timeouts), which must live beside the loop they guard.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import traceback
import uuid
import zlib
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from nmmfit._parallel import default_threads
from nmmfit.data.sc import fit_sc_recipe
from nmmfit.fit.parametrise import Parametrisation
from nmmfit.fit.presets import get_preset
from nmmfit.fit.protocol import fit
from nmmfit.fit.store import config_hash
from nmmfit.population.cohort import Cohort, SubjectSpec
from nmmfit.population.results import DEFAULT_DB, HEARTBEAT_S, ResultsDB

__all__ = ["fit_subject", "run_cohort", "run_config", "subject_seed", "SchedulerError",
           "check_surrogate_models"]


class SchedulerError(ConnectionError):
    """The Dask scheduler could not be reached."""


def subject_seed(seed: int, subject: str) -> int:
    """The fit seed of one subject: from the cohort seed and the subject id only."""
    ss = np.random.SeedSequence([int(seed), zlib.crc32(str(subject).encode())])
    return int(ss.generate_state(1)[0] >> 1)


def check_surrogate_models(parcellation: str) -> None:
    """FileNotFoundError naming the missing files when the shipped surrogate models of
    ``parcellation`` (the cohort's) are not installed
    (:func:`nmmfit.surrogate.shipped.check_shipped`)."""
    # deferred: the surrogate package imports torch, needed only by surrogate fits
    from nmmfit.surrogate.shipped import check_shipped

    try:
        check_shipped(parcellation)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"evaluator='surrogate': {err}; or use evaluator='euler'"
                                ) from None


def run_config(preset="quick", evaluator: str = "euler", seed: int = 0, engine: str = "numba",
               maps=("fc_gradient",), sc_normalisation: str | None = None,
               **overrides) -> dict:
    """The settings that identify a population run (hashed into its config hash), the SC
    recipe included (:func:`nmmfit.data.sc.fit_sc_recipe`)."""
    if evaluator not in ("euler", "surrogate"):
        raise ValueError(f"evaluator must be 'euler' or 'surrogate', got {evaluator!r}")
    pre = get_preset(preset, **overrides)
    d = pre.as_dict()
    d["note"] = None
    out = {"preset": d, "evaluator": evaluator, "seed": int(seed), "engine": engine,
           "maps": list(maps), "search": "cmaes",
           "sc_normalisation": fit_sc_recipe(evaluator, sc_normalisation)}
    # the start changes the results: a run from the linear-FC start (and its search budget)
    # is another run (runs from DELSSOME's random start keep the hashes they had)
    if pre.init != "paper":
        out["init"] = {"init": pre.init, "init_iter": pre.init_iter}
    return out


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def fit_subject(spec: SubjectSpec, *, preset="quick", evaluator: str = "euler", seed: int = 0,
                engine: str = "numba", fit_store_dir: str | None = None, threads: int = 1,
                parcellation: str = "user", sc_normalisation: str | None = None,
                **overrides) -> dict:
    """Fit one subject; return its JSON-ready summary.

    Parameters
    ----------
    spec : the subject (:meth:`Cohort.spec`).
    preset, overrides : protocol settings (:func:`nmmfit.fit.presets.get_preset`).
    evaluator : "euler" or "surrogate" (shipped models; validation and test stay Euler).
    seed : the cohort seed (the subject's own seed is :func:`subject_seed`).
    fit_store_dir : folder for the per-subject evaluation store (``<cohort>__<subject>.db``,
        kept: a re-run resumes inside the subject); None: a temporary file, removed.
    threads : CPU threads of the simulation (1 inside a worker).
    parcellation : the cohort's (selects the shipped surrogate models).
    sc_normalisation : SC recipe of the subject's target
        (:func:`nmmfit.data.sc.fit_sc_recipe`; None: the surrogates' recipe with
        ``evaluator="surrogate"``, else the library default).

    Returns
    -------
    dict: subject, seed, test_cost, best_val_cost, best_x, regional, ei_map [N],
    ei_map_std [N], ei_mean, ei_mean_std, n_epochs, n_evaluations, timings, worker, ...
    """
    t0 = time.perf_counter()
    s_seed = subject_seed(seed, spec.subject)
    with threadpool_limits(limits=threads):
        target = spec.build_target(fit_sc_recipe(evaluator, sc_normalisation))
        t_data = time.perf_counter() - t0
        ev = None
        if evaluator == "surrogate":
            # deferred: the surrogate package imports torch, needed only by surrogate fits
            from nmmfit.surrogate.evaluator import SurrogateEvaluator

            param = Parametrisation.from_target(target, spec.maps)
            ev = SurrogateEvaluator.from_shipped(target, param, parcellation, threads=threads)
        elif evaluator != "euler":
            raise ValueError(f"evaluator must be 'euler' or 'surrogate', got {evaluator!r}")
        with tempfile.TemporaryDirectory(prefix="nmmfit_pop_") as tmp:
            if fit_store_dir is None:
                db = Path(tmp) / "fit.db"
            else:
                safe = f"{spec.cohort}__{spec.subject}".replace("/", "_").replace(":", "_")
                db = Path(fit_store_dir) / f"{safe}.db"
            res = fit(target, target, target, preset=preset, maps=spec.maps, seed=s_seed,
                      engine=engine, threads=threads, store=db, evaluator=ev, **overrides)
    best = res.test[0]
    s = res.summary()
    return {
        "subject": spec.subject, "cohort": spec.cohort, "seed": s_seed,
        "run_id": res.run_id, "target": target.fingerprint(),
        "test_cost": {k: float(v) for k, v in res.test_cost.items()},
        "test_cost_std": {k: float(best.get(f"{k}_std", np.nan)) for k in res.test_cost},
        "best_val_cost": res.best_val_cost, "val_total": s["val_total"],
        "train_best_total": s["train_best_total"],
        "best_x": s["best_x"], "regional": s["regional"],
        "ei_map": s["ei_ratio"]["per_region"], "ei_map_std": s["ei_ratio"]["per_region_std"],
        "ei_mean": _f(best.get("ei_mean")), "ei_mean_std": _f(best.get("ei_mean_std")),
        "n_valid_test_dups": int(best.get("n_valid_dups", 0)),
        "n_epochs": s["n_epochs"], "n_evaluations": s["n_evaluations"],
        "evaluator": evaluator, "sc_normalisation": target.sc_normalisation,
        "timings": {**res.timings, "data_s": t_data, "total_s": time.perf_counter() - t0},
        "versions": res.versions, "worker": _worker_name(),
    }


def _f(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _connect(scheduler: str | None, n_workers: int | None, timeout: float):
    """(client, cluster or None)."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=f"{timeout}s"), None
        except (OSError, TimeoutError) as err:
            raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler!r} within "
                                 f"{timeout:g} s ({type(err).__name__}: {err}); is it running "
                                 "(`dask scheduler`) and is the address right?") from None
    n = default_threads() if n_workers is None else int(n_workers)  # the CPU affinity
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    try:
        return Client(cluster, timeout=f"{max(timeout, 30)}s"), cluster
    except BaseException:
        cluster.close()
        raise


class _Heartbeat:
    """A daemon thread that marks ``owner``'s running rows alive every ``interval`` seconds,
    on its own connection to the store (``population status`` tells a live run from a killed
    one by it)."""

    def __init__(self, path, owner: str, interval: float | None = None) -> None:
        self.path, self.owner = path, owner
        self.interval = HEARTBEAT_S if interval is None else float(interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nmmfit-heartbeat",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import sqlite3

        try:
            db = ResultsDB(self.path)
        except (sqlite3.Error, OSError, ValueError):
            return  # no heartbeat; status then reports the rows as running
        try:
            while not self._stop.wait(self.interval):
                try:
                    with db.conn:
                        db.beat(self.owner)
                except sqlite3.OperationalError:  # busy: the next beat will do
                    pass
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def run_cohort(cohort: Cohort, executor: str = "dask", scheduler: str | None = None,
               n_workers: int | None = None, store=DEFAULT_DB, preset="quick",
               evaluator: str = "euler", seed: int = 0, engine: str = "numba",
               subjects=None, fit_store_dir: str | None = None, progress: bool = False,
               connect_timeout: float = 5.0, callback=None,
               sc_normalisation: str | None = None, **fit_overrides) -> dict:
    """Fit every unfinished subject of ``cohort``; results go to the population table.

    Parameters
    ----------
    cohort : :class:`Cohort`.
    executor : "dask" (LocalCluster, or ``scheduler``) or "serial".
    scheduler : address of an existing Dask scheduler (e.g. "tcp://10.0.0.5:8786"); an
        address that does not answer raises :class:`SchedulerError` within
        ``connect_timeout`` seconds.
    n_workers : LocalCluster worker processes (default: one per core this process may run
        on, from the CPU affinity).
    store : results SQLite file (or an open :class:`ResultsDB`).
    preset, evaluator, seed, engine, sc_normalisation, fit_overrides : the fit settings
        (:func:`fit_subject`); the SC recipe is part of the config hash.
    subjects : fit only these (default all).
    progress : tqdm bar; callback(subject, state, info) after each subject.

    Returns
    -------
    dict: cohort, config_hash, store, subjects, skipped (already finished), done, failed
    {subject: error}, stale (subjects whose input data changed since their stored result:
    that result is marked "stale" and they are fitted again), wall_s.
    """
    if executor not in ("dask", "serial"):
        raise ValueError(f"executor must be 'dask' or 'serial', got {executor!r}")
    if scheduler and executor != "dask":
        raise ValueError("scheduler= needs executor='dask'")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(
            n_workers, int | np.integer) or n_workers < 1):
        raise ValueError(f"n_workers must be a positive number of worker processes, got "
                         f"{n_workers!r} (leave it out for one per CPU)")
    if not (isinstance(connect_timeout, int | float) and np.isfinite(connect_timeout)
            and connect_timeout > 0):
        raise ValueError(f"connect_timeout (--timeout) must be a positive number of seconds, "
                         f"got {connect_timeout!r}")
    cfg = run_config(preset, evaluator, seed, engine, cohort.maps,
                     sc_normalisation=sc_normalisation, **fit_overrides)
    recipe = cfg["sc_normalisation"]
    if evaluator == "surrogate":
        check_surrogate_models(cohort.parcellation)
    chash = config_hash(cfg)
    ids = cohort.subjects if subjects is None else cohort.select(subjects).subjects
    own = not isinstance(store, ResultsDB)
    db = ResultsDB(store) if own else store
    t0 = time.perf_counter()
    out = {"cohort": cohort.name, "config_hash": chash, "store": str(db.path),
           "executor": executor, "subjects": len(ids), "skipped": [], "done": [],
           "failed": {}, "stale": []}
    try:
        db.close_stale(cohort.name, chash)
        out["stale"] = _invalidate_changed(db, cohort, chash, ids, recipe)
        finished = db.finished(cohort.name, chash)
        out["skipped"] = [s for s in ids if s in finished]
        todo = [s for s in ids if s not in finished]
        kw = dict(preset=preset, evaluator=evaluator, seed=seed, engine=engine,
                  fit_store_dir=fit_store_dir, parcellation=cohort.parcellation,
                  sc_normalisation=recipe, **fit_overrides)
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(ids), initial=len(out["skipped"]),
                       desc=f"population {cohort.name}", unit="subject")

        def record(sid, rid, summary, error):
            if error is None:
                db.finish(rid, summary, worker=summary.get("worker"))
                out["done"].append(sid)
            else:
                db.finish(rid, error=error)
                out["failed"][sid] = error
            if bar is not None:
                bar.set_postfix(done=len(out["done"]), failed=len(out["failed"]))
                bar.update(1)
            if callback is not None:
                callback(sid, "done" if error is None else "failed",
                         summary if error is None else {"error": error})

        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        beat = _Heartbeat(db.path, owner) if todo else None
        try:
            if not todo:
                pass
            elif executor == "serial":
                for sid in todo:
                    rid = db.start(cohort.name, sid, chash, cfg, worker=_worker_name(),
                                   input_hash=cohort.spec(sid).fingerprint(), owner=owner)
                    try:
                        summary = fit_subject(cohort.spec(sid), **kw)
                    except Exception:  # noqa: BLE001 - recorded, the cohort goes on
                        record(sid, rid, None, traceback.format_exc(limit=20))
                    else:
                        record(sid, rid, summary, None)
            else:
                _run_dask(cohort, todo, db, chash, cfg, kw, scheduler, n_workers,
                          connect_timeout, record, owner)
        finally:
            if beat is not None:
                beat.stop()
            if bar is not None:
                bar.close()
    finally:
        out["wall_s"] = time.perf_counter() - t0
        if own:
            db.close()
    return out


def _invalidate_changed(db: ResultsDB, cohort: Cohort, chash: str, ids,
                        recipe: str | None = None) -> list[str]:
    """Mark "stale" the finished results of subjects whose input data changed since they were
    fitted; return those subjects (they are fitted again).

    A row records the input fingerprint (:meth:`SubjectSpec.fingerprint`) of its attempt; a
    row written before fingerprints were kept is checked once against the fitted target's
    fingerprint (which needs building the target here) and then given the current one.
    """
    rows = db.done_rows(cohort.name, chash)
    stale = []
    for sid in ids:
        if sid not in rows:
            continue
        spec = cohort.spec(sid)
        now = spec.fingerprint()
        for r in rows[sid]:
            if r["input_hash"] is None:
                try:
                    same = (r["target"] or {}).get("sha256") == \
                        spec.build_target(recipe).fingerprint()["sha256"]
                except Exception:  # noqa: BLE001 - unreadable now: the fit will say why
                    continue
                if same:
                    db.set_input_hash(r["id"], now)
                    continue
                old = f"target {(r['target'] or {}).get('sha256')}"
            elif r["input_hash"] == now:
                continue
            else:
                old = r["input_hash"]
            db.mark_stale(r["id"], f"input data of {sid} changed since this fit (fingerprint "
                                   f"{old} -> {now}); fitted again")
            if sid not in stale:
                stale.append(sid)
    return stale


def _run_dask(cohort, todo, db, chash, cfg, kw, scheduler, n_workers, timeout, record,
              owner: str | None = None, poll_s: float = 1.0) -> None:
    """Run ``todo`` on Dask; never waits on a cluster without workers: SchedulerError when
    none joins within the timeout, or when every worker has been gone for that long."""
    from distributed import wait

    client, cluster = _connect(scheduler, n_workers, timeout)
    where = scheduler or "the LocalCluster"
    grace = max(timeout, 30.0) if cluster is not None else timeout
    try:
        try:
            client.wait_for_workers(1, timeout=grace)
        except TimeoutError:
            raise SchedulerError(
                f"the Dask scheduler at {where} has no workers (none joined within {grace:g} "
                "s); start some (`dask worker <address>`) or leave out --scheduler to use a "
                "LocalCluster") from None
        slots = max(1, sum(client.nthreads().values())) + 1
        queue = list(todo)
        futs = {}

        def submit():
            sid = queue.pop(0)
            rid = db.start(cohort.name, sid, chash, cfg, worker="dask",
                           input_hash=cohort.spec(sid).fingerprint(), owner=owner)
            f = client.submit(fit_subject, cohort.spec(sid), key=f"nmmfit-pop-{chash}-{rid}",
                              pure=False, **kw)
            futs[f] = (sid, rid)
            return f

        pending = {submit() for _ in range(min(slots, len(queue)))}
        no_workers_since = None
        while pending:
            try:
                done, pending = wait(pending, timeout=poll_s, return_when="FIRST_COMPLETED")
            except TimeoutError:
                if client.nthreads():
                    no_workers_since = None
                    continue
                no_workers_since = no_workers_since or time.monotonic()
                if time.monotonic() - no_workers_since < grace:
                    continue
                msg = (f"the Dask scheduler at {where} lost all its workers and none came back "
                       f"within {grace:g} s")
                for f in pending:
                    sid, rid = futs.pop(f)
                    record(sid, rid, None, f"not finished: {msg}")
                raise SchedulerError(f"{msg}; {len(pending)} subject(s) recorded as failed, "
                                     f"{len(queue)} not started; re-run to resume") from None
            for f in done:
                sid, rid = futs.pop(f)
                try:
                    summary = f.result()
                except Exception as err:  # noqa: BLE001 - recorded, the cohort goes on
                    tb = "".join(traceback.format_exception(type(err), err, err.__traceback__,
                                                            limit=20))
                    record(sid, rid, None, tb)
                else:
                    record(sid, rid, summary, None)
                f.release()
                if queue:
                    pending.add(submit())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
