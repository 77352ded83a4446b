"""The population results table (SQLite): one row per attempt at fitting one subject.

Table ``population`` (in its own file, default :data:`DEFAULT_DB`, or in a fit store's file):

====================  =========================================================================
id                    attempt row id
cohort, subject       the cohort key and the subject id
config_hash           hash of the fit settings (preset, evaluator, maps, seed, engine)
attempt               1, 2, ... per (cohort, subject, config_hash)
state                 "running" (started, not finished), "done", "failed", "interrupted" (a
                      "running" row left by a killed run, closed when a new run starts),
                      "stale" (a "done" row whose subject's input data have changed since;
                      see ``input_hash``)
error                 error text (failed rows)
summary               JSON: parameters, cost terms, regional E/I map and its spread, ...
started_at, finished_at, wall_s, worker
input_hash            fingerprint of the subject's input data when the attempt started
                      (:meth:`nmmfit.population.cohort.SubjectSpec.fingerprint`)
owner, heartbeat_at   the driving process ("host:pid:token") and the last time (Unix s) it
                      said it was alive; it beats every :data:`HEARTBEAT_S` while it runs.
                      ``status`` reports a "running" row as interrupted when its heartbeat
                      is older than :data:`HEARTBEAT_STALE_S`, or at once when its owner
                      is a process of this host that no longer exists.
====================  =========================================================================

A finished subject whose input data changed (another fingerprint) is not finished any more:
:func:`nmmfit.population.run_cohort` marks its old rows "stale" and fits it again.

``fit`` also records the cohort's covariate table in table ``covariates`` (cohort, TSV text)
of the same file, which ``report`` reads by default; no other file is written.

Every state change is one committed transaction, so a killed run or worker loses no finished
subject. A subject is finished for a config when it has a "done" row; re-running skips it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from nmmfit._sqlite import open_sqlite, transaction
from nmmfit.population.covariates import read_covariates

__all__ = ["ResultsDB", "DEFAULT_DB", "flat_row", "test_protocol", "HEARTBEAT_S",
           "HEARTBEAT_STALE_S"]

#: Seconds between heartbeats of a running ``population fit``.
HEARTBEAT_S = 20.0
#: A "running" row whose owner has not beaten for this long is reported as interrupted.
HEARTBEAT_STALE_S = 120.0

DEFAULT_DB = "nmmfit_population.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS population (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cohort TEXT NOT NULL, subject TEXT NOT NULL, config_hash TEXT NOT NULL,
    attempt INTEGER NOT NULL, state TEXT NOT NULL, error TEXT,
    summary TEXT, config TEXT,
    started_at REAL, finished_at REAL, wall_s REAL, worker TEXT
);
CREATE INDEX IF NOT EXISTS population_key ON population (cohort, config_hash, subject);
CREATE TABLE IF NOT EXISTS covariates (cohort TEXT PRIMARY KEY, tsv TEXT NOT NULL, time REAL);
"""


def _owner_gone(owner: str | None) -> bool:
    """True when ``owner`` ("host:pid:token") is a process of this host that no longer runs."""
    import os
    import socket

    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. another user's process: it exists
        return False
    return False


