"""MLP against the published transformer cost predictor, on the same rows, budget and test set.

    nice .venv/bin/python benchmarks/surrogate_arch.py [--rows 8000] [--epochs 10]

Both predictors are trained by :func:`nmmfit.surrogate.workflow.train_from_store` on the same
random ``--rows`` training rows (and as many validation rows) of the Schaefer-100 generation
store, seed 0, at most ``--epochs`` epochs with early stopping (patience 8), then scored on
the held-out test303 rows, as in ``benchmarks/surrogate.py``'s quality stage. A reduced
budget: on 2 CPU cores the transformer takes about 1 s per 100 training rows per epoch, so
the full 48,000-row table for 40 epochs would take about 5 h. The comparison therefore says
which architecture learns more from the same small budget, not which is best at full scale.

Writes ``benchmarks/results/surrogate_arch.json``; trained models are kept under ``--work``
and reused, so a killed run resumes.
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
from _stages import plain  # noqa: E402


def _store() -> Path:
    """The Schaefer-100 generation store that ``benchmarks/surrogate.py``'s data stage builds
    from the bundled compact table (run that stage first)."""
    bench = ROOT / "runs" / "surrogate_bench"
    stages = bench / "stages.json"
    if not stages.exists():
        raise SystemExit("run `benchmarks/surrogate.py --stop-after data` first: it imports the "
                         "compact generation tables into runs/surrogate_bench/")
    return Path(json.loads(stages.read_text())["data"]["hcp_schaefer100"]["store"])


def _speed(pred, target, repeats: int = 5) -> float:
    """Seconds per candidate for a batch of 100, through the surrogate evaluator."""
    from nmmfit.fit import Parametrisation
    from nmmfit.surrogate.evaluator import SurrogateEvaluator

    param = Parametrisation.from_target(target)
    x = param.uniform_vectors(np.random.default_rng(0), 20000)
    x = x[param.in_bounds(x)][:100]
    ev = SurrogateEvaluator(target, param, pred, None, threads=1)
    ev.evaluate(x, 0)
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ev.evaluate(x, 0)
        t.append(time.perf_counter() - t0)
    return float(np.median(t)) / x.shape[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "surrogate_arch")
    p.add_argument("--out", type=Path, default=HERE / "results" / "surrogate_arch.json")
    args = p.parse_args(argv)
    from nmmfit.fit import default_targets
    from nmmfit.surrogate.shipped import load_models, model_files
    from nmmfit.surrogate.workflow import evaluate_models, train_from_store

    store = _store()
    _, _, test = default_targets(sc_normalisation=LEGACY_SC_RECIPE)
    out: dict = {}
    for arch in ("mlp", "transformer"):
        d = args.work / f"{arch}-rows{args.rows}-ep{args.epochs}"
        hist = None
        if not model_files(d)[0].is_file():
            print(time.strftime("%H:%M:%S"), "training", arch, file=sys.stderr, flush=True)
            pair = train_from_store(store, d, dataset="hcp_schaefer100", arch=arch, seed=0,
                                    max_epochs=args.epochs, max_rows=args.rows, progress=True,
                                    classifier_arch="mlp", classifier_epochs=1)
            hist = pair.history
            (d / "history.json").write_text(json.dumps(hist, default=plain))
        else:
            hist = json.loads((d / "history.json").read_text())
        pred, clf = load_models(d)
        res = evaluate_models(store, pred, clf, roles=("test",))
        res.pop("_arrays")
        out[arch] = {"predictor": res["predictor"],
                     "predictor_epochs": hist["predictor"]["epochs_run"],
                     "predictor_best_epoch": hist["predictor"].get("best_epoch"),
                     "predictor_train_s": hist["predictor"].get("wall_time_s"),
                     "train_wall_s": hist["wall_s"],
                     "surrogate_s_per_candidate_batch100": _speed(pred, test),
                     "n_parameters": int(sum(t.numel() for t in pred.model.parameters()))}
        print(time.strftime("%H:%M:%S"), arch, json.dumps(out[arch]["predictor"]),
              file=sys.stderr, flush=True)
    result = {
        "comparison": {a: {"r_total": v["predictor"]["r_total"],
                           "r": {k: v["predictor"][f"r_{k}"]
                                 for k in ("fc_corr", "fc_l1", "fcd_ks")}}
                       for a, v in out.items()},
        "runs": out, "rows": args.rows, "epochs": args.epochs, "seed": 0,
        "test": "hcp_schaefer100 test303 rows of the generation store",
        "note": "reduced budget (see the module docstring); the shipped MLP was trained on "
                "48,000 rows for up to 40 epochs",
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=plain))
    print(json.dumps(result["comparison"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
