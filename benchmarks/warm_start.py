"""Where CMA-ES starts: DELSSOME's random draw against the linearised-FC optimum, with and
without the Euler-stability constraint at the search step.

The linear-FC start of ``fit(init="linear_fc")`` is stable in continuous time but can be
unstable under explicit Euler at the search's dt of 6 ms; simulated there it leaves its fixed
point and fails the rate gate (``benchmarks/results/fc_fcd_tradeoff.json``). This script finds
the start with ``euler_dt=0.006`` (:func:`nmmfit.fit.warm_start.linear_fc_start`), simulates
both starts on the training group (full length, 2 duplicates), and runs the diagnostics search
of ``benchmarks/fit_quality.py`` (lambda 50, mu 5, 20 epochs, the chosen ``strength`` recipe,
seed 0) from the constrained start. The two other arms (random start; unconstrained linear-FC
start) are read from ``fit_quality.json`` (stages heterogeneous and warm_diag): the same
search, seed, targets and budget. Arms are compared on the validation cost; test costs are
reported only.

Writes ``benchmarks/results/warm_start.json``. Run: ``python benchmarks/warm_start.py`` (about
15 min on 2 cores; the fit goes to ``runs/warm_start/fits.db`` and resumes).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from fit_quality import COMMON, REFERENCES, SEARCH_DIAG, _fit, _row, score, targets  # noqa: E402

from nmmfit.cli import strict_json  # noqa: E402

SEARCH_DT = 0.006


def main() -> int:
    import nmmfit
    from nmmfit.fit import Parametrisation
    from nmmfit.fit.warm_start import linear_fc_start
    from nmmfit.models import fic

    t0 = time.perf_counter()
    fq = json.loads((HERE / "results" / "fit_quality.json").read_text())
    tr, va, te = targets("strength")
    param = Parametrisation.from_target(tr, ("myelin", "fc_gradient"))
    ws = linear_fc_start(tr, param, seed=0, euler_dt=SEARCH_DT)
    starts = {"linear_fc": np.asarray(fq["warm_start_diagnostics"]["warm_start"]["x"]),
              "linear_fc_euler_stable": ws.x}
    start_info = {}
    for name, x in starts.items():
        reg = param.expand(x[None])
        s = score(tr, reg.wEE, reg.wEI, reg.G, reg.sigma, n_dup=2, seed=0)
        start_info[name] = {
            "x": x.tolist(), "G": float(reg.G[0]),
            "max_real_eig": float(fic.jacobian_max_real_eig(reg.wEE, reg.wEI, reg.G,
                                                            tr.sc)[0]),
            "euler_spectral_radius_dt_6ms": float(fic.euler_spectral_radius(
                reg.wEE, reg.wEI, reg.G, tr.sc, SEARCH_DT)[0]),
            "simulated_train": _row(s, 0)}
        print(f"  start {name}: G {reg.G[0]:.3f}, Euler rho "
              f"{start_info[name]['euler_spectral_radius_dt_6ms']:.4f}, simulated "
              f"{start_info[name]['simulated_train']}", file=sys.stderr, flush=True)
    start_info["linear_fc_euler_stable"].update(
        linear_fc_corr=ws.fc_corr, linear_fc_l1=ws.fc_l1, evaluations=ws.evaluations,
        wall_s=ws.wall_s)
    r = _fit(tr, va, te, recipe="strength", seed=0, search={**SEARCH_DIAG, "x0": tuple(ws.x)},
             store=ROOT / "runs" / "warm_start" / "fits.db")
    r.pop("_res")
    r["search"] = {**SEARCH_DIAG, "x0": "linear_fc_start(euler_dt=0.006)"}
    cold = fq["heterogeneous_fits"]["strength"]
    warm = fq["warm_start_diagnostics"]
    keys = ("best_val_cost", "test_cost", "test_fc_corr_intra", "test_fc_mean", "G", "ei_mean")
    arms = {"paper_random_start": {k: cold.get(k) for k in keys},
            "linear_fc": {k: warm.get(k) for k in keys},
            "linear_fc_euler_stable": {k: r.get(k) for k in keys}}
    chosen = min(arms, key=lambda k: arms[k]["best_val_cost"])
    out = {"benchmark": "warm_start",
           "machine": {"python": platform.python_version(), "nmmfit": nmmfit.__version__,
                       "cores": 2},
           "protocol": {"search": SEARCH_DIAG, **COMMON, "seed": 0, "recipe": "strength",
                        "train": "train706", "val": "100206 + 100307", "test": "test303"},
           "references": REFERENCES, "starts": start_info, "arms": arms,
           "chosen_by_validation": chosen, "fit": r, "wall_s": time.perf_counter() - t0}
    dest = HERE / "results" / "warm_start.json"
    dest.write_text(strict_json(json.loads(json.dumps(out, default=float)), indent=1))
    for k, a in arms.items():
        print(f"  {k}: val {a['best_val_cost']:.3f} test {a['test_cost']['total']:.3f}",
              file=sys.stderr)
    print(f"wrote {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
