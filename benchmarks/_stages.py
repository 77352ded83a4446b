"""Helpers shared by the resumable benchmark scripts: a JSON file of finished stages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_stages(path: Path) -> dict:
    """The cached stages (empty when the file does not exist)."""
    return json.loads(path.read_text()) if path.exists() else {}


def save_stages(path: Path, stages: dict) -> None:
    """Write the stages atomically (a killed run never leaves a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(stages, indent=1, default=plain))
    tmp.replace(path)


def plain(x):
    """``json.dumps`` default: numpy arrays and scalars to Python, anything else to str."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


def run_stages(steps, stages: dict, path: Path, label: str, stop_after: str | None = None
               ) -> bool:
    """Run the ``(name, fn)`` steps not yet in ``stages``, saving after each (with its wall
    time as ``<name>_wall_s``). Returns False when it stopped after ``stop_after``."""
    import sys
    import time

    for name, fn in steps:
        if name in stages:
            continue
        print(f"[{label}] stage {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        stages[name] = fn()
        stages[f"{name}_wall_s"] = time.perf_counter() - t0
        save_stages(path, stages)
        if name == stop_after:
            print(f"[{label}] stopped after {name}", file=sys.stderr)
            return False
    return True
