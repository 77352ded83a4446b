"""A population study: fit many subjects, then regress their E/I ratio on age and sex.

The question of DELSSOME-style population work is how the regional excitation/inhibition
(E/I) balance changes across people (lifespan, disorders). This example runs the whole chain
on a *synthetic* cohort, so that it runs anywhere without access to a large data set:

1. ``nmmfit.population.synthetic_cohort`` makes subjects from the 7 real HCP AAL2 individuals
   (each synthetic subject: a real subject's SC times symmetric log-normal noise, its BOLD
   block-bootstrapped in time plus noise) with random ages (8-90 years) and sexes. The
   covariates carry no signal: no age effect is expected, and the regression should find
   none (a check of the analysis, not a finding);
2. ``nmmfit.population.run_cohort`` fits every subject (surrogate CMA-ES search with the
   shipped AAL2 DELSSOME surrogates, simulated validation and test), on a Dask
   ``LocalCluster`` with one single-threaded worker per usable core, results going to an
   SQLite store (re-running skips finished subjects);
3. the group analysis of ``nmmfit.population.analysis``: one row per subject
   (``subject_frame``: mean E/I, sensory-motor and association E/I and their difference,
   covariates), an OLS regression with statsmodels (``regress``: by default
   ``ei ~ cr(age, df=3) + C(sex)``, a natural cubic spline in age; with fewer than 12
   subjects the spline becomes a linear term, and the fitted formula says so), and the
   sensory-motor minus association contrast (``network_contrast``; AAL2 regions get an
   approximate Yeo-7 network);
4. ``nmmfit.population.report``: CSV and Parquet exports, the regression, and four figures:
   E/I against age with the fitted curve (``<cohort>_ei_age.png``), regional E/I maps by
   sex (``<cohort>_ei_maps.png``), E/I by network per subject with the sensory-motor vs
   association contrast (``<cohort>_ei_networks.png``) and each subject's test cost
   (``<cohort>_fit_quality.png``).

Run::

    python examples/04_population_study.py                    # 24 subjects, surrogate search
    python examples/04_population_study.py --subjects 200     # a bigger cohort
    python examples/04_population_study.py --smoke            # 4 subjects, tiny Euler fits

The README's Population section measured 150 subjects per hour with 2 workers on a 2-core
machine (24 subjects in about 10 min); docs/cluster.md shows how to run thousands on a
cluster. The same study from the command line: ``nmmfit population fit``, ``nmmfit
population report``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from nmmfit.population import (
    ResultsDB,
    network_contrast,
    regress,
    report,
    run_cohort,
    subject_frame,
    synthetic_cohort,
)

NAME = "04_population_study"

#: preset overrides of smoke mode (see examples 02 and 03)
SMOKE = dict(n_epochs=1, popsize=4, mu=2, n_dup_val=1, n_dup_test=2, test_group=1,
             duration_s=72.0, test_duration_s=72.0, test_dt=0.006, burn_in_s=14.4,
             warmup_steps=500, init="linear_fc", init_iter=2)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true",
                   help="tiny settings (also NMMFIT_EXAMPLES_SMOKE=1)")
    p.add_argument("--out", type=Path, default=Path("runs/examples") / NAME,
                   help="output folder (default %(default)s)")
    p.add_argument("--subjects", type=int, default=None,
                   help="synthetic subjects (default 24; 4 in smoke mode)")
    p.add_argument("--evaluator", default=None, choices=("euler", "surrogate"),
                   help="search evaluator (default surrogate; euler in smoke mode)")
    p.add_argument("--executor", default=None, choices=("dask", "serial"),
                   help="default dask (LocalCluster); serial in smoke mode")
    args = p.parse_args(argv)
    args.smoke = args.smoke or os.environ.get("NMMFIT_EXAMPLES_SMOKE") == "1"
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    n_subjects = args.subjects or (4 if args.smoke else 24)
    evaluator = args.evaluator or ("euler" if args.smoke else "surrogate")
    executor = args.executor or ("serial" if args.smoke else "dask")
    overrides = SMOKE if args.smoke else {}

    # --- 1. The cohort -----------------------------------------------------------------------
    # Subject i depends only on (data set, seed, i): a larger cohort extends a smaller one,
    # and its results in the store are reused.
    cohort = synthetic_cohort("hcp_aal", n_subjects=n_subjects, seed=0)
    print(cohort)
    print(cohort.covariates.head())

    # --- 2. Fit every subject ------------------------------------------------------------
    # Dask: one single-threaded worker per core this process may use (run_cohort's default,
    # from the CPU affinity); a remote cluster instead: run_cohort(...,
    # scheduler="tcp://host:8786") (docs/cluster.md).
    store = out / "population.db"
    print(f"fitting {n_subjects} subjects: {evaluator} search, executor {executor}")
    run = run_cohort(cohort, executor=executor, store=store,
                     preset="quick", evaluator=evaluator, seed=0, progress=not args.smoke,
                     **overrides)
    print(f"done {len(run['done'])}, skipped (finished before) {len(run['skipped'])}, "
          f"failed {len(run['failed'])}, {run['wall_s']:.1f} s")
    for sid, err in run["failed"].items():
        print(f"--- {sid} failed:\n{err}")

    # --- 3. Group analysis ---------------------------------------------------------------
    with ResultsDB(store, readonly=True) as db:
        subjects, ei, ei_sd = db.ei_maps(run["cohort"], run["config_hash"])
    # ei: [subjects, regions] fitted E/I maps (mean over valid test duplicates), ei_sd: their
    # spread over duplicates
    df = subject_frame(subjects, ei, cohort.covariates, cohort.networks)
    print(df.round(4).to_string(index=False))
    # Subjects without a valid test simulation have no E/I map (NaN) and drop out here.
    try:
        reg = regress(df)   # "ei ~ cr(age, df=3) + C(sex)", adapted to small n (see notes)
    except ValueError as err:   # e.g. too few subjects with a valid fit
        reg = {"skipped": str(err)}
        print(f"\nregression skipped: {err}")
    else:
        print(f"\nregression {reg['formula']}  (requested {reg['requested']}; n "
              f"{reg['nobs']}, R^2 {reg['rsquared']:.3f})")
        for note in reg["notes"]:
            print("  note:", note)
        for term, beta in reg["params"].items():
            print(f"  {term:28s} {beta:+.4f} (se {reg['bse'][term]:.4f}, p "
                  f"{reg['pvalues'][term]:.3f})")
    con = network_contrast(ei, cohort.networks, subjects)
    if "mean" in con:
        print(f"sensory-motor minus association E/I: mean {con['mean']:+.4f}"
              + (f", t {con['t']:.2f}, p {con['p']:.3f}" if "t" in con else ""))

    # --- 4. Exports and figures ----------------------------------------------------------
    rep = report(store, cohort=run["cohort"], config_hash=run["config_hash"],
                 out_dir=out / "report", covariates=cohort.covariates,
                 networks=cohort.networks, labels=cohort.region_labels)
    print("exports:", ", ".join(Path(p).name for p in rep["exports"].values()))
    print("figures:", ", ".join(Path(p).name for p in rep.get("figures", {}).values()))

    summary = {"example": NAME, "smoke": args.smoke, "cohort": run["cohort"],
               "config_hash": run["config_hash"], "n_subjects": n_subjects,
               "done": run["done"], "failed": list(run["failed"]),
               "ei_mean": [float(np.nanmean(r)) if np.isfinite(r).any() else None
                           for r in ei],
               "regression": {k: reg[k] for k in ("formula", "requested", "notes", "nobs",
                                                   "params", "pvalues", "rsquared", "skipped")
                              if k in reg},
               "contrast_mean": con.get("mean"), "exports": rep["exports"],
               "figures": rep.get("figures", {})}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
