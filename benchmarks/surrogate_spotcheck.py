"""What spot-checks buy: surrogate CMA-ES with and without simulated re-scoring of its best.

    nice .venv/bin/python benchmarks/surrogate_spotcheck.py [--seeds 0 1 2 3] [--checks 0 2 5]

On the group setting of benchmarks/surrogate.py (HCP Schaefer-100: train706 / 2 subjects /
test303, quick preset) and with the shipped Schaefer-100 models, each seed is fitted with
Euler CMA-ES and with surrogate CMA-ES at each ``--checks`` K (0 = no spot-check; K > 0 =
:class:`nmmfit.fit.spotcheck.SpotCheckEvaluator` with ``n_check`` K). Validation and test
are Euler in every run. Reported per mode (mean over seeds):

- ``epoch_best_invalid``: epochs whose best training candidate is invalid when validation
  simulates it (the symptom spot-checks address; Euler's own count is the floor);
- ``test_cost`` and ``test_cost_ratio`` (over the same seed's Euler test cost);
- ``train_s`` and ``train_phase_speedup`` (Euler training time over the mode's);
- ``false_valid_caught``: checked candidates the classifier had called valid and the
  simulation rejected.

Writes ``benchmarks/results/surrogate_spotcheck.json``; each run is kept in a SQLite store
under ``--work`` so a killed benchmark resumes (finished runs are read back, not re-run).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from nmmfit.data.sc import LEGACY_SC_RECIPE  # the shipped surrogates' SC recipe

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _stages import load_stages, plain, save_stages  # noqa: E402

MAPS = ("myelin", "fc_gradient")


def run_mode(train, val, test, seed: int, check: int | None, store: Path) -> dict:
    """One fit; ``check`` None = Euler CMA-ES, 0 = surrogate, K = surrogate + K spot-checks."""
    from nmmfit.fit import Parametrisation, fit
    from nmmfit.fit.spotcheck import SpotCheckEvaluator
    from nmmfit.surrogate.evaluator import SurrogateEvaluator

    ev = None
    if check is not None:
        param = Parametrisation.from_target(train, MAPS)
        ev = SurrogateEvaluator.from_shipped(train, param, "schaefer100")
        if check:  # what fit(spot_check=K) builds, made here to read its counters after
            ev = SpotCheckEvaluator.at_training_setting(ev, "quick", check)
    name = "euler" if check is None else f"surrogate_k{check}"
    t0 = time.perf_counter()
    res = fit(train, val, test, preset="quick", maps=MAPS, seed=seed, evaluator=ev,
              store=store, run_id=f"{name}-s{seed}")
    counts = dict(ev.counts) if isinstance(ev, SpotCheckEvaluator) else None
    return {"mode": name, "seed": seed, "wall_s": time.perf_counter() - t0,
            "spot_check_counts": counts,
            "train_s": res.timings["train_s_total"], "test_cost": res.test_cost["total"],
            "val_total": res.val_total.tolist(), "val_valid": res.val_valid.tolist(),
            "epoch_best_invalid": int((~res.val_valid.astype(bool)).sum()),
            "n_epochs": int(len(res.val_total)), "ei_mean": float(np.nanmean(res.ei_map))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--checks", type=int, nargs="+", default=[0, 2, 5])
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "surrogate_spotcheck")
    p.add_argument("--out", type=Path, default=HERE / "results" / "surrogate_spotcheck.json")
    args = p.parse_args(argv)
    from nmmfit.fit import default_targets

    args.work.mkdir(parents=True, exist_ok=True)
    cache_path = args.work / "runs.json"
    cache = load_stages(cache_path)
    train, val, test = default_targets(sc_normalisation=LEGACY_SC_RECIPE)
    modes: list[int | None] = [None, *args.checks]
    for seed in args.seeds:
        for check in modes:
            key = f"{'euler' if check is None else f'surrogate_k{check}'}-s{seed}"
            if key in cache:
                continue
            print(time.strftime("%H:%M:%S"), "fit", key, file=sys.stderr, flush=True)
            cache[key] = run_mode(train, val, test, seed, check, args.work / "fits.db")
            save_stages(cache_path, cache)
    summary = {}
    for check in modes:
        name = "euler" if check is None else f"surrogate_k{check}"
        runs = [cache[f"{name}-s{s}"] for s in args.seeds]
        eul = [cache[f"euler-s{s}"] for s in args.seeds]
        summary[name] = {
            "n_check": check,
            "epoch_best_invalid_mean": float(np.mean([r["epoch_best_invalid"] for r in runs])),
            "epoch_best_invalid_by_seed": [r["epoch_best_invalid"] for r in runs],
            "n_epochs": runs[0]["n_epochs"],
            "test_cost_mean": float(np.mean([r["test_cost"] for r in runs])),
            "test_cost_ratio": float(np.mean([r["test_cost"] / e["test_cost"]
                                              for r, e in zip(runs, eul, strict=True)])),
            "train_s_mean": float(np.mean([r["train_s"] for r in runs])),
            "train_phase_speedup": float(np.mean([e["train_s"] / r["train_s"]
                                                  for r, e in zip(runs, eul, strict=True)])),
            "end_to_end_speedup": float(np.mean([e["wall_s"] / r["wall_s"]
                                                 for r, e in zip(runs, eul, strict=True)])),
            "false_valid_caught": (None if not check else
                                   int(sum(r["spot_check_counts"]["false_valid"]
                                           for r in runs))),
            "candidates_checked": (None if not check else
                                   int(sum(r["spot_check_counts"]["checked"] for r in runs))),
        }
    out = {"summary": summary, "runs": cache, "seeds": args.seeds, "checks": args.checks,
           "setting": "HCP Schaefer-100 group: train706 / 2 subjects / test303, quick preset, "
                      "shipped Schaefer-100 models; validation and test Euler",
           "machine": {"platform": platform.platform(), "python": platform.python_version()},
           "versions": _versions()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=plain))
    print(json.dumps(summary, indent=1))
    return 0


def _versions() -> dict:
    import cma
    import torch

    import nmmfit

    return {"nmmfit": nmmfit.__version__, "numpy": np.__version__, "torch": torch.__version__,
            "cma": cma.__version__}


if __name__ == "__main__":
    sys.exit(main())
