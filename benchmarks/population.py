"""Synthetic population benchmark: many tiny subjects through run_cohort, resumable.

Draft (issue 7 is open): it does not yet measure 1 vs 2 workers, peak memory or the
surrogate-search mode. Measures throughput (subjects/s) of the population machinery (task
dispatch, result rows, resume) with tiny 6-region synthetic subjects and a minimal fit, so the
fits themselves stay cheap; writes JSON to benchmarks/results/population.json.

    python benchmarks/population.py --subjects 1000 --executor dask --n-workers 2 \
        --max-seconds 180

``--max-seconds`` stops submitting after that long (the run is resumable: re-running
continues where it stopped, finished subjects are skipped).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

MINI = dict(popsize=4, mu=2, n_epochs=2, duration_s=43.2, burn_in_s=0.0, warmup_steps=100,
            n_dup_train=1, n_dup_val=1, n_dup_test=2, test_group=1, test_dt=0.006)


def main() -> int:
    from synthetic import tiny_target

    from nmmfit.population import Cohort, ResultsDB, run_cohort

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", type=int, default=1000)
    ap.add_argument("--executor", default="dask", choices=("dask", "serial"))
    ap.add_argument("--n-workers", type=int, default=2)
    ap.add_argument("--store", default="runs/population_bench.db")
    ap.add_argument("--max-seconds", type=float, default=180.0)
    args = ap.parse_args()

    import numpy as np

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    targets = {f"s{i:04d}": tiny_target(seed=i, name=f"s{i:04d}") for i in range(args.subjects)}
    cov = {s: {"age": float(rng.uniform(8, 80)), "sex": str(rng.choice(["F", "M"]))}
           for s in targets}
    cohort = Cohort.from_targets(targets, cov, name=f"bench{args.subjects}")
    t_build = time.perf_counter() - t0
    stop = time.perf_counter() + args.max_seconds
    n_seen = [0]

    def cb(subject, state, info):
        n_seen[0] += 1
        if time.perf_counter() > stop:
            raise KeyboardInterrupt  # leaves the run resumable

    t1 = time.perf_counter()
    try:
        out = run_cohort(cohort, executor=args.executor, n_workers=args.n_workers,
                         store=args.store, callback=cb, progress=True, **MINI)
    except KeyboardInterrupt:
        out = {"stopped_after_s": args.max_seconds}
    wall = time.perf_counter() - t1
    with ResultsDB(args.store) as db:
        chash = db.resolve(cohort.name, None)[1]
        n_done = len(db.finished(cohort.name, chash))
    res = {"subjects": args.subjects, "executor": args.executor, "n_workers": args.n_workers,
           "build_s": t_build, "wall_s": wall, "finished_this_call": n_seen[0],
           "finished_total": n_done,
           "subjects_per_s": n_seen[0] / wall if wall > 0 else None,
           "settings": MINI, **{k: v for k, v in out.items() if k in ("stopped_after_s",)}}
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/results/population.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
