"""Benchmark: how well can the pFIC model's FC match the data at all, on this SC?

The fits' largest cost term is 1 - r(FC). This asks whether that is the search's fault or the
model's, using the closed-form FC of the model linearised at its FIC fixed point
(:mod:`nmmfit.models.linearised`; no sampling noise, ~60 ms per candidate against seconds for
a simulation). Writes ``benchmarks/results/fc_ceiling.json``:

1. ``agreement``: the linearised FC against simulated FC (full length, 144 s burn-in, 4
   duplicates, dt 6 ms) on a homogeneous G scan and at the CMA-ES solutions of
   ``fit_quality.json`` (r between them, and both FC means).
2. ``ceilings``: per SC recipe, the largest r(FC_lin, FC_train706) that any stable candidate
   reaches, found by CMA-ES maximising r alone (pycma, fixed seeds; unstable or out-of-box
   candidates penalised), for three model families: homogeneous (wEE, wEI, G), the map
   parametrisation of the fits (myelin + FC gradient: 10 coefficients), and free regional
   wEE, wEI, sigma (301 values; an upper bound that no map parametrisation can beat, up to
   the search's convergence). Each optimum is also scored on test303 and on
   intra-hemispheric edges. FCD is not part of this: it asks only what FC pattern the model
   can make.
3. ``sc_predictors``: what the SC alone predicts: r(SC, FC) and the best r of the linear
   diffusion kernel (I - g SC / rho(SC))^-1 over g in (0, 1).

Run: ``nice .venv/bin/python benchmarks/fc_ceiling.py`` (about 20 min on one core).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

RECIPES = {"strength": (0.0, 6.0), "delssome": (0.0, 12.0), "max": (0.0, 200.0)}
FAMILIES = {"homogeneous": {"popsize": 12, "iters": 40},
            "maps": {"popsize": 20, "iters": 80},
            "regional": {"popsize": 32, "iters": 300}}


def _u(m):
    from nmmfit.stats.fc import upper_tri

    return upper_tri(m)


def _r(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def _intra(target) -> np.ndarray:
    h = np.asarray(target.meta["hemisphere"])
    return _u(h[:, None] == h[None, :]).astype(bool)


class Family:
    """Search vector <-> regional (wEE, wEI, G, sigma) for one model family."""

    def __init__(self, kind: str, target, g_bounds):
        from nmmfit.fit import Parametrisation

        self.kind, self.n = kind, target.n_regions
        maps = () if kind in ("homogeneous", "regional") else ("myelin", "fc_gradient")
        self.param = Parametrisation.from_target(target, maps, bounds={"G": g_bounds})
        self.b = self.param.bounds

    @property
    def dim(self) -> int:
        return {"homogeneous": 3, "maps": self.param.dim, "regional": 3 * self.n + 1}[self.kind]

    def x0(self) -> np.ndarray:
        b = self.b
        if getattr(self, "start", None) is not None:
            return self.start
        if self.kind == "homogeneous":
            return np.array([3.5, 2.5, 0.5 * (b["G"][0] + b["G"][1]) / 3])
        if self.kind == "maps":
            x = np.zeros(self.param.dim)
            k1 = self.param.n_maps + 1
            x[0], x[k1], x[2 * k1], x[2 * k1 + 1] = 3.5, 2.5, b["G"][1] / 6, 0.005
            return x
        return np.concatenate([np.full(self.n, 3.5), np.full(self.n, 2.5), [b["G"][1] / 6],
                               np.full(self.n, 0.005)])

    def scales(self) -> np.ndarray:
        """Per-coordinate CMA-ES step scales."""
        g = 0.2 * self.b["G"][1]
        if self.kind == "homogeneous":
            return np.array([1.0, 0.7, g])
        if self.kind == "maps":
            lam = 0.2 * self.param.initial_stds(self.x0())  # DELSSOME's sigma0 0.2
            lam[2 * (self.param.n_maps + 1)] = g
            return lam
        # regional: refine a start (the maps optimum) with small steps; random regional
        # profiles of the box's scale make nearly every candidate's local E-I loop unstable
        return np.concatenate([np.full(self.n, 0.1), np.full(self.n, 0.07), [0.05 * g],
                               np.full(self.n, 0.0005)])

    def expand(self, x):
        x = np.asarray(x, dtype=float)
        n = self.n
        if self.kind == "homogeneous":
            return (np.full(n, x[0]), np.full(n, x[1]), x[2], np.full(n, 0.005))
        if self.kind == "maps":
            reg = self.param.expand(x[None])
            return reg.wEE[0], reg.wEI[0], float(reg.G[0]), reg.sigma[0]
        return x[:n], x[n:2 * n], x[2 * n], x[2 * n + 1:]

    def violation(self, x) -> float:
        """Total distance outside the box (0 inside)."""
        wee, wei, g, sig = self.expand(x)
        v = 0.0
        for arr, name in ((wee, "wEE"), (wei, "wEI"), (np.atleast_1d(g), "G"), (sig, "sigma")):
            lo, hi = self.b[name]
            v += float(np.sum(np.clip(lo - arr, 0, None) + np.clip(arr - hi, 0, None)))
        return v


def ceiling(kind: str, recipe: str, tr, te, seed: int = 0, start=None) -> dict:
    """CMA-ES on 1 - r(FC_lin, FC_train) for one family; ``start`` (regional parameters
    (wEE, wEI, G, sigma)) seeds the regional family."""
    import cma

    from nmmfit.models import linearised

    fam = Family(kind, tr, RECIPES[recipe])
    if start is not None:
        wee, wei, g, sig = start
        fam.start = np.concatenate([wee, wei, [g], sig])
    fe = _u(tr.fc)
    best = {"r": -np.inf, "x": None}

    def objective(x) -> float:
        v = fam.violation(x)
        if v > 0:
            return 2.0 + v
        fc = linearised.bold_fc(*fam.expand(x), tr.sc)[0]
        if not np.isfinite(fc).all():
            return 2.0  # unstable fixed point
        r = _r(_u(fc), fe)
        if r > best["r"]:
            best.update(r=r, x=np.array(x))
        return 1.0 - r

    cfg = FAMILIES[kind]
    es = cma.CMAEvolutionStrategy(fam.x0(), 1.0, {"CMA_stds": fam.scales(),
                                                  "popsize": cfg["popsize"], "seed": seed + 1,
                                                  "maxiter": cfg["iters"], "verbose": -9})
    t0 = time.perf_counter()
    while not es.stop():
        xs = es.ask()
        es.tell(xs, [objective(x) for x in xs])
    if best["x"] is None:
        raise RuntimeError(f"{kind}/{recipe}: no stable in-box candidate in "
                           f"{es.countevals} evaluations")
    wee, wei, g, sig = fam.expand(best["x"])
    fc_tr = linearised.bold_fc(wee, wei, g, sig, tr.sc)[0]
    fc_te = linearised.bold_fc(wee, wei, g, sig, te.sc)[0]
    intra = _intra(tr)
    out = {"family": kind, "recipe": recipe, "G_bounds": list(RECIPES[recipe]),
           "dim": fam.dim, "evaluations": int(es.countevals), "wall_s": time.perf_counter() - t0,
           "train_r": best["r"], "train_r_intra": _r(_u(fc_tr)[intra], fe[intra]),
           "test_r": _r(_u(fc_te), _u(te.fc)),
           "test_r_intra": _r(_u(fc_te)[intra], _u(te.fc)[intra]),
           "fc_mean_lin": float(_u(fc_tr).mean()), "G": float(g),
           "wEE_mean": float(np.mean(wee)), "wEI_mean": float(np.mean(wei)),
           "simulated_train": simulated_cost(tr, wee, wei, g, sig),
           "_regional": (wee, wei, g, sig)}
    print(f"  {recipe:9s} {kind:11s} train r {out['train_r']:.3f} (intra "
          f"{out['train_r_intra']:.3f}) test r {out['test_r']:.3f}  G {g:.3g}  "
          f"{out['wall_s']:.0f} s", file=sys.stderr, flush=True)
    return out


def simulated_cost(tr, wee, wei, g, sig) -> dict:
    """The full cost of one candidate on ``tr``, simulated at full length (4 duplicates,
    144 s burn-in, dt 6 ms): is the FC-optimal candidate also a good fit of the FCD?"""
    from nmmfit.sim import SimConfig, simulate
    from nmmfit.stats.cost import fc_fcd_cost

    cfg = SimConfig.for_tr(tr.tr, dt=0.006, duration_s=tr.n_frames * tr.tr, burn_in_s=144.0,
                           warmup_steps=5000)
    res = simulate(tr.sc, np.asarray(wee)[None], np.asarray(wei)[None], np.array([g]),
                   np.asarray(sig)[None], config=cfg, n_dup=4, seed=23)
    ct = fc_fcd_cost(res.bold, tr, valid=res.valid)
    d = {k: (float(v[0]) if v is not None else None) for k, v in ct.as_dict().items()}
    return {k: d[k] for k in ("fc_corr", "fc_l1", "fcd_ks", "total", "fc_corr_intra")
            if k in d} | {"valid_dups": int(res.valid.sum())}


def agreement(recipe: str, tr) -> list:
    """Linearised against simulated FC: a homogeneous G scan and the fits' solutions."""
    from nmmfit.fit import Parametrisation
    from nmmfit.models import linearised
    from nmmfit.sim import SimConfig, simulate
    from nmmfit.stats.fc import fc_matrix

    n = tr.n_regions
    cfg = SimConfig.for_tr(tr.tr, dt=0.006, duration_s=tr.n_frames * tr.tr, burn_in_s=144.0,
                           warmup_steps=5000)
    cands = [(f"homogeneous G {g}", np.full(n, 3.5), np.full(n, 2.5), g, np.full(n, 0.005))
             for g in (0.25, 0.5, 0.75, 1.0, 1.25)]
    fq = HERE / "results" / "fit_quality.json"
    if fq.exists():
        param = Parametrisation.from_target(tr, ("myelin", "fc_gradient"))
        for f in json.loads(fq.read_text()).get("group_fits", []):
            reg = param.expand(np.array(list(f["best_x"].values()))[None])
            cands.append((f"fit_quality seed {f['seed']}", reg.wEE[0], reg.wEI[0],
                          float(reg.G[0]), reg.sigma[0]))
    out = []
    for label, wee, wei, g, sig in cands:
        fl = linearised.bold_fc(wee, wei, g, sig, tr.sc)[0]
        res = simulate(tr.sc, wee[None], wei[None], np.array([g]), sig[None], config=cfg,
                       n_dup=4, seed=11)
        fs = fc_matrix(res.bold[0][res.valid[0]]).mean(axis=0)
        row = {"candidate": label, "recipe": recipe, "G": g,
               "r_lin_sim": _r(_u(fl), _u(fs)), "fc_mean_lin": float(_u(fl).mean()),
               "fc_mean_sim": float(_u(fs).mean()), "r_lin_emp": _r(_u(fl), _u(tr.fc)),
               "r_sim_emp": _r(_u(fs), _u(tr.fc)), "valid_dups": int(res.valid[0].sum())}
        out.append(row)
        print(f"  {label}: r(lin, sim) {row['r_lin_sim']:.3f}, FC mean lin "
              f"{row['fc_mean_lin']:.3f} sim {row['fc_mean_sim']:.3f}, r with data lin "
              f"{row['r_lin_emp']:.3f} sim {row['r_sim_emp']:.3f}", file=sys.stderr,
              flush=True)
    return out


