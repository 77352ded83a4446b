"""How much the AAL2 predictor's held-out correlation moves between retrainings of the shipped
recipe (structured MLP + 3,000 simulated summaries): other training seeds, and the same seed
on another machine (float rounding).

    .venv/bin/python benchmarks/surrogate_seed_spread.py --seeds 1

Uses the stores, the summaries file and the seed-0 models of a ``benchmarks/surrogate.py``
work folder (``--work``, default ``runs/surrogate_bench``). For each seed in ``--seeds`` the
recipe is retrained under ``--models`` (reused when present) and scored on the held-out HCP
AAL2 subjects and on gw, beside the benchmark's own seed-0 model and the shipped model (which
was trained, with seed 0, on another machine). Writes
``benchmarks/results/surrogate_seed_spread.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _stages import plain  # noqa: E402


def main(argv=None) -> int:
    import torch

    from nmmfit.surrogate.shipped import load_models, load_shipped, model_files
    from nmmfit.surrogate.workflow import SHIPPED_SUMMARY_ROWS, evaluate_models, train_from_store

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "surrogate_bench")
    p.add_argument("--models", type=Path, default=ROOT / "runs" / "surrogate_seed_spread")
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--out", type=Path, default=HERE / "results" / "surrogate_seed_spread.json")
    args = p.parse_args(argv)
    n_summ = SHIPPED_SUMMARY_ROWS["hcp_aal"]
    models = {"shipped (seed 0, trained at stop 13 on another machine)": load_shipped("aal2"),
              "benchmark work folder (seed 0, this machine)": load_models(
                  args.work / "models" / "hcp_aal-mlp-structured+summaries-clf_mlp")}
    walls = {}
    for seed in args.seeds:
        d = args.models / f"hcp_aal-seed{seed}"
        t0 = time.perf_counter()
        if not model_files(d)[0].is_file():
            train_from_store(args.work / "surrogate_hcp_aal.db", d, dataset="hcp_aal",
                             arch="mlp-structured", seed=seed, max_epochs=100, patience=8,
                             classifier_epochs=1, summaries=args.work / "summaries_hcp_aal.npz",
                             summary_rows=n_summ)
        walls[seed] = time.perf_counter() - t0
        models[f"seed {seed} (this machine)"] = load_models(d)
    out = {}
    for name, (pred, clf) in models.items():
        h = pred.meta["history"]
        row = {"best_epoch": h["best_epoch"], "best_val_loss": h["best_val_loss"]}
        for ds in ("hcp_aal", "gw_aal"):
            res = evaluate_models(args.work / f"surrogate_{ds}.db", pred, clf)
            res.pop("_arrays")
            row[ds] = res["predictor"]
        out[name] = row
        print(f"{name}: val {row['best_val_loss']:.5f}, held-out r "
              f"{row['hcp_aal']['r_total']:.3f}, gw r {row['gw_aal']['r_total']:.3f}")
    result = {"recipe": f"mlp-structured + {n_summ} simulated summaries, at most 100 epochs, "
                        "patience 8 (the shipped AAL2 predictor)",
              "models": out, "train_s_this_call": walls, "torch": torch.__version__,
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "processor": platform.processor()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=plain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
