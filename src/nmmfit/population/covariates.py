"""A cohort's covariate table: one row per subject (age, sex, ...), read from BIDS
``participants.tsv``, a CSV, a DataFrame or a mapping."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["read_covariates"]


def read_covariates(path_or_frame, id_column: str = "participant_id"):
    """A covariate table as a pandas DataFrame indexed by subject id (as strings).

    ``path_or_frame``: a ``.tsv``/``.csv`` path (BIDS ``participants.tsv``), a DataFrame, or
    a mapping {subject: {covariate: value}}. Numbers stay numbers; ``n/a`` is missing.
    """
    import pandas as pd

    if path_or_frame is None:
        return pd.DataFrame(index=pd.Index([], name="subject", dtype=str))
    if isinstance(path_or_frame, pd.DataFrame):
        df = path_or_frame.copy()
    elif isinstance(path_or_frame, Mapping):
        df = pd.DataFrame.from_dict(dict(path_or_frame), orient="index")
        df.index.name = id_column
        df = df.reset_index()
    else:
        p = Path(path_or_frame)
        if not p.is_file():
            raise FileNotFoundError(f"covariate table {p} does not exist")
        sep = "," if p.suffix.lower() == ".csv" else "\t"
        df = pd.read_csv(p, sep=sep, na_values=["n/a", "NA", ""], dtype={id_column: str})
    if id_column in df.columns:
        df = df.set_index(id_column)
    elif df.index.name != id_column and df.index.name != "subject":
        raise ValueError(f"covariate table has no {id_column!r} column (columns: "
                         f"{list(df.columns)})")
    df.index = df.index.astype(str)
    df.index.name = "subject"
    dup = df.index[df.index.duplicated()].tolist()
    if dup:
        raise ValueError(f"covariate table names subjects more than once: {dup[:5]}")
    return df
