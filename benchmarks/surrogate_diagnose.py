"""Where the shipped Schaefer-100 cost predictor loses correlation: r by target and run kind,
and with the target it is conditioned on swapped.

    .venv/bin/python benchmarks/surrogate_diagnose.py

The committed table (``data/surrogate/hcp_schaefer100_quick.npz``) is imported into a store
under ``--work``; the shipped models score the valid rows of every target. For each target and
run kind (CMA-ES trajectory or uniform box samples) the script reports Pearson r per cost term
and for the total (the training targets' rows are in-sample). It then scores each target's
rows once conditioned on every other target's FC and FCD: if the r of the held-out test303
rows hardly moves with the conditioning target, the predictor's error on them is not in how
it reads the target. Writes ``benchmarks/results/surrogate_diagnose.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _stages import plain  # noqa: E402


def main(argv=None) -> int:
    import torch

    from nmmfit.surrogate.compact import import_compact
    from nmmfit.surrogate.shipped import load_shipped
    from nmmfit.surrogate.table import build_table
    from nmmfit.surrogate.train import cost_metrics, predict_costs

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--table", type=Path,
                   default=ROOT / "data" / "surrogate" / "hcp_schaefer100_quick.npz")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "surrogate_diagnose")
    p.add_argument("--out", type=Path, default=HERE / "results" / "surrogate_diagnose.json")
    args = p.parse_args(argv)
    store = args.work / "surrogate_hcp_schaefer100.db"
    import_compact(args.table, store)  # skips the runs the store already has
    table, tg = build_table(store)
    pred, _ = load_shipped("schaefer100", 100)
    names = list(tg["names"])

    def r_of(rows: np.ndarray, cond: int | None = None) -> dict:
        sub = {k: v[rows] for k, v in table.items()}
        if cond is not None:
            sub["target_idx"] = np.full(rows.size, cond)
        m = cost_metrics(predict_costs(pred.model, sub, tg, pred.normaliser), sub["costs"])
        total = sub["costs"].sum(axis=1)
        return {"n": int(rows.size), **{k: v for k, v in m.items() if k.startswith("r_")},
                "label_total_mean": float(total.mean()), "label_total_sd": float(total.std())}

    ok = table["valid"] & np.isfinite(table["costs"]).all(axis=1)
    by_kind, swapped = {}, {}
    for ti, name in enumerate(names):
        rows = np.flatnonzero(ok & (table["target_idx"] == ti))
        by_kind[name] = {"role": tg["roles"][ti], "all": r_of(rows)}
        for kind in ("cmaes", "random"):
            by_kind[name][kind] = r_of(rows[table["kind"][rows] == kind])
        swapped[name] = {other: r_of(rows, cj)["r_total"] for cj, other in enumerate(names)}
    result = {"model": {k: pred.meta.get(k) for k in ("name", "parcellation", "data_hash")},
              "by_target_and_kind": by_kind,
              "r_total_conditioned_on": swapped,
              "note": "rows of the training targets are in-sample; labels are single "
                      "quick-preset simulations (test-retest r 0.898 on test303)",
              "torch": torch.__version__,
              "machine": {"platform": platform.platform(), "python": platform.python_version()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=plain))
    for name, v in by_kind.items():
        print(f"{name:32s} {v['role']:5s} all {v['all']['r_total']:.3f}  cmaes "
              f"{v['cmaes']['r_total']:.3f} (n {v['cmaes']['n']})  random "
              f"{v['random']['r_total']:.3f} (n {v['random']['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
