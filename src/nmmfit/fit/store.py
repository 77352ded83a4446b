"""SQLite store of every evaluation: surrogate training data, resume log, and report source.

Tables
------
``runs``         one row per run: run id, config hash, config JSON, dataset, target, kind
                 ("cmaes" | "random"), seed, engine, versions, creation time.
``evaluations``  one row per scored candidate: run id, config hash, dataset, target (subject
                 or group), phase ("train" | "val" | "test"), epoch, candidate index, restart,
                 parameter vector (JSON list of float64, exact), fc_corr, fc_l1, fcd_ks, total,
                 validity, valid duplicates, E/I summary (mean and regional map, JSON), seed,
                 engine, evaluation wall time share, and the UTC time it was written.
``epochs``       the commit marker of one (run, phase, epoch): best total, number of draws,
                 wall time and, for training epochs, the pickled optimiser state after ``tell``.
``artefacts``    named blobs of a run (e.g. the test phase's simulated FC and FCD CDF, .npz).

Every epoch is written in **one transaction** (its evaluation rows and its ``epochs`` row
together), so a crash or SIGKILL never leaves a half-written epoch: either the epoch's marker
and all its rows are there, or none of them is. Resuming reads the last complete epoch and
its optimiser state.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmmfit._sqlite import open_sqlite, transaction
from nmmfit.fit.evaluator import Evaluation

__all__ = ["Store", "config_hash", "EpochRecord"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, config_hash TEXT NOT NULL, config TEXT NOT NULL,
    dataset TEXT, target TEXT, kind TEXT, seed INTEGER, engine TEXT, versions TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL, config_hash TEXT NOT NULL, dataset TEXT, target TEXT,
    phase TEXT NOT NULL, epoch INTEGER NOT NULL, candidate INTEGER NOT NULL,
    restart INTEGER NOT NULL DEFAULT 0, params TEXT NOT NULL,
    fc_corr REAL, fc_l1 REAL, fcd_ks REAL, total REAL, valid INTEGER, n_valid INTEGER,
    ei_mean REAL, ei_map TEXT, seed INTEGER, engine TEXT, wall_s REAL, time REAL
);
CREATE INDEX IF NOT EXISTS ev_run ON evaluations (run_id, phase, epoch);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL, phase TEXT NOT NULL, epoch INTEGER NOT NULL,
    restart INTEGER NOT NULL DEFAULT 0, best_total REAL, n_draws INTEGER, wall_s REAL,
    state BLOB, info TEXT, time REAL,
    PRIMARY KEY (run_id, phase, epoch)
);
CREATE TABLE IF NOT EXISTS artefacts (
    run_id TEXT NOT NULL, name TEXT NOT NULL, data BLOB, info TEXT, time REAL,
    PRIMARY KEY (run_id, name)
);
"""


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default)


