"""JSON output of the library and the CLI: NumPy values as Python ones, strict JSON.

``--json`` output and stored results must be strict JSON (RFC 8259), which has no NaN or
infinity: :func:`strict_json` writes them as ``null``.
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["finite_or_null", "strict_json", "to_builtin"]


def to_builtin(x):
    """``json.dumps`` ``default=``: NumPy arrays as lists, NumPy scalars as Python numbers.
    Raises TypeError for anything else (as ``json.dumps`` expects of a default)."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def finite_or_null(x):
    """``x`` with every NaN or infinite float (also inside arrays, lists and dicts) as None,
    NumPy values as Python ones, and other objects (paths, ...) as their str."""
    if isinstance(x, dict):
        return {str(k): finite_or_null(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite_or_null(v) for v in x]
    if isinstance(x, np.ndarray):
        return finite_or_null(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if x is None or isinstance(x, (bool, int, str)):
        return x
    return str(x)


def strict_json(obj, indent: int | None = 2) -> str:
    """Strict JSON text of ``obj`` (RFC 8259: NaN and inf are written null, never NaN)."""
    return json.dumps(finite_or_null(obj), indent=indent, allow_nan=False)
