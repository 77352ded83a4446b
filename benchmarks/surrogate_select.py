"""Which cost-predictor architecture to ship per parcellation: the plain MLP, the MLP with
structured fc_l1 / fcd_ks heads, or the structured MLP also supervised by simulated summaries,
chosen on the validation target's loss.

    nice .venv/bin/python benchmarks/surrogate_select.py

For each training data set (Schaefer-100 from ``hcp_schaefer100``, AAL2 from ``hcp_aal``) the
predictors are trained by :func:`nmmfit.surrogate.workflow.train_from_store` with the shipped
settings (seed 0, at most 100 epochs, patience 8 on the validation target's loss; the classifier,
which both share and which is not compared here, for one epoch only). The choice is the lower
best validation loss (the validation targets: subject 100307 on Schaefer-100, the fifth HCP
subject on AAL2). The held-out test metrics (test303; the two held-out HCP AAL2 subjects; gw,
unchanged AAL2 models) are recorded beside it for the report, never for the choice.

The third kind of variant needs simulated summaries of training rows
(:func:`nmmfit.surrogate.summaries.simulate_summaries`: valid training rows re-simulated at the
quick training setting, kept under ``--work`` and resumed); there is one variant per count in
``--summary-rows-schaefer`` / ``--summary-rows-aal2``, all from one file of the largest count
(a smaller count uses its first rows, which for a whole number of batches of 100 are the rows
a file of that count holds). The file
gives a check of the structured formulas themselves: fc_l1 and fcd_ks computed from a row's
re-simulated FC mean and FCD CDF (fresh noise) against its target, correlated with the row's
stored labels (``formula_check``).

Uses the generation stores that ``benchmarks/surrogate.py``'s data stage builds. Writes
``benchmarks/results/surrogate_select.json``; models are kept under ``--work`` and reused.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _stages import plain  # noqa: E402

ARCHS = ("mlp", "mlp-structured")  # then "mlp-structured+summaries(N)", one per count N
#: data set -> held-out stores its models are scored on (gw: transfer, unchanged models)
TESTS = {"hcp_schaefer100": ("hcp_schaefer100",), "hcp_aal": ("hcp_aal", "gw_aal")}


def formula_check(table: dict, tg: dict, summ: dict) -> dict:
    """r (and mean bias) between the stored fc_l1 / fcd_ks labels and the same terms computed
    from the rows' re-simulated summaries against their targets, at the CDF bins used."""
    from nmmfit.surrogate.networks import cdf_points

    rows = np.flatnonzero(np.isfinite(summ["m_sim"]) & table["valid"]
                          & np.isfinite(table["costs"]).all(axis=1))
    idx = cdf_points(tg["fcd_pdf"].shape[1], summ["cdf"].shape[1])
    cdf_emp = np.cumsum(tg["fcd_pdf"], axis=1)
    cdf_emp = cdf_emp / cdf_emp[:, -1:]
    iu = np.triu_indices(tg["fc"].shape[1], 1)
    m_emp = np.array([f[iu].mean() for f in tg["fc"]])
    ti = table["target_idx"][rows]
    l1 = np.abs(summ["m_sim"][rows] - m_emp[ti])
    ks = np.abs(summ["cdf"][rows] - cdf_emp[ti][:, idx]).max(axis=1)
    y = table["costs"][rows]
    return {"n_rows": int(rows.size),
            "r_fc_l1": float(np.corrcoef(l1, y[:, 1])[0, 1]),
            "bias_fc_l1": float(np.mean(l1 - y[:, 1])),
            "r_fcd_ks": float(np.corrcoef(ks, y[:, 2])[0, 1]),
            "bias_fcd_ks": float(np.mean(ks - y[:, 2])),
            "note": "labels: the stored single simulation; summaries: another simulation of "
                    "the same parameters (fresh noise)"}


