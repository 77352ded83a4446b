"""Planning the generation runs: which searches to run, per target, kind and seed.

Two kinds of generation run per target, as in DELSSOME (Zeng et al. 2026; ``docs/surrogate.md``):

- ``"cmaes"``: Euler CMA-ES trajectories (lambda 100), which sample densely where fits go;
- ``"random"``: uniform samples of the feasible coefficient box, which teach the classifier
  the invalid regions and the predictor the bad costs.

A :class:`GenJob` names one such run; its :attr:`~GenJob.run_id` is the run's id in the
store, and every generation run's stored config carries ``"generator": GENERATOR`` so that
the training table (:mod:`nmmfit.surrogate.table`) and the compact file
(:mod:`nmmfit.surrogate.compact`) can tell generation runs from fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nmmfit.surrogate.targets import ROLES

__all__ = ["GENERATOR", "KINDS", "GenJob", "plan_jobs"]

#: The ``"generator"`` entry of every generation run's stored config.
GENERATOR = "nmmfit.surrogate.generate"

#: The kinds of generation run.
KINDS = ("cmaes", "random")


@dataclass(frozen=True)
class GenJob:
    """One generation run: a search of ``n_epochs`` x ``popsize`` Euler evaluations.

    role : "train", "val" or "test" (the surrogate's split); kind : "cmaes" or "random".
    """

    target: str
    role: str
    kind: str
    seed: int
    n_epochs: int
    popsize: int = 100

    @property
    def run_id(self) -> str:
        """Store run id (unique per target, kind and seed)."""
        return f"gen:{self.target}:{self.kind}:s{self.seed}"


def plan_jobs(targets: dict[str, list], epochs: dict[str, int] | None = None,
              seeds: Sequence[int] = (0,), popsize: int = 100,
              kinds: Sequence[str] = KINDS,
              only: Sequence[str] | None = None) -> list[GenJob]:
    """Jobs for every target: per seed one run of each kind (by default a CMA-ES run and a
    random-box run).

    ``epochs`` maps role -> epochs per run (default train 30, val 10, test 10), so each
    target gets ``len(kinds) x len(seeds) x epochs x popsize`` evaluations. ``kinds``
    restricts the run kinds, ``only`` the targets (by name). Jobs are ordered so that a
    budget cut short still covers every target: seed-major, then role, then target.
    """
    bad = sorted(set(kinds) - set(KINDS))
    if bad or not kinds:
        raise ValueError(f"kinds must be some of {KINDS}, got {list(kinds)}")
    names = [t.name for r in ROLES for t in targets.get(r, [])]
    missing = sorted(set(only or ()) - set(names))
    if missing:
        raise ValueError(f"unknown target(s) {missing}; this data set's targets: {names}")
    ep = {"train": 30, "val": 10, "test": 10, **(epochs or {})}
    jobs = []
    for seed in seeds:
        for role in ROLES:
            for tgt in targets.get(role, []):
                if only is not None and tgt.name not in only:
                    continue
                for kind in kinds:
                    jobs.append(GenJob(tgt.name, role, kind, int(seed), int(ep[role]), popsize))
    return jobs

