"""A cohort to fit subject by subject: its subjects, a covariate table, and each subject's Target.

Sources
-------
- a bundled data set name (``"hcp_aal"``, ``"gw_aal"``, ``"hcp_schaefer100"``), optionally with
  a covariate table (the bundled cohorts ship none);
- a BIDS-like directory (:meth:`Cohort.from_directory`; the layout is described in
  :mod:`nmmfit.population.folders`). Files are read by :mod:`nmmfit.data.user` (``.npy``,
  ``.npz``, ``.csv``/``.tsv``/``.txt``, ``.mat``); BOLD runs are [regions, frames] unless
  ``transpose=True``;
- in-memory Targets (:meth:`Cohort.from_targets`; tests, or targets built elsewhere);
- a synthetic cohort of any size made from a bundled data set's real subjects by a seeded
  perturbation of their SC and BOLD (:func:`synthetic_cohort`;
  benchmarks).

The covariate table is read by :func:`nmmfit.population.covariates.read_covariates`.

Per subject, one Target is built from the subject's own SC and BOLD runs
(:meth:`nmmfit.data.target.Target.from_dataset` with ``subjects=[sid]``). The same target
serves training, validation and test (their simulations use different noise seeds): a single
resting-state session cannot be split into disjoint targets of the same length.

Tasks sent to workers carry only what a worker needs (:class:`SubjectSpec`): for bundled and
directory cohorts the data set name / file paths (a worker reads its subject's data itself; a
remote cluster needs the directory on a shared file system), for synthetic cohorts the data set
name, the real subject and the perturbation seed (the worker makes the data), for in-memory
cohorts the Target.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nmmfit import datasets
from nmmfit.data.sc import DEFAULT_SC_NORMALISATION
from nmmfit.data.target import Target
from nmmfit.data.user import from_arrays, load_bold, load_sc
from nmmfit.population.analysis import networks_for
from nmmfit.population.covariates import read_covariates
from nmmfit.population.folders import read_folder
from nmmfit.population.synthetic import (
    SYNTHETIC_DEFAULTS,
    perturb_seed,
    perturb_subject,
    synthetic_dataset,
)

__all__ = ["Cohort", "SubjectSpec", "synthetic_cohort", "default_maps", "cohort_networks",
           "cohort_regions"]


@dataclass(frozen=True)
class SubjectSpec:
    """What a worker needs to build one subject's Target (small and picklable).

    kind "bundled": ``source`` = data set name, ``options`` its load options;
    kind "files": ``source`` = SC path, ``bold`` = run paths, ``tr``;
    kind "target": ``target`` = a ready :class:`~nmmfit.data.target.Target`;
    kind "synthetic": ``source`` = bundled data set name, ``options`` its load options,
    ``perturb`` = sorted (key, value) pairs: ``base`` (the real subject), ``seed`` and
    ``index`` (the cohort seed and the subject's index, which seed the perturbation) and the
    :func:`~nmmfit.population.synthetic.perturb_subject` settings; the data are made on the
    worker (see :func:`synthetic_cohort`).
    """

    cohort: str
    subject: str
    kind: str
    maps: tuple[str, ...] = ("fc_gradient",)
    source: str = ""
    options: tuple = ()
    bold: tuple[str, ...] = ()
    tr: float | None = None
    transpose: bool = False
    target: Any = None
    labels: tuple[str, ...] | None = None
    perturb: tuple = ()

    def build_target(self, sc_normalisation: str | None = None):
        """The subject's Target (reads the data when needed), its SC normalised by
        ``sc_normalisation`` (None: the library default); a ready Target (kind "target") is
        returned as it is."""
        name = f"{self.cohort}:{self.subject}"
        if self.kind == "target":
            return self.target
        if self.kind == "bundled":
            ds = datasets.load(self.source, **dict(self.options))
        elif self.kind == "synthetic":
            ds = synthetic_dataset(self.source, dict(self.options), self.subject,
                                   dict(self.perturb))
        elif self.kind == "files":
            sc = load_sc(self.source, name=f"SC of {self.subject} ({Path(self.source).name})")
            runs = [load_bold(p, transpose=self.transpose, n_regions=sc.shape[0],
                              name=f"BOLD of {self.subject} ({Path(p).name})")
                    for p in self.bold]
            ds = from_arrays({self.subject: sc}, {self.subject: runs}, tr=self.tr,
                             subject_ids=[self.subject], name=self.cohort,
                             region_labels=list(self.labels) if self.labels else None)
        else:
            raise ValueError(f"unknown subject spec kind {self.kind!r}")
        tgt = Target.from_dataset(ds, subjects=[self.subject], maps=self.maps, name=name,
                                  sc_normalisation=sc_normalisation or DEFAULT_SC_NORMALISATION)
        if self.kind == "synthetic":
            tgt.meta["synthetic"] = {"dataset": self.source, **dict(self.perturb)}
        return tgt

    def fingerprint(self) -> str:
        """A short hash (16 hex digits) of this subject's input data, recorded with each
        attempt: a finished result whose recorded fingerprint differs was fitted to other data
        (:func:`nmmfit.population.run_cohort` refits it).

        kind "files": the bytes of the SC and BOLD files (and the TR, orientation and region
        labels); "target": the Target's SC, FC and FCD CDF; "bundled": the data set name and
        load options (the bundled data ship with the package); "synthetic": those and the
        perturbation spec (the data are made from them).
        """
        import hashlib

        h = hashlib.sha256()
        if self.kind == "target":
            h.update(json.dumps(self.target.fingerprint(), sort_keys=True).encode())
        elif self.kind == "files":
            h.update(json.dumps([self.tr, self.transpose, self.labels]).encode())
            for f in (self.source, *self.bold):
                h.update(Path(f).name.encode())
                try:
                    with open(f, "rb") as fh:
                        for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                            h.update(block)
                except OSError as err:  # the fit itself will report the missing file
                    h.update(f"unreadable:{type(err).__name__}".encode())
        else:
            h.update(json.dumps([self.kind, self.source, [list(kv) for kv in self.options],
                                 [list(kv) for kv in self.perturb]], default=str).encode())
        return h.hexdigest()[:16]


@dataclass
class Cohort:
    """Subjects to fit one by one, with their covariates.

    Attributes
    ----------
    name : cohort key in the results table.
    subjects : subject ids, in order.
    covariates : pandas DataFrame indexed by subject id (may be empty / have fewer rows).
    specs : subject id -> :class:`SubjectSpec`.
    region_labels : N region names, or None.
    networks : [N] Yeo-7 network index (0-6, -1 unassigned) or None; see
        :func:`nmmfit.population.analysis.networks_for`.
    parcellation : e.g. "schaefer-100", "aal2-94", "user".
    maps : parametrisation maps (names) of every subject's fit.
    """

    name: str
    subjects: list[str]
    covariates: Any
    specs: dict[str, SubjectSpec] = field(repr=False, default_factory=dict)
    region_labels: list[str] | None = None
    networks: np.ndarray | None = None
    parcellation: str = "user"
    maps: tuple[str, ...] = ("fc_gradient",)

    def __post_init__(self) -> None:
        self.covariates = read_covariates(self.covariates)
        if not self.subjects:
            raise ValueError(f"cohort {self.name!r} has no subjects")
        unknown = [s for s in self.covariates.index if s not in set(self.subjects)]
        if unknown:
            raise ValueError(f"the covariate table of cohort {self.name!r} names subjects that "
                             f"are not in the cohort: {unknown[:10]} (cohort subjects: "
                             f"{self.subjects[:10]})")
        missing = [s for s in self.subjects if s not in self.specs]
        if missing:
            raise ValueError(f"cohort {self.name!r}: no data for subjects {missing[:10]}")
        if self.networks is None and self.region_labels is not None:
            self.networks = networks_for(self.parcellation, self.region_labels)

    def __len__(self) -> int:
        return len(self.subjects)

    def __repr__(self) -> str:
        return (f"Cohort({self.name!r}, subjects={len(self.subjects)}, parcellation="
                f"{self.parcellation!r}, covariates={list(self.covariates.columns)})")

    def spec(self, subject: str) -> SubjectSpec:
        """The worker task input of one subject."""
        return self.specs[subject]

    def target(self, subject: str):
        """Build one subject's Target (here, in this process)."""
        return self.specs[subject].build_target()

    def select(self, subjects: Sequence[str]) -> Cohort:
        """A cohort with only ``subjects`` (same name, so stored results are shared)."""
        subjects = [str(s) for s in subjects]
        bad = [s for s in subjects if s not in self.specs]
        if bad:
            raise ValueError(f"subjects {bad[:10]} are not in cohort {self.name!r}")
        cov = self.covariates.loc[[s for s in self.covariates.index if s in set(subjects)]]
        return Cohort(self.name, subjects, cov, {s: self.specs[s] for s in subjects},
                      self.region_labels, self.networks, self.parcellation, self.maps)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_dataset(cls, dataset, covariates=None, *, name: str | None = None,
                     maps: Sequence[str] = ("fc_gradient",), subjects: Sequence[str] | None = None,
                     **load_options) -> Cohort:
        """A bundled data set (by name) or a :class:`~nmmfit.data.dataset.Dataset`.

        A bundled name lets each worker load its subject itself (only the name travels);
        a Dataset object is turned into per-subject Targets here.
        """
        bundled = isinstance(dataset, str)
        ds = datasets.load(dataset, **load_options) if bundled else dataset
        ids = list(ds.subjects) if subjects is None else [str(s) for s in subjects]
        unknown = [s for s in ids if s not in ds.subjects]
        if unknown:
            raise ValueError(f"subjects {unknown[:10]} are not in data set {ds.name!r} "
                             f"(has {list(ds.subjects)[:10]})")
        for s in ids:
            sub = ds.subjects[s]
            if sub.sc is None:
                raise ValueError(f"subject {s!r} of {ds.name!r} has no SC")
            if not sub.bold:
                raise ValueError(f"subject {s!r} of {ds.name!r} has no BOLD run"
                                 + (" (loaded with include_bold=False?)" if bundled else ""))
        cname = name or ds.name
        maps = tuple(maps)
        if bundled:
            specs = {s: SubjectSpec(cname, s, "bundled", maps=maps, source=dataset,
                                    options=tuple(sorted(load_options.items())))
                     for s in ids}
        else:
            specs = {s: SubjectSpec(cname, s, "target", maps=maps, target=Target.from_dataset(
                ds, subjects=[s], maps=maps, name=f"{cname}:{s}")) for s in ids}
        # Dataset.networks holds labels 1..7; a Cohort holds indices 0..6 into YEO7_NAMES
        return cls(cname, ids, covariates, specs, list(ds.region_labels),
                   None if ds.networks is None else np.asarray(ds.networks) - 1,
                   ds.parcellation, maps)

    @classmethod
    def from_targets(cls, targets: Mapping[str, Any], covariates=None, *, name: str = "cohort",
                     maps: Sequence[str] | None = None, region_labels=None, networks=None,
                     parcellation: str = "user") -> Cohort:
        """In-memory Targets {subject id: Target} (maps: default all maps of the first)."""
        targets = {str(k): v for k, v in targets.items()}
        if not targets:
            raise ValueError("from_targets needs at least one target")
        if maps is None:
            maps = tuple(next(iter(targets.values())).maps)
        specs = {s: SubjectSpec(name, s, "target", maps=tuple(maps), target=t)
                 for s, t in targets.items()}
        return cls(name, list(targets), covariates, specs,
                   None if region_labels is None else list(region_labels),
                   None if networks is None else np.asarray(networks), parcellation,
                   tuple(maps))

    @classmethod
    def from_directory(cls, path, *, tr: float | None = None, name: str | None = None,
                       maps: Sequence[str] = ("fc_gradient",), transpose: bool = False,
                       region_labels: Sequence[str] | None = None,
                       parcellation: str = "user") -> Cohort:
        """A BIDS-like directory (:mod:`nmmfit.population.folders`). Raises ValueError for a
        subject without SC or BOLD files, and for a participants.tsv naming subjects without a
        folder."""
        folder = read_folder(path, tr=tr, region_labels=region_labels)
        cname = name or folder.name
        labels = tuple(folder.region_labels) if folder.region_labels else None
        specs = {sid: SubjectSpec(cname, sid, "files", maps=tuple(maps), source=str(sc),
                                  bold=tuple(str(f) for f in bold), tr=folder.tr,
                                  transpose=transpose, labels=labels)
                 for sid, (sc, bold) in folder.files.items()}
        return cls(cname, list(specs), folder.covariates, specs, folder.region_labels, None,
                   parcellation, tuple(maps))

    @classmethod
    def load(cls, source, covariates=None, **kw) -> Cohort:
        """A bundled data set name or a directory (see the module docstring)."""
        if isinstance(source, str) and source in datasets.available():
            return cls.from_dataset(source, covariates, **kw)
        p = Path(source)
        if p.is_dir():
            c = cls.from_directory(p, **kw)
            if covariates is not None:
                c.covariates = read_covariates(covariates)
                c.__post_init__()
            return c
        raise ValueError(f"cohort {source!r} is neither a bundled data set "
                         f"({', '.join(datasets.available())}) nor a directory")


def default_maps(source) -> tuple[str, ...]:
    """The parametrisation maps of a population fit when none are named: myelin and the FC
    gradient for the bundled ``hcp_schaefer100`` (the only cohort with a myelin map), the FC
    gradient alone otherwise."""
    return ("myelin", "fc_gradient") if source == "hcp_schaefer100" else ("fc_gradient",)


def cohort_networks(source) -> np.ndarray | None:
    """[N] Yeo-7 index per region (0-6, -1 unassigned) of a bundled data set or a cohort
    directory (:attr:`Cohort.networks`); None when ``source`` is empty, neither a data set
    nor a readable cohort directory, or has no network labels."""
    return cohort_regions(source)[1]


def cohort_regions(source) -> tuple[list[str] | None, np.ndarray | None]:
    """(region names [N], Yeo-7 index per region [N]) of a bundled data set or a cohort
    directory; each None when unknown (see :func:`cohort_networks`)."""
    if not source:
        return None, None
    try:
        c = Cohort.load(source)
    except (ValueError, FileNotFoundError):
        return None, None
    return (None if c.region_labels is None else list(c.region_labels)), c.networks


def synthetic_cohort(dataset: str = "hcp_aal", n_subjects: int = 1000, seed: int = 0, *,
                     sc_sigma: float = SYNTHETIC_DEFAULTS["sc_sigma"],
                     block_frames: int = SYNTHETIC_DEFAULTS["block_frames"],
                     bold_noise: float = SYNTHETIC_DEFAULTS["bold_noise"],
                     age_range: tuple[float, float] = (8.0, 90.0),
                     maps: Sequence[str] = ("fc_gradient",), base_subjects=None,
                     name: str | None = None, **load_options) -> Cohort:
    """A synthetic cohort of ``n_subjects`` made from the real subjects of a bundled data set.

    Synthetic subject ``i`` (id ``syn-00000``, ``syn-00001``, ...) is made from real subject
    ``base[i % len(base)]`` (``base``: ``base_subjects``, default the data set's subjects in
    sorted order, e.g. the 7 HCP AAL2 individuals of ``hcp_aal``; they are cycled) by
    :func:`perturb_subject` with seed ``SeedSequence([seed, i, 0])``:

    - SC x symmetric lognormal noise of log-sd ``sc_sigma`` (mean 1; symmetric, non-negative,
      same zeros and diagonal);
    - each BOLD run: circular block bootstrap in time with blocks of ``block_frames`` frames
      (the same frames for all regions), plus Gaussian noise of ``bold_noise`` x each region's
      standard deviation.

    Its Target is then built as for a real subject (its own FC, FCD and FC gradient).
    Covariates, from ``SeedSequence([seed, i, 1])``: ``age`` uniform on ``age_range`` (years,
    one decimal), ``sex`` "F" or "M" with probability 1/2, and ``source_subject`` (the real
    subject). The synthetic covariates carry no signal: they exercise the group analysis.

    A subject depends only on (dataset, base subjects, seed, i, the perturbation settings),
    not on ``n_subjects``, so a larger cohort extends a smaller one. Nothing is held in
    memory per subject but a small :class:`SubjectSpec`: each worker loads the data set and
    makes its subject's SC and BOLD itself (lazily, in :meth:`SubjectSpec.build_target`).

    ``name``: cohort key in the results table; default
    ``"<dataset>_syn_s<seed>_sc<sc_sigma>_b<block_frames>_n<bold_noise>"`` (plus a hash of
    ``base_subjects`` or load options when given). ``load_options`` go to
    :func:`nmmfit.datasets.load`.
    """
    import zlib

    n_subjects = int(n_subjects)
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be >= 1, got {n_subjects}")
    lo, hi = (float(a) for a in age_range)
    if not hi >= lo:
        raise ValueError(f"age_range must be (low, high) with high >= low, got {age_range}")
    ds = datasets.load(dataset, **load_options)
    real = sorted(ds.subjects)
    base = real if base_subjects is None else [str(s) for s in base_subjects]
    bad = [s for s in base if s not in ds.subjects]
    if bad or not base:
        raise ValueError(f"base subjects {bad[:10] or base} are not subjects of {dataset!r} "
                         f"(has {real[:10]})")
    for s in base:
        sub = ds.subjects[s]
        if sub.sc is None or not sub.bold:
            raise ValueError(f"subject {s!r} of {dataset!r} lacks SC or BOLD"
                             + (" (loaded with include_bold=False?)"
                                if not load_options.get("include_bold", True) else ""))
    settings = {"sc_sigma": float(sc_sigma), "block_frames": int(block_frames),
                "bold_noise": float(bold_noise)}
    perturb_subject(np.zeros((2, 2)), [], 0, **settings)  # checks the settings
    if name is None:
        name = (f"{dataset}_syn_s{int(seed)}_sc{settings['sc_sigma']:g}"
                f"_b{settings['block_frames']}_n{settings['bold_noise']:g}")
        extra = {k: v for k, v in (("base", None if base_subjects is None else base),
                                   ("load", load_options or None)) if v is not None}
        if extra:
            name += "_" + format(zlib.crc32(json.dumps(extra, sort_keys=True,
                                                       default=str).encode()), "08x")
    width = max(5, len(str(n_subjects - 1)))
    ids, specs, cov = [], {}, {}
    opts = tuple(sorted(load_options.items()))
    for i in range(n_subjects):
        sid = f"syn-{i:0{width}d}"
        src = base[i % len(base)]
        perturb = tuple(sorted({"base": src, "seed": int(seed), "index": i,
                                **settings}.items()))
        specs[sid] = SubjectSpec(name, sid, "synthetic", maps=tuple(maps), source=dataset,
                                 options=opts, perturb=perturb)
        rng = np.random.default_rng(perturb_seed(seed, i, 1))
        cov[sid] = {"age": round(float(rng.uniform(lo, hi)), 1),
                    "sex": "F" if rng.random() < 0.5 else "M", "source_subject": src}
        ids.append(sid)
    return Cohort(name, ids, cov, specs, list(ds.region_labels),
                  None if ds.networks is None else np.asarray(ds.networks) - 1, ds.parcellation,
                  tuple(maps))
