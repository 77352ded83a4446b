"""Model folders, and the surrogate models shipped inside the package.

A trained surrogate is a folder of two files, :data:`PREDICTOR_FILE` (the cost predictor) and
:data:`CLASSIFIER_FILE` (the validity classifier), each written by
:func:`~nmmfit.surrogate.store.save_model` (``nmmfit surrogate train`` writes them; ``--ship``
into the package). This module is the one place that spells those names, finds the shipped
folders and says clearly which files are missing.

The shipped sets (:data:`SHIPPED`) are found by parcellation, in either spelling: the folder
name the models record as ``meta["parcellation"]`` ("schaefer100", "aal2") or the
:class:`~nmmfit.data.dataset.Dataset` spelling ("schaefer-100", "aal2-94"); or, for a target
of unknown parcellation, by its region count (:func:`shipped_for_regions`). Each shipped set
was trained on targets built with one SC recipe, recorded in the models' metadata; the
surrogate evaluator refuses a target built with another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nmmfit.surrogate.store import load_model

__all__ = ["PREDICTOR_FILE", "CLASSIFIER_FILE", "MODELS_DIR", "ShippedSet", "SHIPPED",
           "PARCELLATION", "model_files", "missing_model_files", "load_models", "shipped_key",
           "shipped_dir", "check_shipped", "load_shipped", "shipped_for_regions"]

#: File name of a model folder's cost predictor.
PREDICTOR_FILE = "predictor.pt"
#: File name of a model folder's validity classifier.
CLASSIFIER_FILE = "classifier.pt"
#: Folder of the shipped model folders (one per parcellation, inside the package).
MODELS_DIR = Path(__file__).resolve().parent / "models"


@dataclass(frozen=True)
class ShippedSet:
    """One shipped pair of models.

    key : folder name under :data:`MODELS_DIR`, and the models' ``meta["parcellation"]``.
    parcellation : the same parcellation as a :class:`~nmmfit.data.dataset.Dataset` names it.
    n_regions : region count N of the models' targets.
    label : human-readable parcellation name.
    datasets : the bundled data sets whose generation stores train this set.
    """

    key: str
    parcellation: str
    n_regions: int
    label: str
    datasets: tuple[str, ...]


#: The shipped model sets.
SHIPPED = (ShippedSet("schaefer100", "schaefer-100", 100, "Schaefer-100", ("hcp_schaefer100",)),
           ShippedSet("aal2", "aal2-94", 94, "AAL2", ("hcp_aal", "gw_aal")))

#: Bundled data set -> key of the model set its generation store trains.
PARCELLATION = {ds: s.key for s in SHIPPED for ds in s.datasets}


def model_files(folder: str | Path) -> tuple[Path, Path]:
    """(predictor path, classifier path) of a model folder."""
    folder = Path(folder)
    return folder / PREDICTOR_FILE, folder / CLASSIFIER_FILE


def missing_model_files(folder: str | Path) -> list[str]:
    """The model files that ``folder`` lacks (as strings; empty when both are there)."""
    return [str(p) for p in model_files(folder) if not p.is_file()]


def load_models(folder: str | Path, n_regions: int | None = None,
                parcellation: str | None = None):
    """(predictor, classifier) :class:`~nmmfit.surrogate.store.LoadedModel` of a model folder;
    ``n_regions`` / ``parcellation``: what the models must have been trained for
    (:func:`~nmmfit.surrogate.store.load_model` names a missing file or a mismatch)."""
    return tuple(load_model(p, n_regions=n_regions, parcellation=parcellation)
                 for p in model_files(folder))


def shipped_key(parcellation: str) -> str:
    """Folder name of a parcellation's shipped models ("schaefer-100" -> "schaefer100"); a
    name that is no shipped set's is returned as it is."""
    for s in SHIPPED:
        if parcellation in (s.key, s.parcellation):
            return s.key
    return parcellation


def shipped_dir(parcellation: str) -> Path:
    """Folder of the models shipped for a parcellation (inside the package)."""
    return MODELS_DIR / shipped_key(parcellation)


def check_shipped(parcellation: str) -> None:
    """FileNotFoundError naming the missing files (and how to build them) when the shipped
    models of ``parcellation`` are not installed."""
    missing = missing_model_files(shipped_dir(parcellation))
    if missing:
        raise FileNotFoundError(
            f"no shipped surrogate models for parcellation {parcellation!r} (missing "
            f"{missing}); build them with `nmmfit surrogate generate` then `nmmfit surrogate "
            "train --ship` (docs/surrogate.md)")


def load_shipped(parcellation: str, n_regions: int | None = None):
    """(predictor, classifier) LoadedModels shipped for ``parcellation`` (either spelling);
    a clear error names the rebuild command when they are missing."""
    check_shipped(parcellation)
    return load_models(shipped_dir(parcellation), n_regions=n_regions,
                       parcellation=shipped_key(parcellation))


def shipped_for_regions(n_regions: int) -> str:
    """Key of the shipped set for targets of ``n_regions`` regions (the shipped sets have
    distinct region counts); ValueError when none fits."""
    for s in SHIPPED:
        if s.n_regions == int(n_regions):
            return s.key
    have = ", ".join(f"{s.n_regions} = {s.label}" for s in SHIPPED)
    raise ValueError(f"no shipped surrogate for {n_regions} regions (shipped: {have}); train "
                     "models for it (nmmfit surrogate generate / train) and pass their folder "
                     "(--models)")
