"""Evaluators: what the optimiser calls to score a batch of candidate vectors.

The CMA-ES driver only knows the :class:`Evaluator` interface: a batch of search vectors
x [P, dim] and an explicit integer seed go in; an :class:`Evaluation` (cost terms [P, 3], total,
validity, E/I summary and timing) comes out. :class:`EulerEvaluator` scores by simulation
(:func:`nmmfit.sim.simulate` + :func:`nmmfit.stats.fc_fcd_cost`); a surrogate evaluator
implements the same two members (``evaluate`` and ``describe``) and drops in unchanged.

Validity and invalid costs: a candidate is valid when at least one of its noise duplicates is
valid (finite and, with the rate gate on, every region's mean r_E in [2.7, 3.3] Hz) and its
cost is finite. An invalid candidate gets :data:`nmmfit.stats.cost.SENTINEL_COST` in every
term (total 15 with unit weights), so it ranks last; it never raises.

E/I: for each candidate, the regional E/I ratio (time-averaged S_E / time-averaged S_I) is
averaged over its valid duplicates (DELSSOME individual level); NaN when none is valid.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from nmmfit.fit.parametrise import Parametrisation
from nmmfit.sim import SEARCH, SimConfig, simulate
from nmmfit.stats.cost import SENTINEL_COST, TERM_NAMES, fc_fcd_cost

__all__ = ["Evaluation", "Evaluator", "EulerEvaluator", "check_target_regions"]


@dataclass
class Evaluation:
    """Scores of P candidates.

    Attributes
    ----------
    terms : [P, 3] (fc_corr, fc_l1, fcd_ks); :data:`SENTINEL_COST` where invalid.
    total : [P] weighted sum of the terms.
    valid : [P] bool.
    n_valid : [P] int, valid noise duplicates behind each cost (surrogates: 0 or 1).
    ei_mean : [P] mean over regions of the regional E/I ratio (NaN when unknown).
    ei_map : [P, N] regional E/I ratio (NaN when unknown).
    wall_s : seconds spent in ``evaluate``.
    meta : evaluator-specific details (engine, seed, sub-timings).
    """

    terms: np.ndarray
    total: np.ndarray
    valid: np.ndarray
    n_valid: np.ndarray
    ei_mean: np.ndarray
    ei_map: np.ndarray
    wall_s: float
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.total.shape[0])

    def term(self, name: str) -> np.ndarray:
        """[P] values of one term by name ("fc_corr", "fc_l1", "fcd_ks")."""
        return self.terms[:, TERM_NAMES.index(name)]


def check_target_regions(target, n_regions: int, what: str = "the parametrisation") -> None:
    """Raise ``ValueError`` when ``target`` (SC, FC, maps) does not have ``n_regions`` regions."""
    n_sc = int(np.shape(target.sc)[0])
    n_fc = int(np.shape(target.fc)[0])
    if n_sc != n_regions or n_fc != n_regions:
        raise ValueError(
            f"target {target.name!r} has SC {np.shape(target.sc)} and FC {np.shape(target.fc)}, "
            f"but {what} has {n_regions} regions")


class Evaluator(ABC):
    """Scores batches of search vectors against one target.

    Implementations set ``target``, ``parametrisation`` and ``name`` and implement
    :meth:`evaluate` and :meth:`describe`.
    """

    name: str = "evaluator"
    target: object
    parametrisation: Parametrisation

    @abstractmethod
    def evaluate(self, x: np.ndarray, seed: int) -> Evaluation:
        """Score candidates x [P, dim] (search vectors); ``seed`` fixes any randomness."""

    @abstractmethod
    def describe(self) -> dict:
        """JSON-ready settings that change the scores (they enter the run's config hash)."""


def sim_bar(label: str | None, total: int):
    """A tqdm progress bar counting ``total`` simulations under ``label``; None for no label
    (no bar)."""
    if label is None:
        return None
    from tqdm.auto import tqdm  # only when a bar is asked for

    return tqdm(total=int(total), desc=label, unit="sim")


class EulerEvaluator(Evaluator):
    """Scores candidates by Euler simulation of the pFIC model and the FC+FCD cost.

    Parameters
    ----------
    target : :class:`~nmmfit.data.target.Target`; its SC is simulated, its FC/FCD are the
        reference.
    parametrisation : maps search vectors to regional parameters; its region count must
        match the target's.
    config : integration settings (dt, durations, rate gate); default :data:`nmmfit.sim.SEARCH`.
    n_dup : noise duplicates per candidate (their FC and FCD histograms are averaged).
    engine, threads : passed to :func:`nmmfit.sim.simulate`.
    weights : (w_corr, w_l1, w_ks) of the total.
    chunk : candidates simulated per call (bounds the BOLD memory: chunk x n_dup x N x T x 4 B).
    """

    name = "euler"

    def __init__(self, target, parametrisation: Parametrisation, *, config: SimConfig = SEARCH,
                 n_dup: int = 3, engine: str = "numba", threads: int | None = None,
                 weights=(1.0, 1.0, 1.0), chunk: int = 100) -> None:
        check_target_regions(target, parametrisation.n_regions)
        if not isinstance(n_dup, int | np.integer) or n_dup < 1:
            raise ValueError(f"n_dup must be a positive int, got {n_dup!r}")
        if abs(config.tr - target.tr) > 1e-9:
            raise ValueError(f"config.tr = {config.tr} s differs from target {target.name!r} "
                             f"TR = {target.tr} s")
        self.target = target
        self.parametrisation = parametrisation
        self.config = config
        self.n_dup = int(n_dup)
        self.engine = engine
        self.threads = threads
        self.weights = tuple(float(w) for w in weights)
        self.chunk = max(1, int(chunk))

    def describe(self) -> dict:
        """Settings that change the scores."""
        return {"evaluator": self.name, "target": self.target.name, "n_dup": self.n_dup,
                "engine": self.engine, "weights": list(self.weights),
                "sim": self.config.as_dict()}

    def evaluate(self, x: np.ndarray, seed: int, *, progress: str | None = None) -> Evaluation:
        """Simulate each candidate with ``n_dup`` duplicates and score it.

        Candidate p of chunk c gets the noise of simulation (p, d) of
        ``simulate(..., seed=seed + c)``, so results do not depend on ``threads``.
        ``progress``: a label to show a progress bar (in simulations) under; None: none.
        """
        t0 = time.perf_counter()
        bar = sim_bar(progress, len(np.atleast_2d(x)) * self.n_dup)
        reg = self.parametrisation.expand(x)
        p_all, n = len(reg), self.parametrisation.n_regions
        terms = np.full((p_all, 3), SENTINEL_COST)
        total = np.full(p_all, SENTINEL_COST * sum(self.weights))
        valid = np.zeros(p_all, dtype=bool)
        n_valid = np.zeros(p_all, dtype=np.int64)
        ei_map = np.full((p_all, n), np.nan)
        sim_s = cost_s = 0.0
        for c, start in enumerate(range(0, p_all, self.chunk)):
            sel = slice(start, min(start + self.chunk, p_all))
            part = reg.take(sel)
            t1 = time.perf_counter()
            res = simulate(self.target.sc, part.wEE, part.wEI, part.G, part.sigma,
                           config=self.config, n_dup=self.n_dup, seed=int(seed) + c,
                           engine=self.engine, threads=self.threads)
            t2 = time.perf_counter()
            # shorter simulated runs than the target's: the normalised CDFs still compare
            ct = fc_fcd_cost(res.bold, self.target, valid=res.valid, weights=self.weights,
                             threads=self.threads, warn_frames=False)
            t3 = time.perf_counter()
            sim_s += t2 - t1
            cost_s += t3 - t2
            terms[sel] = np.stack([ct.fc_corr, ct.fc_l1, ct.fcd_ks], axis=1)
            total[sel] = ct.total
            valid[sel] = ct.valid
            n_valid[sel] = ct.n_valid if ct.n_valid is not None else ct.valid.astype(int)
            with np.errstate(invalid="ignore"):
                ei = np.where(res.valid[..., None], res.ei_ratio, np.nan)  # [B, D, N]
                cnt = res.valid.sum(axis=1)[:, None]
                ei_m = np.nansum(ei, axis=1) / np.where(cnt > 0, cnt, np.nan)
            ei_map[sel] = np.where(ct.valid[:, None], ei_m, np.nan)
            if bar is not None:
                bar.update(res.valid.size)
            del res
        if bar is not None:
            bar.close()
        with np.errstate(invalid="ignore"):
            ei_mean = np.where(valid, np.nanmean(np.where(valid[:, None], ei_map, 0.0), axis=1),
                               np.nan)
        wall = time.perf_counter() - t0
        return Evaluation(terms=terms, total=total, valid=valid, n_valid=n_valid,
                          ei_mean=ei_mean, ei_map=ei_map, wall_s=wall,
                          meta={"engine": self.engine, "seed": int(seed), "n_dup": self.n_dup,
                                "sim_s": sim_s, "cost_s": cost_s, "n_sims": p_all * self.n_dup})
