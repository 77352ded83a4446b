"""Loaders for user data: SC matrices, BOLD runs and regional maps, and :func:`from_arrays`.

Files may be ``.npy``, ``.npz``, text (``.csv``/``.tsv``/``.txt``: semicolon, comma, tab or
whitespace separated; an optional header row -- text, or whole region numbers such as
``1,2,3,...`` (skipped with a warning) -- and an optional label column are skipped) or
MATLAB ``.mat`` (v4-v7.2 through :func:`scipy.io.loadmat`; v7.3/HDF5 files through ``h5py``
when installed). A corrupt or truncated file raises ``ValueError`` naming it.
When a ``.mat``/``.npz`` file holds several arrays, pass ``key=`` to pick one.

Every check raises ``ValueError`` naming the offending array and its shape.

One concept, reading user files; its length is the file formats and the checks with clear
errors that each needs.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nmmfit._validate import as_array, check_bold, check_finite, check_region_count, check_sc
from nmmfit.data.dataset import Dataset, Group, Subject

__all__ = ["load_sc", "load_bold", "load_map", "from_arrays"]

PathLike = str | os.PathLike
ArrayOrPath = np.ndarray | PathLike

_TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".dat", ".1d"}
_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+([eE][-+]?\d+)?$")


# ---------------------------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------------------------
def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _numeric_header(rows: list[list[str]]) -> bool:
    """True when the first row looks like a header of region (or frame) numbers: at least two
    fields, all whole numbers, all distinct, and either a run of consecutive numbers (1, 2, 3,
    ...) or whole numbers above rows that hold fractional values (a measurement row is never
    a run of consecutive integers, and whole-number labels stand out among real-valued data).
    """
    if len(rows) < 2 or len(rows[0]) < 2:
        return False
    try:
        head = np.array([float(t) for t in rows[0]])
    except ValueError:
        return False
    if not (np.isfinite(head).all() and (head == np.round(head)).all()):
        return False
    if np.unique(head).size != head.size:
        return False
    if head.size >= 3 and (np.diff(head) == 1).all():
        return True
    try:
        rest = np.array([float(t) for r in rows[1:] for t in r])
    except ValueError:
        return False
    return bool((rest[np.isfinite(rest)] != np.round(rest[np.isfinite(rest)])).any())


def _read_text(path: Path) -> np.ndarray:
    """A numeric table from a text file; semicolon, comma, tab or whitespace separated."""
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise ValueError(f"{path} holds no data")
    first = lines[0]
    delim = next((d for d in (";", ",", "\t") if d in first), None)
    rows = [[t.strip() for t in ln.split(delim)] for ln in lines]
    if delim == ";":
        comma = next((t for r in rows for t in r if _DECIMAL_COMMA.match(t)), None)
        if comma is not None:
            raise ValueError(f"{path}: field {comma!r} has a decimal comma, which is not read "
                             "(write 0.5, not 0,5)")
    if not all(_is_number(t) for t in rows[0] if t):  # header row (e.g. pandas CSV)
        rows = rows[1:]
    elif _numeric_header(rows):
        warnings.warn(f"{path}: the first row ({', '.join(rows[0][:4])}, ...) holds distinct "
                      "whole numbers above rows of measurements, so it is read as a header of "
                      "region (or frame) numbers and skipped; comment it out with '#' to "
                      "silence this", stacklevel=4)
        rows = rows[1:]
    if rows and all(not _is_number(r[0]) for r in rows):  # label column
        rows = [r[1:] for r in rows]
    if not rows:
        raise ValueError(f"{path} holds a header but no numeric rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ValueError(f"{path}: rows have different numbers of fields {sorted(widths)}")
    try:
        return np.array([[float(t) for t in r] for r in rows])
    except ValueError as err:
        raise ValueError(f"{path}: non-numeric field ({err})") from err


def _pick(candidates: dict[str, np.ndarray], path: Path, key: str | None, what: str,
          want) -> np.ndarray:
    """Choose one array among a file's variables: ``key`` if given, else the single match."""
    if key is not None:
        if key not in candidates:
            raise ValueError(f"{path}: no variable {key!r}; found {sorted(candidates)}")
        return candidates[key]
    matches = {k: v for k, v in candidates.items() if want(v)}
    if len(matches) == 1:
        return next(iter(matches.values()))
    listing = ", ".join(f"{k} {v.shape}" for k, v in candidates.items()) or "none"
    if not matches:
        raise ValueError(f"{path}: no variable looks like {what}; variables: {listing}")
    raise ValueError(f"{path}: several variables could be {what} ({listing}); pass key=")