def sc_predictors(tr, te) -> dict:
    sc = tr.sc
    rho = float(np.max(np.abs(np.linalg.eigvals(sc))))
    rows = []
    for g in np.linspace(0.05, 0.99, 48):
        k = np.linalg.inv(np.eye(sc.shape[0]) - g * sc / rho)
        d = np.sqrt(np.diag(k))
        kc = k / np.outer(d, d)
        rows.append((float(g), _r(_u(kc), _u(tr.fc)), _r(_u(kc), _u(te.fc))))
    b = max(rows, key=lambda t: t[1])
    intra = _intra(tr)
    return {"r_sc_fc_train": _r(_u(sc), _u(tr.fc)),
            "r_sc_fc_train_intra": _r(_u(sc)[intra], _u(tr.fc)[intra]),
            "r_sc_fc_test": _r(_u(sc), _u(te.fc)),
            "diffusion_best_g": b[0], "diffusion_train_r": b[1], "diffusion_test_r": b[2],
            "r_fc_train_test": _r(_u(tr.fc), _u(te.fc))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "results" / "fc_ceiling.json"))
    ap.add_argument("--quick", action="store_true", help="homogeneous and maps only")
    a = ap.parse_args(argv)
    import cma
    import scipy

    import nmmfit
    from nmmfit.cli import strict_json
    from nmmfit.fit import default_targets

    t0 = time.perf_counter()
    out = {"benchmark": "fc_ceiling",
           "machine": {"python": platform.python_version(), "nmmfit": nmmfit.__version__,
                       "numpy": np.__version__, "scipy": scipy.__version__,
                       "cma": cma.__version__},
           "protocol": "train hcp_schaefer100 train706, test test303; linearised pFIC + "
                       "Balloon FC (nmmfit.models.linearised); CMA-ES on 1 - r only, seed 0",
           "families": FAMILIES, "agreement": [], "ceilings": [], "sc_predictors": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for recipe in RECIPES:
            tr, _, te = default_targets(sc_normalisation=recipe)
            out["sc_predictors"][recipe] = sc_predictors(tr, te)
            print(f"[{recipe}] SC predictors {out['sc_predictors'][recipe]}", file=sys.stderr)
            if recipe == "strength":
                out["agreement"] = agreement(recipe, tr)
            start = None
            for kind in FAMILIES:
                if kind == "regional" and (a.quick or recipe != "strength"):
                    continue
                row = ceiling(kind, recipe, tr, te, start=start if kind == "regional"
                              else None)
                reg = row.pop("_regional")
                if kind == "maps":
                    start = reg
                out["ceilings"].append(row)
                print(f"    simulated on train706: {row['simulated_train']}", file=sys.stderr,
                      flush=True)
                Path(a.out).write_text(strict_json(out, indent=1))
    out["wall_s"] = time.perf_counter() - t0
    Path(a.out).write_text(strict_json(out, indent=1))
    print(f"wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
