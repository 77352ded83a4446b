"""Is a realistic FCD only reachable near global synchrony? A scan of G through fitted solutions.

The fits on the bundled data trade the FC terms against the FCD term: started from the
linearised-FC optimum (1 - r 0.47, FC mean on target), CMA-ES moves to solutions with a low
FCD KS but an FC mean far above the data's (``benchmarks/results/fit_quality.json``,
``warm_start_diagnostics``). Here the regional pattern of each solution is held fixed and only
G is scanned; each point is simulated at full length (1200 frames at TR 0.72 s after 144 s
burn-in, dt 6 ms, 2 noise duplicates) and scored on the training group train706 (``strength``
SC): 1 - r, L1, KS, the simulated FC mean and the largest real eigenvalue of the fixed point.
If no G gives both a KS near the data's noise level and an FC mean near the data's, the
trade-off is a property of the model on this SC, not of the search.

Writes ``benchmarks/results/fc_fcd_tradeoff.json``. Run: ``python benchmarks/fc_fcd_tradeoff.py``
(needs ``fit_quality.json`` with its seed0 and warm_diag stages; about 3 min on 2 cores).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fit_quality import score, targets  # noqa: E402

from nmmfit.cli import strict_json  # noqa: E402

G_FACTORS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5)


def main() -> int:
    import nmmfit
    from nmmfit.fit import Parametrisation
    from nmmfit.models import fic
    from nmmfit.stats.fc import upper_tri

    t0 = time.perf_counter()
    fq = json.loads((HERE / "results" / "fit_quality.json").read_text())
    tr = targets("strength")[0]
    param = Parametrisation.from_target(tr, ("myelin", "fc_gradient"))
    warm = fq["warm_start_diagnostics"]
    starts = {"linear_fc_start": warm["warm_start"]["x"],
              "warm_diag_solution": list(warm["best_x"].values()),
              "cold_seed0_solution": list(fq["group_fits"][0]["best_x"].values())}
    gi = param.names.index("G")
    out = {"benchmark": "fc_fcd_tradeoff",
           "machine": {"python": platform.python_version(), "nmmfit": nmmfit.__version__,
                       "cores": 2},
           "target": "train706 (strength SC), 1200 frames after 144 s burn-in, dt 6 ms, "
                     "2 duplicates, seed 0",
           "empirical_fc_mean": float(upper_tri(tr.fc).mean()), "scans": {}}
    for name, x in starts.items():
        x = np.asarray(x, dtype=float)
        xs = np.repeat(x[None], len(G_FACTORS), axis=0)
        xs[:, gi] = np.clip(x[gi] * np.asarray(G_FACTORS), *param.bounds["G"])
        reg = param.expand(xs)
        s = score(tr, reg.wEE, reg.wEI, reg.G, reg.sigma, n_dup=2, seed=0)
        eig = fic.jacobian_max_real_eig(reg.wEE, reg.wEI, reg.G, tr.sc)
        rows = []
        for i in range(len(G_FACTORS)):
            rows.append({"G": float(reg.G[i]), "G_factor": G_FACTORS[i],
                         **{k: (None if not np.isfinite(float(s[k][i])) else float(s[k][i]))
                            for k in ("fc_corr", "fc_l1", "fcd_ks", "total", "fc_mean")},
                         "valid": bool(s["valid"][i]), "max_real_eig": float(eig[i])})
        out["scans"][name] = {"x": x.tolist(), "rows": rows}
        print(f"{name}:", file=sys.stderr)
        for r in rows:
            print(f"  G {r['G']:.3f} 1-r {r['fc_corr']} L1 {r['fc_l1']} KS {r['fcd_ks']} "
                  f"mean {r['fc_mean']} eig {r['max_real_eig']:.3f}", file=sys.stderr)
    out["wall_s"] = time.perf_counter() - t0
    dest = HERE / "results" / "fc_fcd_tradeoff.json"
    dest.write_text(strict_json(out, indent=1))
    print(f"wrote {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
