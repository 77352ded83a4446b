"""Group analysis of fitted regional E/I ratios.

- :func:`subject_frame`: one row per subject: mean E/I, sensory-motor and association E/I,
  their difference, and the covariates.
- :func:`regress`: E/I against covariates with statsmodels OLS, by default
  ``ei ~ cr(age, df=3) + C(sex)`` (a natural cubic regression spline in age, centred so that it
  is not collinear with the intercept, plus sex). With fewer than ``min_spline_n`` subjects the
  spline is replaced by a linear ``age`` term; a covariate that is missing or constant is
  dropped. The formula actually fitted and the reason for any change are reported.
- :func:`network_contrast`: sensory-motor minus association E/I per subject, and its mean
  tested against 0 (OLS ``diff ~ 1``).
- :func:`group_maps`: mean and standard error of the regional E/I map per group (e.g. sex).
- :func:`network_means`: each subject's mean E/I over the regions of each Yeo-7 network (and
  of the regions without one).

Networks. Schaefer-100 regions carry their Yeo-7 network in their names (and the bundled
cohort has ``Dataset.networks``). The AAL2 atlas has no network labels, so
:data:`AAL2_YEO7` gives each AAL2 region the Yeo-7 network that covers most of it (a coarse,
documented approximation after Yeo et al. 2011's cortical maps; subcortical regions,
hippocampus and amygdala are unassigned, -1: :data:`AAL2_NO_YEO7`; the 94-region AAL2 of
the bundled cohorts has no cerebellum). Sensory-motor = Vis + SomMot; association =
Cont + Default + Limbic (the attention networks sit between both ends of the
sensory-association axis and are left out of the contrast). Other parcellations: pass
``networks=`` (Yeo-7 indices) or the contrast is skipped with a message.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np

from nmmfit.data.dataset import YEO7_NAMES

__all__ = ["AAL2_YEO7", "AAL2_NO_YEO7", "SENSORY_MOTOR", "ASSOCIATION", "networks_for",
           "unassigned_name", "subject_frame", "regress", "network_contrast", "group_maps",
           "network_means", "DEFAULT_FORMULA"]

SENSORY_MOTOR = ("Vis", "SomMot")
ASSOCIATION = ("Cont", "Default", "Limbic")
DEFAULT_FORMULA = "ei ~ cr(age, df=3) + C(sex)"

#: AAL2 region name (without _L/_R) -> Yeo-7 network with the largest overlap (approximate)
AAL2_YEO7 = {
    "Precentral": "SomMot", "Postcentral": "SomMot", "Paracentral_Lobule": "SomMot",
    "Supp_Motor_Area": "SomMot", "Rolandic_Oper": "SomMot", "Heschl": "SomMot",
    "Temporal_Sup": "SomMot",
    "Calcarine": "Vis", "Cuneus": "Vis", "Lingual": "Vis", "Occipital_Sup": "Vis",
    "Occipital_Mid": "Vis", "Occipital_Inf": "Vis", "Fusiform": "Vis",
    "Parietal_Sup": "DorsAttn",
    "Insula": "SalVentAttn", "Cingulate_Mid": "SalVentAttn", "SupraMarginal": "SalVentAttn",
    "Frontal_Inf_Oper": "SalVentAttn",
    "Frontal_Mid_2": "Cont", "Frontal_Inf_Tri": "Cont", "Parietal_Inf": "Cont",
    "OFClat": "Cont",
    "Frontal_Sup_2": "Default", "Frontal_Sup_Medial": "Default", "Cingulate_Ant": "Default",
    "Cingulate_Post": "Default", "Precuneus": "Default", "Angular": "Default",
    "Temporal_Mid": "Default", "Frontal_Inf_Orb_2": "Default",
    "Olfactory": "Limbic", "Frontal_Med_Orb": "Limbic", "Rectus": "Limbic", "OFCmed": "Limbic",
    "OFCant": "Limbic", "OFCpost": "Limbic", "Temporal_Pole_Sup": "Limbic",
    "Temporal_Pole_Mid": "Limbic", "Temporal_Inf": "Limbic", "ParaHippocampal": "Limbic",
}

#: AAL2 regions (without _L/_R) that no Yeo-7 network covers: Yeo et al. (2011) mapped the
#: cerebral cortex only, so the subcortical nuclei and the hippocampus and amygdala are
#: unassigned (-1)
AAL2_NO_YEO7 = ("Hippocampus", "Amygdala", "Caudate", "Putamen", "Pallidum", "Thalamus")


def unassigned_name(labels: Sequence[str] | None, networks) -> str:
    """Display name of the regions without a Yeo-7 network (index -1): "subcortical (no
    Yeo-7)" when all of them are AAL2 regions of :data:`AAL2_NO_YEO7` (hippocampus,
    amygdala, basal ganglia, thalamus), else "no Yeo-7 network"."""
    net = np.asarray(networks) if networks is not None else np.zeros(0, int)
    idx = np.flatnonzero(net < 0)
    if labels is not None and idx.size and len(labels) == net.size:
        base = {re.sub(r"_[LR]$", "", labels[i]) for i in idx}
        if base <= set(AAL2_NO_YEO7):
            return "subcortical (no Yeo-7)"
    return "no Yeo-7 network"


def networks_for(parcellation: str, labels: Sequence[str] | None) -> np.ndarray | None:
    """[N] Yeo-7 index per region (-1 unassigned), from region names; None when unknown."""
    if not labels:
        return None
    labels = list(labels)
    if parcellation.startswith("schaefer") or any("_Vis_" in s or "_Default_" in s
                                                    for s in labels):
        out = []
        for s in labels:
            m = [i for i, n in enumerate(YEO7_NAMES) if re.search(rf"(^|_){n}(_|$)", s)]
            out.append(m[0] if m else -1)
        arr = np.array(out)
        return arr if (arr >= 0).any() else None
    if parcellation.startswith("aal2"):
        out = []
        for s in labels:
            base = re.sub(r"_[LR]$", "", s)
            net = AAL2_YEO7.get(base)
            out.append(YEO7_NAMES.index(net) if net else -1)
        return np.array(out)
    return None


def _contrast_masks(networks, sm=SENSORY_MOTOR, assoc=ASSOCIATION):
    net = np.asarray(networks)
    a = np.isin(net, [YEO7_NAMES.index(n) for n in sm])
    b = np.isin(net, [YEO7_NAMES.index(n) for n in assoc])
    return a, b


def _nanmean(x, axis):
    """nanmean without the all-NaN warning (a subject without a valid test is all-NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def subject_frame(subjects: Sequence[str], ei: np.ndarray, covariates=None,
                  networks: np.ndarray | None = None):
    """One row per subject: ei (mean over regions), ei_sensory_motor, ei_association,
    ei_sm_minus_assoc (when networks are known), and the covariates."""
    import pandas as pd

    ei = np.asarray(ei, dtype=float)
    df = pd.DataFrame({"subject": list(subjects), "ei": _nanmean(ei, axis=1)
                       if ei.size else np.zeros(0)})
    if networks is not None and ei.size:
        a, b = _contrast_masks(networks)
        if a.any() and b.any():
            df["ei_sensory_motor"] = _nanmean(ei[:, a], axis=1)
            df["ei_association"] = _nanmean(ei[:, b], axis=1)
            df["ei_sm_minus_assoc"] = df["ei_sensory_motor"] - df["ei_association"]
    if covariates is not None and len(covariates.columns):
        df = df.merge(covariates, left_on="subject", right_index=True, how="left")
    return df


def _spline_centered(formula: str) -> str:
    """Add ``constraints='center'`` to cr()/cc() terms that have no constraints."""
    def fix(m):
        inner = m.group(2)
        return m.group(0) if "constraints" in inner else f"{m.group(1)}({inner}, " \
            "constraints='center')"
    return re.sub(r"\b(cr|cc)\(([^()]*)\)", fix, formula)


def regress(df, formula: str = DEFAULT_FORMULA, min_spline_n: int = 12) -> dict:
    """OLS of E/I on covariates (module docstring); returns a JSON-ready dict with
    ``formula`` (fitted), ``requested``, ``notes``, ``nobs``, ``params``, ``bse``,
    ``pvalues``, ``rsquared``, and ``model`` (the statsmodels result; not JSON)."""
    import statsmodels.formula.api as smf

    requested = formula
    notes = []
    lhs, rhs = (s.strip() for s in formula.split("~", 1))
    terms = [t.strip() for t in rhs.split("+") if t.strip()]
    cols = set(df.columns)
    kept = []
    for t in terms:
        names = [n for n in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", t)
                 if n not in {"cr", "cc", "bs", "C", "df", "np", "log", "constraints",
                              "center", "I"}]
        var = names[0] if names else t
        if var not in cols:
            notes.append(f"dropped {t!r}: no covariate {var!r}")
            continue
        vals = df[var].dropna()
        if vals.nunique() < 2:
            notes.append(f"dropped {t!r}: {var!r} takes fewer than 2 values")
            continue
        kept.append((t, var))
    used = [v for _, v in kept]
    data = df[[lhs, *dict.fromkeys(used)]].dropna()
    n = len(data)
    out_terms = []
    for t, var in kept:
        if re.match(r"\s*(cr|cc|bs)\(", t) and n < min_spline_n:
            notes.append(f"{n} subjects < {min_spline_n}: spline {t!r} replaced by a linear "
                         f"term {var!r}")
            t = var
        out_terms.append(t)
    fitted = f"{lhs} ~ " + (" + ".join(out_terms) if out_terms else "1")
    if n < len(out_terms) + 2:
        raise ValueError(f"regression {fitted!r} needs at least {len(out_terms) + 2} subjects "
                         f"with {lhs!r} and covariates {used}; got {n}")
    model = smf.ols(_spline_centered(fitted), data).fit()
    return {"requested": requested, "formula": fitted, "notes": notes, "nobs": int(model.nobs),
            "params": {k: float(v) for k, v in model.params.items()},
            "bse": {k: float(v) for k, v in model.bse.items()},
            "pvalues": {k: float(v) for k, v in model.pvalues.items()},
            "rsquared": float(model.rsquared), "model": model}


def network_contrast(ei: np.ndarray, networks: np.ndarray | None, subjects=None) -> dict:
    """Sensory-motor minus association E/I per subject, and its mean tested against 0."""
    import pandas as pd
    import statsmodels.formula.api as smf

    if networks is None:
        return {"skipped": "no network labels for this parcellation (pass networks=)"}
    a, b = _contrast_masks(networks)
    if not (a.any() and b.any()):
        return {"skipped": "no region is labelled sensory-motor or association"}
    ei = np.asarray(ei, dtype=float)
    diff = _nanmean(ei[:, a], axis=1) - _nanmean(ei[:, b], axis=1)
    out = {"sensory_motor": list(SENSORY_MOTOR), "association": list(ASSOCIATION),
           "n_regions": {"sensory_motor": int(a.sum()), "association": int(b.sum())},
           "per_subject": dict(zip(subjects if subjects is not None else range(len(diff)),
                                   (float(v) for v in diff), strict=True)),
           "mean": float(np.nanmean(diff)) if np.isfinite(diff).any() else None}
    ok = np.isfinite(diff)
    if ok.sum() >= 2:
        m = smf.ols("d ~ 1", pd.DataFrame({"d": diff[ok]})).fit()
        out.update(t=float(m.tvalues["Intercept"]), p=float(m.pvalues["Intercept"]),
                   se=float(m.bse["Intercept"]), nobs=int(ok.sum()))
    return out


def group_maps(ei: np.ndarray, groups: Sequence | None = None) -> dict[str, dict]:
    """{group: {"mean": [N], "sem": [N], "n": subjects}}; one group "all" when None."""
    ei = np.asarray(ei, dtype=float)
    labels = np.array(["all"] * ei.shape[0] if groups is None else
                      ["n/a" if g is None or (isinstance(g, float) and np.isnan(g)) else str(g)
                       for g in groups])
    out = {}
    for g in dict.fromkeys(labels.tolist()):
        x = ei[labels == g]
        n = np.isfinite(x).sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sd = np.nanstd(x, axis=0, ddof=1) if x.shape[0] > 1 else np.zeros(x.shape[1])
        out[g] = {"mean": _nanmean(x, axis=0).tolist(),
                  "sem": (sd / np.sqrt(np.maximum(n, 1))).tolist(), "n": int(x.shape[0])}
    return out


def network_means(ei: np.ndarray, networks, unassigned: str = "no Yeo-7 network") -> dict:
    """Each subject's mean E/I over the regions of each network.

    ei : [S, N] regional E/I ratios (S_E / S_I, dimensionless; NaN where a subject has no
        valid test, ignored by the means).
    networks : [N] Yeo-7 index per region (0-6; -1: no network).
    unassigned : name given to the regions of index -1 (e.g. :func:`unassigned_name`).

    Returns {"names": [K] network names (Yeo-7 order, then ``unassigned`` when some region
    has no network; networks without a region are left out), "index": [K] Yeo-7 indices (-1
    for ``unassigned``), "n_regions": [K], "values": [S, K] float array: the plain mean over
    the network's regions (NaN when all are NaN)}. This is what the network figure of
    ``population report`` plots; the sensory-motor and association means of
    :func:`network_contrast` pool the regions of their networks instead (a mean over all
    their regions, not a mean of network means).
    """
    ei = np.atleast_2d(np.asarray(ei, dtype=float))
    net = np.asarray(networks)
    if net.shape != (ei.shape[1],):
        raise ValueError(f"networks has shape {net.shape}; the E/I maps have "
                         f"{ei.shape[1]} regions")
    ks = [k for k in range(len(YEO7_NAMES)) if (net == k).any()]
    if (net < 0).any():
        ks.append(-1)
    names = [YEO7_NAMES[k] if k >= 0 else unassigned for k in ks]
    values = np.column_stack([_nanmean(ei[:, (net == k) if k >= 0 else (net < 0)], axis=1)
                              for k in ks]) if ks else np.zeros((ei.shape[0], 0))
    return {"names": names, "index": ks,
            "n_regions": [int(((net == k) if k >= 0 else (net < 0)).sum()) for k in ks],
            "values": values}
