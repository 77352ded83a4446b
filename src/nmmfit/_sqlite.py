"""SQLite connections of nmmfit's stores: opening a file (durable settings, read-only mode,
a clear error for a corrupt or foreign file) and one-transaction blocks.

Shared by the evaluation store (:mod:`nmmfit.fit.store`) and the population results table
(:mod:`nmmfit.population.results`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["open_sqlite", "transaction"]


def open_sqlite(path: str | Path, schema: str, readonly: bool = False,
                table: str | None = None) -> sqlite3.Connection:
    """A durable autocommit SQLite connection to ``path`` (folder created), ``schema`` applied.

    Used by the evaluation store (:class:`nmmfit.fit.store.Store`) and the population
    results table (:class:`nmmfit.population.results.ResultsDB`): rollback journal,
    synchronous=FULL (a killed run never loses a committed row), 60 s busy timeout.

    ``readonly``: open an existing file without creating or changing anything (no folder, no
    file, no schema); ``FileNotFoundError`` when it is missing, ``ValueError`` when it lacks
    ``table``. A file that is not a SQLite database (corrupt, truncated, another format)
    raises ``ValueError`` naming the path.
    """
    path = Path(path)
    if readonly and not path.is_file():
        raise FileNotFoundError(f"store {path} does not exist (nothing was created); check the "
                                "path, or run the command that writes it first")
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = None
    try:
        if readonly:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                   timeout=60.0, isolation_level=None)
            conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        else:
            conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(schema)
        if table is not None:
            ok = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                              (table,)).fetchone()
            if ok is None:
                raise ValueError(f"{path} is a SQLite file without a {table!r} table: not the "
                                 "store this command reads (wrong --store?)")
        conn.execute("PRAGMA quick_check(1)" if readonly else "SELECT 1").fetchall()
    except sqlite3.DatabaseError as err:
        if conn is not None:
            conn.close()
        if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
            raise
        raise ValueError(f"{path} is not a readable SQLite store ({err}): it may be corrupt, "
                         "truncated or another kind of file; move it away (or pass another "
                         "path) and re-run") from None
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``with transaction(conn):`` runs the block as one ``BEGIN IMMEDIATE`` ... ``COMMIT``
    transaction (``ROLLBACK`` when it raises) on an autocommit connection (:func:`open_sqlite`)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
