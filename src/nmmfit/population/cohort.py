"""A cohort to fit subject by subject: its subjects, a covariate table, and each subject's Target.

Sources
-------
- a bundled data set name (``"hcp_aal"``, ``"gw_aal"``, ``"hcp_schaefer100"``), optionally with
  a covariate table (the bundled cohorts ship none);
- a BIDS-like directory (:meth:`Cohort.from_directory`)::

      my_cohort/
        participants.tsv          participant_id <TAB> age <TAB> sex ...  (covariates; optional)
        dataset_description.json  {"Name": "my_cohort", "RepetitionTime": 0.72}  (optional)
        sub-01/
          sc.csv                  [N, N] SC (also accepted: sub-01_sc.npy, *_sc.*, dwi/*sc*)
          func/sub-01_task-rest_run-1_bold.npy   BOLD runs: every file whose name contains
          func/sub-01_task-rest_run-2_bold.npy   "bold" in sub-01/ or sub-01/func/, [N, T]
        sub-02/ ...

  Files are read by :mod:`nmmfit.data.user` (``.npy``, ``.npz``, ``.csv``/``.tsv``/``.txt``,
  ``.mat``). BOLD runs are [regions, frames] unless ``transpose=True``. ``participant_id`` may
  be written ``sub-01`` or ``01``; the subject id is the folder name (``sub-01``). The TR is
  ``tr=`` or ``RepetitionTime`` of ``dataset_description.json``.
- in-memory Targets (:meth:`Cohort.from_targets`; tests, or targets built elsewhere);
- a synthetic cohort of any size made from a bundled data set's real subjects by a seeded
  perturbation of their SC and BOLD (:func:`synthetic_cohort`; benchmarks).

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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Cohort", "SubjectSpec", "read_covariates", "synthetic_cohort",
           "perturb_subject"]

_DATA_SUFFIXES = {".npy", ".npz", ".csv", ".tsv", ".txt", ".mat", ".dat", ".1d"}


def read_covariates(path_or_frame, id_column: str = "participant_id"):
    """A covariate table as a pandas DataFrame indexed by subject id (as strings).

    ``path_or_frame``: a ``.tsv``/``.csv`` path (BIDS ``participants.tsv``), a DataFrame, or
    a mapping {subject: {covariate: value}}. Numbers stay numbers; ``n/a`` is missing.
    """
    import pandas as pd

    if path_or_frame is None:
        return pd.DataFrame(index=pd.Index([], name="subject", dtype=str))
    if isinstance(path_or_frame, pd.DataFrame):
        df = path_or_frame.copy()
    elif isinstance(path_or_frame, Mapping):
        df = pd.DataFrame.from_dict(dict(path_or_frame), orient="index")
        df.index.name = id_column
        df = df.reset_index()
    else:
        p = Path(path_or_frame)
        if not p.is_file():
            raise FileNotFoundError(f"covariate table {p} does not exist")
        sep = "," if p.suffix.lower() == ".csv" else "\t"
        df = pd.read_csv(p, sep=sep, na_values=["n/a", "NA", ""], dtype={id_column: str})
    if id_column in df.columns:
        df = df.set_index(id_column)
    elif df.index.name != id_column and df.index.name != "subject":
        raise ValueError(f"covariate table has no {id_column!r} column (columns: "
                         f"{list(df.columns)})")
    df.index = df.index.astype(str)
    df.index.name = "subject"
    dup = df.index[df.index.duplicated()].tolist()
    if dup:
        raise ValueError(f"covariate table names subjects more than once: {dup[:5]}")
    return df


@dataclass(frozen=True)
class SubjectSpec:
    """What a worker needs to build one subject's Target (small and picklable).

    kind "bundled": ``source`` = data set name, ``options`` its load options;
    kind "files": ``source`` = SC path, ``bold`` = run paths, ``tr``;
    kind "target": ``target`` = a ready :class:`~nmmfit.data.target.Target`;
    kind "synthetic": ``source`` = bundled data set name, ``options`` its load options,
    ``perturb`` = sorted (key, value) pairs: ``base`` (the real subject), ``seed`` and
    ``index`` (the cohort seed and the subject's index, which seed the perturbation) and the
    :func:`perturb_subject` settings; the data are made on the worker (see
    :func:`synthetic_cohort`).
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
        from nmmfit.data.sc import DEFAULT_SC_NORMALISATION
        from nmmfit.data.target import Target

        name = f"{self.cohort}:{self.subject}"
        if self.kind == "target":
            return self.target
        if self.kind == "bundled":
            from nmmfit import datasets

            ds = datasets.load(self.source, **dict(self.options))
        elif self.kind == "synthetic":
            ds = _synthetic_dataset(self.source, dict(self.options), self.subject,
                                    dict(self.perturb))
        elif self.kind == "files":
            from nmmfit.data.user import from_arrays, load_bold, load_sc

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
            from nmmfit.fit.protocol import _fingerprint

            h.update(json.dumps(_fingerprint(self.target), sort_keys=True).encode())
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
        from nmmfit.population.analysis import networks_for

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
        from nmmfit import datasets
        from nmmfit.data.target import Target

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
        return cls(cname, ids, covariates, specs, list(ds.region_labels),
                   None if ds.networks is None else np.asarray(ds.networks),
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
        """A BIDS-like directory (module docstring). Raises ValueError for a subject without
        SC or BOLD files, and for a participants.tsv naming subjects without a folder."""
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"cohort directory {root} does not exist")
        desc = {}
        if (root / "dataset_description.json").is_file():
            desc = json.loads((root / "dataset_description.json").read_text())
        tr = tr if tr is not None else desc.get("RepetitionTime")
        if tr is None:
            raise ValueError(f"no TR for cohort {root}: pass tr= (--tr) or set RepetitionTime "
                             "in dataset_description.json")
        cname = name or desc.get("Name") or root.name
        dirs = sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith("sub-"))
        if not dirs:
            raise ValueError(f"cohort directory {root} has no sub-* folders")
        cov = None
        if (root / "participants.tsv").is_file():
            cov = read_covariates(root / "participants.tsv")
            cov.index = [i if i.startswith("sub-") else f"sub-{i}" for i in cov.index]
            cov.index.name = "subject"
        if region_labels is None and (root / "regions.tsv").is_file():
            region_labels = [ln.split("\t")[0] for ln in
                             (root / "regions.tsv").read_text().splitlines()[1:] if ln.strip()]
        specs = {}
        for d in dirs:
            files = [f for sub in (d, d / "func", d / "dwi", d / "anat") if sub.is_dir()
                     for f in sorted(sub.iterdir())
                     if f.is_file() and f.suffix.lower() in _DATA_SUFFIXES]
            sc = [f for f in files if re.search(r"(^|[_-])sc([_.-]|$)", f.name.lower())
                  and "bold" not in f.name.lower()]
            bold = [f for f in files if "bold" in f.name.lower()]
            if not sc:
                raise ValueError(f"subject {d.name!r} has no SC file (sc.<ext> or *_sc.<ext>) "
                                 f"in {d}")
            if len(sc) > 1:
                raise ValueError(f"subject {d.name!r} has several SC files: "
                                 f"{[f.name for f in sc]}")
            if not bold:
                raise ValueError(f"subject {d.name!r} has no BOLD file (a name containing "
                                 f"'bold') in {d} or {d / 'func'}")
            specs[d.name] = SubjectSpec(cname, d.name, "files", maps=tuple(maps),
                                        source=str(sc[0]), bold=tuple(str(f) for f in bold),
                                        tr=float(tr), transpose=transpose,
                                        labels=tuple(region_labels) if region_labels else None)
        return cls(cname, list(specs), cov, specs,
                   list(region_labels) if region_labels else None, None, parcellation,
                   tuple(maps))

    @classmethod
    def load(cls, source, covariates=None, **kw) -> Cohort:
        """A bundled data set name or a directory (see the module docstring)."""
        from nmmfit import datasets

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