class ResultsDB:
    """The ``population`` table of a SQLite file (created when missing).

    ``readonly=True`` (``status``, ``report``) opens an existing file and never creates one:
    FileNotFoundError naming the path when it is missing, ValueError when it is not a
    population store.
    """

    def __init__(self, path: str | Path = DEFAULT_DB, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise FileNotFoundError(
                f"no population store {self.path} (nothing was created): run `nmmfit "
                f"population fit COHORT --store {self.path}` first, or pass --store")
        self.conn = open_sqlite(self.path, _SCHEMA, readonly=readonly, table="population")
        self.readonly = readonly
        cols = {r[1] for r in self.conn.execute("PRAGMA table_info(population)")}
        if not readonly:  # a store written before these columns existed
            for col, kind in (("input_hash", "TEXT"), ("owner", "TEXT"),
                              ("heartbeat_at", "REAL")):
                if col not in cols:
                    self.conn.execute(f"ALTER TABLE population ADD COLUMN {col} {kind}")
                    cols.add(col)
        self._has_input_hash = "input_hash" in cols

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ writes

    def start(self, cohort: str, subject: str, chash: str, config: dict | None = None,
              worker: str = "", input_hash: str | None = None,
              owner: str | None = None) -> int:
        """Insert a "running" attempt row; return its id. ``owner``: the driving process,
        whose :meth:`beat` keeps the row reported as running."""
        with transaction(self.conn):
            n = self.conn.execute(
                "SELECT COALESCE(MAX(attempt), 0) FROM population WHERE cohort=? AND subject=? "
                "AND config_hash=?", (cohort, subject, chash)).fetchone()[0]
            cur = self.conn.execute(
                "INSERT INTO population (cohort, subject, config_hash, attempt, state, config, "
                "started_at, worker, input_hash, owner, heartbeat_at) VALUES (?, ?, ?, ?, "
                "'running', ?, ?, ?, ?, ?, ?)",
                (cohort, subject, chash, n + 1,
                 None if config is None else json.dumps(config, default=_default),
                 time.time(), worker, input_hash, owner,
                 None if owner is None else time.time()))
        return int(cur.lastrowid)

    def finish(self, row_id: int, summary: dict | None = None, error: str | None = None,
               worker: str | None = None) -> None:
        """Close an attempt: "done" with its summary, or "failed" with the error text."""
        now = time.time()
        state = "failed" if error is not None else "done"
        self.conn.execute(
            "UPDATE population SET state=?, error=?, summary=?, finished_at=?, "
            "wall_s=? - started_at, worker=COALESCE(?, worker) WHERE id=?",
            (state, error, None if summary is None else json.dumps(summary, default=_default),
             now, now, worker, row_id))

    def beat(self, owner: str, now: float | None = None) -> int:
        """Heartbeat: mark ``owner``'s running rows as alive now; returns how many."""
        cur = self.conn.execute("UPDATE population SET heartbeat_at=? WHERE owner=? AND "
                                "state='running'", (time.time() if now is None else now,
                                                    owner))
        return cur.rowcount

    def close_stale(self, cohort: str, chash: str) -> int:
        """Mark "running" rows of (cohort, config) as "interrupted" (a new run starts)."""
        cur = self.conn.execute(
            "UPDATE population SET state='interrupted', error='the run ended before this "
            "attempt finished (killed?)', finished_at=? WHERE cohort=? AND config_hash=? AND "
            "state='running'", (time.time(), cohort, chash))
        return cur.rowcount

    def mark_stale(self, row_id: int, reason: str) -> None:
        """Turn a "done" row into "stale" (its subject's input data changed)."""
        self.conn.execute("UPDATE population SET state='stale', error=? WHERE id=? AND "
                          "state='done'", (reason, row_id))

    def set_input_hash(self, row_id: int, input_hash: str) -> None:
        """Record the input fingerprint of a row written before fingerprints were kept."""
        self.conn.execute("UPDATE population SET input_hash=? WHERE id=?", (input_hash, row_id))

    def put_covariates(self, cohort: str, frame) -> None:
        """Record a cohort's covariate table (pandas DataFrame indexed by subject)."""
        tsv = frame.rename_axis("participant_id").to_csv(sep="\t")
        self.conn.execute("INSERT OR REPLACE INTO covariates VALUES (?, ?, ?)",
                          (cohort, tsv, time.time()))

    def covariates(self, cohort: str):
        """The covariate table recorded by ``fit`` for ``cohort`` (DataFrame), or None."""
        import io

        has = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                "name='covariates'").fetchone()
        row = None if has is None else self.conn.execute(
            "SELECT tsv FROM covariates WHERE cohort=?", (cohort,)).fetchone()
        if row is None:
            return None
        import pandas as pd

        return read_covariates(pd.read_csv(io.StringIO(row[0]), sep="\t",
                                           dtype={"participant_id": str}))

    # ------------------------------------------------------------------ reads

    def done_rows(self, cohort: str, chash: str) -> dict[str, list[dict]]:
        """subject -> its "done" rows: id, input_hash (None for rows written before input
        fingerprints were kept) and the fitted target's fingerprint (summary["target"])."""
        ih = "input_hash" if self._has_input_hash else "NULL"
        out: dict[str, list[dict]] = {}
        for rid, sub, h, summ in self.conn.execute(
                f"SELECT id, subject, {ih}, summary FROM population WHERE cohort=? AND "
                "config_hash=? AND state='done' ORDER BY id", (cohort, chash)):
            tgt = (json.loads(summ) or {}).get("target") if summ else None
            out.setdefault(sub, []).append({"id": rid, "input_hash": h, "target": tgt})
        return out

    def finished(self, cohort: str, chash: str) -> set[str]:
        """Subjects with a "done" row for this config."""
        rows = self.conn.execute(
            "SELECT DISTINCT subject FROM population WHERE cohort=? AND config_hash=? AND "
            "state='done'", (cohort, chash)).fetchall()
        return {r[0] for r in rows}

    def configs(self, cohort: str | None = None) -> list[tuple[str, str, int]]:
        """(cohort, config_hash, number of rows), most recent first."""
        q = ("SELECT cohort, config_hash, COUNT(*), MAX(started_at) FROM population "
             + ("WHERE cohort=? " if cohort else "") + "GROUP BY cohort, config_hash "
             "ORDER BY MAX(started_at) DESC")
        return [r[:3] for r in self.conn.execute(q, (cohort,) if cohort else ())]

    def resolve(self, cohort: str | None, chash: str | None) -> tuple[str, str]:
        """(cohort, config hash): the given ones, else the most recently used ones."""
        if cohort and chash:
            return cohort, chash
        cfgs = self.configs(cohort)
        if chash:
            cfgs = [c for c in cfgs if c[1].startswith(chash)]
        if not cfgs:
            raise ValueError(f"no population results in {self.path}"
                             + (f" for cohort {cohort!r}" if cohort else "")
                             + (f" and config {chash!r}" if chash else ""))
        return cfgs[0][0], cfgs[0][1]

    def attempts(self, cohort: str, chash: str | None = None) -> list[dict]:
        """All attempt rows (summary JSON decoded), in insertion order."""
        q = "SELECT * FROM population WHERE cohort=?" + (" AND config_hash=?" if chash else "")
        cur = self.conn.execute(q + " ORDER BY id", (cohort, chash) if chash else (cohort,))
        cols = [d[0] for d in cur.description]
        out = []
        for r in cur.fetchall():
            d = dict(zip(cols, r, strict=True))
            d["summary"] = json.loads(d["summary"]) if d["summary"] else None
            d["config"] = json.loads(d["config"]) if d["config"] else None
            out.append(d)
        return out

    def results(self, cohort: str, chash: str) -> dict[str, dict]:
        """subject -> latest "done" row (with its decoded summary)."""
        out = {}
        for r in self.attempts(cohort, chash):
            if r["state"] == "done":
                out[r["subject"]] = r
        return out

    def run_config(self, cohort: str, chash: str) -> dict | None:
        """The settings of a run (:func:`nmmfit.population.run_config`'s dict, as recorded
        with its latest finished row), or None when no finished row has them."""
        done = [r for r in self.attempts(cohort, chash) if r["state"] == "done" and r["config"]]
        return done[-1]["config"] if done else None

    def status(self, cohort: str, chash: str, subjects=None, now: float | None = None) -> dict:
        """Finished, running, failed (latest attempt failed, none done), interrupted and (when
        ``subjects`` is given) pending subjects. A "running" row whose owner's heartbeat is
        older than :data:`HEARTBEAT_STALE_S` counts as interrupted (``no_heartbeat_s``: how
        long it has been silent)."""
        now = time.time() if now is None else now
        latest: dict[str, dict] = {}
        done = set()
        n_attempts: dict[str, int] = {}
        for r in self.attempts(cohort, chash):
            latest[r["subject"]] = r
            n_attempts[r["subject"]] = n_attempts.get(r["subject"], 0) + 1
            if r["state"] == "done":
                done.add(r["subject"])
        silent = {s: now - r["heartbeat_at"] for s, r in latest.items()
                  if r["state"] == "running" and r.get("heartbeat_at") is not None
                  and (now - r["heartbeat_at"] > HEARTBEAT_STALE_S
                       or _owner_gone(r.get("owner")))}
        running = sorted(s for s, r in latest.items()
                         if r["state"] == "running" and s not in silent)
        failed = {s: r["error"] for s, r in latest.items()
                  if r["state"] == "failed" and s not in done}
        interrupted = sorted(s for s, r in latest.items()
                             if (r["state"] == "interrupted" or s in silent)
                             and s not in done)
        stale = sorted(s for s, r in latest.items() if r["state"] == "stale" and s not in done)
        out = {"cohort": cohort, "config_hash": chash, "store": str(self.path),
               "finished": sorted(done), "running": running, "failed": failed,
               "interrupted": interrupted, "stale": stale, "attempts": n_attempts,
               "no_heartbeat_s": {s: round(v, 1) for s, v in sorted(silent.items())}}
        if subjects is not None:
            seen = done | set(running) | set(failed) | set(interrupted) | set(stale)
            out["pending"] = [s for s in subjects if s not in seen]
        return out

    def table(self, cohort: str, chash: str):
        """One flat row per finished subject (pandas DataFrame; see :func:`flat_row`)."""
        import pandas as pd

        rows = [flat_row(r) for r in self.results(cohort, chash).values()]
        df = pd.DataFrame(rows)
        return df.sort_values("subject").reset_index(drop=True) if len(df) else df

    def ei_maps(self, cohort: str, chash: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(subjects, E/I map [S, N], its std over test duplicates [S, N])."""
        res = self.results(cohort, chash)
        subs = sorted(res)
        f = (lambda v: np.nan if v is None else float(v))  # noqa: E731
        ei = np.array([[f(v) for v in res[s]["summary"]["ei_map"]] for s in subs])
        sd = np.array([[f(v) for v in res[s]["summary"]["ei_map_std"]] for s in subs])
        return subs, ei, sd

    def export(self, cohort: str, chash: str, out_dir, covariates=None) -> dict[str, str]:
        """Write ``<cohort>_subjects.csv`` (one row per subject: costs, E/I, parameters,
        covariates), ``<cohort>_regional_ei.csv`` (long: subject, region, ei, ei_std) and the
        same as Parquet. Returns {what: path}."""
        import pandas as pd

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        df = self.table(cohort, chash)
        if covariates is not None and len(df) and len(covariates.columns):
            df = df.merge(covariates, left_on="subject", right_index=True, how="left")
        subs, ei, sd = self.ei_maps(cohort, chash) if len(df) else ([], np.zeros((0, 0)),
                                                                     np.zeros((0, 0)))
        long = pd.DataFrame([{"subject": s, "region": j, "ei": ei[i, j], "ei_std": sd[i, j]}
                             for i, s in enumerate(subs) for j in range(ei.shape[1])])
        safe = cohort.replace("/", "_").replace(":", "_")
        paths = {"subjects_csv": out / f"{safe}_subjects.csv",
                 "regional_csv": out / f"{safe}_regional_ei.csv"}
        df.to_csv(paths["subjects_csv"], index=False)
        long.to_csv(paths["regional_csv"], index=False)
        paths["subjects_parquet"] = out / f"{safe}_subjects.parquet"
        paths["regional_parquet"] = out / f"{safe}_regional_ei.parquet"
        df.to_parquet(paths["subjects_parquet"], index=False)  # pyarrow (a dependency)
        long.to_parquet(paths["regional_parquet"], index=False)
        return {k: str(v) for k, v in paths.items()}


def flat_row(row: dict) -> dict:
    """A flat dict of one finished attempt: identity, timings, test cost terms
    (``test_<term>``) and their std over the groups of test duplicates (``test_<term>_std``),
    mean E/I, best_x coefficients (``x_<name>``) and scalar G."""
    s = row["summary"] or {}
    out = {"cohort": row["cohort"], "subject": row["subject"], "config_hash": row["config_hash"],
           "attempt": row["attempt"], "started_at": row["started_at"],
           "finished_at": row["finished_at"], "wall_s": row["wall_s"], "worker": row["worker"]}
    for k, v in (s.get("test_cost") or {}).items():
        out[f"test_{k}"] = v
    for k, v in (s.get("test_cost_std") or {}).items():
        out[f"test_{k}_std"] = v
    out["best_val_cost"] = s.get("best_val_cost")
    out["ei_mean"] = s.get("ei_mean")
    out["ei_mean_std"] = s.get("ei_mean_std")
    for k, v in (s.get("best_x") or {}).items():
        out[f"x_{k}"] = v
    g = (s.get("regional") or {}).get("G")
    out["G"] = g
    out["seed"] = s.get("seed")
    return out


def test_protocol(config: dict | None) -> str:
    """How a run's test costs were measured, in words, from its recorded settings
    (:meth:`ResultsDB.run_config`): e.g. "test cost at full length (10 duplicates at dt 0.5
    ms, mean over 2 groups of 5)". A preset without ``test_duration_s`` tests at the
    target's full run length (:mod:`nmmfit.fit.presets`). "test cost" when unknown."""
    pre = (config or {}).get("preset")
    if not isinstance(pre, dict):
        return "test cost"
    dur = pre.get("test_duration_s")
    length = "at full length" if dur is None else f"on {float(dur):g} s runs"
    try:
        n, g, dt = int(pre["n_dup_test"]), int(pre["test_group"]), float(pre["test_dt"])
    except (KeyError, TypeError, ValueError):
        return f"test cost {length}"
    return (f"test cost {length} ({n} duplicates at dt {dt * 1e3:g} ms, mean over "
            f"{n // g} groups of {g})")


def _default(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
