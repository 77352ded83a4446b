"""Moving generation runs between stores and files: merging stores, and the compact file.

The compact file is one compressed ``.npz`` holding whole generation runs (evaluation rows,
epoch markers, each run's last optimiser state, target artefacts): the shippable training
table. Format tag :data:`COMPACT_FORMAT`; the header (JSON) holds the run rows, epoch rows,
artefact rows and the rows' repeated strings, the arrays hold the numbers
(:func:`export_compact`, :func:`import_compact`).

SC recipe: a store, and so a compact file, holds the runs of one SC recipe
(:func:`~nmmfit.surrogate.jobs.store_sc_recipe`); the header records it as
``"sc_normalisation"`` (files written before it was recorded hold legacy-recipe runs, which
their run configs say too). Importing or merging runs of one recipe into a store of another is
refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nmmfit.fit.store import Store
from nmmfit.surrogate.jobs import GENERATOR, check_store_recipe, run_sc_recipe, store_sc_recipe

__all__ = ["COMPACT_FORMAT", "merge_stores", "compact_run_ids", "compact_sc_recipe",
           "export_compact", "import_compact"]

#: Format tag of the compact file.
COMPACT_FORMAT = "nmmfit.surrogate.compact/1"


def merge_stores(src: str | Path, dst: str | Path) -> dict:
    """Append the generation runs of store ``src`` that ``dst`` lacks (whole runs, with their
    epochs, evaluations and artefacts), e.g. data generated on another machine."""
    import sqlite3

    with Store(src) as s:
        recipe = store_sc_recipe(s)
    with Store(dst) as d:
        have = set(d.run_ids())
        if recipe is not None:
            check_store_recipe(d, recipe, f"the runs of store {src}, of")
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


def _file_recipe(header: dict, path) -> str | None:
    """SC recipe of a compact file's runs (None when it holds none); ValueError when they mix
    recipes or disagree with the header's record."""
    recipes = {run_sc_recipe(json.loads(r[2])) for r in header["runs"]}
    if len(recipes) > 1:
        raise ValueError(f"{path} mixes SC recipes {sorted(recipes)}")
    recipe = next(iter(recipes), None)
    said = header.get("sc_normalisation")
    if said is not None and recipe is not None and said != recipe:
        raise ValueError(f"{path} records SC recipe {said!r} but its runs are of {recipe!r}")
    return recipe


def compact_sc_recipe(path: str | Path) -> str | None:
    """The SC recipe of the runs of a compact file (:func:`export_compact`)."""
    with np.load(Path(path), allow_pickle=False) as z:
        header = json.loads(str(z["header"].item()))
    if header.get("format") != COMPACT_FORMAT:
        raise ValueError(f"{path} is not an nmmfit compact generation file")
    return _file_recipe(header, path)


def compact_run_ids(path: str | Path) -> list[str]:
    """The run ids held by a compact file (:func:`export_compact`)."""
    with np.load(Path(path), allow_pickle=False) as z:
        header = json.loads(str(z["header"].item()))
    if header.get("format") != COMPACT_FORMAT:
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
    with Store(store) as st:
        recipe = store_sc_recipe(st)  # one recipe per store (ValueError when mixed)
    con = sqlite3.connect(str(store))
    try:
        runs = [r for r in con.execute("SELECT * FROM runs ORDER BY created")
                if json.loads(r[2]).get("generator") == GENERATOR
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
    header = {"format": COMPACT_FORMAT, "sc_normalisation": recipe,
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
    store already has are skipped. Generation then resumes from each run's last epoch.
    A store holding runs of another SC recipe than the file's is refused (ValueError)."""
    with np.load(Path(path), allow_pickle=False) as z:
        header = json.loads(str(z["header"].item()))
        if header.get("format") != COMPACT_FORMAT:
            raise ValueError(f"{path} is not an nmmfit compact generation file")
        arr = {k: np.array(z[k]) for k in z.files if k != "header"}
    recipe = _file_recipe(header, path)
    with Store(store) as st:
        if recipe is not None:
            check_store_recipe(st, recipe, f"the runs of {path}, of")
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

