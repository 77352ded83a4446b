"""Saving and loading surrogate networks: one file per model, safe to load.

The file is ``torch.save`` of a plain dict (str, int, float, bool, None, lists, dicts, tensors
only), so :func:`load_model` can use ``torch.load(weights_only=True)``::

    {"format": "nmmfit.surrogate/1", "kind": str, "class_name": str, "config": dict,
     "state_dict": dict[str, Tensor], "normaliser": dict, "meta": dict}

``meta`` always holds ``n_regions``, ``parcellation``, ``n_fcd_bins``, ``nmmfit_version`` and
``torch_version``; the caller adds e.g. ``data_hash`` (see :func:`data_hash`), ``sim_settings``,
``seeds`` and ``metrics``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nmmfit import __version__
from nmmfit.surrogate.features import Normaliser
from nmmfit.surrogate.networks import MODEL_CLASSES, build_model

__all__ = ["save_model", "load_model", "LoadedModel", "data_hash", "MODEL_KINDS", "FORMAT"]

#: File format tag.
FORMAT = "nmmfit.surrogate/1"
#: What a saved network is for.
MODEL_KINDS = ("cost_predictor", "classifier")


@dataclass
class LoadedModel:
    """A network read back by :func:`load_model` (in eval mode) with its normaliser and meta."""

    model: nn.Module
    kind: str
    normaliser: Normaliser
    meta: dict


def _plain(obj, where: str = "meta"):
    """Convert to plain types accepted by ``torch.load(weights_only=True)`` (and JSON)."""
    if obj is None or type(obj) is bool:
        return obj
    if isinstance(obj, str):
        return str(obj)  # also turns str subclasses (e.g. torch's TorchVersion) into str
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist(), where)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"{where} holds a {type(obj).__name__}, which cannot be saved safely; use "
                    "plain numbers, strings, lists, dicts or numpy arrays")


def data_hash(*arrays_or_tables) -> str:
    """SHA-256 (hex) over arrays and mappings of arrays (keys sorted), to identify training data."""
    h = hashlib.sha256()

    def feed(obj, key: str = "") -> None:
        if isinstance(obj, Mapping):
            for k in sorted(obj):
                feed(obj[k], f"{key}/{k}")
            return
        arr = np.ascontiguousarray(np.asarray(obj))
        h.update(f"{key}:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr.tobytes())

    for i, obj in enumerate(arrays_or_tables):
        feed(obj, str(i))
    return h.hexdigest()


def save_model(path: str | os.PathLike, model: nn.Module, kind: str, normaliser: Normaliser,
               meta: Mapping | None = None, weights_dtype: str = "float32") -> Path:
    """Save ``model`` (a network from :mod:`nmmfit.surrogate.networks`) to one file.

    kind : "cost_predictor" or "classifier". meta : extra plain metadata (parcellation name,
    data hash, sim settings, seeds, metrics, ...); ``n_regions``, ``n_fcd_bins`` and the
    nmmfit / torch versions are filled in from the model and the environment.
    weights_dtype : "float32" (default) or "float16": floating-point weights are stored in this
        type (float16 halves the file, e.g. for the models shipped in the package); loading
        always gives a float32 model.
    Returns the path written (parent folders are created).
    """
    dtypes = {"float32": torch.float32, "float16": torch.float16}
    if weights_dtype not in dtypes:
        raise ValueError(f"weights_dtype must be one of {sorted(dtypes)}, got {weights_dtype!r}")

    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
    class_name = type(model).__name__
    if class_name not in MODEL_CLASSES or not hasattr(model, "config"):
        raise TypeError(f"model must be one of {sorted(MODEL_CLASSES)}, got {class_name}")
    meta = dict(_plain(dict(meta or {})))
    for key in ("n_regions", "n_fcd_bins"):
        value = int(model.config[key])
        if key in meta and meta[key] is not None and int(meta[key]) != value:
            raise ValueError(f"meta[{key!r}] = {meta[key]} but the model has {key} = {value}")
        meta[key] = value
    meta.setdefault("parcellation", None)
    meta["nmmfit_version"] = __version__
    meta["torch_version"] = str(torch.__version__)
    meta["weights_dtype"] = weights_dtype

    def stored(v: torch.Tensor) -> torch.Tensor:
        v = v.detach().cpu().clone()
        return v.to(dtypes[weights_dtype]) if v.is_floating_point() else v

    payload = {
        "format": FORMAT,
        "kind": kind,
        "class_name": class_name,
        "config": _plain(model.config, "model.config"),
        "state_dict": {k: stored(v) for k, v in model.state_dict().items()},
        "normaliser": normaliser.as_dict(),
        "meta": meta,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # atomic: a killed run never leaves a half-written model
    return path


def load_model(path: str | os.PathLike, n_regions: int | None = None,
               parcellation: str | None = None) -> LoadedModel:
    """Load a model saved by :func:`save_model` (``weights_only=True``), in eval mode.

    Raises ``ValueError`` naming both values when ``n_regions`` or ``parcellation`` is given and
    differs from what the model was trained for.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no surrogate model file at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not an nmmfit surrogate model file (format "
                         f"{payload.get('format') if isinstance(payload, dict) else None!r}, "
                         f"expected {FORMAT!r})")
    meta = dict(payload["meta"])
    if n_regions is not None and int(meta["n_regions"]) != int(n_regions):
        raise ValueError(f"{path} holds a model for {meta['n_regions']} regions, but "
                         f"{n_regions} regions were requested")
    if parcellation is not None and meta.get("parcellation") != parcellation:
        raise ValueError(f"{path} holds a model for parcellation {meta.get('parcellation')!r}, "
                         f"but parcellation {parcellation!r} was requested")
    model = build_model(payload["class_name"], dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])  # copies cast float16 weights to float32
    model.eval()
    return LoadedModel(model=model, kind=str(payload["kind"]),
                       normaliser=Normaliser.from_dict(payload["normaliser"]), meta=meta)
