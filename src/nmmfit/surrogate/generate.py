"""Generating the surrogates' training data with the project's own Euler pipeline (issue 4,
section 1): the driver that runs planned generation jobs into a store.

Every labelled evaluation is a row of the fit's SQLite store (:mod:`nmmfit.fit.store`), written
by the same search driver the fit uses (:func:`nmmfit.fit.cmaes.run_search`) with the Euler
evaluator, so generation is resumable (a killed job continues from its last complete epoch)
and appends across runs and machines (:mod:`nmmfit.surrogate.compact`).

The pieces around the driver (:func:`run_jobs`): the targets and their split by subject
(:mod:`nmmfit.surrogate.targets`), the jobs per target, kind and seed
(:mod:`nmmfit.surrogate.jobs`), and the training table read back from the store
(:mod:`nmmfit.surrogate.table`). Each generation run stores its target (SC, FC, FCD PDF,
maps) as an artefact, so the table needs nothing but the store.

The simulation settings are a preset's training settings (default ``"quick"``: 216 s runs,
one noise duplicate); a surrogate predicts the costs of *that* setting and records it.

One store holds the targets of one SC recipe (the targets' ``sc_normalisation``): each run
records it (:func:`~nmmfit.surrogate.jobs.recipe_config`, and in its target artefact), and
:func:`run_jobs` refuses to extend a store with targets of another recipe.
:func:`default_store` names a store per data set, preset and recipe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nmmfit.data.sc import LEGACY_SC_RECIPE
from nmmfit.fit.cmaes import CMAESConfig, run_search
from nmmfit.fit.evaluator import EulerEvaluator
from nmmfit.fit.parametrise import Parametrisation
from nmmfit.fit.presets import get_preset, sim_config_for
from nmmfit.fit.store import Store
from nmmfit.surrogate.jobs import GENERATOR, GenJob, check_store_recipe, recipe_config

__all__ = ["run_jobs", "DEFAULT_GEN_STORE", "default_store"]

#: Default store of generated evaluations of the quick preset and the legacy SC recipe (one
#: per dataset); :func:`default_store` names the others.
DEFAULT_GEN_STORE = "runs/surrogate_{dataset}.db"


def default_store(dataset: str, preset: str = "quick",
                  sc_normalisation: str = LEGACY_SC_RECIPE) -> str:
    """Default generation store: :data:`DEFAULT_GEN_STORE` for the quick preset and the legacy
    SC recipe (the store the shipped tables were generated in), else
    ``runs/surrogate_<dataset>_<preset>_<recipe>.db``, so runs of other settings never
    share a store with it."""
    if preset == "quick" and sc_normalisation == LEGACY_SC_RECIPE:
        return DEFAULT_GEN_STORE.format(dataset=dataset)
    return f"runs/surrogate_{dataset}_{preset}_{sc_normalisation}.db"


def _target_arrays(tgt) -> dict[str, np.ndarray]:
    arrs = {"sc": tgt.sc, "fc": tgt.fc, "fcd_pdf": tgt.fcd_pdf, "fcd_cdf": tgt.fcd_cdf}
    arrs.update({f"map_{k}": np.asarray(v) for k, v in enumerate(tgt.maps.values())})
    return arrs


def run_jobs(jobs: Sequence[GenJob], targets: dict[str, list], store: str | Path | Store,
             preset: str = "quick", engine: str = "numba", threads: int | None = None,
             max_seconds: float | None = None,
             callback: Callable[[GenJob, int, int], None] | None = None) -> dict:
    """Run (or resume) generation jobs into ``store``; returns counts and timings.

    Each job is a :func:`~nmmfit.fit.cmaes.run_search` over the target's map
    parametrisation, scored by :class:`~nmmfit.fit.evaluator.EulerEvaluator` with the
    preset's training simulation settings and duplicates. ``max_seconds`` stops between
    epochs once exceeded, after at least one epoch (re-running continues).
    ``callback(job, epochs_done, n_epochs)`` is called after each epoch.

    The jobs' targets must share one SC recipe (``Target.sc_normalisation``), the recipe of
    the runs already in ``store`` if it has any (else ValueError, before anything is run).
    """
    by_name = {t.name: (t, role) for role, ts in targets.items() for t in ts}
    for job in jobs:
        if job.target not in by_name:
            raise ValueError(f"job target {job.target!r} is not among the targets "
                             f"{sorted(by_name)[:6]}...")
    recipes = sorted({by_name[j.target][0].sc_normalisation for j in jobs})
    if len(recipes) > 1:
        raise ValueError(f"the jobs' targets are built with several SC recipes {recipes}; "
                         "one generation store holds one recipe")
    pre = get_preset(preset)
    own = not isinstance(store, Store)
    st = Store(store) if own else store
    t_start = time.perf_counter()
    done = {"evaluations_written": 0, "jobs_finished": 0, "stopped_early": False}
    try:
        if recipes:
            check_store_recipe(st, recipes[0], "targets built with")
        for job in jobs:
            tgt, role = by_name[job.target]
            if st.last_epoch(job.run_id, "train") >= job.n_epochs - 1:
                done["jobs_finished"] += 1
                continue
            if (max_seconds is not None and done["evaluations_written"] > 0
                    and time.perf_counter() - t_start > max_seconds):
                done["stopped_early"] = True
                break
            param = Parametrisation.from_target(tgt, list(tgt.maps))
            ev = EulerEvaluator(tgt, param, config=sim_config_for(tgt, pre, "train"),
                                n_dup=pre.n_dup_train, engine=engine, threads=threads)
            cfg = CMAESConfig(popsize=job.popsize, mu=max(1, job.popsize // 10),
                              sigma0=pre.search.sigma0, n_epochs=job.n_epochs,
                              restarts=3 if job.kind == "cmaes" else 0)
            config = {"generator": GENERATOR, "role": role,
                      "kind": job.kind, "seed": job.seed, "preset": pre.name,
                      "evaluator": ev.describe(), "parametrisation": param.describe(),
                      "search": {**cfg.as_dict(), "n_epochs": None},
                      **recipe_config(tgt.sc_normalisation)}
            st.ensure_run(job.run_id, config, dataset=str(tgt.meta.get("dataset", "")),
                          target=tgt.name, kind=job.kind, seed=job.seed, engine=engine)
            if st.get_artefact(job.run_id, "target") is None:
                st.put_artefact(job.run_id, "target", _target_arrays(tgt),
                                info={"name": tgt.name, "role": role, "maps": list(tgt.maps),
                                      "tr": tgt.tr, "n_frames": tgt.n_frames,
                                      "fcd_spec": tgt.fcd_spec.to_dict(),
                                      "sc_normalisation": tgt.sc_normalisation})
            before = st.count(job.run_id, "train")

            def _cb(summ, _job=job):
                if callback is not None:
                    callback(_job, summ.epoch + 1, _job.n_epochs)
                if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
                    raise _Budget

            try:
                run_search(ev, cfg, seed=job.seed, store=st, run_id=job.run_id, kind=job.kind,
                           callback=_cb)
                done["jobs_finished"] += 1
            except _Budget:
                done["stopped_early"] = True
            done["evaluations_written"] += st.count(job.run_id, "train") - before
            if done["stopped_early"]:
                break
    finally:
        if own:
            st.close()
    done["wall_s"] = time.perf_counter() - t_start
    return done


class _Budget(Exception):
    """Internal: the time budget of :func:`run_jobs` ran out (between epochs)."""

