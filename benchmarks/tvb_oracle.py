"""Record tvb-library's JansenRit trajectories once, as the oracle for nmmfit's JR engines.

tvb-library is NOT a dependency of nmmfit. Run this in its own environment::

    python -m venv benchmarks/.envs/tvb
    benchmarks/.envs/tvb/bin/pip install tvb-library==2.10.0
    benchmarks/.envs/tvb/bin/python benchmarks/tvb_oracle.py

It writes ``tests/data/tvb_jansenrit_reference.npz``: for each parameter set and each
deterministic integrator (Heun, RK4) at dt = 1000/600.614990234375 ms (one EEG sample),
2000 ms of the full state y0..y5 of a single uncoupled node (no stimulus, no noise), in TVB's
units (mV, mV/ms), starting from a fixed initial state. ``tests/test_jansen_rit.py`` and
``benchmarks/jansen_rit.py`` compare nmmfit against it without needing tvb installed.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "tvb_jansenrit_reference.npz"
DT_MS = 1000.0 / 600.614990234375
DURATION_MS = 2000.0
Y_INIT = np.array([0.08, 18.0, 12.0, 0.0, 0.0, 0.0])  # mV, mV/ms
#: TVB defaults, then two other points inside TVB's parameter domains (ms units).
PARAM_SETS: list[dict[str, float]] = [
    {},
    {"A": 5.0, "B": 30.0, "a": 0.08, "b": 0.04, "J": 200.0, "a_1": 1.2, "a_2": 0.6,
     "a_3": 0.3, "a_4": 0.2, "mu": 0.15, "v0": 6.0},
    {"A": 3.0, "B": 60.0, "a": 0.13, "b": 0.07, "J": 120.0, "a_1": 0.7, "a_2": 1.0,
     "a_3": 0.15, "a_4": 0.35, "mu": 0.09, "v0": 6.0},
]
INTEGRATORS = ("HeunDeterministic", "RungeKutta4thOrderDeterministic")


def run_tvb(params: dict[str, float], integrator: str) -> np.ndarray:
    """One TVB run; returns the state [n_steps + 1, 6] (row 0 = initial state)."""
    from tvb.datatypes.connectivity import Connectivity
    from tvb.simulator import coupling, integrators, models, monitors, simulator

    conn = Connectivity(weights=np.zeros((1, 1)), tract_lengths=np.zeros((1, 1)),
                        region_labels=np.array(["node0"]), centres=np.zeros((1, 3)),
                        speed=np.array([3.0]))
    conn.configure()
    model = models.JansenRit(**{k: np.array([v]) for k, v in params.items()})
    model.variables_of_interest = ("y0", "y1", "y2", "y3", "y4", "y5")
    integ = getattr(integrators, integrator)(dt=DT_MS)
    sim = simulator.Simulator(model=model, connectivity=conn,
                              coupling=coupling.SigmoidalJansenRit(a=np.array([0.0])),
                              integrator=integ, monitors=(monitors.Raw(),),
                              simulation_length=DURATION_MS)
    sim.initial_conditions = np.tile(Y_INIT[None, :, None, None], (1, 1, 1, 1))
    sim.configure()
    (_, data), = sim.run()
    traj = data[:, :, 0, 0]
    return np.concatenate([Y_INIT[None, :], traj], axis=0)


def main() -> None:
    import tvb

    results = {}
    for i, params in enumerate(PARAM_SETS):
        for integ in INTEGRATORS:
            results[f"set{i}_{integ}"] = run_tvb(params, integ)
    meta = {
        "command": "benchmarks/.envs/tvb/bin/python benchmarks/tvb_oracle.py",
        "tvb_library": getattr(tvb, "__version__", None) or _dist_version("tvb-library"),
        "numpy": np.__version__, "python": sys.version.split()[0],
        "platform": platform.platform(), "dt_ms": DT_MS, "duration_ms": DURATION_MS,
        "y_init_tvb_units": Y_INIT.tolist(), "param_sets_tvb_units": PARAM_SETS,
        "integrators": list(INTEGRATORS), "coupling": "none (single node, a=0)",
        "noise": "none", "stimulus": "none",
        "layout": "key set{i}_{integrator}: [n_steps+1, 6] states y0..y5 (mV, mV/ms)",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, meta=json.dumps(meta), **results)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB): {sorted(results)}")


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
