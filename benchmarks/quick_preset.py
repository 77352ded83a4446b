"""The README's main jobs with the quick preset, and whether their solutions fit a transient.

Runs ``nmmfit fit --evaluator surrogate`` (the main job: the shipped surrogates, which are
built for the ``delssome`` SC recipe) and ``nmmfit fit`` (Euler search, the default
``strength`` recipe), each at seed 0, and records their wall time and their test cost (test
group test303, full length: 1200 frames, dt 0.5 ms). Each solution is then re-simulated at
the search setting (dt 6 ms, the quick preset's 144 s burn-in and 5000 warm-up steps) for the
full 1200 frames, and each 300-frame quarter is scored against the training group: a search
that exploits the transient after the start shows a first quarter far better than the other
three. Two noise duplicates; the quarter-to-quarter spread of a stationary run is the noise
to compare with.

Writes ``benchmarks/results/quick_preset.json``. Run: ``python benchmarks/quick_preset.py``
(about 10 min on 2 cores; the fits go to ``runs/quick_preset/``).
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from fit_quality import REFERENCES, quarters  # noqa: E402

from nmmfit.cli import strict_json  # noqa: E402

JOBS = {"surrogate_main_job": ["--evaluator", "surrogate"], "euler_quick": []}


def run_job(name: str, extra: list[str], store: Path) -> dict:
    from nmmfit.cli import main as cli
    from nmmfit.fit import Parametrisation, default_targets, get_preset

    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        rc = cli(["fit", *extra, "--json", "--no-figures", "--no-progress", "--store",
                  str(store)])
    wall = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"{name}: nmmfit fit {' '.join(extra)} failed (exit {rc})")
    summ = json.loads(buf.getvalue())
    tr = default_targets(sc_normalisation=summ["sc_normalisation"])[0]
    param = Parametrisation.from_target(tr, ("myelin", "fc_gradient"))
    reg = param.expand(np.array(list(summ["best_x"].values()))[None])
    pre = get_preset("quick")
    q = quarters(tr, reg.wEE, reg.wEI, reg.G, reg.sigma, burn_in_s=pre.burn_in_s,
                 warmup_steps=pre.warmup_steps)
    totals = [q[f"q{k}"]["total"] for k in range(1, 5)]
    fc = [q[f"q{k}"]["fc_corr"] for k in range(1, 5)]
    out = {"command": " ".join(["nmmfit", "fit", *extra]), "evaluator": summ["evaluator"],
           "sc_normalisation": summ["sc_normalisation"], "wall_s": wall,
           "test_cost": summ["test_cost"], "test_fc_corr_intra":
               summ["test"][0].get("fc_corr_intra"),
           "best_val_cost": summ.get("best_val_cost"), "best_x": summ["best_x"],
           "timings": summ.get("timings"), "quarters": q,
           "quarter_totals": totals, "quarter_fc_corr": fc,
           "first_quarter_minus_rest_mean": float(totals[0] - np.mean(totals[1:])),
           "rest_spread": float(np.ptp(totals[1:]))}
    print(f"  {name}: {wall:.0f} s, test {summ['test_cost']['total']:.3f}, quarters "
          f"{np.round(totals, 3).tolist()}", file=sys.stderr, flush=True)
    return out


def main() -> int:
    import nmmfit
    from nmmfit.fit import get_preset

    work = ROOT / "runs" / "quick_preset"
    work.mkdir(parents=True, exist_ok=True)
    out = {"benchmark": "quick_preset",
           "machine": {"python": platform.python_version(), "nmmfit": nmmfit.__version__,
                       "cores": 2},
           "preset": get_preset("quick").as_dict(), "references": REFERENCES, "jobs": {}}
    for name, extra in JOBS.items():
        store = work / f"{name}.db"
        store.unlink(missing_ok=True)  # time the whole job, not a resume
        out["jobs"][name] = run_job(name, extra, store)
    dest = HERE / "results" / "quick_preset.json"
    dest.write_text(strict_json(json.loads(json.dumps(out, default=float)), indent=1))
    print(f"wrote {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