def _default(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def config_hash(config: dict) -> str:
    """SHA-256 (hex, 16 chars) of the canonical JSON of ``config``."""
    return hashlib.sha256(_canonical(config).encode()).hexdigest()[:16]


@dataclass(kw_only=True)
class EpochRecord(Evaluation):
    """What one epoch of one phase writes: its scored candidates (an
    :class:`~nmmfit.fit.evaluator.Evaluation`: terms [P, 3], total [P], valid [P] bool,
    n_valid [P] int, ei_mean [P], ei_map [P, N] with NaN allowed) with the candidates
    themselves. Build one from an evaluation with :meth:`from_evaluation`.

    Attributes
    ----------
    (those of the evaluation, and these keyword-only ones)
    x : [P, dim] parameter vectors.
    seed : the evaluation seed.
    candidates : [P] candidate indices (default 0..P-1).

    ``wall_s`` is the wall time of the epoch (s); each evaluation row stores ``wall_s / P``.
    ``meta`` is not stored.
    """

    x: np.ndarray
    seed: int
    candidates: Sequence[int] | None = None

    @classmethod
    def from_evaluation(cls, x: np.ndarray, ev: Evaluation, *, seed: int,
                        wall_s: float | None = None,
                        candidates: Sequence[int] | None = None) -> EpochRecord:
        """The record of candidates ``x`` [P, dim] scored by ``ev`` with ``seed``; ``wall_s``
        (default ``ev.wall_s``): the epoch's wall time, s."""
        return cls(terms=ev.terms, total=ev.total, valid=ev.valid, n_valid=ev.n_valid,
                   ei_mean=ev.ei_mean, ei_map=ev.ei_map,
                   wall_s=ev.wall_s if wall_s is None else wall_s, meta=ev.meta, x=x,
                   seed=seed, candidates=candidates)


def _nan_to_none(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


def _map_json(row: np.ndarray) -> str | None:
    if not np.isfinite(row).any():
        return None
    return json.dumps([None if not np.isfinite(v) else float(v) for v in row])


class Store:
    """The evaluation store (one SQLite file; its folder is created when missing).

    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = open_sqlite(self.path, _SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- runs

    def ensure_run(self, run_id: str, config: dict, *, dataset: str = "", target: str = "",
                   kind: str = "cmaes", seed: int = 0, engine: str = "",
                   versions: dict | None = None) -> bool:
        """Register ``run_id``; returns True if it already existed with the same config.

        Raises ``ValueError`` if it exists with a different config hash (a changed setting
        must not silently resume another run).
        """
        h = config_hash(config)
        row = self.conn.execute("SELECT config_hash FROM runs WHERE run_id = ?",
                                (run_id,)).fetchone()
        if row is not None:
            if row[0] != h:
                raise ValueError(f"run {run_id!r} in {self.path} has config hash {row[0]}, "
                                 f"not {h}: use another run id, or resume=False to replace it")
            return True
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, h, _canonical(config), dataset, target, kind, int(seed), engine,
                 _canonical(versions or {}), time.time()))
        return False

    def run_config(self, run_id: str) -> dict | None:
        """The stored config of ``run_id`` (None when unknown)."""
        row = self.conn.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def run_ids(self) -> list[str]:
        """All run ids, oldest first."""
        return [r[0] for r in self.conn.execute("SELECT run_id FROM runs ORDER BY created")]

    def delete_run(self, run_id: str) -> None:
        """Remove a run and everything it wrote."""
        with transaction(self.conn):
            for table in ("evaluations", "epochs", "artefacts", "runs"):
                self.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

    # ---- epochs

    def write_epoch(self, run_id: str, phase: str, epoch: int, rec: EpochRecord, *,
                    restart: int = 0, state: bytes | None = None, n_draws: int = 0,
                    info: dict | None = None, dataset: str = "", target: str = "",
                    engine: str = "") -> None:
        """Write one epoch's rows and its commit marker in one transaction."""
        self.write_epochs(run_id, phase, [(epoch, rec, {"restart": restart, "state": state,
                                                        "n_draws": n_draws, "info": info})],
                          dataset=dataset, target=target, engine=engine)

    def write_epochs(self, run_id: str, phase: str, items, *, dataset: str = "",
                     target: str = "", engine: str = "") -> None:
        """Write several epochs in one transaction: ``items`` holds (epoch, EpochRecord,
        dict with optional restart, state, n_draws, info)."""
        h = self.conn.execute("SELECT config_hash FROM runs WHERE run_id = ?",
                              (run_id,)).fetchone()
        if h is None:
            raise ValueError(f"unknown run {run_id!r}; call ensure_run first")
        now = time.time()
        with transaction(self.conn):
            for epoch, rec, kw in items:
                restart = int(kw.get("restart", 0) or 0)
                p = rec.x.shape[0]
                cand = (list(range(p)) if rec.candidates is None
                        else [int(c) for c in rec.candidates])
                per = rec.wall_s / max(p, 1)
                rows = [
                    (run_id, h[0], dataset, target, phase, int(epoch), cand[i], restart,
                     json.dumps([float(v) for v in rec.x[i]]),
                     float(rec.terms[i, 0]), float(rec.terms[i, 1]), float(rec.terms[i, 2]),
                     float(rec.total[i]), int(bool(rec.valid[i])), int(rec.n_valid[i]),
                     _nan_to_none(float(rec.ei_mean[i])), _map_json(rec.ei_map[i]),
                     int(rec.seed), engine, per, now)
                    for i in range(p)
                ]
                ok = rec.valid.astype(bool)
                best = float(rec.total[ok].min()) if ok.any() else float(np.min(rec.total))
                self.conn.execute("DELETE FROM evaluations WHERE run_id = ? AND phase = ? AND "
                                  "epoch = ?", (run_id, phase, int(epoch)))
                self.conn.executemany(
                    "INSERT INTO evaluations (run_id, config_hash, dataset, target, phase, "
                    "epoch, candidate, restart, params, fc_corr, fc_l1, fcd_ks, total, valid, "
                    "n_valid, ei_mean, ei_map, seed, engine, wall_s, time) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self.conn.execute(
                    "INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, phase, int(epoch), restart, best, int(kw.get("n_draws", 0) or 0),
                     float(rec.wall_s), kw.get("state"), _canonical(kw.get("info") or {}), now))

    def last_epoch(self, run_id: str, phase: str = "train") -> int:
        """Index of the last complete epoch of a phase, -1 when none."""
        row = self.conn.execute("SELECT MAX(epoch) FROM epochs WHERE run_id = ? AND phase = ?",
                                (run_id, phase)).fetchone()
        return -1 if row[0] is None else int(row[0])

    def completed_epochs(self, run_id: str, phase: str) -> list[int]:
        """Sorted indices of the complete epochs of a phase."""
        return [int(r[0]) for r in self.conn.execute(
            "SELECT epoch FROM epochs WHERE run_id = ? AND phase = ? ORDER BY epoch",
            (run_id, phase))]

    def epoch_state(self, run_id: str, phase: str, epoch: int) -> tuple[bytes | None, dict]:
        """(optimiser state, info) stored with a complete epoch."""
        row = self.conn.execute(
            "SELECT state, info FROM epochs WHERE run_id = ? AND phase = ? AND epoch = ?",
            (run_id, phase, int(epoch))).fetchone()
        if row is None:
            raise KeyError(f"run {run_id!r} has no complete {phase} epoch {epoch}")
        return row[0], json.loads(row[1] or "{}")

    def epoch_rows(self, run_id: str, phase: str = "train") -> list[dict]:
        """The ``epochs`` rows of a phase (without the state blob), by epoch."""
        cur = self.conn.execute(
            "SELECT epoch, restart, best_total, n_draws, wall_s, info, time FROM epochs "
            "WHERE run_id = ? AND phase = ? ORDER BY epoch", (run_id, phase))
        return [{"epoch": r[0], "restart": r[1], "best_total": r[2], "n_draws": r[3],
                 "wall_s": r[4], "info": json.loads(r[5] or "{}"), "time": r[6]} for r in cur]

    # ---- evaluations

    def evaluations(self, run_id: str | None = None, phase: str | None = None) -> dict:
        """Evaluation rows as arrays: params [M, dim], terms [M, 3], total, valid, n_valid,
        epoch, candidate, restart, seed, ei_mean [M], ei_map [M, N] (NaN where unknown),
        run_id, target (lists)."""
        where, args = _where(run_id, phase)
        rows = self.conn.execute(
            "SELECT run_id, target, phase, epoch, candidate, restart, params, fc_corr, fc_l1, "
            f"fcd_ks, total, valid, n_valid, ei_mean, ei_map, seed FROM evaluations{where} "
            "ORDER BY id", args).fetchall()
        n_map = 0
        for r in rows:
            if r[14] is not None:
                n_map = len(json.loads(r[14]))
                break
        ei_map = np.full((len(rows), n_map), np.nan)
        for i, r in enumerate(rows):
            if r[14] is not None:
                ei_map[i] = [np.nan if v is None else v for v in json.loads(r[14])]
        return {
            "run_id": [r[0] for r in rows], "target": [r[1] for r in rows],
            "phase": [r[2] for r in rows],
            "epoch": np.array([r[3] for r in rows], dtype=np.int64),
            "candidate": np.array([r[4] for r in rows], dtype=np.int64),
            "restart": np.array([r[5] for r in rows], dtype=np.int64),
            "params": np.array([json.loads(r[6]) for r in rows], dtype=np.float64),
            "terms": np.array([[r[7], r[8], r[9]] for r in rows], dtype=np.float64).reshape(-1, 3),
            "total": np.array([r[10] for r in rows], dtype=np.float64),
            "valid": np.array([bool(r[11]) for r in rows], dtype=bool),
            "n_valid": np.array([r[12] for r in rows], dtype=np.int64),
            "ei_mean": np.array([np.nan if r[13] is None else r[13] for r in rows]),
            "ei_map": ei_map,
            "seed": np.array([r[15] for r in rows], dtype=np.int64),
        }

    def count(self, run_id: str | None = None, phase: str | None = None) -> int:
        """Number of evaluation rows (optionally of one run / phase)."""
        where, args = _where(run_id, phase)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM evaluations{where}",
                                     args).fetchone()[0])

    # ---- artefacts

    def put_artefact(self, run_id: str, name: str, arrays: dict[str, np.ndarray],
                     info: dict | None = None) -> None:
        """Store named arrays (as .npz bytes) and a JSON info dict, atomically."""
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        with transaction(self.conn):
            self.conn.execute("INSERT OR REPLACE INTO artefacts VALUES (?, ?, ?, ?, ?)",
                              (run_id, name, buf.getvalue(), _canonical(info or {}), time.time()))

    def get_artefact(self, run_id: str, name: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """(arrays, info) of a stored artefact, None when absent."""
        row = self.conn.execute("SELECT data, info FROM artefacts WHERE run_id = ? AND name = ?",
                                (run_id, name)).fetchone()
        if row is None:
            return None
        with np.load(io.BytesIO(row[0]), allow_pickle=False) as z:
            arrays = {k: np.array(z[k]) for k in z.files}
        return arrays, json.loads(row[1] or "{}")


def _where(run_id: str | None, phase: str | None) -> tuple[str, list]:
    """(" WHERE ..." or "", parameters) selecting a run and / or a phase."""
    cond = [(c, v) for c, v in (("run_id = ?", run_id), ("phase = ?", phase)) if v is not None]
    if not cond:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in cond), [v for _, v in cond]
