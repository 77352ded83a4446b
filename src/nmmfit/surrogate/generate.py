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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nmmfit.fit.cmaes import CMAESConfig, run_search
from nmmfit.fit.evaluator import EulerEvaluator
from nmmfit.fit.parametrise import Parametrisation
from nmmfit.fit.presets import get_preset, sim_config_for
from nmmfit.fit.store import Store
from nmmfit.surrogate.jobs import GENERATOR, GenJob

__all__ = ["run_jobs", "DEFAULT_GEN_STORE"]

#: Default store of generated evaluations (one per dataset).
DEFAULT_GEN_STORE = "runs/surrogate_{dataset}.db"


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
    """
    by_name = {t.name: (t, role) for role, ts in targets.items() for t in ts}
    pre = get_preset(preset)
    own = not isinstance(store, Store)
    st = Store(store) if own else store
    t_start = time.perf_counter()
    done = {"evaluations_written": 0, "jobs_finished": 0, "stopped_early": False}
    try:
        for job in jobs:
            if job.target not in by_name:
                raise ValueError(f"job target {job.target!r} is not among the targets "
                                 f"{sorted(by_name)[:6]}...")
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
                      "search": {**cfg.as_dict(), "n_epochs": None}}
            st.ensure_run(job.run_id, config, dataset=str(tgt.meta.get("dataset", "")),
                          target=tgt.name, kind=job.kind, seed=job.seed, engine=engine)
            if st.get_artefact(job.run_id, "target") is None:
                st.put_artefact(job.run_id, "target", _target_arrays(tgt),
                                info={"name": tgt.name, "role": role, "maps": list(tgt.maps),
                                      "tr": tgt.tr, "n_frames": tgt.n_frames,
                                      "fcd_spec": tgt.fcd_spec.to_dict()})
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

