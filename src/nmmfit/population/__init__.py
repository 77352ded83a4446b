"""Population-scale fits: every subject of a cohort fitted (serial or Dask), resumable, with
E/I group analysis.

>>> from nmmfit.population import Cohort, run_cohort, ResultsDB, synthetic_cohort
>>> cohort = Cohort.load("hcp_aal")                      # or a BIDS-like directory
>>> big = synthetic_cohort("hcp_aal", n_subjects=1000)   # perturbed copies (benchmarks)
>>> out = run_cohort(cohort, executor="dask", store="pop.db", preset="quick")
>>> ResultsDB("pop.db").table(out["cohort"], out["config_hash"])

Modules: :mod:`~nmmfit.population.cohort` (subjects and their Targets),
:mod:`~nmmfit.population.folders` (BIDS-like cohort folders),
:mod:`~nmmfit.population.covariates` (the covariate table),
:mod:`~nmmfit.population.synthetic` (perturbed copies of real subjects),
:mod:`~nmmfit.population.runner` (fit_subject, run_cohort), :mod:`~nmmfit.population.results`
(SQLite attempts table, CSV/Parquet export), :mod:`~nmmfit.population.analysis`
(statsmodels regressions, network contrast). Figures: :mod:`nmmfit.plots.population`.

Needs the ``population`` extra (``pip install 'nmmfit[population]'``: distributed,
statsmodels, pandas, pyarrow): importing the package without them is one clear ImportError
(:func:`nmmfit._extras.require`).
"""

from pathlib import Path

import numpy as np

from nmmfit._extras import require
from nmmfit.plots.population import (
    plot_fit_quality,
    plot_group_maps,
    plot_network_ei,
    plot_trajectory,
)
from nmmfit.population.analysis import (
    DEFAULT_FORMULA,
    group_maps,
    network_contrast,
    network_means,
    networks_for,
    regress,
    subject_frame,
    unassigned_name,
)
from nmmfit.population.cohort import (
    Cohort,
    SubjectSpec,
    cohort_networks,
    cohort_regions,
    default_maps,
    synthetic_cohort,
)
from nmmfit.population.covariates import read_covariates
from nmmfit.population.results import DEFAULT_DB, ResultsDB, test_protocol
from nmmfit.population.runner import (
    SchedulerError,
    fit_subject,
    run_cohort,
    run_config,
    subject_seed,
)
from nmmfit.population.synthetic import perturb_subject

require("population", feature="nmmfit.population")

__all__ = ["Cohort", "SubjectSpec", "read_covariates", "synthetic_cohort", "perturb_subject",
           "ResultsDB", "DEFAULT_DB",
           "fit_subject", "run_cohort", "run_config", "subject_seed", "SchedulerError",
           "regress", "network_contrast", "group_maps", "network_means", "subject_frame",
           "networks_for", "default_maps", "cohort_networks", "cohort_regions", "fit_cohort",
           "report"]


def fit_cohort(source, covariates=None, *, name: str | None = None, tr: float | None = None,
               maps=None, store=DEFAULT_DB, **run_options) -> dict:
    """Load a cohort, fit its unfinished subjects and record them (the ``population fit``
    command).

    source : bundled data set name or BIDS-like directory (:meth:`Cohort.load`, with
        ``covariates``, ``name`` and, for a directory, ``tr``).
    maps : parametrisation maps (default :func:`default_maps`).
    store : results SQLite file; besides the fits (:func:`run_cohort`, which gets
        ``run_options``), the cohort's covariate table is recorded there (read by
        :func:`report`).

    Returns :func:`run_cohort`'s dict plus ``status`` (:meth:`ResultsDB.status`) and, when the
    cohort has covariates, ``covariates`` (where they were recorded).
    """
    kw = {"maps": tuple(default_maps(source) if maps is None else maps), "name": name}
    if tr is not None:
        kw["tr"] = tr
    cohort = Cohort.load(source, covariates, **kw)
    out = run_cohort(cohort, store=store, **run_options)
    with ResultsDB(store) as db:
        if len(cohort.covariates.columns):  # kept in the store itself, read by `report`
            db.put_covariates(cohort.name, cohort.covariates)
            out["covariates"] = f"{store} (table covariates)"
        out["status"] = db.status(cohort.name, out["config_hash"], cohort.subjects)
    return out


