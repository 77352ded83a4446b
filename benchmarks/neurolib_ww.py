"""Time neurolib's Wong-Wang model with BOLD on a given SC; print JSON to stdout.

Runs in its own environment (neurolib 0.6.2 needs numpy < 2), created by
``benchmarks/simulate.py``. Usage: ``python neurolib_ww.py SC.npy DURATION_S``.
"""

import json
import sys
import time

import numpy as np
from neurolib.models.ww import WWModel


def main() -> None:
    sc = np.load(sys.argv[1])
    duration_s = float(sys.argv[2])
    n = sc.shape[0]
    model = WWModel(Cmat=sc, Dmat=np.zeros_like(sc), seed=0)
    model.params["duration"] = 2000.0  # ms: compile the numba kernels (and BOLD) first
    model.run(bold=True)
    model.params["duration"] = duration_s * 1000.0
    t0 = time.perf_counter()
    model.run(bold=True)
    wall = time.perf_counter() - t0
    dt_ms = float(model.params["dt"])
    steps = int(round(duration_s * 1000.0 / dt_ms))
    import neurolib

    print(json.dumps({
        "model": "neurolib.models.ww.WWModel (Wong-Wang, BOLD on)",
        "neurolib_version": getattr(neurolib, "__version__", "0.6.2"),
        "numpy_version": np.__version__,
        "n_regions": n, "dt_ms": dt_ms, "duration_s": duration_s, "steps": steps,
        "wall_s": wall, "region_steps_per_s": n * steps / wall,
        "bold_shape": list(np.asarray(model.BOLD.BOLD).shape),
        "delays": "none (Dmat = 0), as in the pFIC model",
    }))


if __name__ == "__main__":
    main()
