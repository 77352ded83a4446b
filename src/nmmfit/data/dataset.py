"""Containers for loaded cohorts.

A :class:`Dataset` is what :func:`nmmfit.datasets.load` returns: per-subject data (SC and BOLD
runs), optional precomputed group-level data (SC, FC, FCD values), regional maps and labels.
Arrays are float64 numpy arrays; regions are always the first axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Dataset", "Subject", "Group", "FCDValues", "YEO7_NAMES"]

#: Names of the Yeo-7 networks (Yeo et al. 2011), in order: ``Dataset.networks`` label k (1..7)
#: is ``YEO7_NAMES[k - 1]``; a Yeo-7 index i (0..6, as in :mod:`nmmfit.population.analysis`)
#: is ``YEO7_NAMES[i]``.
YEO7_NAMES = ("Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default")


@dataclass
class FCDValues:
    """Precomputed FCD values of a group, with the definition they were computed with.

    Attributes
    ----------
    values : [M] pooled FCD matrix entries (off-diagonal triangle, all subjects and runs).
    window_frames : frames per sliding window.
    step_frames : frames between consecutive window starts.
    tr : repetition time in seconds.
    note : free text, e.g. the source convention ("cubnm: centre +/- 21 TRs, step 7 TRs").
    """

    values: np.ndarray
    window_frames: int
    step_frames: int
    tr: float
    note: str = ""


@dataclass
class Subject:
    """One participant.

    Attributes
    ----------
    id : subject identifier.
    sc : [N, N] tract strength (raw, unnormalised), or None.
    sc_length : [N, N] tract length in mm, or None.
    bold : list of runs, each [N, T] (regions x frames).
    run_names : one name per run.
    """

    id: str
    sc: np.ndarray | None = None
    sc_length: np.ndarray | None = None
    bold: list[np.ndarray] = field(default_factory=list)
    run_names: list[str] = field(default_factory=list)


@dataclass
class Group:
    """Precomputed group-level data (e.g. cubnm's HCP train706 / test303).

    Attributes
    ----------
    name : group name, e.g. "train706".
    n_subjects : number of participants that went into it.
    sc : [N, N] group tract strength (raw).
    sc_length : [N, N] group tract length, or None.
    fc : [N, N] group FC (Pearson r), or None.
    fcd : pooled FCD values with their definition, or None.
    """

    name: str
    n_subjects: int
    sc: np.ndarray
    sc_length: np.ndarray | None = None
    fc: np.ndarray | None = None
    fcd: FCDValues | None = None


@dataclass
class Dataset:
    """A cohort: subjects, optional group-level data, maps and labels.

    Attributes
    ----------
    name : dataset key, e.g. "hcp_schaefer100".
    parcellation : e.g. "schaefer-100" or "aal2-94".
    tr : repetition time of the BOLD runs, seconds.
    region_labels : N region names.
    subjects : id -> Subject.
    groups : name -> Group (precomputed group-level data).
    maps : name -> [N] regional map (e.g. "myelin", "fc_gradient").
    networks : [N] integer Yeo-7 network labels 1..7 (:data:`YEO7_NAMES`), or None.
    provenance : where the data came from, its licence and the conversion.
    """

    name: str
    parcellation: str
    tr: float
    region_labels: list[str]
    subjects: dict[str, Subject] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    networks: np.ndarray | None = None
    provenance: str = ""

    @property
    def n_regions(self) -> int:
        """Number of regions N."""
        return len(self.region_labels)

    def network_means(self, values) -> dict[str, float] | None:
        """Mean of a regional map over each Yeo-7 network's regions.

        values : [N] one value per region (e.g. the E/I ratio); NaN entries are ignored.
        Returns {network name (:data:`YEO7_NAMES`; a label outside 1..7 as its number): mean},
        in label order; None when the data set has no network labels.
        """
        if self.networks is None:
            return None
        v = np.asarray(values)
        net = np.asarray(self.networks)
        if v.shape != net.shape:
            raise ValueError(f"values have shape {v.shape}; expected ({net.size},), one per "
                             f"region of {self.name!r}")
        return {YEO7_NAMES[k - 1] if 1 <= k <= 7 else str(k): float(np.nanmean(v[net == k]))
                for k in np.unique(net)}

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, parcellation={self.parcellation!r}, N={self.n_regions}, "
            f"TR={self.tr} s, subjects={len(self.subjects)}, groups={list(self.groups)}, "
            f"maps={list(self.maps)})"
        )
