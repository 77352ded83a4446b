"""Training data for the surrogates, from the project's own Euler pipeline (issue 4, section 1).

Every labelled evaluation is a row of the fit's SQLite store (:mod:`nmmfit.fit.store`), written
by the same search driver the fit uses (:func:`nmmfit.fit.cmaes.run_search`) with the Euler
evaluator, so generation is resumable (a killed job continues from its last complete epoch)
and appends across runs and machines (copy the rows of one store into another with
:func:`merge_stores`).

Two kinds of generation run per target, as in DELSSOME (``reference/delssome.md`` 5.5):

- ``"cmaes"``: Euler CMA-ES trajectories (lambda 100), which sample densely where fits go;
- ``"random"``: uniform samples of the feasible coefficient box, which teach the classifier
  the invalid regions and the predictor the bad costs.

Targets (:func:`surrogate_targets`) are split **by subject**: no subject of a test target is
in a training target. Each generation run stores its target (SC, FC, FCD PDF, maps) as an
artefact, so :func:`build_table` rebuilds the training table from the store alone.

The simulation settings are a preset's training settings (default ``"quick"``: 216 s runs,
one noise duplicate); a surrogate predicts the costs of *that* setting and records it.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nmmfit.data.sc import LEGACY_SC_RECIPE
from nmmfit.fit.cmaes import CMAESConfig, run_search
from nmmfit.fit.evaluator import EulerEvaluator
from nmmfit.fit.parametrise import Parametrisation
from nmmfit.fit.protocol import get_preset, sim_config_for
from nmmfit.fit.store import Store

__all__ = ["GENERATION_SC_RECIPE", "GenJob", "surrogate_targets", "plan_jobs", "run_jobs",
           "build_table", "training_targets", "compact_run_ids", "table_hash", "merge_stores",
           "export_compact", "import_compact", "DEFAULT_GEN_STORE", "ROLES"]

#: Default store of generated evaluations (one per dataset).
DEFAULT_GEN_STORE = "runs/surrogate_{dataset}.db"

#: Target roles of the surrogate's own split.
ROLES = ("train", "val", "test")

_MAPS = {"hcp_schaefer100": ("myelin", "fc_gradient")}

#: SC recipe (:func:`nmmfit.data.sc.normalise_sc`) of every generation target: the
#: recipe the shipped surrogate tables and models were built for. The models record it
#: (``meta["sc_normalisation"]``) and the surrogate evaluator refuses a target built with
#: another one.
GENERATION_SC_RECIPE = LEGACY_SC_RECIPE


def _single_run(ds, sid: str, run: int, maps, name: str):
    """Target of one BOLD run of one subject."""
    from nmmfit.data.target import Target

    sub = ds.subjects[sid]
    one = replace(ds, subjects={sid: replace(sub, bold=[sub.bold[run]])})
    tgt = Target.from_dataset(one, subjects=[sid], maps=maps,
                              sc_normalisation=GENERATION_SC_RECIPE, name=name)
    tgt.meta["runs"] = [int(run)]
    return tgt


def surrogate_targets(dataset: str, n_boot: int | None = 6) -> dict[str, list]:
    """Targets of the surrogate's train / val / test split for a bundled dataset.

    - ``hcp_schaefer100`` (the paper's group-level setting): train = group train706, subject
      100206 (each run and both runs); val = subject 100307 (each run and both); test = group
      test303. The cubnm bundle does not list the groups' participants, so whether 100206 and
      100307 belong to train706 or test303 cannot be checked (documented limitation).
    - ``hcp_aal`` (7 individuals, AAL2): subjects sorted by id; test = the last 2, val = the
      one before, train = the first 4: each subject (both runs), each single run (when a
      subject has several), and ``n_boot`` distinct bootstrap groups of 2-3 training
      subjects (default 6, the shipped table's; None: every distinct group, 10 for 4 training
      subjects). The groups are drawn in one seeded order, so a larger ``n_boot`` keeps the
      first groups and their names and adds new ones.
    - ``gw_aal`` (transfer cohort): every subject, role "test" only.

    Returns role -> list of :class:`~nmmfit.data.target.Target` (names are unique).
    """
    from nmmfit import datasets
    from nmmfit.data.target import Target

    ds = datasets.load(dataset)
    maps = _MAPS.get(dataset, ("fc_gradient",))
    out: dict[str, list] = {r: [] for r in ROLES}
    if dataset == "hcp_schaefer100":
        out["train"].append(Target.from_dataset(ds, group="train706", maps=maps,
                                                  sc_normalisation=GENERATION_SC_RECIPE))
        out["test"].append(Target.from_dataset(ds, group="test303", maps=maps,
                                                 sc_normalisation=GENERATION_SC_RECIPE))
        for sid, role in (("100206", "train"), ("100307", "val")):
            out[role].append(Target.from_dataset(ds, subjects=[sid], maps=maps,
                                                 sc_normalisation=GENERATION_SC_RECIPE,
                                                 name=f"{dataset}:{sid}"))
            for r in range(len(ds.subjects[sid].bold)):
                out[role].append(_single_run(ds, sid, r, maps, f"{dataset}:{sid}:run{r}"))
        return out
    ids = sorted(ds.subjects)
    if dataset == "gw_aal":
        out["test"] = [Target.from_dataset(ds, subjects=[s], maps=maps,
                                           sc_normalisation=GENERATION_SC_RECIPE,
                                           name=f"{dataset}:{s}")
                       for s in ids]
        return out
    if len(ids) < 4:
        raise ValueError(f"dataset {dataset!r} has {len(ids)} subjects; the surrogate split "
                         "needs at least 4")
    n_test, n_val = 2, 1
    train_ids, val_ids, test_ids = (ids[:len(ids) - n_test - n_val],
                                    ids[len(ids) - n_test - n_val:len(ids) - n_test],
                                    ids[len(ids) - n_test:])
    for role, group in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
        for s in group:
            out[role].append(Target.from_dataset(ds, subjects=[s], maps=maps,
                                                 sc_normalisation=GENERATION_SC_RECIPE,
                                                 name=f"{dataset}:{s}"))
    for s in train_ids:
        n_runs = len(ds.subjects[s].bold)
        for r in range(n_runs if n_runs > 1 else 0):  # one run: the subject target itself
            out["train"].append(_single_run(ds, s, r, maps, f"{dataset}:{s}:run{r}"))
    sizes = range(2, min(3, len(train_ids)) + 1)
    n_groups = sum(math.comb(len(train_ids), k) for k in sizes)
    n_boot = n_groups if n_boot is None else n_boot
    if not isinstance(n_boot, int | np.integer) or not 0 <= n_boot <= n_groups:
        raise ValueError(f"n_boot must be an int in [0, {n_groups}] (distinct groups of 2-3 of "
                         f"the {len(train_ids)} training subjects), got {n_boot!r}")
    rng = np.random.default_rng(20261201)
    seen: set[tuple[str, ...]] = set()
    while len(seen) < n_boot:  # distinct bootstrap groups of 2-3 training subjects
        size = int(rng.integers(2, min(3, len(train_ids)) + 1))
        subs = tuple(sorted(rng.choice(train_ids, size=size, replace=False).tolist()))
        if subs in seen:
            continue
        seen.add(subs)
        out["train"].append(Target.from_dataset(
            ds, subjects=list(subs), maps=maps, sc_normalisation=GENERATION_SC_RECIPE,
            name=f"{dataset}:boot{len(seen) - 1}:" + "+".join(subs)))
    return out


def training_targets(dataset: str) -> dict:
    """Every training target of a data set by name, all bootstrap groups included: the lookup
    for re-simulating rows of a table, whichever groups it was generated with."""
    return {t.name: t for t in surrogate_targets(dataset, n_boot=None)["train"]}


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
              kinds: Sequence[str] = ("cmaes", "random"),
              only: Sequence[str] | None = None) -> list[GenJob]:
    """Jobs for every target: per seed one run of each kind (by default a CMA-ES run and a
    random-box run).

    ``epochs`` maps role -> epochs per run (default train 30, val 10, test 10), so each
    target gets ``len(kinds) x len(seeds) x epochs x popsize`` evaluations. ``kinds``
    restricts the run kinds, ``only`` the targets (by name). Jobs are ordered so that a
    budget cut short still covers every target: seed-major, then role, then target.
    """
    bad = sorted(set(kinds) - {"cmaes", "random"})
    if bad or not kinds:
        raise ValueError(f"kinds must be some of ('cmaes', 'random'), got {list(kinds)}")
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
            config = {"generator": "nmmfit.surrogate.generate", "role": role,
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


def build_table(store: str | Path | Store, roles: Sequence[str] = ROLES,
                kinds: Sequence[str] = ("cmaes", "random")) -> tuple[dict, dict]:
    """The surrogate training table from a generation store.

    Returns ``(table, targets)``:

    - table: ``wEE``, ``wEI``, ``sigma`` [M, N]; ``G`` [M]; ``costs`` [M, 3] (fc_corr, fc_l1,
      fcd_ks; NaN where invalid); ``valid`` [M] bool; ``target_idx`` [M] (row of
      ``targets``); ``role`` [M] (str); ``kind`` [M]; ``epoch`` [M]; ``ei_mean`` [M];
    - targets: ``sc``, ``fc`` [T, N, N]; ``fcd_pdf`` [T, n_bins]; ``names``, ``roles`` [T].

    Rows come from the runs written by :func:`run_jobs` (their stored target artefact).
    """
    own = not isinstance(store, Store)
    st = Store(store) if own else store
    try:
        cols: dict[str, list] = {k: [] for k in ("wEE", "wEI", "sigma", "G", "costs", "valid",
                                                 "target_idx", "role", "kind", "epoch",
                                                 "ei_mean")}
        tg: dict[str, list] = {"sc": [], "fc": [], "fcd_pdf": [], "names": [], "roles": []}
        index: dict[str, int] = {}
        for run_id in st.run_ids():
            cfg = st.run_config(run_id) or {}
            if cfg.get("generator") != "nmmfit.surrogate.generate":
                continue
            if cfg["role"] not in roles or cfg["kind"] not in kinds:
                continue
            art = st.get_artefact(run_id, "target")
            if art is None:
                continue
            arrs, info = art
            name = info["name"]
            if name not in index:
                index[name] = len(tg["names"])
                for k in ("sc", "fc", "fcd_pdf"):
                    tg[k].append(arrs[k])
                tg["names"].append(name)
                tg["roles"].append(info["role"])
            maps = {m: arrs[f"map_{k}"] for k, m in enumerate(info["maps"])}
            b = cfg["parametrisation"]["bounds"]
            param = Parametrisation(maps, bounds=b, n_regions=arrs["sc"].shape[0])
            ev = st.evaluations(run_id, "train")
            m = ev["params"].shape[0]
            if m == 0:
                continue
            reg = param.expand(ev["params"])
            cols["wEE"].append(reg.wEE)
            cols["wEI"].append(reg.wEI)
            cols["sigma"].append(reg.sigma)
            cols["G"].append(reg.G.reshape(-1))
            costs = np.where(ev["valid"][:, None], ev["terms"], np.nan)
            cols["costs"].append(costs)
            cols["valid"].append(ev["valid"])
            cols["target_idx"].append(np.full(m, index[name]))
            cols["role"].append(np.full(m, info["role"]))
            cols["kind"].append(np.full(m, cfg["kind"]))
            cols["epoch"].append(ev["epoch"])
            cols["ei_mean"].append(ev["ei_mean"])
    finally:
        if own:
            st.close()
    if not tg["names"]:
        raise ValueError(f"no generation runs with roles {list(roles)} in the store {store}")
    table = {k: np.concatenate(v) for k, v in cols.items()}
    targets = {"sc": np.stack(tg["sc"]), "fc": np.stack(tg["fc"]),
               "fcd_pdf": np.stack(tg["fcd_pdf"]), "names": tg["names"],
               "roles": tg["roles"]}
    return table, targets


def table_hash(table: dict) -> str:
    """SHA-256 (16 hex chars) of a table's numeric content: the training-data hash."""
    h = hashlib.sha256()
    for k in ("wEE", "wEI", "sigma", "G", "costs", "valid", "target_idx"):
        h.update(k.encode())
        h.update(np.ascontiguousarray(table[k]).tobytes())
    return h.hexdigest()[:16]


def merge_stores(src: str | Path, dst: str | Path) -> dict:
    """Append the generation runs of store ``src`` that ``dst`` lacks (whole runs, with their
    epochs, evaluations and artefacts), e.g. data generated on another machine."""
    import sqlite3

    with Store(dst) as d:
        have = set(d.run_ids())
    con = sqlite3.connect(str(dst), isolation_level=None)
    try:
        con.execute("ATTACH DATABASE ? AS src", (str(src),))
        new = [r[0] for r in con.execute("SELECT run_id FROM src.runs")
               if r[0] not in have]
        con.execute("BEGIN IMMEDIATE")
        for rid in new:
            con.execute("INSERT INTO runs SELECT * FROM src.runs WHERE run_id = ?", (rid,))
            cols = ", ".join(_EV_ALL)
            con.execute(f"INSERT INTO evaluations ({cols}) SELECT {cols} FROM src.evaluations "
                        "WHERE run_id = ?", (rid,))
            for t in ("epochs", "artefacts"):
                con.execute(f"INSERT INTO {t} SELECT * FROM src.{t} WHERE run_id = ?", (rid,))
        con.execute("COMMIT")
    finally:
        con.close()
    return {"runs_added": len(new), "run_ids": new}


#: Columns of the store's evaluation rows (all but the autoincrement id), in table order.
_EV_ALL = ("run_id", "config_hash", "dataset", "target", "phase", "epoch", "candidate",
           "restart", "params", "fc_corr", "fc_l1", "fcd_ks", "total", "valid", "n_valid",
           "ei_mean", "ei_map", "seed", "engine", "wall_s", "time")
#: The exported ones (the per-region E/I maps are left out of the compact file).
_EV_COLS = tuple(c for c in _EV_ALL if c != "ei_map")


def compact_run_ids(path: str | Path) -> list[str]:
    """The run ids held by a compact file (:func:`export_compact`)."""
    with np.load(Path(path), allow_pickle=False) as z:
        header = json.loads(str(z["header"].item()))
    if header.get("format") != "nmmfit.surrogate.compact/1":
        raise ValueError(f"{path} is not an nmmfit compact generation file")
    return [r[0] for r in header["runs"]]


def export_compact(store: str | Path, path: str | Path,
                   exclude: Sequence[str] = ()) -> dict:
    """Write the generation runs of ``store`` to one compressed ``.npz`` (the shippable
    training table): every evaluation row (parameter vectors exact, without the per-region
    E/I maps), every epoch marker, each run's *last* optimiser state (enough to resume) and
    its target artefact. :func:`import_compact` turns it back into a store that resumes.

    ``exclude``: run ids to leave out, e.g. ``compact_run_ids(shipped_table)`` to write only
    what was generated on top of a shipped table (an extension file; importing both files
    into one store gives the union).
    """
    import sqlite3

    skip = set(exclude)
    con = sqlite3.connect(str(store))
    try:
        runs = [r for r in con.execute("SELECT * FROM runs ORDER BY created")
                if json.loads(r[2]).get("generator") == "nmmfit.surrogate.generate"
                and r[0] not in skip]
        if not runs:
            raise ValueError(f"the store {store} holds no generation runs to export "
                             f"({len(skip)} excluded)")
        ids = [r[0] for r in runs]
        idx = {rid: i for i, rid in enumerate(ids)}
        q = ",".join("?" * len(ids))
        ev = con.execute(f"SELECT {', '.join(_EV_COLS)} FROM evaluations WHERE run_id IN "
                         f"({q}) ORDER BY id", ids).fetchall()
        ep = con.execute(f"SELECT run_id, phase, epoch, restart, best_total, n_draws, wall_s, "
                         f"info, time FROM epochs WHERE run_id IN ({q}) ORDER BY run_id, "
                         "epoch", ids).fetchall()
        last = {}
        for rid in ids:
            row = con.execute("SELECT epoch, state FROM epochs WHERE run_id = ? AND phase = "
                              "'train' ORDER BY epoch DESC LIMIT 1", (rid,)).fetchone()
            if row is not None and row[1] is not None:
                last[rid] = (row[0], row[1])
        arts = con.execute(f"SELECT run_id, name, data, info, time FROM artefacts WHERE run_id "
                           f"IN ({q})", ids).fetchall()
    finally:
        con.close()
    header = {"format": "nmmfit.surrogate.compact/1",
              "runs": [list(r) for r in runs],
              "epochs": [list(r) for r in ep],
              "last_state_epoch": {rid: e for rid, (e, _) in last.items()},
              "artefacts": [[r[0], r[1], r[3], r[4]] for r in arts]}
    # the rows' repeated strings (config hash, dataset, target, phase, engine), once per run
    per_run_text = {}
    for r in ev:
        per_run_text.setdefault(r[0], [r[1], r[2], r[3], r[4], r[17]])
    header["evaluation_text"] = per_run_text
    nan = float("nan")
    arrays = {
        "run": np.array([idx[r[0]] for r in ev], dtype=np.int32),
        "epoch": np.array([r[5] for r in ev], dtype=np.int32),
        "candidate": np.array([r[6] for r in ev], dtype=np.int32),
        "restart": np.array([r[7] for r in ev], dtype=np.int16),
        "params": np.array([json.loads(r[8]) for r in ev], dtype=np.float64),
        "terms": np.array([[r[9], r[10], r[11], r[12]] for r in ev], dtype=np.float64),
        "valid": np.array([r[13] for r in ev], dtype=np.int8),
        "n_valid": np.array([r[14] for r in ev], dtype=np.int16),
        "ei_mean": np.array([nan if r[15] is None else r[15] for r in ev], dtype=np.float64),
        "seed": np.array([r[16] for r in ev], dtype=np.int64),
        "wall_time": np.array([[r[18], r[19]] for r in ev], dtype=np.float64),
    }
    for rid, (_, state) in last.items():
        arrays[f"state_{idx[rid]}"] = np.frombuffer(state, dtype=np.uint8)
    for k, r in enumerate(arts):
        arrays[f"artefact_{k}"] = np.frombuffer(r[2], dtype=np.uint8)
    arrays["header"] = np.array(json.dumps(header))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp.replace(path)
    return {"runs": len(ids), "rows": len(ev), "path": str(path),
            "bytes": path.stat().st_size}


def import_compact(path: str | Path, store: str | Path) -> dict:
    """Rebuild the runs of a compact file (:func:`export_compact`) in ``store``; runs the
    store already has are skipped. Generation then resumes from each run's last epoch."""
    with np.load(Path(path), allow_pickle=False) as z:
        header = json.loads(str(z["header"].item()))
        if header.get("format") != "nmmfit.surrogate.compact/1":
            raise ValueError(f"{path} is not an nmmfit compact generation file")
        arr = {k: np.array(z[k]) for k in z.files if k != "header"}
    with Store(store) as st:
        have = set(st.run_ids())
        con = st.conn
        added = []
        con.execute("BEGIN IMMEDIATE")
        try:
            for i, run in enumerate(header["runs"]):
                rid = run[0]
                if rid in have:
                    continue
                added.append(rid)
                con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", run)
                text = header["evaluation_text"].get(rid)
                sel = np.flatnonzero(arr["run"] == i)
                rows = [(rid, text[0], text[1], text[2], text[3], int(arr["epoch"][j]),
                         int(arr["candidate"][j]), int(arr["restart"][j]),
                         json.dumps([float(v) for v in arr["params"][j]]),
                         *[float(v) for v in arr["terms"][j]], int(arr["valid"][j]),
                         int(arr["n_valid"][j]),
                         None if np.isnan(arr["ei_mean"][j]) else float(arr["ei_mean"][j]),
                         None, int(arr["seed"][j]), text[4], float(arr["wall_time"][j, 0]),
                         float(arr["wall_time"][j, 1])) for j in sel]
                con.executemany(f"INSERT INTO evaluations ({', '.join(_EV_ALL)}) VALUES "
                                f"({', '.join('?' * len(_EV_ALL))})", rows)
                last = header["last_state_epoch"].get(rid)
                for e in header["epochs"]:
                    if e[0] != rid:
                        continue
                    state = (arr[f"state_{i}"].tobytes() if last is not None and e[1] ==
                             "train" and e[2] == last else None)
                    con.execute("INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                (*e[:7], state, e[7], e[8]))
                for k, a in enumerate(header["artefacts"]):
                    if a[0] == rid:
                        con.execute("INSERT INTO artefacts VALUES (?, ?, ?, ?, ?)",
                                    (a[0], a[1], arr[f"artefact_{k}"].tobytes(), a[2], a[3]))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return {"runs_added": len(added), "runs_skipped": len(header["runs"]) - len(added)}

