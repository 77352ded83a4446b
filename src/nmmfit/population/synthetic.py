"""Synthetic subjects' data, made from a bundled data set's real subjects by a seeded
perturbation of their SC and BOLD (benchmarks of population-scale fitting).

:func:`perturb_subject` makes one synthetic subject's data; :func:`synthetic_dataset` makes
it from a subject's spec, on the worker that fits it (called by
:meth:`~nmmfit.population.cohort.SubjectSpec.build_target`). The cohort of such subjects is
laid out by :func:`nmmfit.population.cohort.synthetic_cohort`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nmmfit import datasets
from nmmfit.data.dataset import Subject

__all__ = ["SYNTHETIC_DEFAULTS", "perturb_subject", "perturb_seed", "synthetic_dataset"]

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


def perturb_seed(seed: int, index: int, stream: int) -> np.random.SeedSequence:
    """Seed of synthetic subject ``index`` (stream 0: data, 1: covariates)."""
    return np.random.SeedSequence([int(seed), int(index), int(stream)])


def synthetic_dataset(dataset: str, options: dict, subject: str, perturb: dict):
    """A one-subject Dataset holding synthetic subject ``subject``, made here from the spec
    of :func:`synthetic_cohort`: the bundled data set ``dataset`` loaded with ``options``, and
    ``perturb`` = {base, seed, index and the :data:`SYNTHETIC_DEFAULTS` settings}."""
    ds = datasets.load(dataset, **options)
    base = ds.subjects[perturb["base"]]
    settings = {k: perturb[k] for k in SYNTHETIC_DEFAULTS}
    sc, runs = perturb_subject(base.sc, base.bold,
                               perturb_seed(perturb["seed"], perturb["index"], 0), **settings)
    sub = Subject(subject, sc=sc, sc_length=base.sc_length, bold=runs,
                  run_names=list(base.run_names))
    return replace(ds, subjects={subject: sub}, groups={})
