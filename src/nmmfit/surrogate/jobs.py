"""Planning the generation runs: which searches to run, per target, kind and seed.

Two kinds of generation run per target, as in DELSSOME (Zeng et al. 2026; ``docs/surrogate.md``):

- ``"cmaes"``: Euler CMA-ES trajectories (lambda 100), which sample densely where fits go;
- ``"random"``: uniform samples of the feasible coefficient box, which teach the classifier
  the invalid regions and the predictor the bad costs.

A :class:`GenJob` names one such run; its :attr:`~GenJob.run_id` is the run's id in the
store, and every generation run's stored config carries ``"generator": GENERATOR`` so that
the training table (:mod:`nmmfit.surrogate.table`) and the compact file
(:mod:`nmmfit.surrogate.compact`) can tell generation runs from fits.

SC recipe: every target of a generation store is built with one SC recipe
(:func:`nmmfit.data.target.normalise_sc`). A run's config records it as
``"sc_normalisation"`` when it is not :data:`~nmmfit.data.sc.LEGACY_SC_RECIPE`; a run without
the key is a legacy-recipe run (the shipped tables predate the key, and legacy runs keep their
config hashes so that they still resume). :func:`run_sc_recipe` reads it,
:func:`store_sc_recipe` gives a store's one recipe and refuses a store that mixes recipes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nmmfit.data.sc import LEGACY_SC_RECIPE
from nmmfit.surrogate.targets import ROLES

__all__ = ["GENERATOR", "KINDS", "GenJob", "plan_jobs", "run_sc_recipe", "recipe_config",
           "store_sc_recipe", "check_store_recipe"]

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



def run_sc_recipe(config: dict) -> str:
    """SC recipe of a generation run from its stored config (no ``"sc_normalisation"`` key:
    the legacy recipe)."""
    return str(config.get("sc_normalisation") or LEGACY_SC_RECIPE)


def recipe_config(recipe: str) -> dict:
    """The config entries that record ``recipe`` in a generation run: none for the legacy
    recipe (its runs keep the config hashes they always had), else ``{"sc_normalisation":
    recipe}`` (which also gives the run another config hash)."""
    return {} if recipe == LEGACY_SC_RECIPE else {"sc_normalisation": str(recipe)}


def store_sc_recipe(store, roles: Sequence[str] | None = None) -> str | None:
    """The SC recipe of the generation runs in ``store`` (an open
    :class:`~nmmfit.fit.store.Store`), restricted to ``roles`` when given; None when it has
    none. ValueError naming the store and the recipes when its runs mix recipes."""
    recipes: dict[str, list[str]] = {}
    for rid in store.run_ids():
        cfg = store.run_config(rid) or {}
        if cfg.get("generator") != GENERATOR:
            continue
        if roles is not None and cfg.get("role") not in roles:
            continue
        recipes.setdefault(run_sc_recipe(cfg), []).append(rid)
    if len(recipes) > 1:
        detail = "; ".join(f"{r!r}: {len(ids)} runs (e.g. {ids[0]!r})"
                           for r, ids in sorted(recipes.items()))
        raise ValueError(f"generation store {store.path} mixes SC recipes ({detail}); a "
                         "surrogate is trained on targets of one recipe: keep one store per "
                         "recipe")
    return next(iter(recipes), None)


def check_store_recipe(store, recipe: str, what: str) -> None:
    """ValueError naming the store file and both recipes when the generation runs of
    ``store`` (an open :class:`~nmmfit.fit.store.Store`) were made with another SC recipe
    than ``recipe``; ``what`` names what was to be added ("targets built with", ...)."""
    have = store_sc_recipe(store)
    if have is not None and have != recipe:
        raise ValueError(f"generation store {store.path} holds runs of SC recipe {have!r}; "
                         f"it cannot be extended with {what} SC recipe {recipe!r} (a "
                         "surrogate is trained on one recipe): use one store per recipe (the "
                         "default --store of `nmmfit surrogate generate --sc-normalisation "
                         "RECIPE` names one per recipe)")
