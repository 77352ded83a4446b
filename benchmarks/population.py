"""Benchmark: population throughput, 1 vs 2 local Dask workers, surrogate search (issue 7).

Writes ``benchmarks/results/population.json`` with the required top-level keys
``subjects_per_hour_1_worker``, ``subjects_per_hour_2_workers``, ``scaling_ratio``
(= 2-worker / 1-worker throughput; the target is >= 1.7), ``peak_mem_mb_per_worker`` and
``n_synthetic_subjects``, plus ``subjects_run``, ``extrapolation_12000``, the config, seeds,
package versions and the machine.

Cohort: :func:`nmmfit.population.synthetic_cohort`, ``--subjects`` (default 1000) synthetic
subjects made from the 7 real HCP AAL2 individuals of ``hcp_aal`` (cycled) by a seeded
perturbation: SC x symmetric lognormal noise (log-sd 0.2, mean 1), BOLD circular block
bootstrap in time (200-frame blocks, same frames for all regions) + Gaussian noise of 0.1 x
each region's SD; covariates age ~ U(8, 90), sex F/M. Only small specs are held; each worker
makes its subject's data itself.

Fits: ``run_cohort`` with ``evaluator="surrogate"`` (CMA-ES on the shipped AAL2 surrogate
models, ``src/nmmfit/surrogate/models/aal2/``; validation and test stay Euler), the
``quick`` preset unchanged (``--set KEY=VALUE`` overrides), one thread per worker.

Stages (each cached in ``--work``/stages.json, so a killed run resumes at the stage it was in):

1. cohort: build the synthetic cohort, record its size, build time, spec size;
2. w1: a fresh ``LocalCluster`` of 1 worker (1 thread); every worker first fits one
   subject from outside the measured slice with tiny settings (warm-up: imports, numba cache,
   model loading; timed, excluded from the throughput), then the first ``--measure-subjects``
   subjects (default 24) are fitted; throughput = subjects finished / wall s x 3600; peak
   memory = each worker process's ``ru_maxrss`` at the end (warm-up included);
3. w2: the same slice of subjects, 2 workers, its own results store (so nothing is skipped);
   the per-subject results of w1 and w2 are compared (they must be identical: seeds depend on
   the subject only);
4. full (only with ``--full``): the whole cohort with ``--n-workers`` workers into
   ``--work``/full.db, resumable, stopping after ``--max-seconds``.

A measurement stage that was killed is re-run from scratch (its store is deleted), so its
wall time is never that of a partial, resumed run. Settings are recorded in stages.json;
re-running with other settings needs ``--fresh`` (or another ``--work``).

The 12,000-subject figures are EXTRAPOLATED linearly from the measured per-subject times
(not measured). Run on a quiet machine: other CPU load lowers both throughputs and, above
all, the 2-worker scaling.

Run: ``.venv/bin/python benchmarks/population.py`` (about 20-25 min on 2 idle cores: a quick
surrogate-search subject takes ~30 s on one core, 24 subjects on 1 worker then on 2);
``--smoke`` for a < 1 min plumbing check with tiny fit settings (its numbers mean nothing;
it writes ``<work>_smoke/population_smoke.json``); ``--evaluator euler`` when the shipped
AAL2 models are missing (then it is not the surrogate-search benchmark).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from _stages import load_stages, plain, run_stages, save_stages

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
N_TARGET = 12000
#: tiny fit settings of the warm-up and of --smoke (a 72 s run gives AAL2's 83-frame FCD
#: window enough frames)
MINI = dict(popsize=6, mu=3, n_epochs=2, duration_s=72.0, burn_in_s=0.0, warmup_steps=100,
            n_dup_train=1, n_dup_val=1, n_dup_test=2, test_group=1, test_dt=0.006)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("nmmfit", "dask", "distributed", "torch", "numpy", "numba", "cma"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _machine() -> dict:
    out = {"platform": platform.platform(), "processor": platform.processor(),
           "cpu_count": os.cpu_count(), "python": platform.python_version()}
    try:
        import psutil

        out["memory_gb"] = round(psutil.virtual_memory().total / 2 ** 30, 1)
        out["physical_cores"] = psutil.cpu_count(logical=False)
    except ImportError:
        pass
    return out


def _maxrss_mb() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2 ** 20 if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB else


def _worker_usage() -> dict:
    """Run on a worker: its peak RSS (MB), CPU time and pid."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_mb": _maxrss_mb(), "cpu_s": ru.ru_utime + ru.ru_stime, "pid": os.getpid()}