def _read_mat(path: Path) -> dict[str, np.ndarray]:
    import scipy.io

    try:
        raw = scipy.io.loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        try:
            import h5py
        except ImportError as err:
            raise ValueError(
                f"{path} is a MATLAB v7.3 (HDF5) file; install h5py or re-save it with "
                "save(..., '-v7')"
            ) from err
        with h5py.File(path, "r") as f:
            # MATLAB writes arrays column-major: transpose back to MATLAB's orientation
            return {k: np.asarray(f[k]).T for k in f if isinstance(f[k], h5py.Dataset)}
    out = {}
    for k, v in raw.items():
        if k.startswith("__"):
            continue
        v = np.asarray(v)
        if v.dtype.kind in "biuf":
            out[k] = v
    return out


def _read(path: PathLike, key: str | None, what: str, want) -> np.ndarray:
    """Read one numeric array from a file (see module docstring for formats)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} file not found: {p}")
    suffix = p.suffix.lower()
    if suffix not in {".npy", ".npz", ".mat"} | _TEXT_SUFFIXES:
        raise ValueError(
            f"{p}: unsupported file type {suffix!r} for {what}; use .npy, .npz, .csv, .tsv, "
            ".txt or .mat"
        )
    try:
        if suffix == ".npy":
            with open(p, "rb") as fh:
                if fh.read(6) != b"\x93NUMPY":
                    raise ValueError(f"{p} is not a .npy file (no NumPy header); save it with "
                                     "numpy.save, or give it the suffix of its real format")
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                arr = _pick({k: z[k] for k in z.files}, p, key, what, want)
        elif suffix == ".mat":
            arr = _pick(_read_mat(p), p, key, what, want)
        else:
            arr = _read_text(p)
    except ValueError as err:
        if str(p) in str(err):  # already names the file
            raise
        raise ValueError(f"{p} cannot be read as {what} ({suffix} file): {err}") from err
    except Exception as err:  # noqa: BLE001 - zip, MATLAB, HDF5, decoding errors: name the file
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"{p} cannot be read as {what} ({suffix} file; corrupt, truncated "
                         f"or not a {suffix} file?): {type(err).__name__}: {first}") from err
    try:
        return np.asarray(arr, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{p}: {what} is not numeric (dtype {np.asarray(arr).dtype})") from err


def _is_2d(v: np.ndarray) -> bool:
    return v.ndim == 2 and min(v.shape) > 1


def _is_square(v: np.ndarray) -> bool:
    return v.ndim == 2 and v.shape[0] == v.shape[1] and v.shape[0] > 1


def _is_vector(v: np.ndarray) -> bool:
    return v.size > 1 and sum(d > 1 for d in v.shape) == 1


# ---------------------------------------------------------------------------------------------
# Public loaders
# ---------------------------------------------------------------------------------------------
def load_sc(path: ArrayOrPath, key: str | None = None, allow_negative: bool = False,
            name: str | None = None) -> np.ndarray:
    """Load a structural connectivity matrix.

    Parameters
    ----------
    path : file (.npy, .npz, .csv/.tsv/.txt, .mat) or an array.
    key : variable name inside a .mat/.npz file holding several arrays; by default the single
        square 2-D array is taken.
    allow_negative : accept negative entries (e.g. signed weights).
    name : name used in error messages (default: the file name).

    Returns
    -------
    [N, N] float64 array (square, finite, non-negative unless ``allow_negative``).
    """
    if isinstance(path, str | os.PathLike):
        label = name or f"SC ({Path(path).name})"
        arr = _read(path, key, "an SC matrix", _is_square)
    else:
        label = name or "SC"
        arr = path
    return check_sc(arr, label, allow_negative=allow_negative)


def _orient(arr: np.ndarray, label: str, transpose: bool | None,
            n_regions: int | None) -> np.ndarray:
    if transpose is True:
        return arr.T
    if transpose is False:
        return arr
    if transpose is not None:
        raise TypeError(f"transpose must be True, False or None, got {transpose!r}")
    n0, n1 = arr.shape
    if n_regions is not None:
        if n0 == n_regions and n1 == n_regions:
            raise ValueError(
                f"{label} has shape {arr.shape}: both axes have {n_regions} entries, so its "
                "orientation is ambiguous; pass transpose=False for [regions, frames] or "
                "transpose=True for [frames, regions]"
            )
        if n1 == n_regions:
            return arr.T
        if n0 != n_regions:
            raise ValueError(
                f"{label} has shape {arr.shape}: neither axis has the expected {n_regions} "
                "regions"
            )
        return arr
    if 2 * n0 <= n1:
        return arr
    if 2 * n1 <= n0:
        return arr.T
    raise ValueError(
        f"{label} has shape {arr.shape}: cannot tell regions from frames (neither axis is at "
        "least twice the other); pass transpose=False for [regions, frames], transpose=True "
        "for [frames, regions], or n_regions="
    )


def load_bold(path_or_array: ArrayOrPath, transpose: bool | None = None,
              key: str | None = None, n_regions: int | None = None,
              name: str | None = None) -> np.ndarray:
    """Load one BOLD run as [N, T] (regions x frames).

    Parameters
    ----------
    path_or_array : file (.npy, .npz, .csv/.tsv/.txt, .mat) or a 2-D array.
    transpose : False: the data are [regions, frames]; True: [frames, regions]; None (default):
        decide from ``n_regions`` when given, else take the shorter axis as regions when the
        other is at least twice as long, and raise ``ValueError`` when that is ambiguous.
    key : variable name inside a .mat/.npz file holding several arrays.
    n_regions : expected number of regions N (e.g. from the SC); checked.
    name : name used in error messages.

    Returns
    -------
    [N, T] float64 array, finite.
    """
    if isinstance(path_or_array, str | os.PathLike):
        label = name or f"BOLD ({Path(path_or_array).name})"
        arr = _read(path_or_array, key, "a BOLD time series", _is_2d)
    else:
        label = name or "BOLD"
        arr = path_or_array
    arr = as_array(arr, label, ndim=2)
    arr = _orient(arr, label, transpose, n_regions)
    arr = check_bold(arr, label)
    if n_regions is not None:
        _check_expected(n_regions, arr, label)
    _warn_constant_rows(arr, label)
    return np.ascontiguousarray(arr)


def load_map(path: ArrayOrPath, key: str | None = None, n_regions: int | None = None,
             name: str | None = None) -> np.ndarray:
    """Load a regional map: one finite value per region.

    Parameters
    ----------
    path : file (.npy, .npz, .csv/.tsv/.txt with one row or one column, .mat) or an array.
    key : variable name inside a .mat/.npz file holding several arrays.
    n_regions : expected number of regions N; checked.
    name : name used in error messages.

    Returns
    -------
    [N] float64 array.
    """
    if isinstance(path, str | os.PathLike):
        label = name or f"map ({Path(path).name})"
        arr = _read(path, key, "a regional map", _is_vector)
    else:
        label = name or "map"
        arr = as_array(path, label)
    if not _is_vector(arr):
        raise ValueError(f"{label} must hold one value per region (1-D), got shape {arr.shape}")
    arr = check_finite(arr.reshape(-1), label)
    if n_regions is not None:
        _check_expected(n_regions, arr, label)
    return arr


def _check_expected(n_regions: int, arr: np.ndarray, label: str) -> None:
    if arr.shape[0] != n_regions:
        raise ValueError(
            f"{label} has shape {arr.shape}: {arr.shape[0]} regions on axis 0, but "
            f"n_regions={n_regions} was expected"
        )


def _warn_constant_rows(bold: np.ndarray, label: str) -> None:
    flat = np.flatnonzero(bold.std(axis=1) == 0)
    if flat.size:
        warnings.warn(
            f"{label} (shape {bold.shape}) has {flat.size} constant region(s) {flat[:10].tolist()}"
            "; their FC is undefined",
            stacklevel=3,
        )


# ---------------------------------------------------------------------------------------------
# from_arrays
# ---------------------------------------------------------------------------------------------
def _is_item(x: Any) -> bool:
    """An array-like leaf (array or path), as opposed to a list of runs."""
    return isinstance(x, np.ndarray | str | os.PathLike)


def _bold_structure(bold_runs: Any, subject_ids: Sequence[str] | None) -> dict[str, list]:
    """Normalise ``bold_runs`` to {subject id: [run, ...]}."""
    if bold_runs is None:
        return {}
    if isinstance(bold_runs, Mapping):
        out = {str(k): (list(v) if not _is_item(v) else [v]) for k, v in bold_runs.items()}
        if subject_ids is not None and list(subject_ids) != list(out):
            raise ValueError(
                f"subject_ids {list(subject_ids)} differ from the keys of bold_runs {list(out)}"
            )
        return out
    if _is_item(bold_runs):
        arr = bold_runs
        if isinstance(arr, np.ndarray) and arr.ndim == 3:
            per_subject = [[r for r in arr]]  # [runs, N, T] for one subject
        else:
            per_subject = [[arr]]
    elif isinstance(bold_runs, Sequence) and len(bold_runs) > 0:
        if all(_is_item(r) for r in bold_runs):
            per_subject = [list(bold_runs)]
            if subject_ids is not None and len(subject_ids) > 1:
                raise ValueError(
                    f"bold_runs is a list of {len(bold_runs)} arrays, read as the runs of ONE "
                    f"subject, but subject_ids names {len(subject_ids)}; pass a list of lists "
                    "([[runs of subject 1], [runs of subject 2], ...]) or a dict"
                )
        elif all(isinstance(r, Sequence) and not isinstance(r, str) for r in bold_runs):
            per_subject = [list(r) for r in bold_runs]
        else:
            raise ValueError(
                "bold_runs mixes arrays and lists; give an array, a list of runs of one "
                "subject, a list of lists (one per subject) or a dict {subject id: runs}"
            )
    else:
        raise ValueError(f"bold_runs must be an array, a list or a dict, got {type(bold_runs)}")
    ids = _default_ids(len(per_subject), subject_ids)
    return dict(zip(ids, per_subject, strict=True))


def _default_ids(n: int, subject_ids: Sequence[str] | None) -> list[str]:
    if subject_ids is None:
        return [f"sub-{i + 1:02d}" for i in range(n)]
    ids = [str(s) for s in subject_ids]
    if len(ids) != n:
        raise ValueError(f"subject_ids has {len(ids)} entries but the data hold {n} subjects")
    if len(set(ids)) != len(ids):
        raise ValueError(f"subject_ids are not unique: {ids}")
    return ids


def _per_subject(x: Any, ids: list[str], what: str) -> tuple[Any, dict[str, Any]]:
    """Split an SC-like argument into (shared matrix or None, {subject id: matrix})."""
    if x is None:
        return None, {}
    if _is_item(x) and not (isinstance(x, np.ndarray) and x.ndim == 3):
        return x, {}
    if isinstance(x, Mapping):
        extra = set(map(str, x)) - set(ids)
        if ids and extra:
            raise ValueError(f"{what} has subjects {sorted(extra)} that bold_runs does not")
        return None, {str(k): v for k, v in x.items()}
    items = list(x)
    if ids and len(items) != len(ids):
        raise ValueError(f"{what} has {len(items)} matrices but there are {len(ids)} subjects")
    return None, dict(zip(ids or _default_ids(len(items), None), items, strict=True))


def from_arrays(
    sc: Any = None,
    bold_runs: Any = None,
    maps: Mapping[str, ArrayOrPath] | None = None,
    tr: float | None = None,
    subject_ids: Sequence[str] | None = None,
    *,
    sc_length: Any = None,
    region_labels: Sequence[str] | None = None,
    networks: ArrayOrPath | None = None,
    run_names: Mapping[str, Sequence[str]] | None = None,
    transpose: bool = False,
    name: str = "user",
    parcellation: str = "user",
) -> Dataset:
    """Build a :class:`Dataset` from user arrays (or file paths), checking consistency.

    Parameters
    ----------
    sc : [N, N] SC shared by all subjects (also stored as group ``"all"``), or one matrix per
        subject (list in subject order, or dict {subject id: matrix}). Raw strengths, >= 0.
    bold_runs : BOLD runs, each [N, T] (regions x frames): one array (one subject, one run), a
        list of arrays (runs of ONE subject), a list of lists (runs per subject), or a dict
        {subject id: array or list of runs}.
    maps : {name: [N] regional map}.
    tr : repetition time in seconds; required when BOLD is given.
    subject_ids : ids in subject order (default ``sub-01``, ``sub-02``, ...).
    sc_length : tract lengths in mm, same layout as ``sc``.
    region_labels : N names (default ``region_001``...).
    networks : [N] integer network labels.
    run_names : {subject id: names of its runs} (default ``run-1``, ``run-2``, ...).
    transpose : True when every BOLD run is given as [T, N] (frames x regions).
    name, parcellation : stored on the Dataset.

    Raises
    ------
    ValueError naming the array and its shape for: non-square, negative or non-finite SC; NaN
    or inf in BOLD; region counts that differ between SC, BOLD, lengths, maps, labels.
    """
    bold_struct = _bold_structure(bold_runs, subject_ids)
    ids = list(bold_struct)
    shared_sc, sc_by_sub = _per_subject(sc, ids, "sc")
    shared_len, len_by_sub = _per_subject(sc_length, ids, "sc_length")
    if not ids:
        ids = list(sc_by_sub) or list(len_by_sub)
        if subject_ids is not None:
            ids = _default_ids(len(ids), subject_ids)
            sc_by_sub = dict(zip(ids, sc_by_sub.values(), strict=True)) if sc_by_sub else {}
            len_by_sub = dict(zip(ids, len_by_sub.values(), strict=True)) if len_by_sub else {}

    # ---- SC (defines N) ----
    n: int | None = None
    reference = "SC"
    if shared_sc is not None:
        shared_sc = load_sc(shared_sc, name="sc")
        n = shared_sc.shape[0]
    checked_sc = {}
    for sid, m in sc_by_sub.items():
        label = f"sc[{sid!r}]"
        m = load_sc(m, name=label)
        if n is None:
            n, reference = m.shape[0], label
        check_region_count(n, m, label, axis=0, reference=reference)
        checked_sc[sid] = m

    def _length(m: Any, label: str) -> np.ndarray:
        m = load_sc(m, name=label)
        if n is not None:
            check_region_count(n, m, label, axis=0, reference=reference)
        return m

    if shared_len is not None:
        shared_len = _length(shared_len, "sc_length")
    checked_len = {sid: _length(m, f"sc_length[{sid!r}]") for sid, m in len_by_sub.items()}

    # ---- BOLD ----
    subjects: dict[str, Subject] = {}
    for sid in ids:
        runs_in = bold_struct.get(sid, [])
        runs = []
        for r, run in enumerate(runs_in):
            label = f"bold_runs[{sid!r}][{r}]"
            if isinstance(run, str | os.PathLike):
                run = load_bold(run, transpose=True if transpose else None,
                                n_regions=None if transpose else n, name=label)
            else:
                run = as_array(run, label, ndim=2)
                run = run.T if transpose else run
                run = check_bold(run, label)
                _warn_constant_rows(run, label)
            if n is None:
                n, reference = run.shape[0], label
            if run.shape[0] != n and run.shape[1] == n:
                raise ValueError(
                    f"{label} has shape {run.shape}: {run.shape[0]} regions on axis 0, but "
                    f"{reference} has {n} regions; it looks like [frames, regions]: pass "
                    "transpose=True"
                )
            check_region_count(n, run, label, axis=0, reference=reference)
            runs.append(np.ascontiguousarray(run))
        names = list(run_names[sid]) if run_names and sid in run_names else [
            f"run-{i + 1}" for i in range(len(runs))
        ]
        if len(names) != len(runs):
            raise ValueError(f"run_names[{sid!r}] has {len(names)} names for {len(runs)} runs")
        subjects[sid] = Subject(
            id=sid,
            sc=checked_sc.get(sid, shared_sc),
            sc_length=checked_len.get(sid, shared_len),
            bold=runs,
            run_names=names,
        )
    missing_sc = [s for s in checked_sc if s not in subjects]
    if missing_sc:
        raise ValueError(f"sc has subjects {missing_sc} that bold_runs does not")

    # ---- maps, networks, labels ----
    checked_maps = {}
    for key, m in (maps or {}).items():
        label = f"maps[{key!r}]"
        m = load_map(m, name=label)
        if n is None:
            n, reference = m.shape[0], label
        check_region_count(n, m, label, axis=0, reference=reference)
        checked_maps[str(key)] = m
    net = None
    if networks is not None:
        net = load_map(networks, name="networks")
        if n is None:
            n, reference = net.shape[0], "networks"
        check_region_count(n, net, "networks", axis=0, reference=reference)
        if not np.all(net == np.round(net)):
            raise ValueError(f"networks (shape {net.shape}) must hold integer labels")
        net = net.astype(np.int64)
    if n is None:
        raise ValueError("from_arrays needs at least one of sc, bold_runs, maps or networks")
    if region_labels is None:
        labels = [f"region_{i + 1:03d}" for i in range(n)]
    else:
        labels = [str(x) for x in region_labels]
        if len(labels) != n:
            raise ValueError(
                f"region_labels has {len(labels)} names, but {reference} has {n} regions"
            )

    # ---- TR ----
    has_bold = any(s.bold for s in subjects.values())
    if tr is None:
        if has_bold:
            raise ValueError("tr (repetition time in seconds) is required when BOLD runs are given")
        tr_f = float("nan")
    else:
        tr_f = float(tr)
        if not np.isfinite(tr_f) or tr_f <= 0:
            raise ValueError(f"tr must be a positive number of seconds, got {tr!r}")

    groups = {}
    if shared_sc is not None:
        groups["all"] = Group(name="all", n_subjects=max(len(subjects), 1), sc=shared_sc,
                              sc_length=shared_len)
    return Dataset(
        name=name,
        parcellation=parcellation,
        tr=tr_f,
        region_labels=labels,
        subjects=subjects,
        groups=groups,
        maps=checked_maps,
        networks=net,
        provenance="user data (nmmfit.data.user.from_arrays)",
    )
