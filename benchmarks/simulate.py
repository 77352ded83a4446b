"""Benchmark the pFIC + BOLD engines, neurolib's Wong-Wang, the FC+FCD cost, and the FIC check.

Writes ``benchmarks/results/simulate.json``. Workload (the issue's): pFIC + Balloon-Windkessel,
100 regions (the bundled HCP Schaefer-100 train706 SC, DELSSOME-normalised), batch 100,
dt = 0.006 s, noise on. Throughput is in region-steps per second per core, where a
region-step is one Euler step of one region of one simulation (neural + BOLD + noise).

Usage::

    python benchmarks/simulate.py            # full run (a few minutes on 2 cores)
    python benchmarks/simulate.py --quick    # shorter simulated spans, same keys

neurolib runs in its own virtual environment (``benchmarks/.envs/neurolib``, created on first
use with ``numpy<2`` and ``neurolib==0.6.2``); pass ``--skip-neurolib`` to leave it out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from nmmfit import datasets
from nmmfit._parallel import default_threads
from nmmfit.data.target import Target
from nmmfit.models import fic
from nmmfit.sim import SimConfig, simulate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "simulate.json"
ENV = HERE / ".envs" / "neurolib"


def engine_rate(sc, engine: str, batch: int, duration_s: float, threads: int, seed: int) -> dict:
    """Region-steps/s (total and per core) of one engine on the workload."""
    rng = np.random.default_rng(seed)
    n = sc.shape[0]
    wee = rng.uniform(2.0, 4.0, (batch, n))
    wei = rng.uniform(1.5, 3.0, (batch, n))
    g = rng.uniform(0.5, 1.5, batch)
    cfg = SimConfig(duration_s=duration_s, burn_in_s=0.0, warmup_steps=0)
    # compile / warm caches on a tiny run first
    simulate(sc, wee[:2], wei[:2], g[:2], 0.005, config=replace(cfg, duration_s=0.72),
             engine=engine, threads=threads)
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    res = simulate(sc, wee, wei, g, 0.005, config=cfg, engine=engine, threads=threads, seed=seed)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    cores = threads if engine == "numba" else _torch_threads(engine)
    rate = res.meta["region_steps"] / wall
    return {"engine": engine, "batch": batch, "n_regions": n, "simulated_s": duration_s,
            "steps": cfg.n_steps, "wall_s": wall, "cores": cores,
            "region_steps_per_s": rate, "region_steps_per_s_per_core": rate / cores,
            "cpu_s": cpu, "region_steps_per_cpu_s": res.meta["region_steps"] / cpu,
            "loadavg_1min_before": load, "finite_fraction": float(res.finite.mean())}


def _torch_threads(engine: str) -> int:
    if engine == "torch":
        import torch

        return torch.get_num_threads()
    return 1  # numpy reference: single-threaded elementwise ops (BLAS coupling is tiny)


def neurolib_rate(sc, duration_s: float) -> dict:
    """neurolib Wong-Wang + BOLD in its own environment (numpy < 2)."""
    py = ENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy<2", "neurolib==0.6.2"],
                       check=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sc.npy"
        np.save(path, sc)
        env = dict(os.environ, NUMBA_NUM_THREADS="1")
        out = subprocess.run([str(py), str(HERE / "neurolib_ww.py"), str(path), str(duration_s)],
                             check=True, capture_output=True, text=True, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["cores"] = 1
    res["region_steps_per_s_per_core"] = res["region_steps_per_s"]
    return res


def cost_timing(target: Target, n_sims: int, seed: int) -> dict:
    """Wall time of FCD CDFs + FC+FCD costs for ``n_sims`` simulations of 1200 frames."""
    from nmmfit.stats.cost import fc_fcd_cost

    rng = np.random.default_rng(seed)
    n = target.n_regions
    # BOLD-like surrogate: smoothed noise plus a shared component (values only matter for
    # the arithmetic, which is data-independent)
    base = rng.standard_normal((n_sims, 1, n, 1200)).astype(np.float32)
    bold = base + 0.3 * rng.standard_normal((n_sims, 1, 1, 1200)).astype(np.float32)
    fc_fcd_cost(bold[:2], target)  # warm-up
    t0 = time.perf_counter()
    terms = fc_fcd_cost(bold, target)
    wall = time.perf_counter() - t0
    w = target.fcd_spec.n_windows(1200)
    e = n * (n - 1) // 2
    gflop = n_sims * 2.0 * w * w * e / 1e9  # full FCD product, multiply + add
    return {"n_sims": n_sims, "n_frames": 1200, "n_regions": n, "n_windows": w, "wall_s": wall,
            "fcd_product_gflop_total": gflop, "effective_gflop_per_s": gflop / wall,
            "all_finite": bool(np.isfinite(terms.total).all())}


def _draw_homogeneous(rng, n_samples: int, n: int):
    p = fic.PARAM_BY_NAME
    wee = rng.uniform(p["wEE"].lower, p["wEE"].upper, n_samples)
    wei = rng.uniform(p["wEI"].lower, p["wEI"].upper, n_samples)
    g = rng.uniform(p["G"].lower, p["G"].upper, n_samples)
    return np.repeat(wee[:, None], n, 1), np.repeat(wei[:, None], n, 1), g


def _draw_mapped(rng, n_samples: int, maps: np.ndarray):
    """Regional wEE, wEI = a0 + sum_k a_k map_k (z-scored maps), redrawn until inside the box."""
    p = fic.PARAM_BY_NAME
    out = {}
    for name in ("wEE", "wEI"):
        lo, hi = p[name].lower, p[name].upper
        rows = []
        while len(rows) < n_samples:
            a0 = rng.uniform(lo, hi)
            slopes = rng.uniform(-1, 1, maps.shape[0]) * 0.1 * (hi - lo)
            v = a0 + slopes @ maps
            if v.min() >= lo and v.max() <= hi:
                rows.append(v)
        out[name] = np.array(rows)
    g = rng.uniform(p["G"].lower, p["G"].upper, n_samples)
    return out["wEE"], out["wEI"], g


def sigma0_check(target: Target, n_samples: int, duration_s: float, seed: int,
                 threads: int) -> dict:
    """σ = 0, start at the FIC fixed point: how far does each region's mean r_E drift from 3 Hz?

    Two kinds of draws in the search box: homogeneous (one wEE, wEI per set) and regional through
    the myelin / FC-gradient maps (wEE, wEI = a0 + a1 map1 + a2 map2, kept inside the box); G is
    uniform in [0, 3]. Linearly unstable fixed points (Jacobian eigenvalue with positive real
    part) are counted and reported; the deviation is measured over the stable ones whose Euler
    map at dt = 0.006 s is also stable. Fixed points that are stable in continuous time but that
    explicit Euler at 0.006 s cannot hold (stiff inhibitory loop) are counted separately and
    re-run at dt = 0.0005 s.
    """
    rng = np.random.default_rng(seed)
    sc = target.sc
    n = sc.shape[0]
    maps = np.array([target.maps[k] for k in target.maps])
    out = {"n_samples_per_kind": n_samples, "simulated_s": duration_s, "burn_in_s": 144.0,
           "dt": 0.006, "start": "FIC fixed point", "maps": list(target.maps)}
    devs = []
    for kind, (wee, wei, g) in (("homogeneous", _draw_homogeneous(rng, n_samples, n)),
                                ("map_parametrised", _draw_mapped(rng, n_samples, maps))):
        stable = fic.jacobian_max_real_eig(wee, wei, g, sc) < 0
        euler_ok = fic.euler_spectral_radius(wee, wei, g, sc, 0.006) < 1
        row = {"fraction_unstable": float(1 - stable.mean()), "n_stable": int(stable.sum()),
               "n_stable_but_euler_unstable_at_dt_0.006": int((stable & ~euler_ok).sum())}
        both = stable & euler_ok
        cfg = SimConfig(duration_s=duration_s, rate_gate=None)
        if both.any():
            res = simulate(sc, wee[both], wei[both], g[both], 0.0, config=cfg, threads=threads)
            dev = np.abs(res.mean_rE - 3.0)
            row["max_abs_rE_dev_hz"] = float(dev.max())
            row["all_within_0.1_hz"] = bool((dev <= 0.1).all())
            devs.append(dev.max())
        stiff = stable & ~euler_ok
        if stiff.any():
            # the same fixed points at dt = 0.0005 s (the test dt): they hold
            res = simulate(sc, wee[stiff], wei[stiff], g[stiff], 0.0, threads=threads,
                           config=replace(cfg, dt=0.0005))
            row["euler_unstable_ones_at_dt_0.0005_max_abs_rE_dev_hz"] = float(
                np.abs(res.mean_rE - 3.0).max())
            res = simulate(sc, wee[stiff], wei[stiff], g[stiff], 0.0, config=cfg, threads=threads)
            row["euler_unstable_ones_at_dt_0.006_max_abs_rE_dev_hz"] = float(
                np.abs(res.mean_rE - 3.0).max())
        out[kind] = row
    out["max_abs_rE_dev_hz"] = float(max(devs)) if devs else None
    out["fraction_unstable"] = float(np.mean([out[k]["fraction_unstable"]
                                              for k in ("homogeneous", "map_parametrised")]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-neurolib", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    threads = default_threads()
    ds = datasets.load("hcp_schaefer100")
    target = Target.from_dataset(ds, group="train706")
    sc = target.sc
    long = 14.4 if args.quick else 144.0
    engines = {}
    detail = {}
    for name, dur, thr in [("numba", long, threads), ("numba_1thread", long, 1),
                           ("torch", 1.44 if args.quick else 7.2, threads),
                           ("numpy", 0.72 if args.quick else 2.88, 1)]:
        eng = name.split("_")[0]
        r = engine_rate(sc, eng, 100, dur, thr, args.seed)
        detail[name] = r
        engines[name] = r["region_steps_per_s_per_core"]
        print(f"{name:>14}: {r['region_steps_per_s_per_core'] / 1e6:7.2f} M region-steps/s/core "
              f"({r['wall_s']:.1f} s)", flush=True)
    result = {
        "fast_region_steps_per_s_per_core": engines["numba"],
        "engines": engines,
        "engine_runs": detail,
    }
    if not args.skip_neurolib:
        nl = neurolib_rate(sc, 10.0 if args.quick else 60.0)
        result["neurolib_region_steps_per_s_per_core"] = nl["region_steps_per_s_per_core"]
        result["neurolib"] = nl
        result["fast_over_neurolib"] = engines["numba"] / nl["region_steps_per_s_per_core"]
        print(f"{'neurolib WW':>14}: {nl['region_steps_per_s_per_core'] / 1e6:7.2f} M "
              f"region-steps/s/core", flush=True)
    full_sim = (864 + 144) / 0.006 * 100 + 5000 * 100
    result["seconds_per_full_simulation_per_core"] = full_sim / engines["numba"]
    # the cost is timed on a DELSSOME-definition target (83-frame windows, step 1 -> 1118
    # windows): the two bundled individuals' four runs
    cost_target = Target.from_dataset(ds, subjects=["100206", "100307"])
    ct = cost_timing(cost_target, 100, args.seed)
    result["cost_100_sims_s"] = ct["wall_s"]
    result["cost"] = ct
    print(f"FCD CDFs + costs of 100 sims: {ct['wall_s']:.2f} s "
          f"({ct['effective_gflop_per_s']:.0f} GFLOP/s effective)", flush=True)
    chk = sigma0_check(target, 48 if args.quick else 200, 72.0 if args.quick else 864.0,
                       args.seed, threads)
    result["sigma0_max_abs_rE_dev_hz"] = chk.get("max_abs_rE_dev_hz")
    result["sigma0_fraction_unstable"] = chk["fraction_unstable"]
    result["sigma0_check"] = chk
    for kind in ("homogeneous", "map_parametrised"):
        c = chk[kind]
        print(f"sigma=0 check, {kind}: fraction unstable {c['fraction_unstable']:.3f}; "
              f"{c['n_stable']} stable, of which "
              f"{c['n_stable_but_euler_unstable_at_dt_0.006']} Euler-unstable at dt 0.006; "
              f"max |r_E - 3| over the rest = {c.get('max_abs_rE_dev_hz')} Hz; "
              f"Euler-unstable ones at dt 0.0005: "
              f"{c.get('euler_unstable_ones_at_dt_0.0005_max_abs_rE_dev_hz')} Hz", flush=True)
    import numba
    import scipy
    import torch

    import nmmfit

    result["meta"] = {
        "quick": args.quick, "seed": args.seed, "threads": threads,
        "cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count(),
        "dataset": "hcp_schaefer100 / train706", "sc_normalisation": target.sc_normalisation,
        "versions": {"nmmfit": nmmfit.__version__, "numpy": np.__version__,
                     "scipy": scipy.__version__, "numba": numba.__version__,
                     "torch": torch.__version__, "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
