"""Spot-checks: re-score a fast evaluator's best candidates of each batch by simulation.

A surrogate CMA-ES can exploit the classifier's errors: near the edge of the r_E gate the
classifier calls some candidates valid that the simulation rejects, and the optimiser drifts
towards them because their predicted cost is low. :class:`SpotCheckEvaluator` wraps a
surrogate evaluator and a simulating one (normally the training-setting
:class:`~nmmfit.fit.evaluator.EulerEvaluator`): every batch is scored by the surrogate, then the
``n_check`` candidates the optimiser would weight most (lowest predicted total among those
called valid) are simulated, and their simulated terms, validity and E/I replace the
surrogate's. The optimiser is unchanged; it just sees true scores where they matter most.

Cost: ``n_check`` simulations per epoch (instead of ``popsize``). ``meta`` of each evaluation
records which rows were checked, their predicted and simulated totals, and how many the
classifier had wrongly called valid (``n_false_valid``); ``counts`` keeps running totals.
"""

from __future__ import annotations

import time

import numpy as np

from nmmfit.fit.evaluator import EulerEvaluator, Evaluation, Evaluator
from nmmfit.fit.presets import get_preset, sim_config_for

__all__ = ["SpotCheckEvaluator"]


class SpotCheckEvaluator(Evaluator):
    """Surrogate scores, with the ``n_check`` best-scored candidates re-scored by simulation.

    Parameters
    ----------
    surrogate : the fast evaluator (e.g. :class:`~nmmfit.surrogate.evaluator.SurrogateEvaluator`).
    simulator : the simulating evaluator; same target and parametrisation.
    n_check : candidates simulated per batch (>= 1). When fewer are called valid, the
        remaining checks go to the invalid candidates with the highest validity probability
        (``meta["p_valid"]`` of the surrogate), or the lowest predicted total without one.
    """

    name = "surrogate+spotcheck"

    def __init__(self, surrogate: Evaluator, simulator: Evaluator, n_check: int = 2) -> None:
        if not isinstance(n_check, int | np.integer) or n_check < 1:
            raise ValueError(f"n_check must be a positive int, got {n_check!r}")
        if simulator.parametrisation.n_regions != surrogate.parametrisation.n_regions:
            raise ValueError(
                f"the simulator has {simulator.parametrisation.n_regions} regions but the "
                f"surrogate {surrogate.parametrisation.n_regions}")
        if getattr(simulator.target, "name", None) != getattr(surrogate.target, "name", None):
            raise ValueError(f"the simulator's target {simulator.target.name!r} is not the "
                             f"surrogate's {surrogate.target.name!r}")
        self.surrogate = surrogate
        self.simulator = simulator
        self.n_check = int(n_check)
        self.target = surrogate.target
        self.parametrisation = surrogate.parametrisation
        #: running totals in this process: batches, candidates checked, false valid caught
        self.counts = {"batches": 0, "checked": 0, "false_valid": 0}

    @classmethod
    def at_training_setting(cls, surrogate: Evaluator, preset, n_check: int = 2, *,
                            engine: str = "numba", threads: int | None = None
                            ) -> SpotCheckEvaluator:
        """Spot-checks simulated as the Euler search of ``preset`` would simulate them
        (its training step, run length and duplicates), for ``surrogate``'s target."""
        pre = get_preset(preset)
        tgt = surrogate.target
        euler = EulerEvaluator(tgt, surrogate.parametrisation,
                               config=sim_config_for(tgt, pre, "train"),
                               n_dup=pre.n_dup_train, engine=engine, threads=threads)
        return cls(surrogate, euler, n_check=n_check)

    def describe(self) -> dict:
        """Both evaluators' settings and ``n_check``."""
        return {"evaluator": self.name, "engine": "surrogate", "n_check": self.n_check,
                "surrogate": self.surrogate.describe(), "simulator": self.simulator.describe()}

    def checked_rows(self, ev: Evaluation) -> np.ndarray:
        """Row indices to simulate: lowest predicted totals among valid rows, then the most
        probably valid of the rest; at most ``n_check``, shape [k] (int64)."""
        order_valid = np.flatnonzero(ev.valid)[np.argsort(ev.total[ev.valid], kind="stable")]
        rows = list(order_valid[:self.n_check])
        if len(rows) < self.n_check:
            rest = np.flatnonzero(~ev.valid)
            p = ev.meta.get("p_valid")
            key = -np.asarray(p)[rest] if p is not None else ev.total[rest]
            rows += list(rest[np.argsort(key, kind="stable")][:self.n_check - len(rows)])
        return np.asarray(rows, dtype=np.int64)

    def evaluate(self, x: np.ndarray, seed: int) -> Evaluation:
        """Surrogate scores for ``x`` [P, dim], simulated scores for the checked rows."""
        t0 = time.perf_counter()
        ev = self.surrogate.evaluate(x, seed)
        rows = self.checked_rows(ev)
        sim = self.simulator.evaluate(np.asarray(x)[rows], seed)
        predicted = ev.total[rows].copy()
        was_valid = ev.valid[rows].copy()
        terms, total, valid = ev.terms.copy(), ev.total.copy(), ev.valid.copy()
        n_valid, ei_mean, ei_map = ev.n_valid.copy(), ev.ei_mean.copy(), ev.ei_map.copy()
        terms[rows], total[rows], valid[rows] = sim.terms, sim.total, sim.valid
        n_valid[rows], ei_mean[rows], ei_map[rows] = sim.n_valid, sim.ei_mean, sim.ei_map
        n_false = int((was_valid & ~sim.valid).sum())
        self.counts["batches"] += 1
        self.counts["checked"] += int(rows.shape[0])
        self.counts["false_valid"] += n_false
        meta = {**ev.meta, "engine": "surrogate+spotcheck", "checked": rows.tolist(),
                "checked_predicted_total": predicted.tolist(),
                "checked_simulated_total": sim.total.tolist(),
                "n_false_valid": n_false,
                "surrogate_s": ev.wall_s, "simulation_s": sim.wall_s}
        return Evaluation(terms=terms, total=total, valid=valid, n_valid=n_valid,
                          ei_mean=ei_mean, ei_map=ei_map, wall_s=time.perf_counter() - t0,
                          meta=meta)
