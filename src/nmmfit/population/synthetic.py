"""Synthetic cohorts of any size, made from a bundled data set's real subjects by a seeded
perturbation of their SC and BOLD (benchmarks of population-scale fitting).

:func:`perturb_subject` makes one synthetic subject's data; :func:`synthetic_cohort` lays out a
:class:`~nmmfit.population.cohort.Cohort` whose subjects are made lazily, each on its worker
(:func:`synthetic_dataset`, called by :meth:`~nmmfit.population.cohort.SubjectSpec.build_target`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from nmmfit.population.cohort import Cohort, SubjectSpec

__all__ = ["SYNTHETIC_DEFAULTS", "perturb_subject", "synthetic_dataset", "synthetic_cohort"]

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


def synthetic_dataset(dataset: str, options: dict, subject: str, perturb: dict):
    """A one-subject Dataset holding synthetic subject ``subject``, made here from the spec
    of :func:`synthetic_cohort`: the bundled data set ``dataset`` loaded with ``options``, and
    ``perturb`` = {base, seed, index and the :data:`SYNTHETIC_DEFAULTS` settings}."""
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
