"""Benchmark: the DELSSOME surrogates against Euler simulation (issue 4, "Must show").

Writes ``benchmarks/results/surrogate.json`` (and figures under ``benchmarks/results/figures/``).

Stages (each result is cached in ``--work``/stages.json, so a killed run resumes):

1. data: the repository's compact tables (``data/surrogate/<dataset>_quick.npz``) are imported
   into generation stores under ``--work`` (build them with ``nmmfit surrogate generate``);
2. train: a cost predictor (``--arch``, default each parcellation's shipped architecture) and
   a classifier per parcellation (Schaefer-100 from ``hcp_schaefer100``, AAL2 from
   ``hcp_aal``), or reuse trained models found in ``--work``;
3. quality on held-out targets: the Schaefer-100 test group (test303), the held-out HCP AAL2
   individuals, and (transfer, unchanged models) the gw individuals when their table exists;
4. per-evaluation speed: Euler (quick preset training settings) against the surrogate, batch
   of 100 candidates, side by side on this machine;
5. whole fit: Euler CMA-ES against surrogate CMA-ES, quick preset, same targets and seeds,
   same Euler validation and test; the paper preset is extrapolated from per-evaluation times;
6. E/I agreement: every bundled AAL2 individual (HCP and gw) fitted both ways.

Run: ``.venv/bin/python benchmarks/surrogate.py`` (``--smoke`` for a minutes-long check of
the plumbing with tiny settings; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _stages import load_stages, plain, run_stages

from nmmfit.data.sc import LEGACY_SC_RECIPE  # the shipped surrogates' SC recipe

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: Datasets whose tables train models (gw_aal is only a transfer test)
TRAIN_DATASETS = ("hcp_schaefer100", "hcp_aal")


def stage_data(work: Path, datasets, tables: Path) -> dict:
    """Import the shipped compact tables into stores under ``work``."""
    from nmmfit.fit.store import Store
    from nmmfit.surrogate.compact import import_compact

    out = {}
    for ds in datasets:
        table = tables / f"{ds}_quick.npz"
        store = work / f"surrogate_{ds}.db"
        if not table.is_file():
            out[ds] = {"store": str(store), "table": None,
                       "why": f"{table} missing: run `nmmfit surrogate generate --dataset {ds}`"}
            continue
        imp = import_compact(table, store)
        with Store(store) as st:
            n = st.count(phase="train")
        out[ds] = {"store": str(store), "table": str(table), "rows": n, **imp}
    return out


def stage_train(work: Path, data: dict, arch: str, epochs: int, seed: int,
                max_rows: int | None = None, classifier_arch: str = "mlp",
                weights_dtype: str = "float16") -> dict:
    """Train (or reuse) a predictor and a classifier per parcellation (``arch`` "shipped":
    each data set's shipped architecture)."""
    from nmmfit.surrogate.shipped import missing_model_files
    from nmmfit.surrogate.summaries import simulate_summaries
    from nmmfit.surrogate.table import build_table
    from nmmfit.surrogate.targets import training_targets
    from nmmfit.surrogate.workflow import SHIPPED_ARCH, SHIPPED_SUMMARY_ROWS, train_from_store

    out = {}
    for ds in TRAIN_DATASETS:
        if data.get(ds, {}).get("table") is None:
            continue
        a = SHIPPED_ARCH[ds] if arch == "shipped" else arch
        n_summ = SHIPPED_SUMMARY_ROWS.get(ds) if arch == "shipped" else None
        summ = None
        if n_summ:  # the shipped recipe: re-simulated summaries of n_summ training rows
            summ = work / f"summaries_{ds}.npz"
            table, tg = build_table(data[ds]["store"], roles=("train", "val"))
            objs = training_targets(ds)
            simulate_summaries(table, tg, objs, summ, max_rows=n_summ if max_rows is None else 50,
                               progress=True)
        tag = f"{a}+summaries" if summ else a
        d = work / "models" / f"{ds}-{tag}-clf_{classifier_arch}"
        if missing_model_files(d):
            pair = train_from_store(data[ds]["store"], d, dataset=ds, arch=a, seed=seed,
                                    max_epochs=epochs, progress=True, max_rows=max_rows,
                                    classifier_arch=classifier_arch,
                                    weights_dtype=weights_dtype, summaries=summ,
                                    summary_rows=n_summ if summ else None)
            hist = pair.history
        else:
            hist = None
        out[ds] = {"models": str(d), "arch": tag, "trained_now": hist is not None,
                   "predictor_epochs": None if hist is None else
                   hist["predictor"]["epochs_run"],
                   "train_wall_s": None if hist is None else hist["wall_s"]}
    return out


def _models(trained: dict, ds: str):
    from nmmfit.surrogate.shipped import load_models

    return load_models(trained[ds]["models"])


def stage_quality(work: Path, data: dict, trained: dict, figdir: Path) -> dict:
    """Classifier accuracy / chance and predictor r on the held-out ('test') targets."""
    from nmmfit.plots.surrogate import plot_classifier, plot_predictor
    from nmmfit.surrogate.table import build_table
    from nmmfit.surrogate.train import cost_metrics
    from nmmfit.surrogate.workflow import evaluate_models

    out = {}
    sets = [("hcp_schaefer100", "hcp_schaefer100"), ("hcp_aal", "hcp_aal"),
            ("gw_aal", "hcp_aal")]  # (data, models): gw uses the HCP AAL2 models unchanged
    for ds, model_ds in sets:
        if model_ds not in trained or data.get(ds, {}).get("table") is None:
            out[ds] = None
            continue
        pred, clf = _models(trained, model_ds)
        res = evaluate_models(data[ds]["store"], pred, clf, roles=("test",))
        arr = res.pop("_arrays")
        table, _ = build_table(data[ds]["store"], roles=("test",))
        ok = table["valid"] & np.isfinite(table["costs"]).all(axis=1)
        lab3 = _labels3(work, ds, table, ok)
        if lab3 is not None:
            fin = np.isfinite(lab3).all(axis=1)
            res["predictor_vs_mean_of_duplicates"] = {
                **cost_metrics(arr["pred"][fin], lab3[fin]), "n_rows": int(fin.sum()),
                "label": "mean over 1 + 2 re-simulated duplicates (paper's param_dup = 3)"}
        res["figures"] = [
            str(plot_predictor(arr["pred"], arr["true"], figdir / f"surrogate_{ds}_pred.png",
                               title=f"{trained[model_ds].get('arch', '')} predictor, "
                                     f"held-out {ds}")),
            str(plot_classifier(arr["proba"], arr["valid"], figdir / f"surrogate_{ds}_clf.png",
                                title=f"classifier, held-out {ds}"))]
        out[ds] = res
    return out


def stage_labels(work: Path, data: dict, n_extra: int = 2, seed: int = 9001,
                 max_rows: int | None = None) -> dict:
    """Re-simulate the valid held-out rows ``n_extra`` more times (fresh noise, the same quick
    training setting) and store the per-term costs under ``work``/labels_<ds>.npz.

    The stored generation label is one duplicate, so it carries simulation noise that no
    predictor can follow. The mean of 1 + ``n_extra`` duplicates is the paper's Euler training
    label (param_dup = 3). The spread between duplicates gives the label reliability (test-retest
    r of single-duplicate costs) and so the ceiling on r against a single-duplicate label.
    """
    from nmmfit.fit import get_preset, sim_config_for
    from nmmfit.sim import simulate
    from nmmfit.stats.cost import fc_fcd_cost
    from nmmfit.surrogate.table import build_table
    from nmmfit.surrogate.targets import surrogate_targets
    from nmmfit.surrogate.workflow import subset

    out = {}
    pre = get_preset("quick")
    for ds in ("hcp_schaefer100", "hcp_aal", "gw_aal"):
        if data.get(ds, {}).get("table") is None:
            continue
        path = work / f"labels_{ds}.npz"
        table, tg = build_table(data[ds]["store"], roles=("test",))
        rows = np.flatnonzero(table["valid"] & np.isfinite(table["costs"]).all(axis=1))
        if max_rows is not None:
            rows = rows[:max_rows]
        if not path.is_file():
            targets = {t.name: t for t in surrogate_targets(ds)["test"]}
            extra = np.full((rows.size, n_extra, 3), np.nan)
            t0 = time.perf_counter()
            for i, name in enumerate(tg["names"]):
                sel = np.flatnonzero(table["target_idx"][rows] == i)
                tgt = targets[name]
                cfg = sim_config_for(tgt, pre, "train")
                for start in range(0, sel.size, 100):
                    part = subset(table, rows[sel[start:start + 100]])
                    res = simulate(tgt.sc, part["wEE"], part["wEI"], part["G"], part["sigma"],
                                   config=cfg, n_dup=n_extra, seed=seed + start)
                    for d in range(n_extra):
                        ct = fc_fcd_cost(res.bold[:, d:d + 1], tgt, valid=res.valid[:, d:d + 1],
                                         warn_frames=False)
                        terms = np.stack([ct.fc_corr, ct.fc_l1, ct.fcd_ks], axis=1)
                        extra[sel[start:start + 100], d] = np.where(ct.valid[:, None], terms,
                                                                    np.nan)
            np.savez(path, rows=rows, extra=extra, wall_s=time.perf_counter() - t0)
        z = np.load(path)
        if not np.array_equal(z["rows"], rows):
            raise RuntimeError(f"{path} was made from other rows; delete it to rebuild")
        first, extra = table["costs"][rows], z["extra"]
        a, b = first.sum(axis=1), extra[:, 0].sum(axis=1)
        ok = np.isfinite(a) & np.isfinite(b)
        out[ds] = {"file": str(path), "n_rows": int(rows.size), "n_extra_duplicates": n_extra,
                   "seed": seed, "wall_s": float(z["wall_s"]),
                   "retest_r_total_single_duplicate": float(np.corrcoef(a[ok], b[ok])[0, 1]),
                   "retest_r_terms_single_duplicate": [
                       float(np.corrcoef(first[ok, j], extra[ok, 0, j])[0, 1]) for j in range(3)],
                   "note": "labels3 = mean over the stored duplicate and the re-simulated ones "
                           "that stayed valid (quick training setting, fresh noise)"}
    return out


def _labels3(work: Path, ds: str, table: dict, ok: np.ndarray) -> np.ndarray | None:
    """[n_ok, 3] mean-of-duplicates labels for the valid rows ``ok`` (stage_labels), or None."""
    path = work / f"labels_{ds}.npz"
    if not path.is_file():
        return None
    z = np.load(path)
    rows = np.flatnonzero(ok)
    if not np.array_equal(z["rows"], rows):
        return None
    allv = np.concatenate([table["costs"][rows][:, None], z["extra"]], axis=1)
    return np.nanmean(allv, axis=1)


def _timeit(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return float(best)


def stage_speed(trained: dict, repeats: int) -> dict:
    """Per-evaluation time, batch of 100, Euler (quick training settings) vs surrogate."""
    from nmmfit.fit import (
        EulerEvaluator,
        Parametrisation,
        default_targets,
        get_preset,
        sim_config_for,
    )
    from nmmfit.surrogate.evaluator import SurrogateEvaluator

    _, _, test = default_targets(sc_normalisation=LEGACY_SC_RECIPE)
    param = Parametrisation.from_target(test)
    rng = np.random.default_rng(0)
    x = param.uniform_vectors(rng, 20000)
    x = x[param.in_bounds(x)][:100]
    pre = get_preset("quick")
    euler = EulerEvaluator(test, param, config=sim_config_for(test, pre, "train"),
                           n_dup=pre.n_dup_train)
    t_euler = _timeit(lambda: euler.evaluate(x, 0), 2)
    pred, clf = _models(trained, "hcp_schaefer100")
    by_threads = {}
    for threads in (1, 2):  # small batches: thread start-up can cost more than it saves
        sur = SurrogateEvaluator(test, param, pred, clf, threads=threads)
        sur.evaluate(x, 0)  # warm-up
        by_threads[threads] = _timeit(lambda s=sur: s.evaluate(x, 0), repeats)
    best_threads = min(by_threads, key=by_threads.get)
    t_sur = by_threads[best_threads]
    paper = json.loads((HERE / "results" / "fit.json").read_text())["paper_preset_estimate"]
    paper_per_cand = paper["seconds_per_epoch"] / 100.0
    return {"batch": int(x.shape[0]), "euler_s_per_candidate": t_euler / x.shape[0],
            "surrogate_s_per_candidate": t_sur / x.shape[0],
            "eval_speedup": t_euler / t_sur, "surrogate_threads": best_threads,
            "surrogate_s_per_batch_by_threads": by_threads,
            "euler_setting": "quick preset training: 216 s runs, 1 duplicate, dt 6 ms",
            "paper_euler_s_per_candidate_extrapolated": paper_per_cand,
            "paper_eval_speedup_extrapolated": paper_per_cand / (t_sur / x.shape[0])}


def _fit_pair(train, val, test, trained, model_ds, seed, store, overrides):
    from nmmfit.fit import Parametrisation, fit
    from nmmfit.surrogate.evaluator import SurrogateEvaluator

    maps = ("myelin", "fc_gradient") if model_ds == "hcp_schaefer100" else ("fc_gradient",)
    out = {}
    for kind in ("euler", "surrogate"):
        ev = None
        if kind == "surrogate":
            pred, clf = _models(trained, model_ds)
            ev = SurrogateEvaluator(train, Parametrisation.from_target(train, maps), pred, clf)
        t0 = time.perf_counter()
        res = fit(train, val, test, preset="quick", maps=maps, seed=seed, evaluator=ev,
                  store=store, run_id=f"{kind}-{train.name}-s{seed}", **overrides)
        out[kind] = {"wall_s": time.perf_counter() - t0, "timings": res.timings,
                     "test_cost": res.test_cost, "best_val_cost": res.best_val_cost,
                     "ei_map": res.ei_map.tolist(), "ei_mean": float(np.nanmean(res.ei_map)),
                     "train_best_per_epoch": res.train.best_total.tolist(),
                     "val_cost_per_epoch": res.val_total.tolist()}
    return out


def stage_fit(work: Path, trained: dict, seeds, overrides) -> dict:
    """Euler vs surrogate CMA-ES on the group setting (quick preset)."""
    from nmmfit.fit import default_targets

    train, val, test = default_targets(sc_normalisation=LEGACY_SC_RECIPE)
    runs = {str(s): _fit_pair(train, val, test, trained, "hcp_schaefer100", s,
                              work / "fits.db", overrides) for s in seeds}
    tr_ratio = [r["euler"]["timings"]["train_s_total"] / r["surrogate"]["timings"]
                ["train_s_total"] for r in runs.values()]
    e2e = [r["euler"]["wall_s"] / r["surrogate"]["wall_s"] for r in runs.values()]
    cost = [r["surrogate"]["test_cost"]["total"] / r["euler"]["test_cost"]["total"]
            for r in runs.values()]
    return {"runs": runs, "train_phase_speedup": float(np.mean(tr_ratio)),
            "end_to_end_speedup": float(np.mean(e2e)), "test_cost_ratio": float(np.mean(cost))}


def stage_ei(work: Path, trained: dict, seed: int, overrides, datasets=("hcp_aal", "gw_aal"),
             max_subjects: int | None = None) -> dict:
    """Fit every bundled AAL2 individual with Euler and with surrogate CMA-ES."""
    from nmmfit import datasets as dsets
    from nmmfit.data.target import Target

    if "hcp_aal" not in trained:
        return {"subjects": {}, "ei_r_subjects": None, "ei_map_r_within_subject": {},
                "test_cost_ratio_by_subject": {}, "why": "no AAL2 models (no hcp_aal table)"}
    out = {}
    for ds in datasets:
        d = dsets.load(ds)
        for sid in sorted(d.subjects)[:max_subjects]:
            tgt = Target.from_dataset(d, subjects=[sid], maps=("fc_gradient",),
                                      sc_normalisation=LEGACY_SC_RECIPE, name=f"{ds}:{sid}")
            out[f"{ds}:{sid}"] = _fit_pair(tgt, tgt, tgt, trained, "hcp_aal", seed,
                                           work / "fits_ei.db", overrides)
    eu = np.array([v["euler"]["ei_mean"] for v in out.values()])
    su = np.array([v["surrogate"]["ei_mean"] for v in out.values()])
    within = {k: float(np.corrcoef(np.asarray(v["euler"]["ei_map"]),
                                   np.asarray(v["surrogate"]["ei_map"]))[0, 1])
              for k, v in out.items()}
    ratio = {k: v["surrogate"]["test_cost"]["total"] / v["euler"]["test_cost"]["total"]
             for k, v in out.items()}
    return {"subjects": out, "ei_r_subjects": float(np.corrcoef(eu, su)[0, 1]) if eu.size > 2
            else None, "ei_map_r_within_subject": within, "test_cost_ratio_by_subject": ratio}


def stage_ei_retest(work: Path, ei: dict, seed: int, overrides) -> dict:
    """The same Euler fit of every AAL2 individual with another seed: how well does Euler
    CMA-ES agree with itself on the E/I ratio? (the ceiling for the surrogate's agreement)."""
    from nmmfit import datasets as dsets
    from nmmfit.data.target import Target
    from nmmfit.fit import fit

    out = {}
    for key in ei["subjects"]:
        ds, sid = key.split(":", 1)
        tgt = Target.from_dataset(dsets.load(ds), subjects=[sid], maps=("fc_gradient",),
                                  sc_normalisation=LEGACY_SC_RECIPE, name=key)
        res = fit(tgt, tgt, tgt, preset="quick", maps=("fc_gradient",), seed=seed,
                  store=work / "fits_ei.db", run_id=f"euler-{key}-s{seed}", **overrides)
        out[key] = {"ei_map": res.ei_map.tolist(), "ei_mean": float(np.nanmean(res.ei_map)),
                    "test_cost": res.test_cost}
    a = np.array([ei["subjects"][k]["euler"]["ei_mean"] for k in out])
    b = np.array([out[k]["ei_mean"] for k in out])
    within = {k: float(np.corrcoef(np.asarray(ei["subjects"][k]["euler"]["ei_map"]),
                                   np.asarray(v["ei_map"]))[0, 1]) for k, v in out.items()}
    return {"seed": seed, "subjects": out,
            "ei_r_subjects_euler_vs_euler": float(np.corrcoef(a, b)[0, 1]) if a.size > 2
            else None, "ei_map_r_within_subject_euler_vs_euler": within}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default=str(ROOT / "runs" / "surrogate_bench"))
    p.add_argument("--arch", default="shipped",
                   choices=("shipped", "transformer", "mlp", "mlp-structured"),
                   help="cost predictor (shipped: each parcellation's shipped architecture)")
    p.add_argument("--classifier-arch", default="mlp", choices=("transformer", "mlp"))
    p.add_argument("--train-epochs", type=int, default=100,
                   help="predictor epochs at most (the classifier: 15)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--speed-repeats", type=int, default=20)
    p.add_argument("--smoke", action="store_true", help="tiny settings: plumbing check only")
    p.add_argument("--tables", default=str(ROOT / "data" / "surrogate"),
                   help="folder of the compact generation tables")
    p.add_argument("--stop-after", default=None,
                   choices=("data", "train", "labels", "quality", "speed", "fit", "ei",
                            "ei_retest"),
                   help="run the stages up to this one, cache them and exit")
    p.add_argument("--out", default=None, help="default benchmarks/results/surrogate.json "
                   "(smoke runs: <work>/surrogate_smoke.json)")
    args = p.parse_args(argv)
    if args.smoke:
        args.work = args.work + "_smoke"
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.out is None:
        args.out = str(work / "surrogate_smoke.json" if args.smoke
                       else HERE / "results" / "surrogate.json")
    figdir = Path(args.out).parent / "figures"
    overrides = {}
    if args.smoke:
        overrides = {"n_epochs": 2, "popsize": 10, "mu": 2, "n_dup_test": 2, "test_group": 1}
        args.train_epochs, args.seeds, args.speed_repeats = 1, [0], 2
    stages_path = work / "stages.json"
    st = load_stages(stages_path)
    t0 = time.perf_counter()
    steps = [
        ("data", lambda: stage_data(work, ("hcp_schaefer100", "hcp_aal", "gw_aal"),
                                    Path(args.tables))),
        ("train", lambda: stage_train(work, st["data"], args.arch, args.train_epochs, 0,
                                      max_rows=2000 if args.smoke else None,
                                      classifier_arch=args.classifier_arch)),
        ("labels", lambda: stage_labels(work, st["data"], max_rows=40 if args.smoke else None)),
        ("quality", lambda: stage_quality(work, st["data"], st["train"], figdir)),
        ("speed", lambda: stage_speed(st["train"], args.speed_repeats)),
        ("fit", lambda: stage_fit(work, st["train"], args.seeds, overrides)),
        ("ei", lambda: stage_ei(work, st["train"], 0, overrides,
                                max_subjects=2 if args.smoke else None)),
        ("ei_retest", lambda: stage_ei_retest(work, st["ei"], 1, overrides)),
    ]
    if not run_stages(steps, st, stages_path, "surrogate benchmark", args.stop_after):
        return 0
    from nmmfit.plots.surrogate import plot_ei_agreement, plot_fit_comparison

    figures = [str(plot_fit_comparison(st["fit"]["runs"], figdir / "surrogate_fit_epochs.png",
                                       "HCP Schaefer-100 (train706 / 2 subjects / test303), "
                                       "quick preset"))]
    if st["ei"]["subjects"]:
        figures.append(str(plot_ei_agreement(
            {k: v["euler"]["ei_map"] for k, v in st["ei"]["subjects"].items()},
            {k: v["surrogate"]["ei_map"] for k, v in st["ei"]["subjects"].items()},
            figdir / "surrogate_ei_agreement.png",
            "AAL2 individuals (HCP held-in and held-out, gw transfer)")))
    paper = json.loads((HERE / "results" / "fit.json").read_text())["paper_preset_estimate"]
    # surrogate training, paper preset: 100 epochs x (100 candidates x the measured time per
    # candidate + the optimiser's own time per epoch, measured in the quick fits and scaled by
    # lambda 100 / 50)
    t_cand = st["speed"]["surrogate_s_per_candidate"]
    qk = [r["surrogate"] for r in st["fit"]["runs"].values()]
    n_ep = np.mean([len(r["train_best_per_epoch"]) for r in qk])
    overhead = max(0.0, float(np.mean([r["timings"]["train_s_total"] for r in qk])) / n_ep
                   - 50 * t_cand)
    sur_train = 100 * (100 * t_cand + 2 * overhead)
    paper_x = {
        "label": "EXTRAPOLATED (not measured): paper preset; Euler phases from fit.json's "
                 "paper_preset_estimate, surrogate training = 100 epochs x (100 candidates x the "
                 "measured surrogate time per candidate + 2 x the optimiser time per epoch "
                 "measured in the quick fits); validation and test are Euler in both",
        "optimiser_s_per_epoch_quick": overhead,
        "euler_s": {"train": paper["train_s"], "val": paper["val_s"], "test": paper["test_s"]},
        "surrogate_s": {"train": sur_train, "val": paper["val_s"], "test": paper["test_s"]},
        "train_phase_speedup": paper["train_s"] / sur_train,
        "search_speedup_train_plus_val": (paper["train_s"] + paper["val_s"])
        / (sur_train + paper["val_s"]),
        "end_to_end_speedup": paper["total_s"] / (sur_train + paper["val_s"] + paper["test_s"]),
        "note": "the test stage (1000 duplicates at dt 0.5 ms) is the same Euler work in both "
                "and bounds the end-to-end ratio"}
    for qd in st["quality"].values():  # figure paths relative to the repository
        if qd:
            qd["figures"] = [os.path.relpath(Path(f).resolve(), ROOT) for f in qd["figures"]]
    figures = [os.path.relpath(Path(f).resolve(), ROOT) for f in figures]
    q = st["quality"].get("hcp_schaefer100") or {}
    qa = st["quality"].get("hcp_aal") or {}
    qg = st["quality"].get("gw_aal")
    ei = st["ei"]
    out = {
        "classifier_accuracy": q.get("classifier", {}).get("accuracy"),
        "classifier_chance": q.get("classifier", {}).get("chance_rate"),
        "predictor_r_total": q.get("predictor", {}).get("r_total"),
        "predictor_r": {k: q.get("predictor", {}).get(f"r_{k}") for k in
                        ("fc_corr", "fc_l1", "fcd_ks")},
        "predictor_vs_mean_of_3_duplicates": {
            k: (st["quality"].get(k) or {}).get("predictor_vs_mean_of_duplicates")
            for k in ("hcp_schaefer100", "hcp_aal", "gw_aal")},
        "label_retest": st["labels"],
        "aal2_heldout": {"classifier_accuracy": qa.get("classifier", {}).get("accuracy"),
                         "classifier_chance": qa.get("classifier", {}).get("chance_rate"),
                         "predictor_r_total": qa.get("predictor", {}).get("r_total")},
        "eval_speedup": st["speed"]["eval_speedup"],
        "paper_eval_speedup_extrapolated": st["speed"]["paper_eval_speedup_extrapolated"],
        "train_phase_speedup": st["fit"]["train_phase_speedup"],
        "end_to_end_speedup": st["fit"]["end_to_end_speedup"],
        "paper_preset_extrapolated": paper_x,
        "test_cost_ratio": st["fit"]["test_cost_ratio"],
        "ei_r_subjects": ei["ei_r_subjects"],
        "ei_r_subjects_euler_vs_euler_other_seed":
            st["ei_retest"]["ei_r_subjects_euler_vs_euler"],
        "transfer_gw": None if qg is None else {
            "classifier_accuracy": qg["classifier"]["accuracy"],
            "classifier_chance": qg["classifier"]["chance_rate"],
            "predictor_r_total": qg["predictor"]["r_total"],
            "test_cost_ratio": float(np.mean([v for k, v in
                                              ei["test_cost_ratio_by_subject"].items()
                                              if k.startswith("gw_aal")])),
            "ei_map_r_within_subject": {k: v for k, v in ei["ei_map_r_within_subject"].items()
                                        if k.startswith("gw_aal")}},
        "figures": figures,
        "ei_retest": st["ei_retest"],
        "speed": st["speed"], "quality": st["quality"], "fit": st["fit"], "ei": ei,
        "train": st["train"], "data": st["data"], "smoke": bool(args.smoke),
        "arch": args.arch, "classifier_arch": args.classifier_arch,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "wall_s_this_call": time.perf_counter() - t0,
        "stage_wall_s": {name: st.get(f"{name}_wall_s") for name, _ in steps},
    }
    if args.smoke:
        out["note"] = "SMOKE RUN: tiny settings, the numbers mean nothing"
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=plain))
    print(json.dumps({k: out[k] for k in ("classifier_accuracy", "classifier_chance",
                                          "predictor_r_total", "eval_speedup",
                                          "train_phase_speedup", "end_to_end_speedup",
                                          "test_cost_ratio", "ei_r_subjects")}, indent=2,
                     default=plain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