# ------------------------------------------------------------------ synthetic cohorts

#: Default perturbation settings of :func:`synthetic_cohort` / :func:`perturb_subject`.
SYNTHETIC_DEFAULTS = {"sc_sigma": 0.2, "block_frames": 200, "bold_noise": 0.1}


def perturb_subject(sc, bold_runs, seed, *, sc_sigma: float = 0.2, block_frames: int = 200,
                    bold_noise: float = 0.1):
    """A synthetic subject made from one real subject's SC and BOLD runs, seeded.

    - SC: multiplied entrywise by lognormal noise ``exp(sc_sigma * z - sc_sigma**2 / 2)``
      (mean 1), with one standard normal ``z`` per region pair (the factor matrix is
      symmetric), the diagonal left as it was. A symmetric SC stays symmetric, zeros stay zero
      (same sparsity), entries stay non-negative.
    - BOLD, each run [N, T]: a circular block bootstrap in time, the same frames for every
      region (so the spatial covariance is kept): ceil(T / block_frames) blocks of
      ``block_frames`` consecutive frames (wrapping round the end of the run) start at uniformly
      drawn frames and are concatenated and cut to T frames; then Gaussian noise of standard
      deviation ``bold_noise`` x the region's temporal standard deviation is added.

    ``seed``: an int or a ``numpy.random.SeedSequence``. Returns (sc [N, N], [runs [N, T]]),
    float64; the inputs are not modified.
    """
    rng = np.random.default_rng(seed)
    sc = np.array(sc, dtype=np.float64)
    n = sc.shape[0]
    if sc.ndim != 2 or sc.shape[1] != n:
        raise ValueError(f"sc must be a square [N, N] matrix, got shape {sc.shape}")
    if sc_sigma < 0 or bold_noise < 0 or int(block_frames) < 1:
        raise ValueError(f"need sc_sigma >= 0, bold_noise >= 0, block_frames >= 1; got "
                         f"{sc_sigma}, {bold_noise}, {block_frames}")
    z = np.zeros((n, n))
    iu = np.triu_indices(n, 1)
    z[iu] = rng.standard_normal(iu[0].size)
    z = z + z.T
    factor = np.exp(sc_sigma * z - sc_sigma ** 2 / 2)
    np.fill_diagonal(factor, 1.0)
    out_sc = sc * factor
    runs = []
    for run in bold_runs:
        run = np.asarray(run, dtype=np.float64)
        t = run.shape[1]
        b = min(int(block_frames), t)
        starts = rng.integers(0, t, size=-(-t // b))
        idx = ((starts[:, None] + np.arange(b)[None, :]) % t).ravel()[:t]
        new = run[:, idx]
        if bold_noise > 0:
            sd = run.std(axis=1, keepdims=True)
            new = new + rng.standard_normal(new.shape) * (bold_noise * sd)
        runs.append(new)
    return out_sc, runs


def _perturb_seed(seed: int, index: int, stream: int) -> np.random.SeedSequence:
    """Seed of synthetic subject ``index`` (stream 0: data, 1: covariates)."""
    return np.random.SeedSequence([int(seed), int(index), int(stream)])


def _synthetic_dataset(dataset: str, options: dict, subject: str, perturb: dict):
    """A one-subject Dataset holding synthetic subject ``subject`` (made here)."""
    from dataclasses import replace

    from nmmfit import datasets
    from nmmfit.data.dataset import Subject

    ds = datasets.load(dataset, **options)
    base = ds.subjects[perturb["base"]]
    settings = {k: perturb[k] for k in SYNTHETIC_DEFAULTS}
    sc, runs = perturb_subject(base.sc, base.bold,
                               _perturb_seed(perturb["seed"], perturb["index"], 0), **settings)
    sub = Subject(subject, sc=sc, sc_length=base.sc_length, bold=runs,
                  run_names=list(base.run_names))
    return replace(ds, subjects={subject: sub}, groups={})


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

    from nmmfit import datasets

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
        rng = np.random.default_rng(_perturb_seed(seed, i, 1))
        cov[sid] = {"age": round(float(rng.uniform(lo, hi)), 1),
                    "sex": "F" if rng.random() < 0.5 else "M", "source_subject": src}
        ids.append(sid)
    return Cohort(name, ids, cov, specs, list(ds.region_labels),
                  None if ds.networks is None else np.asarray(ds.networks), ds.parcellation,
                  tuple(maps))
