"""Where the time of a surrogate CMA-ES epoch goes: pycma's ask (with the rejection sampler),
the two networks, pycma's tell and its stop test, side by side for two versions of the code.

    .venv/bin/python benchmarks/surrogate_loop.py --label this
    PYTHONPATH=<old checkout>/src .venv/bin/python benchmarks/surrogate_loop.py --label old

The setting is the surrogate benchmark's whole-fit stage: HCP Schaefer-100 group train706,
the shipped Schaefer-100 models, the quick preset's search (50 candidates, mu 5, 30 epochs).
Each repeat runs seeds 0 and 1 as :func:`nmmfit.fit.run_search` does (without the store
writes) and times each phase; the figures are medians over repeats of the mean per epoch.
The package under test is whatever ``import nmmfit`` finds, so pointing ``PYTHONPATH`` at
another checkout times that version; its git commit is recorded. Each call adds (or replaces)
its ``--label`` in ``benchmarks/results/surrogate_loop.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nmmfit.data.sc import LEGACY_SC_RECIPE  # the shipped surrogates' SC recipe

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _stages import plain  # noqa: E402

PHASES = ("ask", "evaluate", "tell", "stop")


def _commit(path: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def time_epochs(evaluator, config, seed: int) -> dict:
    """Mean seconds per epoch of each phase over one search of ``config.n_epochs`` epochs."""
    from nmmfit.fit.cmaes import CMAESSampler, epoch_seed

    sampler = CMAESSampler(evaluator.parametrisation, config, seed)
    tot = dict.fromkeys(PHASES, 0.0)
    draws = 0
    for epoch in range(config.n_epochs):
        t0 = time.perf_counter()
        x, n = sampler.ask()
        t1 = time.perf_counter()
        ev = evaluator.evaluate(x, epoch_seed(seed, epoch, 1))
        t2 = time.perf_counter()
        sampler.tell(x, ev.total, ev.valid)
        t3 = time.perf_counter()
        sampler.stop()
        t4 = time.perf_counter()
        for k, a, b in zip(PHASES, (t0, t1, t2, t3), (t1, t2, t3, t4), strict=True):
            tot[k] += b - a
        draws += n
    out = {k: v / config.n_epochs for k, v in tot.items()}
    out["epoch"] = sum(out[k] for k in PHASES)
    out["draws_per_epoch"] = draws / config.n_epochs
    return out


def main(argv=None) -> int:
    import torch

    import nmmfit
    from nmmfit.fit import default_targets, get_preset
    from nmmfit.fit.parametrise import Parametrisation
    from nmmfit.surrogate.evaluator import SurrogateEvaluator

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--label", required=True, help="name of this code version in the JSON")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", type=Path, default=HERE / "results" / "surrogate_loop.json")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")

    train, _, _ = default_targets(sc_normalisation=LEGACY_SC_RECIPE)
    maps = ("myelin", "fc_gradient")
    ev = SurrogateEvaluator.from_shipped(train, Parametrisation.from_target(train, maps),
                                         "schaefer100")
    config = get_preset("quick").search
    time_epochs(ev, config, 99)  # warm-up: imports, first torch calls
    runs = {s: [time_epochs(ev, config, s) for _ in range(args.repeats)] for s in args.seeds}
    med = {s: {k: float(np.median([r[k] for r in rs])) for k in (*PHASES, "epoch")}
           for s, rs in runs.items()}
    mean_epoch = float(np.mean([m["epoch"] for m in med.values()]))
    src = Path(nmmfit.__file__).resolve().parent
    entry = {
        "package": str(src), "commit": _commit(src), "nmmfit_version": nmmfit.__version__,
        "search": config.as_dict(),
        "repeats": args.repeats, "torch_threads": torch.get_num_threads(),
        "median_s_per_epoch": med, "mean_s_per_epoch": mean_epoch,
        "draws_per_epoch": {s: float(np.mean([r["draws_per_epoch"] for r in rs]))
                            for s, rs in runs.items()},
        "runs": runs,
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "cma": __import__("cma").__version__},
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "processor": platform.processor()},
    }
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result.setdefault("note", "seconds per epoch of a surrogate CMA-ES search (HCP "
                              "Schaefer-100 train706, shipped models, quick preset search); "
                              "medians over repeats; no store writes")
    result.setdefault("labels", {})[args.label] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=plain))
    for s, m in med.items():
        print(f"[{args.label}] seed {s}: " + ", ".join(f"{k} {v * 1e3:.3f} ms"
                                                      for k, v in m.items()))
    print(f"[{args.label}] mean epoch {mean_epoch * 1e3:.3f} ms ({_commit(src)[:10]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