def report(store, cohort: str | None = None, config_hash: str | None = None, out_dir=None,
           covariates=None, formula: str | None = None, networks=None, figures: bool = True,
           group_by: str | None = "sex", labels=None) -> dict:
    """Export, analyse and plot a stored population run (the ``population report`` command).

    ``store`` is only read (a missing file is a FileNotFoundError; nothing is created);
    ``covariates`` default: the table recorded by ``population fit`` in the store (for stores
    written before that table: the side file ``<store stem>.<cohort>.covariates.tsv`` beside
    the store, if there is one). ``networks``: [N] Yeo-7 index per region (-1: none) for the
    contrast and the network figures; ``labels``: [N] region names (the E/I map's axis, and
    the name of the regions without a network: :func:`unassigned_name`).

    Returns a JSON-ready dict: cohort, config_hash, n_subjects, exports (paths), regression
    (or the reason it was skipped), contrast, network_means (names, n_regions and, per
    network, each subject's mean E/I: what the network figure plots), group_maps,
    test_protocol (how the test costs were measured), figures ({name: PNG path}; written
    when ``figures`` and ``out_dir``) and figures_skipped ({name: why}):

    - ``group_maps`` ``<cohort>_ei_maps.png``: regional E/I, mean +/- s.e.m. per group;
    - ``network_ei`` ``<cohort>_ei_networks.png``: E/I by network per subject and the
      sensory-motor vs association contrast (needs ``networks``);
    - ``fit_quality`` ``<cohort>_fit_quality.png``: each subject's test cost and its terms;
    - ``trajectory`` ``<cohort>_ei_age.png``: E/I against age (needs an ``age`` covariate).
    """
    with ResultsDB(store, readonly=True) as db:
        cname, chash = db.resolve(cohort, config_hash)
        subs, ei, _ = db.ei_maps(cname, chash)
        table = db.table(cname, chash)
        protocol = test_protocol(db.run_config(cname, chash))
        if covariates is None:
            covariates = db.covariates(cname)
        if covariates is None:
            side = db.path.with_suffix(f".{cname}.covariates.tsv")
            covariates = side if side.is_file() else None
        cov = read_covariates(covariates)
        out = {"cohort": cname, "config_hash": chash, "n_subjects": len(subs)}
        if out_dir is not None:
            out["exports"] = db.export(cname, chash, out_dir, cov)
    if not subs:
        out["skipped"] = "no finished subject"
        return out
    df = subject_frame(subs, ei, cov, networks)
    try:
        reg = regress(df, formula or DEFAULT_FORMULA)
        reg.pop("model")
        out["regression"] = reg
    except (ValueError, KeyError) as err:
        out["regression"] = {"skipped": str(err)}
    out["contrast"] = network_contrast(ei, networks, subs)
    unassigned = unassigned_name(labels, networks)
    if networks is not None:
        nm = network_means(ei, networks, unassigned)
        out["network_means"] = {
            "names": nm["names"], "n_regions": dict(zip(nm["names"], nm["n_regions"],
                                                        strict=True)),
            "per_subject": {name: {s: (float(v) if np.isfinite(v) else None)
                                   for s, v in zip(subs, nm["values"][:, j], strict=True)}
                            for j, name in enumerate(nm["names"])}}
    groups = df[group_by].tolist() if group_by and group_by in df.columns else None
    gm = group_maps(ei, groups)
    out["group_maps"] = gm
    out["test_protocol"] = protocol
    if figures and out_dir is not None:
        figs, skipped = {}, {}
        d = Path(out_dir)
        head = f"{cname}, n = {len(subs)} subjects"
        if "age" in df.columns and df["age"].notna().sum() >= 2:
            figs["trajectory"] = str(plot_trajectory(df, d / f"{cname}_ei_age.png",
                                                     formula=formula or DEFAULT_FORMULA,
                                                     title=f"{head}: mean E/I against age"))
        else:
            skipped["trajectory"] = "no age covariate for at least 2 subjects"
        figs["group_maps"] = str(plot_group_maps(
            gm, d / f"{cname}_ei_maps.png", networks=networks, labels=labels,
            unassigned=unassigned,
            title=f"{head}: regional E/I, mean ± s.e.m. over subjects"
                  + (f" per {group_by}" if groups is not None else "")))
        if networks is not None:
            figs["network_ei"] = str(plot_network_ei(
                ei, networks, d / f"{cname}_ei_networks.png", subs, out["contrast"],
                title=f"{head}: E/I by Yeo-7 network", unassigned=unassigned))
        else:
            skipped["network_ei"] = "no network labels for this parcellation (pass networks=)"
        figs["fit_quality"] = str(plot_fit_quality(
            table, d / f"{cname}_fit_quality.png", title=f"{head}: fit quality per subject",
            cost_label=protocol))
        out["figures"] = figs
        if skipped:
            out["figures_skipped"] = skipped
    return out
