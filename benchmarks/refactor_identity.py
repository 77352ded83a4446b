"""Check that a refactor changed no result: the same probe run on two source trees.

The probe simulates the bundled train706 target (2 duplicates), scores it, and runs a tiny
quick-preset fit (2 epochs of 6, 72 s runs, Euler validation and test), then prints the BOLD
sum, the cost terms, the E/I ratio, the fit's run id, validation totals, best vector, test
cost and E/I map sum. Equal means bit-identical (JSON floats, 17 digits).

Usage (compare the tree under test with an older checkout, e.g. ``git worktree add /tmp/old
REV``)::

    python benchmarks/refactor_identity.py --old-src /tmp/old/src --old-rev REV

Writes ``benchmarks/results/refactor_identity.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PROBE = r"""
import json, sys
import numpy as np
from nmmfit.fit import fit, default_targets
from nmmfit.sim import simulate
from nmmfit.stats.cost import fc_fcd_cost
tr, va, te = default_targets()
out = {}
res = simulate(tr.sc, wEE=3.5, wEI=2.5, G=1.0, sigma=0.005, n_dup=2, seed=0)
ct = fc_fcd_cost(res.bold, tr, valid=res.valid)
out["sim_bold_sum"] = float(np.asarray(res.bold, dtype=np.float64).sum())
out["cost"] = [float(ct.fc_corr[0]), float(ct.fc_l1[0]), float(ct.fcd_ks[0]),
               float(ct.total[0])]
out["ei"] = float(res.ei_ratio.mean())
r = fit(tr, va, te, preset="quick", seed=1, store=sys.argv[1], n_epochs=2, popsize=6, mu=3,
        duration_s=72.0, n_dup_val=1, n_dup_test=2, test_group=2, test_duration_s=72.0)
out["run_id"] = r.run_id
out["test_cost"] = {k: float(v) for k, v in r.test_cost.items()}
out["val_total"] = [float(v) for v in r.val_total]
out["best_x"] = [float(v) for v in r.best_x]
out["ei_map_sum"] = float(np.nansum(r.ei_map))
print(json.dumps(out))
"""


def run_probe(src: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(src)}
        p = subprocess.run([sys.executable, "-c", PROBE, str(Path(tmp) / "fit.db")], env=env,
                           cwd=tmp, capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-src", type=Path, required=True)
    ap.add_argument("--old-rev", default="")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "refactor_identity.json")
    a = ap.parse_args(argv)
    new_rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()
    old, new = run_probe(a.old_src), run_probe(ROOT / "src")
    same = {k: old[k] == new[k] for k in old}
    out = {"benchmark": "refactor_identity", "old_rev": a.old_rev, "new_rev": new_rev,
           "identical": all(same.values()), "per_key": same, "old": old, "new": new}
    a.out.write_text(json.dumps(out, indent=1))
    print(json.dumps({"identical": out["identical"], "per_key": same}))
    return 0 if out["identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
