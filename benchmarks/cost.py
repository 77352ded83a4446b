"""Benchmark the FCD CDFs + FC/FCD costs of a batch of simulations (DELSSOME FCD).

Writes ``benchmarks/results/cost.json``. Workload (the issue's "must show"): 100 simulations of
1200 frames x 100 regions (Schaefer-100), FCD with 83-frame windows and step 1 (1118 windows,
a 1118 x 1118 FCD over 4,950 edges per simulation), 10,000 bins, costs against the bundled
HCP Schaefer-100 subjects' target. Target: under 10 s on 2 cores.

The dominant arithmetic is the FCD product X X^T per simulation: numpy calls BLAS ``syrk``,
which computes the upper triangle only, W (W + 1) / 2 * E multiply-adds = W (W + 1) E flops
(6.19 GFLOP per simulation here; the full product would be twice that).

Usage::

    python benchmarks/cost.py             # 100 simulations, 3 repeats
    python benchmarks/cost.py --quick     # 20 simulations, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np
import scipy

import nmmfit
from nmmfit import datasets
from nmmfit._parallel import default_threads
from nmmfit.data.target import Target
from nmmfit.stats import FCDSpec, fc_fcd_cost, fcd_histogram

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "cost.json"


def surrogate_bold(rng: np.random.Generator, n_sims: int, n: int, t: int) -> np.ndarray:
    """BOLD-like float32 [n_sims, 1, n, t]: AR(1) noise plus a shared component."""
    e = rng.standard_normal((n_sims, n, t), dtype=np.float32)
    x = np.empty_like(e)
    x[..., 0] = e[..., 0]
    for k in range(1, t):  # benchmark input only
        x[..., k] = 0.9 * x[..., k - 1] + e[..., k]
    x += rng.standard_normal((n_sims, 1, t), dtype=np.float32) * 2.0
    return x[:, None]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-sims", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    n_sims = args.n_sims or (20 if args.quick else 100)
    repeats = args.repeats or (1 if args.quick else 3)

    ds = datasets.load("hcp_schaefer100")
    target = Target.from_dataset(ds, fcd_spec=FCDSpec.delssome(ds.tr))  # subjects' runs
    spec = target.fcd_spec
    n, t = target.n_regions, 1200
    w, e = spec.n_windows(t), n * (n - 1) // 2
    bold = surrogate_bold(np.random.default_rng(args.seed), n_sims, n, t)

    fc_fcd_cost(bold[:2], target)  # compile / warm caches
    cost_walls, hist_walls, load = [], [], []
    for _ in range(repeats):
        load.append(os.getloadavg()[0])
        t0 = time.perf_counter()
        fcd_histogram(bold[:, 0], spec)
        hist_walls.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        terms = fc_fcd_cost(bold, target)
        cost_walls.append(time.perf_counter() - t0)
        print(f"FCD histograms {hist_walls[-1]:.2f} s; FCD CDFs + costs {cost_walls[-1]:.2f} s "
              f"({n_sims} sims)", flush=True)
    best = min(cost_walls)
    syrk_gflop = n_sims * w * (w + 1) * e / 1e9
    result = {
        "workload": {"n_sims": n_sims, "n_regions": n, "n_frames": t, "fcd_spec":
                     spec.to_dict(), "n_windows": w, "n_edges": e,
                     "fcd_values_per_sim": spec.n_values(t), "target": target.name},
        "cost_wall_s": cost_walls,
        "cost_wall_s_best": best,
        "fcd_histogram_wall_s": hist_walls,
        "per_sim_ms_best": 1e3 * best / n_sims,
        "fcd_syrk_gflop_total": syrk_gflop,
        "fcd_effective_gflop_per_s": syrk_gflop / best,
        "full_product_gflop_equiv_per_s": 2 * syrk_gflop / best,
        "under_10_s": bool(best < 10.0),
        "all_valid": bool(terms.valid.all()),
        "threads": default_threads(),
        "loadavg_1min_before_each": load,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count()},
        "versions": {"nmmfit": nmmfit.__version__, "numpy": np.__version__,
                     "scipy": scipy.__version__, "numba": numba.__version__},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"best {best:.2f} s for {n_sims} sims ({result['per_sim_ms_best']:.1f} ms/sim); FCD "
          f"product {syrk_gflop:.0f} GFLOP -> {result['fcd_effective_gflop_per_s']:.0f} GFLOP/s; "
          f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