def _check_models(evaluator: str, parcellation: str) -> None:
    if evaluator != "surrogate":
        return
    from nmmfit.population.runner import check_surrogate_models

    try:
        check_surrogate_models(parcellation)
    except FileNotFoundError as err:
        raise SystemExit(f"population benchmark: {err} (or pass --evaluator euler for a run "
                         "that is NOT the surrogate-search benchmark)") from None


def _cluster(n_workers: int):
    """A LocalCluster as run_cohort starts one: processes, one thread each."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    try:
        return cluster, Client(cluster, timeout="60s")
    except BaseException:
        cluster.close()
        raise


def _warm_up(client, cohort, kw: dict) -> dict:
    """Fit the cohort's last subject with MINI settings on every worker (imports, numba
    cache, models); return its wall time per worker."""
    from nmmfit.population import fit_subject

    spec = cohort.spec(cohort.subjects[-1])
    t0 = time.perf_counter()
    res = client.run(fit_subject, spec, **{**kw, **MINI})
    return {"wall_s": time.perf_counter() - t0,
            "per_worker_total_s": {w: r["timings"]["total_s"] for w, r in res.items()}}


def _summaries(store: Path, cohort_name: str, chash: str) -> dict:
    from nmmfit.population import ResultsDB

    with ResultsDB(store) as db:
        return {s: r["summary"] for s, r in db.results(cohort_name, chash).items()}


def _phase_means(summaries: dict) -> dict:
    keys = ("data_s", "train_s_this_call", "val_s_this_call", "test_s_this_call", "total_s")
    out = {}
    for k in keys:
        v = [s["timings"][k] for s in summaries.values() if k in s.get("timings", {})]
        out[k] = float(np.mean(v)) if v else None
    return out


def stage_cohort(args) -> dict:
    """Build the synthetic cohort (here only to record what it is)."""
    import pickle

    from nmmfit.population import synthetic_cohort

    t0 = time.perf_counter()
    c = synthetic_cohort(args.dataset, args.subjects, seed=args.cohort_seed)
    t_build = time.perf_counter() - t0
    t1 = time.perf_counter()
    tgt = c.target(c.subjects[0])
    return {"name": c.name, "n_subjects": len(c), "dataset": args.dataset,
            "parcellation": c.parcellation, "n_regions": tgt.n_regions,
            "n_frames": tgt.n_frames, "real_subjects": sorted(set(c.covariates
                                                                  ["source_subject"])),
            "build_s": t_build, "spec_pickle_bytes": len(pickle.dumps(c.specs)),
            "target_build_s_one_subject": time.perf_counter() - t1,
            "age_range": [float(c.covariates["age"].min()), float(c.covariates["age"].max())],
            "n_female": int((c.covariates["sex"] == "F").sum()),
            "perturbation": tgt.meta["synthetic"]}


def stage_measure(args, cohort, n_workers: int, store: Path, overrides: dict) -> dict:
    """Fit the measured slice on a fresh LocalCluster of ``n_workers``; time it."""
    from nmmfit.population import run_cohort

    if store.exists():  # a killed measurement: start it again, never resume a timing
        store.unlink()
    subjects = cohort.subjects[:args.measure_subjects]
    kw = dict(preset=args.preset, evaluator=args.evaluator, seed=args.seed,
              parcellation=cohort.parcellation, **overrides)
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    cluster, client = _cluster(n_workers)
    try:
        t_up = time.perf_counter() - t_start
        warm = _warm_up(client, cohort, kw)
        cpu0 = client.run(_worker_usage)
        t0 = time.perf_counter()
        out = run_cohort(cohort, executor="dask", scheduler=cluster.scheduler_address,
                         store=store, preset=args.preset, evaluator=args.evaluator,
                         seed=args.seed, subjects=subjects, progress=not args.no_progress,
                         **overrides)
        wall = time.perf_counter() - t0
        usage = client.run(_worker_usage)
    finally:
        client.close()
        cluster.close()
    summ = _summaries(store, cohort.name, out["config_hash"])
    n_done = len(out["done"])
    per_worker = {}
    for w, u in usage.items():
        cpu = u["cpu_s"] - cpu0.get(w, {}).get("cpu_s", 0.0)
        per_worker[w] = {"peak_rss_mb": u["peak_rss_mb"], "cpu_s_measured": cpu,
                         "cpu_per_wall": cpu / wall if wall > 0 else None,
                         "subjects": sum(1 for s in summ.values() if s.get("worker") == w)}
    return {
        "n_workers": n_workers, "threads_per_worker": 1, "subjects": list(subjects),
        "done": n_done, "failed": out["failed"], "config_hash": out["config_hash"],
        "store": str(store), "wall_s": wall, "run_cohort_wall_s": out["wall_s"],
        "subjects_per_hour": n_done / wall * 3600 if wall > 0 and n_done else None,
        "seconds_per_subject_per_worker": wall * n_workers / n_done if n_done else None,
        "cluster_start_s": t_up, "warm_up": warm, "workers": per_worker,
        "peak_rss_mb_max": max(u["peak_rss_mb"] for u in usage.values()),
        "driver_peak_rss_mb": _maxrss_mb(), "loadavg_before": list(load_before),
        "loadavg_after": list(os.getloadavg()), "phase_means_s": _phase_means(summ),
        "test_total_by_subject": {s: summ[s]["test_cost"]["total"] for s in sorted(summ)},
    }


class _TimeUp(Exception):
    """--max-seconds reached (the run is resumable)."""


def stage_full(args, cohort, store: Path, overrides: dict) -> dict:
    """The whole cohort, resumable, stopping after --max-seconds."""
    from nmmfit.population import ResultsDB, run_cohort

    n_workers = args.n_workers or os.cpu_count() or 1
    stop = time.perf_counter() + args.max_seconds
    n_this = [0]

    def cb(subject, state, info):
        n_this[0] += state == "done"
        if time.perf_counter() > stop:
            raise _TimeUp

    cluster, client = _cluster(n_workers)
    t0 = time.perf_counter()
    stopped = False
    try:
        run_cohort(cohort, executor="dask", scheduler=cluster.scheduler_address, store=store,
                   preset=args.preset, evaluator=args.evaluator, seed=args.seed,
                   progress=not args.no_progress, callback=cb, **overrides)
    except _TimeUp:
        stopped = True
    finally:
        wall = time.perf_counter() - t0
        try:
            usage = client.run(_worker_usage)
        except Exception:  # noqa: BLE001 - a worker may be gone after the stop
            usage = {}
        client.close()
        cluster.close()
    with ResultsDB(store) as db:
        cname, chash = db.resolve(cohort.name, None)
        st = db.status(cname, chash, cohort.subjects)
    return {"n_workers": n_workers, "store": str(store), "config_hash": chash,
            "finished_total": len(st["finished"]), "failed_total": len(st["failed"]),
            "pending": len(st.get("pending", [])), "finished_this_call": n_this[0],
            "wall_s_this_call": wall, "stopped_by_max_seconds": stopped,
            "subjects_per_hour_this_call": n_this[0] / wall * 3600 if wall > 0 else None,
            "peak_rss_mb_by_worker": {w: u["peak_rss_mb"] for w, u in usage.items()},
            "complete": len(st["finished"]) == len(cohort)}


def extrapolate(w1: dict, w2: dict, cpu_count: int | None) -> dict:
    """12,000 subjects, extrapolated linearly from the measured per-subject times."""
    s1 = 3600.0 / w1["subjects_per_hour"]  # seconds per subject on one worker (one core)
    eff = w2["subjects_per_hour"] / (2 * w1["subjects_per_hour"])
    ph = w1["phase_means_s"]
    surr = (ph.get("train_s_this_call") or 0.0) / ph["total_s"] if ph.get("total_s") else None
    return {
        "label": "EXTRAPOLATED (not measured): linear in the number of subjects, from the "
                 "per-subject wall times measured with 1 and 2 local workers",
        "n_subjects": N_TARGET,
        "seconds_per_subject_1_worker": s1,
        "parallel_efficiency_2_workers": eff,
        "this_machine_hours": {"cpu_count": cpu_count,
                               "1_worker": N_TARGET / w1["subjects_per_hour"],
                               "2_workers": N_TARGET / w2["subjects_per_hour"]},
        "dask_cluster_hours_by_n_workers_linear": {
            str(n): N_TARGET * s1 / n / 3600 for n in (1, 2, 4, 8, 16, 32, 64, 128, 256)},
        "dask_cluster_hours_by_n_workers_at_measured_2_worker_efficiency": {
            str(n): N_TARGET * s1 / (n * (1.0 if n == 1 else eff)) / 3600
            for n in (1, 2, 4, 8, 16, 32, 64, 128, 256)},
        "assumes": "one worker = one core like this machine's, one thread; no scheduler, "
                   "network or shared-storage bottleneck; per-subject cost as measured "
                   "(quick preset, surrogate search, Euler validation and test)",
        "per_subject_phase_means_s_1_worker": ph,
        "surrogate_search_fraction_of_subject_time": surr,
        "gpu_note": "not measured: in surrogate-search mode only the search (the "
                    "surrogate_search_fraction) runs on the surrogate; validation and test are "
                    "Euler simulations on CPU, so one GPU shortens a subject by at most that "
                    "fraction unless the simulations also run on the GPU",
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default=str(ROOT / "runs" / "population_bench"))
    p.add_argument("--dataset", default="hcp_aal", help="bundled data set whose real "
                   "subjects are perturbed; default %(default)s (AAL2)")
    p.add_argument("--subjects", type=int, default=1000, help="synthetic cohort size")
    p.add_argument("--cohort-seed", type=int, default=0, help="perturbation/covariate seed")
    p.add_argument("--seed", type=int, default=0, help="fit seed of the cohort")
    p.add_argument("--measure-subjects", type=int, default=24,
                   help="subjects fitted by each of the 1- and 2-worker measurements")
    p.add_argument("--preset", default="quick")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="preset overrides, e.g. n_epochs=10 n_dup_test=4")
    p.add_argument("--evaluator", default="surrogate", choices=("surrogate", "euler"))
    p.add_argument("--full", action="store_true", help="also fit the whole cohort "
                   "(resumable, into <work>/full.db), up to --max-seconds this call")
    p.add_argument("--n-workers", type=int, default=None,
                   help="workers of the --full run (default: CPU count)")
    p.add_argument("--max-seconds", type=float, default=3600.0,
                   help="--full: stop handing out subjects after this long")
    p.add_argument("--smoke", action="store_true",
                   help="plumbing check: 4 subjects, 2 per measurement, tiny fit settings")
    p.add_argument("--fresh", action="store_true", help="forget cached stages and stores")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default=None, help="default benchmarks/results/population.json "
                   "(smoke: <work>/population_smoke.json)")
    args = p.parse_args(argv)
    from nmmfit.cli_population import parse_overrides

    try:
        overrides = parse_overrides(args.set)
    except ValueError as err:
        p.error(str(err))
    if args.smoke:
        args.work += "_smoke"
        args.subjects, args.measure_subjects = min(args.subjects, 4), 2
        overrides = {**MINI, **overrides}
        args.max_seconds = min(args.max_seconds, 30.0)
    if args.measure_subjects >= args.subjects:
        p.error("--measure-subjects must be below --subjects (the last subject is the "
                "warm-up subject)")
    from nmmfit import datasets
    from nmmfit.population import run_config, synthetic_cohort

    _check_models(args.evaluator, datasets.load(args.dataset, include_bold=False).parcellation)
    work = Path(args.work)
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.out) if args.out else (
        work / "population_smoke.json" if args.smoke else HERE / "results" / "population.json")
    config = {"dataset": args.dataset, "n_synthetic_subjects": args.subjects,
              "cohort_seed": args.cohort_seed, "fit_seed": args.seed,
              "measure_subjects": args.measure_subjects, "evaluator": args.evaluator,
              "preset": args.preset, "overrides": overrides, "smoke": bool(args.smoke),
              "warm_up_settings": MINI,
              "fit_config": run_config(args.preset, args.evaluator, args.seed,
                                       **overrides)}
    stages_path = work / "stages.json"
    st = load_stages(stages_path)
    if st.get("config", config) != config:
        raise SystemExit(f"population benchmark: {stages_path} was made with other settings; "
                         "pass --fresh to start over, or another --work")
    st["config"] = config
    cohort = synthetic_cohort(args.dataset, args.subjects, seed=args.cohort_seed)
    t0 = time.perf_counter()
    steps = [
        ("cohort", lambda: stage_cohort(args)),
        ("w1", lambda: stage_measure(args, cohort, 1, work / "w1.db", overrides)),
        ("w2", lambda: stage_measure(args, cohort, 2, work / "w2.db", overrides)),
    ]
    run_stages(steps, st, stages_path, "population benchmark")
    if args.full:
        print("[population benchmark] stage full ...", file=sys.stderr, flush=True)
        st["full"] = stage_full(args, cohort, work / "full.db", overrides)
        save_stages(stages_path, st)
    w1, w2 = st["w1"], st["w2"]
    if not (w1["subjects_per_hour"] and w2["subjects_per_hour"]):
        raise SystemExit(f"population benchmark: a measurement finished no subject "
                         f"(failed: {list(w1['failed']) + list(w2['failed'])}); see "
                         f"{stages_path}")
    same = [s for s in w1["test_total_by_subject"] if s in w2["test_total_by_subject"]]
    identical = all(w1["test_total_by_subject"][s] == w2["test_total_by_subject"][s]
                    for s in same)
    runs = {"w1": w1["done"], "w2": w2["done"],
            "full_finished_total": st.get("full", {}).get("finished_total")}
    res = {
        "subjects_per_hour_1_worker": w1["subjects_per_hour"],
        "subjects_per_hour_2_workers": w2["subjects_per_hour"],
        "scaling_ratio": w2["subjects_per_hour"] / w1["subjects_per_hour"],
        "scaling_ratio_target": 1.7,
        "scaling_ratio_met": w2["subjects_per_hour"] / w1["subjects_per_hour"] >= 1.7,
        "peak_mem_mb_per_worker": max(w1["peak_rss_mb_max"], w2["peak_rss_mb_max"]),
        "n_synthetic_subjects": st["cohort"]["n_subjects"],
        "subjects_run": w1["done"] + w2["done"] + (st.get("full", {}).get(
            "finished_this_call") or 0),
        "subjects_run_detail": {
            **runs, "note": "w1 and w2 fit the same measured slice (separate stores); the "
                            "rest of the synthetic cohort is fitted only with --full"},
        "results_identical_1_vs_2_workers": identical,
        "extrapolation_12000": extrapolate(w1, w2, os.cpu_count()),
        "method": {
            "mode": f"surrogate search (evaluator={args.evaluator!r}), {args.preset} preset"
                    + (f" with overrides {overrides}" if overrides else "")
                    + ", Euler validation and test",
            "throughput": "subjects finished / wall seconds x 3600, on a fresh LocalCluster "
                          "(processes, 1 thread per worker) after a per-worker warm-up fit "
                          "(excluded; see w1/w2 warm_up)",
            "peak_memory": "max over worker processes of getrusage(RUSAGE_SELF).ru_maxrss "
                           "at the end of each measurement (includes the warm-up)",
            "cohort": "nmmfit.population.synthetic_cohort (see its docstring)"},
        "cohort": st["cohort"], "w1": w1, "w2": w2, "full": st.get("full"),
        "config": config,
        "seeds": {"cohort_seed": args.cohort_seed, "fit_seed": args.seed,
                  "per_subject": "subject_seed(fit_seed, subject id)"},
        "versions": _versions(), "machine": _machine(),
        "stage_wall_s": {k: st.get(f"{k}_wall_s") for k in ("cohort", "w1", "w2")},
        "wall_s_this_call": time.perf_counter() - t0,
    }
    if args.smoke:
        res["note"] = "SMOKE RUN: tiny settings, the numbers mean nothing"
    if args.evaluator != "surrogate":
        res["note_evaluator"] = ("evaluator=euler: NOT the surrogate-search benchmark (the "
                                 "shipped surrogate models were not used)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(res, indent=2, default=plain))
    print(json.dumps({k: res[k] for k in ("subjects_per_hour_1_worker",
                                          "subjects_per_hour_2_workers", "scaling_ratio",
                                          "peak_mem_mb_per_worker", "n_synthetic_subjects",
                                          "subjects_run")}, indent=2, default=plain))
    print(f"[population benchmark] wrote {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
