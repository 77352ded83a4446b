"""The empirical target of a fit: normalised SC, FC, FCD CDF (with its definition) and maps.

A :class:`Target` is what the cost compares simulations with. It records how its FCD was
defined (``fcd_spec``), and :func:`nmmfit.stats.fc_fcd_cost` computes the simulated FCD with that
same definition. Its own FC and FCD come from the same per-run summary
(:func:`nmmfit.stats.summarise`).

Recipes (Zhang et al. 2024; Zeng et al. 2026 and its group-level README):

- **FC**: Fisher-z average over all runs of all subjects, ``tanh(mean(arctanh(r)))``.
- **FCD CDF**: per run, the FCD histogram (``fcd_spec``) is cumulated and normalised to 1; the
  target CDF is the mean of these per-run CDFs, so every run weighs the same whatever its
  length (and subjects with more runs weigh more, as in the pFIC MATLAB code, which averages
  over all runs of all subjects).
- **SC**: see :func:`nmmfit.data.sc.normalise_sc`.
- **Maps**: named regional maps [N] (e.g. "myelin", "fc_gradient"); the default gradient is
  :func:`nmmfit.data.gradients.fc_gradients` of the target FC.
- **FCD matrix** (for figures only; the cost uses the CDF): a target built from BOLD runs
  keeps the FCD matrix of its first run (:func:`~nmmfit.stats.fcd.sampled_fcd_matrix`, at
  most 400 windows per side: about 0.56 MB for a 1200-frame DELSSOME run). A precomputed
  group's FCD (the bundled ``train706`` / ``test303``) is a distribution only: no matrix.

The module holds one concept, the Target, and is long because a Target is built from several
kinds of input (SC and BOLD runs, a dataset's subjects, a precomputed group, bootstrap groups),
each checked with errors that name the bad input, and is saved and loaded.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nmmfit._netcdf import encode_fcd_matrix, get_fcd_matrix, put_fcd_matrix, read_netcdf
from nmmfit._validate import as_array, check_bold, check_finite, check_region_count, check_sc
from nmmfit.data.dataset import Dataset, FCDValues
from nmmfit.data.gradients import gradient_maps
from nmmfit.data.hemisphere import hemispheres
from nmmfit.data.sc import DEFAULT_SC_NORMALISATION, SC_NORMALISATIONS, normalise_sc
from nmmfit.stats.fc import fisher_mean, upper_tri
from nmmfit.stats.fcd import (
    FCDMatrix,
    FCDSpec,
    cdf_from_counts,
    sampled_fcd_matrix,
    values_to_cdf,
)
from nmmfit.stats.summary import summarise

__all__ = ["Target"]

_FORMAT = "nmmfit.Target"
_FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------
# helpers


def _flatten_runs(bold_runs) -> list[tuple[str, np.ndarray]]:
    """BOLD input -> [(name, run [N, T])]: a [N, T] array, [R, N, T], a list of runs, or a list
    (per subject) of lists of runs."""
    if isinstance(bold_runs, np.ndarray):
        if bold_runs.ndim == 2:
            return [("bold", bold_runs)]
        if bold_runs.ndim == 3:
            return [(f"bold[{r}]", b) for r, b in enumerate(bold_runs)]
        raise ValueError(f"bold must be [N, T], [R, N, T] or a list of runs, got shape "
                         f"{bold_runs.shape}")
    if not isinstance(bold_runs, list | tuple) or len(bold_runs) == 0:
        raise ValueError("bold must be a non-empty list of [N, T] runs (or of lists of runs, "
                         "one list per subject)")
    out = []
    for s, item in enumerate(bold_runs):
        if isinstance(item, list | tuple):
            if len(item) == 0:
                raise ValueError(f"bold[{s}] (subject {s}) holds no run")
            out += [(f"bold[{s}][{r}]", b) for r, b in enumerate(item)]
        else:
            out.append((f"bold[{s}]", item))
    return out


def _check_runs(runs: list[tuple[str, np.ndarray]], n_regions: int,
                spec: FCDSpec) -> list[np.ndarray]:
    checked = []
    for name, b in runs:
        shape = np.shape(b)
        if len(shape) == 2 and shape[0] != n_regions and shape[1] == n_regions:
            raise ValueError(f"{name} has shape {shape}, which looks transposed: the SC has "
                             f"{n_regions} regions, so a run must be [regions, frames] = "
                             f"[{n_regions}, T]; pass the array's transpose (bold.T)")
        arr = check_bold(b, name, min_frames=spec.window_frames)
        check_region_count(n_regions, arr, name, axis=0, reference="SC")
        if spec.n_windows(arr.shape[1]) < 2:
            raise ValueError(
                f"{name} has shape {arr.shape} (regions x frames): {arr.shape[1]} frames give "
                f"only one FCD window of {spec.window_frames} frames (step "
                f"{spec.step_frames}); an FCD needs at least 2"
            )
        sd = arr.std(axis=1)
        if (sd == 0).any():
            raise ValueError(f"{name} (shape {arr.shape}) has constant regions "
                             f"{np.flatnonzero(sd == 0)[:10].tolist()}; FC is undefined")
        checked.append(arr)
    return checked


def _runs_fc_fcd(runs: list[np.ndarray], spec: FCDSpec) -> tuple[np.ndarray, np.ndarray]:
    """Fisher-mean FC [N, N] and mean per-run normalised FCD CDF [n_bins] of checked runs
    (each run is summarised on its own by :func:`~nmmfit.stats.summary.summarise`)."""
    fcs, cdfs = [], []
    by_len: dict[int, list[int]] = {}
    for k, r in enumerate(runs):
        by_len.setdefault(r.shape[1], []).append(k)
    for idx in by_len.values():
        summary = summarise(np.stack([runs[k] for k in idx]), spec)
        bad = np.flatnonzero(~summary.valid[:, 0])
        if bad.size:
            k = idx[int(bad[0])]
            raise ValueError(f"BOLD run {k} (shape {runs[k].shape}) has a region that is "
                             f"constant within an FCD window of {spec.window_frames} frames; "
                             "its FCD is undefined")
        fcs.append(summary.fc)
        cdfs.append(summary.fcd_cdf)
    fc = fisher_mean(np.concatenate(fcs))
    cdf = np.concatenate(cdfs).mean(axis=0)
    return fc, cdf


def _check_maps(maps, n_regions: int) -> dict[str, np.ndarray]:
    if not isinstance(maps, dict):
        raise TypeError(f"maps must be a dict name -> [N] array, got {type(maps).__name__}")
    out = {}
    for key, m in maps.items():
        name = f"maps[{key!r}]"
        arr = check_finite(as_array(m, name, ndim=(1, 2)), name)
        if arr.ndim == 2:
            if 1 not in arr.shape:
                raise ValueError(f"{name} must be a [N] vector, got shape {arr.shape}")
            arr = arr.ravel()
        check_region_count(n_regions, arr, name, axis=0, reference="SC")
        out[str(key)] = arr
    return out


def _mode_frames(runs: list[np.ndarray]) -> int:
    return Counter(r.shape[1] for r in runs).most_common(1)[0][0]


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _fcd_cdf_from_group(fcdv: FCDValues, spec: FCDSpec) -> tuple[np.ndarray, str]:
    """Normalised CDF from a group's precomputed FCD: pooled values, or bin counts / a CDF
    when the container carries them (``counts`` or ``cdf`` attribute of length n_bins)."""
    for attr, kind in (("cdf", "cdf"), ("counts", "counts")):
        arr = getattr(fcdv, attr, None)
        if arr is not None:
            a = as_array(arr, f"FCDValues.{attr}", ndim=1)
            if a.shape != (spec.n_bins,):
                raise ValueError(f"FCDValues.{attr} has shape {a.shape}, but the FCD spec has "
                                 f"{spec.n_bins} bins")
            check_finite(a, f"FCDValues.{attr}")
            if kind == "counts":
                return cdf_from_counts(a), "precomputed bin counts"
            return a / a[-1], "precomputed CDF"
    vals = getattr(fcdv, "values", None)
    if vals is None:
        raise ValueError("the group's FCDValues holds neither values, counts nor a cdf")
    v = as_array(vals, "FCDValues.values")
    return values_to_cdf(v, spec), f"histogram of {v.size} pooled FCD values"


# --------------------------------------------------------------------------------------------
# Target


@dataclass
class Target:
    """Empirical data a model is fitted to.

    Attributes
    ----------
    sc : [N, N] normalised structural connectivity (what the model uses).
    fc : [N, N] empirical FC (Pearson r, diagonal 1).
    fcd_cdf : [n_bins] empirical FCD CDF, non-decreasing, last value 1.
    fcd_spec : the FCD definition the CDF was computed with; simulations use it too.
    maps : name -> [N] regional map (e.g. "myelin", "fc_gradient").
    tr : repetition time, seconds.
    n_frames : frames per run that the simulated BOLD should have (e.g. 1200).
    name : label.
    sc_normalisation : how ``sc`` was made (see :func:`normalise_sc`).
    meta : provenance (subjects, runs, recipes); JSON-serialisable.
    fcd_matrix : :class:`~nmmfit.stats.fcd.FCDMatrix` of the first BOLD run (values
        [W', W'] float32, FC correlation between windows of ``fcd_spec``; time_s [W'] window
        centres in seconds; every ``stride``-th window, at most
        :data:`~nmmfit.stats.fcd.MAX_KEPT_WINDOWS`), for figures; None when the target was
        built without BOLD runs (a precomputed group's FCD). Not part of the cost nor of
        :meth:`fingerprint`.
    """

    sc: np.ndarray
    fc: np.ndarray
    fcd_cdf: np.ndarray
    fcd_spec: FCDSpec
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    tr: float = 0.72
    n_frames: int = 1200
    name: str = "target"
    sc_normalisation: str = DEFAULT_SC_NORMALISATION
    meta: dict = field(default_factory=dict)
    fcd_matrix: FCDMatrix | None = None

    def __post_init__(self) -> None:
        self.sc = check_sc(self.sc, "Target.sc")
        n = self.sc.shape[0]
        fc = as_array(self.fc, "Target.fc", ndim=2)
        if fc.shape[0] != fc.shape[1]:
            raise ValueError(f"Target.fc must be a square [N, N] matrix, got shape {fc.shape}")
        check_region_count(n, fc, "Target.fc", reference="Target.sc")
        self.fc = check_finite(fc, "Target.fc")
        if not isinstance(self.fcd_spec, FCDSpec):
            raise TypeError(f"Target.fcd_spec must be an FCDSpec, got "
                            f"{type(self.fcd_spec).__name__}")
        cdf = check_finite(as_array(self.fcd_cdf, "Target.fcd_cdf", ndim=1), "Target.fcd_cdf")
        if cdf.shape != (self.fcd_spec.n_bins,):
            raise ValueError(f"Target.fcd_cdf has shape {cdf.shape}, but fcd_spec has "
                             f"{self.fcd_spec.n_bins} bins")
        if (np.diff(cdf) < -1e-9).any() or abs(cdf[-1] - 1.0) > 1e-6 or cdf[0] < -1e-12:
            raise ValueError(f"Target.fcd_cdf (shape {cdf.shape}) must be a normalised CDF: "
                             f"non-decreasing from >= 0 to 1 (last value {cdf[-1]:.6g})")
        self.fcd_cdf = cdf
        self.maps = _check_maps(self.maps, n)
        self.tr = float(self.tr)
        if not (np.isfinite(self.tr) and self.tr > 0):
            raise ValueError(f"Target.tr must be a positive number of seconds, got {self.tr}")
        self.n_frames = int(self.n_frames)
        if self.fcd_spec.n_windows(self.n_frames) < 2:
            raise ValueError(f"Target.n_frames = {self.n_frames} gives fewer than 2 FCD windows "
                             f"of {self.fcd_spec.window_frames} frames")
        if self.sc_normalisation not in SC_NORMALISATIONS + ("custom",):
            raise ValueError(f"Target.sc_normalisation must be one of "
                             f"{SC_NORMALISATIONS + ('custom',)}, got {self.sc_normalisation!r}")
        if self.fcd_matrix is not None and not isinstance(self.fcd_matrix, FCDMatrix):
            raise TypeError(f"Target.fcd_matrix must be an FCDMatrix or None, got "
                            f"{type(self.fcd_matrix).__name__}")

    # ---- properties

    @property
    def n_regions(self) -> int:
        """Number of regions N."""
        return int(self.sc.shape[0])

    @property
    def region_labels(self) -> list[str]:
        """N region names: the data set's (kept in ``meta["region_labels"]`` by
        :meth:`from_dataset` and saved with the Target), else ``region_001``..."""
        labels = self.meta.get("region_labels")
        if labels is not None and len(labels) == self.n_regions:
            return list(labels)
        return [f"region_{i + 1:03d}" for i in range(self.n_regions)]

    @property
    def fc_upper(self) -> np.ndarray:
        """[N (N - 1) / 2] upper triangle (k=1, row-major) of the FC."""
        return upper_tri(self.fc)

    @property
    def fcd_pdf(self) -> np.ndarray:
        """[n_bins] FCD probability mass per bin (diff of the CDF with 0 prepended)."""
        return np.diff(self.fcd_cdf, prepend=0.0)

    def fingerprint(self) -> dict:
        """The identity of the data a fit sees: ``{"name", "n_regions", "tr", "sha256"}``,
        where sha256 is the first 16 hex digits of the SHA-256 of ``sc``, ``fc`` and
        ``fcd_cdf`` (float64, C order, in that order). JSON-ready.

        It enters the config hash of every fit (:func:`nmmfit.fit.fit`'s run id) and of
        population inputs, so any change to it changes the ids of stored runs.
        """
        h = hashlib.sha256()
        for a in (self.sc, self.fc, self.fcd_cdf):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return {"name": self.name, "n_regions": self.n_regions, "tr": self.tr,
                "sha256": h.hexdigest()[:16]}

    def __repr__(self) -> str:
        return (f"Target({self.name!r}, N={self.n_regions}, TR={self.tr} s, "
                f"n_frames={self.n_frames}, fcd=({self.fcd_spec.window_frames} frames, step "
                f"{self.fcd_spec.step_frames}, {self.fcd_spec.n_bins} bins), "
                f"maps={list(self.maps)}, sc={self.sc_normalisation!r})")

    # ---- constructors

    @classmethod
    def from_bold(cls, sc, bold, tr: float, maps: dict[str, np.ndarray] | None = None,
                  fcd_spec: FCDSpec | None = None,
                  sc_normalisation: str = DEFAULT_SC_NORMALISATION,
                  name: str = "custom", n_frames: int | None = None, n_gradients: int = 1,
                  meta: dict | None = None) -> Target:
        """Build a target from SC and BOLD runs.

        Parameters
        ----------
        sc : one raw [N, N] SC, or one per subject ([S, N, N] or a list): combined and
            normalised by :func:`normalise_sc` with ``sc_normalisation``.
        bold : runs [N, T]: one array, [R, N, T], a list of runs, or a list (one per
            subject) of lists of runs. Finite; each at least 2 FCD windows long.
        tr : repetition time, seconds.
        maps : name -> [N] map. None: the principal FC gradient(s) of the target FC
            (:func:`fc_gradients`; ``n_gradients`` of them, "fc_gradient", "fc_gradient2", ...).
        fcd_spec : FCD definition; default DELSSOME, ``FCDSpec.from_seconds(60, tr, tr)``.
        n_frames : frames per simulated run; default the most common run length.

        FC = Fisher-z mean over all runs; FCD CDF = mean over runs of each run's normalised
        CDF (module docstring); ``fcd_matrix`` = the FCD matrix of the first run.
        """
        tr = float(tr)
        if not (np.isfinite(tr) and tr > 0):
            raise ValueError(f"tr must be a positive number of seconds, got {tr}")
        spec = FCDSpec.from_seconds(60.0, tr, tr, label=f"DELSSOME: 60 s window, step 1 TR "
                                    f"({tr:g} s)") if fcd_spec is None else fcd_spec
        sc_norm, sc_info = normalise_sc(sc, sc_normalisation)
        n = sc_norm.shape[0]
        named = _flatten_runs(bold)
        runs = _check_runs(named, n, spec)
        fc, cdf = _runs_fc_fcd(runs, spec)
        fcd = sampled_fcd_matrix(runs[0], spec, tr, label=f"first BOLD run ({named[0][0]})")
        info = dict(meta or {})
        if maps is None:
            maps = gradient_maps(fc, n_gradients)
            info["maps_source"] = {k: "fc_gradients(target FC), diffusion map, top 10% rows, "
                                   "alpha 0.5, z-scored, largest |value| positive"
                                   for k in maps}
        maps = _check_maps(maps, n)
        info.update(
            sc=sc_info,
            n_runs=len(runs),
            run_frames=[int(r.shape[1]) for r in runs],
            fc_recipe="Fisher-z mean over runs",
            fcd_recipe="mean over runs of per-run normalised FCD CDFs",
        )
        return cls(sc=sc_norm, fc=fc, fcd_cdf=cdf, fcd_spec=spec, maps=maps, tr=tr,
                   n_frames=int(n_frames) if n_frames is not None else _mode_frames(runs),
                   name=name, sc_normalisation=sc_normalisation, meta=info, fcd_matrix=fcd)

    @classmethod
    def from_dataset(cls, ds: Dataset, subjects: Sequence[str] | None = None,
                     group: str | None = None,
                     maps: Sequence[str] | None = ("myelin", "fc_gradient"),
                     fcd_spec: FCDSpec | None = None,
                  sc_normalisation: str = DEFAULT_SC_NORMALISATION,
                     n_frames: int | None = None, name: str | None = None) -> Target:
        """Build a target from a :class:`~nmmfit.data.dataset.Dataset`.

        Parameters
        ----------
        ds : the cohort (e.g. ``nmmfit.datasets.load("hcp_schaefer100")``).
        subjects : subject ids to use (SC and BOLD runs via :meth:`from_bold`); default all
            subjects when ``group`` is None.
        group : name of a precomputed group (``ds.groups``): its SC (normalised with
            ``sc_normalisation``), its FC, and its precomputed FCD with the definition it was
            computed with (window/step from the group's ``FCDValues``; ``fcd_spec`` may only
            change the bins). A group without FC or FCD gets them from all subjects' runs.
        maps : names of maps to use: dataset maps when present; a missing name starting with
            "fc_gradient" is computed from the target FC (:func:`fc_gradients`); other missing
            names are skipped with a warning. None: the FC gradient only; () for no maps.
        n_frames : frames per simulated run; default the most common run length in ``ds``.
        """
        if group is not None and subjects is not None:
            raise ValueError("give either subjects or group, not both")
        label = name or (f"{ds.name}:{group}" if group is not None else ds.name)
        if group is None:
            ids = list(ds.subjects) if subjects is None else [str(s) for s in subjects]
            missing = [s for s in ids if s not in ds.subjects]
            if missing:
                raise ValueError(f"subjects {missing[:5]} not in dataset {ds.name!r} "
                                 f"(has {list(ds.subjects)[:10]})")
            if not ids:
                raise ValueError(f"no subjects selected from dataset {ds.name!r}")
            subs = [ds.subjects[s] for s in ids]
            for s in subs:
                if s.sc is None:
                    raise ValueError(f"subject {s.id!r} of {ds.name!r} has no SC")
                if not s.bold:
                    raise ValueError(f"subject {s.id!r} of {ds.name!r} has no BOLD run "
                                     "(loaded with include_bold=False?)")
            tgt = cls.from_bold([s.sc for s in subs], [list(s.bold) for s in subs], ds.tr,
                                maps={}, fcd_spec=fcd_spec, sc_normalisation=sc_normalisation,
                                name=label, n_frames=n_frames,
                                meta={"dataset": ds.name, "subjects": ids})
            first = subs[0]
            run = first.run_names[0] if first.run_names else "run 1"
            tgt.fcd_matrix = replace(tgt.fcd_matrix,
                                     label=f"subject {first.id}, {run} (the first run)")
        else:
            tgt = cls._from_group(ds, group, fcd_spec, sc_normalisation, n_frames, label)
        labels = getattr(ds, "region_labels", None)
        if labels is not None and len(labels) == tgt.n_regions:
            tgt.meta["region_labels"] = [str(v) for v in labels]
        hemi = hemispheres(labels, getattr(ds, "parcellation", ""))
        if hemi is not None and hemi.size == tgt.n_regions:
            tgt.meta["hemisphere"] = hemi.tolist()
        tgt.maps, map_info = cls._resolve_maps(ds, tgt.fc, maps)
        tgt.meta["maps_source"] = map_info
        tgt.maps = _check_maps(tgt.maps, tgt.n_regions)
        return tgt

    @classmethod
    def _from_group(cls, ds: Dataset, group: str, fcd_spec: FCDSpec | None,
                    sc_normalisation: str, n_frames: int | None, label: str) -> Target:
        if group not in ds.groups:
            raise ValueError(f"group {group!r} not in dataset {ds.name!r} "
                             f"(groups: {list(ds.groups)})")
        g = ds.groups[group]
        sc_norm, sc_info = normalise_sc(g.sc, sc_normalisation)
        n = sc_norm.shape[0]
        all_runs = [b for s in ds.subjects.values() for b in s.bold]
        meta: dict = {"dataset": ds.name, "group": group, "n_subjects": int(g.n_subjects),
                      "sc": sc_info}
        if g.fcd is not None:
            fcdv = g.fcd
            if abs(float(fcdv.tr) - float(ds.tr)) > 1e-9:
                raise ValueError(f"group {group!r} FCD was computed at TR {fcdv.tr} s but the "
                                 f"dataset TR is {ds.tr} s")
            spec = FCDSpec(window_frames=int(fcdv.window_frames),
                           step_frames=int(fcdv.step_frames),
                           n_bins=fcd_spec.n_bins if fcd_spec else 10000,
                           lo=fcd_spec.lo if fcd_spec else -1.0,
                           hi=fcd_spec.hi if fcd_spec else 1.0,
                           label=fcdv.note[:200] or f"precomputed FCD of group {group}")
            if fcd_spec is not None and (fcd_spec.window_frames, fcd_spec.step_frames) != (
                    spec.window_frames, spec.step_frames):
                raise ValueError(
                    f"fcd_spec (window {fcd_spec.window_frames}, step {fcd_spec.step_frames} "
                    f"frames) differs from the definition group {group!r}'s FCD was computed "
                    f"with (window {spec.window_frames}, step {spec.step_frames})")
            cdf, how = _fcd_cdf_from_group(fcdv, spec)
            meta["fcd_recipe"] = f"group {group!r}: {how}"
        else:
            spec = fcd_spec or FCDSpec.from_seconds(60.0, ds.tr, ds.tr)
            cdf = None
        fc = g.fc
        fcd = None
        if fc is None or cdf is None:
            if not all_runs:
                raise ValueError(f"group {group!r} of {ds.name!r} lacks FC or FCD and the "
                                 "dataset has no BOLD runs to compute them from")
            runs = _check_runs([(f"{s.id}.bold[{k}]", b) for s in ds.subjects.values()
                                for k, b in enumerate(s.bold)], n, spec)
            run_fc, run_cdf = _runs_fc_fcd(runs, spec)
            if fc is None:
                fc = run_fc
                meta["fc_recipe"] = "Fisher-z mean over all subjects' runs"
            if cdf is None:
                cdf = run_cdf
                meta["fcd_recipe"] = "mean over all subjects' runs of per-run normalised CDFs"
                first = next(s for s in ds.subjects.values() if s.bold)
                fcd = sampled_fcd_matrix(runs[0], spec, ds.tr,
                                         label=f"subject {first.id}, the first run")
        fc = as_array(fc, f"groups[{group!r}].fc", ndim=2)
        if not np.isfinite(fc).all():
            raise ValueError(
                f"groups[{group!r}].fc (shape {fc.shape}) has {int((~np.isfinite(fc)).sum())} "
                "non-finite entries (e.g. the exc_inter variant masks interhemispheric "
                "edges); a Target needs a complete FC")
        if n_frames is None:
            if not all_runs:
                raise ValueError(f"dataset {ds.name!r} has no BOLD runs to infer n_frames "
                                 "from; pass n_frames")
            n_frames = _mode_frames(all_runs)
        return cls(sc=sc_norm, fc=fc, fcd_cdf=cdf, fcd_spec=spec, maps={}, tr=ds.tr,
                   n_frames=int(n_frames), name=label, sc_normalisation=sc_normalisation,
                   meta=meta, fcd_matrix=fcd)

    @staticmethod
    def _resolve_maps(ds: Dataset, fc: np.ndarray,
                      maps: Sequence[str] | None) -> tuple[dict[str, np.ndarray], dict]:
        names = ["fc_gradient"] if maps is None else [str(m) for m in maps]
        out, info, skipped = {}, {}, []
        grad_needed = [m for m in names if m not in ds.maps and m.startswith("fc_gradient")]
        grads = {}
        if grad_needed:
            idx = [1 if m == "fc_gradient" else int(m.removeprefix("fc_gradient") or 1)
                   for m in grad_needed]
            grads = gradient_maps(fc, max(idx))
        for m in names:
            if m in ds.maps:
                out[m] = np.asarray(ds.maps[m], dtype=np.float64)
                info[m] = f"dataset {ds.name!r} map"
            elif m in grads:
                out[m] = grads[m]
                info[m] = ("fc_gradients(target FC), diffusion map, top 10% rows, alpha 0.5, "
                           "z-scored, largest |value| positive")
            else:
                skipped.append(m)
        if skipped:
            warnings.warn(f"maps {skipped} not in dataset {ds.name!r} (has {list(ds.maps)}); "
                          "skipped", stacklevel=3)
            info["skipped"] = skipped
        return out, info

    @classmethod
    def bootstrap(cls, ds: Dataset, n_groups: int, group_size: int, seed: int,
                  replace: bool = False, **kwargs) -> list[Target]:
        """Targets of ``n_groups`` random groups of ``group_size`` subjects (DELSSOME 4.2).

        Each group is drawn independently with ``np.random.default_rng(seed)``; within a group
        subjects are distinct unless ``replace=True`` (DELSSOME draws groups of 50 distinct
        participants repeatedly). ``kwargs`` go to :meth:`from_dataset`. The subject ids and
        the seed are recorded in each target's ``meta``.
        """
        ids = list(ds.subjects)
        n_groups, group_size = int(n_groups), int(group_size)
        if n_groups < 1 or group_size < 1:
            raise ValueError(f"n_groups and group_size must be >= 1, got {n_groups}, "
                             f"{group_size}")
        if not replace and group_size > len(ids):
            raise ValueError(f"group_size {group_size} exceeds the {len(ids)} subjects of "
                             f"{ds.name!r}; use replace=True or a smaller group")
        rng = np.random.default_rng(seed)
        base = kwargs.pop("name", None) or ds.name
        out = []
        for k in range(n_groups):
            pick = rng.choice(len(ids), size=group_size, replace=replace)
            subs = [ids[i] for i in pick]
            tgt = cls.from_dataset(ds, subjects=subs, name=f"{base}:boot{k}", **kwargs)
            tgt.meta["bootstrap"] = {"seed": seed, "group": k, "n_groups": n_groups,
                                     "group_size": group_size, "replace": bool(replace)}
            out.append(tgt)
        return out

    # ---- persistence

    def save(self, path) -> Path:
        """Write to ``path``: a ``.nc`` path gives NetCDF4 (labelled arrays: SC and FC on
        (region, region_b) with the region names, the FCD CDF, the maps; spec, TR, names and
        meta as attributes), any other a ``.npz`` (arrays + a JSON header). :meth:`load`
        reads both."""
        path = Path(path)
        if path.suffix == ".nc":
            return self._save_netcdf(path)
        header = self._header()
        arrays = {"sc": self.sc, "fc": self.fc, "fcd_cdf": self.fcd_cdf}
        arrays.update({f"map_{k}": v for k, v in enumerate(self.maps.values())})
        if self.fcd_matrix is not None:
            arrays.update(fcd_matrix=self.fcd_matrix.values,
                          fcd_matrix_time=self.fcd_matrix.time_s)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, header=np.array(json.dumps(header)), **arrays)
        return path

    def _header(self) -> dict:
        return {"format": _FORMAT, "format_version": _FORMAT_VERSION, "name": self.name,
                "tr": self.tr, "n_frames": self.n_frames,
                "sc_normalisation": self.sc_normalisation,
                "fcd_spec": self.fcd_spec.to_dict(), "maps": list(self.maps),
                "meta": _jsonable(self.meta),
                "fcd_matrix": None if self.fcd_matrix is None else {
                    "stride": self.fcd_matrix.stride, "label": self.fcd_matrix.label}}

    def _save_netcdf(self, path: Path) -> Path:
        import xarray as xr

        labels = self.region_labels
        data = {"sc": (("region", "region_b"), self.sc),
                "fc": (("region", "region_b"), self.fc),
                "fcd_cdf": (("fcd_bin",), self.fcd_cdf)}
        data.update({f"map_{k}": (("region",), v, {"name": m})
                     for k, (m, v) in enumerate(self.maps.items())})
        coords = {"region": labels, "region_b": labels}
        put_fcd_matrix(data, coords, "fcd_matrix", self.fcd_matrix)
        ds = xr.Dataset(data, coords=coords, attrs={"header": json.dumps(self._header())})
        encode_fcd_matrix(ds, "fcd_matrix")
        ds.to_netcdf(path, engine="h5netcdf")
        return path

    @classmethod
    def _load_netcdf(cls, path: Path) -> Target:
        ds = read_netcdf(path, "saved nmmfit Target (Target.save)")
        if "header" not in ds.attrs:
            raise ValueError(f"{path} is not a saved nmmfit Target (no header attribute)")
        header = json.loads(ds.attrs["header"])
        return cls._from_saved(path, header, {k: ds[k].values for k in ds.data_vars},
                               get_fcd_matrix(ds, "fcd_matrix"))

    @classmethod
    def _from_saved(cls, path: Path, header: dict, z, fcd: FCDMatrix | None = None) -> Target:
        if header.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a saved nmmfit Target "
                             f"(format {header.get('format')!r})")
        if header.get("format_version", 0) > _FORMAT_VERSION:
            raise ValueError(f"{path} was written by a newer nmmfit (format version "
                             f"{header['format_version']})")
        maps = {m: np.array(z[f"map_{k}"]) for k, m in enumerate(header["maps"])}
        kept = header.get("fcd_matrix")  # absent in files written before it was kept
        if fcd is None and kept is not None:
            fcd = FCDMatrix(values=np.array(z["fcd_matrix"]),
                            time_s=np.array(z["fcd_matrix_time"]), **kept)
        return cls(sc=np.array(z["sc"]), fc=np.array(z["fc"]), fcd_cdf=np.array(z["fcd_cdf"]),
                   fcd_spec=FCDSpec.from_dict(header["fcd_spec"]), maps=maps,
                   tr=header["tr"], n_frames=header["n_frames"], name=header["name"],
                   sc_normalisation=header["sc_normalisation"], meta=header["meta"],
                   fcd_matrix=fcd)

    @classmethod
    def load(cls, path) -> Target:
        """Read a target written by :meth:`save` (``.npz`` or NetCDF ``.nc``); ``ValueError``
        naming the file for anything else (a plain ``.npy`` array, a corrupt or non-NumPy
        file)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"target file {path} does not exist")
        with open(path, "rb") as fh:
            if fh.read(8) == b"\x89HDF\r\n\x1a\n":  # NetCDF4 is HDF5
                return cls._load_netcdf(path)
        try:
            z = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{path} cannot be read as a saved nmmfit Target (.npz written by "
                             f"Target.save): {type(err).__name__}: {err}") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} holds one array of shape {np.shape(z)}, not a saved "
                             "nmmfit Target (.npz written by Target.save); build a target "
                             "from SC and BOLD with Target.from_bold or nmmfit.data.user")
        with z:
            if "header" not in z.files:
                raise ValueError(f"{path} is not a saved nmmfit Target (no header)")
            header = json.loads(str(z["header"].item()))
            return cls._from_saved(path, header, z)