def main(argv=None) -> int:
    import torch

    from nmmfit.surrogate.shipped import load_models, model_files
    from nmmfit.surrogate.summaries import load_summaries, simulate_summaries
    from nmmfit.surrogate.table import build_table
    from nmmfit.surrogate.targets import training_targets
    from nmmfit.surrogate.workflow import (
        SHIPPED_ARCH,
        SHIPPED_SUMMARY_ROWS,
        evaluate_models,
        train_from_store,
    )

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stores", type=Path, default=ROOT / "runs" / "surrogate_bench",
                   help="folder of surrogate_<dataset>.db (benchmarks/surrogate.py --stop-after "
                   "data builds them)")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "surrogate_select")
    p.add_argument("--summary-rows-schaefer", type=int, nargs="+", default=[4000],
                   help="counts of re-simulated training rows to try (one variant each)")
    p.add_argument("--summary-rows-aal2", type=int, nargs="+", default=[3000, 12000])
    p.add_argument("--out", type=Path, default=HERE / "results" / "surrogate_select.json")
    p.add_argument("--datasets", nargs="+", default=list(TESTS), choices=list(TESTS),
                   help="data sets to (re-)select; the others' entries are carried over "
                   "from an existing --out file and listed under 'carried_over'")
    args = p.parse_args(argv)
    out: dict = {}
    checks: dict = {}
    counts = {"hcp_schaefer100": args.summary_rows_schaefer,
              "hcp_aal": args.summary_rows_aal2}
    variants_of: dict = {}
    for ds, tests in TESTS.items():
        if ds not in args.datasets:
            continue
        n_summ = max(counts[ds])  # one file; smaller counts use its first rows
        store = args.stores / f"surrogate_{ds}.db"
        if not store.is_file():
            raise SystemExit(f"{store} missing: run `benchmarks/surrogate.py --stop-after data`")
        summ_path = args.work / f"summaries_{ds}.npz"
        table, tg = build_table(store, roles=("train", "val"))
        t0 = time.perf_counter()
        objs = training_targets(ds)
        simulate_summaries(table, tg, objs, summ_path, max_rows=n_summ, progress=True)
        checks[ds] = {**formula_check(table, tg, load_summaries(summ_path, table["G"].size,
                                                                200)),
                      "summaries_s_this_call": time.perf_counter() - t0}
        out[ds] = {}
        variants = {a: None for a in ARCHS} | {f"mlp-structured+summaries({n})": n
                                                for n in sorted(counts[ds])}
        variants_of[ds] = list(variants)
        for variant, n_rows in variants.items():
            arch = variant.partition("+")[0]
            d = args.work / f"{ds}-{variant}"
            t0 = time.perf_counter()
            if not model_files(d)[0].is_file():
                train_from_store(store, d, dataset=ds, arch=arch, seed=0, max_epochs=100,
                                 patience=8, classifier_epochs=1,
                                 summaries=summ_path if n_rows else None,
                                 summary_rows=n_rows)
            pred, clf = load_models(d)
            h = pred.meta["history"]
            row = {"best_val_loss": h["best_val_loss"], "best_epoch": h["best_epoch"],
                   "epochs_run": h["epochs_run"],
                   "val_r_total_at_best": h["val_r_total"][h["best_epoch"] - 1],
                   "train_s": h["wall_time_s"],
                   "n_rows_with_summaries": h.get("n_rows_with_summaries"),
                   "n_parameters": int(sum(t.numel() for t in pred.model.parameters())),
                   "test": {}}
            for t in tests:
                res = evaluate_models(args.stores / f"surrogate_{t}.db", pred, clf)
                res.pop("_arrays")
                row["test"][t] = res["predictor"]
            out[ds][variant] = row
            print(time.strftime("%H:%M:%S"), ds, variant, f"{time.perf_counter() - t0:.0f} s",
                  json.dumps({k: row[k] for k in ("best_val_loss", "val_r_total_at_best")}),
                  {t: round(v["r_total"], 3) for t, v in row["test"].items()},
                  file=sys.stderr, flush=True)
        chosen = min(variants, key=lambda a: out[ds][a]["best_val_loss"])
        out[ds]["chosen_by_val_loss"] = chosen
        n_shipped = SHIPPED_SUMMARY_ROWS.get(ds)
        out[ds]["shipped"] = SHIPPED_ARCH[ds] + (f"+summaries({n_shipped})" if n_shipped
                                                 else "")
    summary = {ds: {"chosen": v["chosen_by_val_loss"], "shipped": v["shipped"],
                    **{a: {"val_loss": v[a]["best_val_loss"],
                           "test_r_total": {t: m["r_total"] for t, m in v[a]["test"].items()}}
                       for a in variants_of[ds]}}
               for ds, v in out.items()}
    carried = {}
    if set(args.datasets) != set(TESTS) and args.out.is_file():
        prev = json.loads(args.out.read_text())
        for ds in TESTS:
            if ds not in args.datasets and ds in prev.get("runs", {}):
                for key, dst in (("summary", summary), ("formula_check", checks),
                                 ("runs", out)):
                    if ds in prev.get(key, {}):
                        dst[ds] = prev[key][ds]
                counts[ds] = prev.get("summary_rows", {}).get(ds, counts[ds])
                carried[ds] = "not re-run: copied from the previous " + args.out.name
    result = {"summary": summary, "formula_check": checks, "runs": out, "seed": 0,
              "summary_rows": counts, "carried_over": carried,
              "rule": "lower best validation loss; test metrics are reported, not used",
              "torch": torch.__version__,
              "machine": {"platform": platform.platform(), "python": platform.python_version()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=plain))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
