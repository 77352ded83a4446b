"""Reading a BIDS-like cohort folder: which files hold each subject's SC and BOLD runs, the TR,
the covariate table and the region labels (the files' contents are read later, per subject,
by :mod:`nmmfit.data.user`)::

    my_cohort/
      participants.tsv          participant_id <TAB> age <TAB> sex ...  (covariates; optional)
      dataset_description.json  {"Name": "my_cohort", "RepetitionTime": 0.72}  (optional)
      regions.tsv               region labels, first column, one header line (optional)
      sub-01/
        sc.csv                  [N, N] SC (also accepted: sub-01_sc.npy, *_sc.*, dwi/*sc*)
        func/sub-01_task-rest_run-1_bold.npy   BOLD runs: every file whose name contains
        func/sub-01_task-rest_run-2_bold.npy   "bold" in sub-01/ or sub-01/func/, [N, T]
      sub-02/ ...

Data files are those with a suffix in :data:`DATA_SUFFIXES`, in ``sub-XX/`` or its ``func/``,
``dwi/`` or ``anat/`` folder. ``participant_id`` may be written ``sub-01`` or ``01``; the
subject id is the folder name (``sub-01``). The TR is ``tr=`` or ``RepetitionTime`` of
``dataset_description.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmmfit.population.covariates import read_covariates

__all__ = ["CohortFolder", "read_folder", "DATA_SUFFIXES"]

#: File suffixes (lower case) taken as data files.
DATA_SUFFIXES = frozenset({".npy", ".npz", ".csv", ".tsv", ".txt", ".mat", ".dat", ".1d"})


@dataclass(frozen=True)
class CohortFolder:
    """What a BIDS-like cohort folder holds (paths only; no data read).

    Attributes
    ----------
    name : ``Name`` of ``dataset_description.json``, else the folder name.
    tr : repetition time, s.
    files : subject id (folder name, sorted) -> (SC file, BOLD run files).
    covariates : ``participants.tsv`` as a DataFrame indexed by ``sub-XX`` ids, or None.
    region_labels : the labels passed in, else the first column of ``regions.tsv``, or None.
    """

    name: str
    tr: float
    files: dict[str, tuple[Path, tuple[Path, ...]]]
    covariates: Any = None
    region_labels: list[str] | None = None


def _subject_files(d: Path) -> tuple[Path, tuple[Path, ...]]:
    """(SC file, BOLD files) of subject folder ``d``; ValueError when missing or ambiguous."""
    files = [f for sub in (d, d / "func", d / "dwi", d / "anat") if sub.is_dir()
             for f in sorted(sub.iterdir())
             if f.is_file() and f.suffix.lower() in DATA_SUFFIXES]
    sc = [f for f in files if re.search(r"(^|[_-])sc([_.-]|$)", f.name.lower())
          and "bold" not in f.name.lower()]
    bold = [f for f in files if "bold" in f.name.lower()]
    if not sc:
        raise ValueError(f"subject {d.name!r} has no SC file (sc.<ext> or *_sc.<ext>) "
                         f"in {d}")
    if len(sc) > 1:
        raise ValueError(f"subject {d.name!r} has several SC files: "
                         f"{[f.name for f in sc]}")
    if not bold:
        raise ValueError(f"subject {d.name!r} has no BOLD file (a name containing "
                         f"'bold') in {d} or {d / 'func'}")
    return sc[0], tuple(bold)


def read_folder(path, *, tr: float | None = None,
                region_labels: Sequence[str] | None = None) -> CohortFolder:
    """Find the files of a BIDS-like cohort folder (module docstring).

    Raises FileNotFoundError for a missing folder, ValueError without a TR, without ``sub-*``
    folders, or for a subject without SC or BOLD files (or with several SC files).
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"cohort directory {root} does not exist")
    desc = {}
    if (root / "dataset_description.json").is_file():
        desc = json.loads((root / "dataset_description.json").read_text())
    tr = tr if tr is not None else desc.get("RepetitionTime")
    if tr is None:
        raise ValueError(f"no TR for cohort {root}: pass tr= (--tr) or set RepetitionTime "
                         "in dataset_description.json")
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith("sub-"))
    if not dirs:
        raise ValueError(f"cohort directory {root} has no sub-* folders")
    cov = None
    if (root / "participants.tsv").is_file():
        cov = read_covariates(root / "participants.tsv")
        cov.index = [i if i.startswith("sub-") else f"sub-{i}" for i in cov.index]
        cov.index.name = "subject"
    if region_labels is None and (root / "regions.tsv").is_file():
        region_labels = [ln.split("\t")[0] for ln in
                         (root / "regions.tsv").read_text().splitlines()[1:] if ln.strip()]
    files = {d.name: _subject_files(d) for d in dirs}
    return CohortFolder(desc.get("Name") or root.name, float(tr), files, cov,
                        list(region_labels) if region_labels else None)
