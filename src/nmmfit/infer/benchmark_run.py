"""The Jansen-Rit inference benchmark, run whole (``benchmarks/jr_inference.py``,
``nmmfit jr benchmark``): Bi-LSTM across noise, one-at-a-time, NPE.

- :func:`run_benchmark`: the stages (Bi-LSTM at every noise level, one parameter at a time,
  NPE with coverage and SBC, the paper's 722-step input, NPE embeddings compared, the paper v1
  simulator, 10,000 simulations per level), the results JSON (rewritten after every stage,
  earlier results kept; key meanings in :data:`NOTES`) and the figures ``jr_inf_*.png``.
- :func:`benchmark_parser`: its options (the script's command line).

The parts (data per noise level, metrics, per-level training with its cache) are
:mod:`nmmfit.infer.benchmark`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from nmmfit.eeg.erp import ERPConfig
from nmmfit.infer.benchmark import (
    PAPER,
    LevelData,
    alpha_key,
    format_table,
    one_at_a_time,
    paper_table,
    run_bilstm_levels,
    split_indices,
)
from nmmfit.infer.benchmark_ceiling import (
    stage_best,
    stage_crlb,
    stage_estimators,
    stage_oat_best,
    stage_select,
)
from nmmfit.infer.bilstm import BiLSTMConfig
from nmmfit.infer.jr_dataset import ALPHAS, versions
from nmmfit.infer.npe import NPEConfig, NPEstimator
from nmmfit.infer.npe_summary import SummaryNPE
from nmmfit.plots.jr_inference import (
    plot_ceiling,
    plot_coverage,
    plot_one_at_a_time,
    plot_pair,
    plot_r_vs_alpha,
    plot_sbc,
)

__all__ = ["run_benchmark", "benchmark_parser", "NOTES"]

#: What each group of keys of the results JSON means (written as its ``notes``).
NOTES = {
    "input": "The Bi-LSTM is the paper's (1 bidirectional LSTM layer, 64 units, input dropout "
             "0.1, Dense(8), Glorot seed 4287, bias 0.001, Adam, batch 32, <= 150 epochs, "
             "early stopping patience 10, 80/10/10 split, targets scaled to [0, 1] by the "
             "parameter spec ranges, input standardised per channel, paper's dB loss). The "
             "one change is the time axis: frame = 8 consecutive samples per LSTM step "
             "(91 steps x 480 features, zero-padded end) instead of 722 steps x 60. It is "
             "lossless (no sample dropped or averaged). At alpha = 0 the paper's 722-step "
             "input was both ~5x slower and less accurate (bilstm_frame1_alpha0).",
    "denormals": "CPU LSTM back-propagation through long sequences hit denormal floats "
                 "(0.43 s vs 0.125 s per batch of 32 x 722 x 60); training flushes them.",
    "timing": "bilstm_benchmark_minutes: wall time of simulating the 1000 clean ERPs plus, "
              "per level, drawing its noise, training and testing, summed over the 10 "
              "levels, under nice 15 on a 2-core machine shared with other jobs; the CPU "
              "minutes (process time, 2 torch threads) are beside it.",
    "npe": "NPE per level on the 900 train+val simulations. npe_config.embedding 'mlp' "
           "with npe_config.summary 'SummaryNPE': the flow (sbi NSF, npe_config.hidden units, "
           "npe_config.transforms transforms) reads the source boosting ensemble's "
           "cross-fitted estimates (5 folds; new data read by the first fold model), not the "
           "ERP. npe_pearson: posterior mean on the Bi-LSTM's 100-simulation test split; "
           "coverage and SBC on calib_n fresh simulations per level from the same "
           "truncated-normal prior (npe_config.calib_seed), because 100 test points give "
           "coverage estimates with a standard error of 0.03. npe_previous: the earlier "
           "NPE on the ERP with a 1-D CNN embedding.",
    "a_e_b_e": "In this simulator (background drive mu 90 1/s, b_e range 50-150 1/s, "
               "sigmoid feedback) A_e and b_e are only partly recoverable from 800 ERPs: "
               "a 1-D CNN on the clean source waveform reached r 0.80 / 0.72 and extra trees "
               "0.78 / 0.59 (exploration runs, not in this JSON). On the paper v1 code's own "
               "simulator (bilstm_paper_v1_*: its routing, no drive, Euler, the a1 defect) the "
               "same Bi-LSTM gives b_e and b_i near or above 0.87 but A_e still near 0.3, so "
               "the paper's A_e 0.995 is not reproduced by its own simulator either "
               "(docs/jansen_rit.md, 'Paper v1 mode').",
    "paper_v1": "bilstm_paper_v1_*: ERPConfig.paper_v1(); same parameter ranges (b_e 50-150 "
                "1/s, not the code's 5-150 typo), truncated-normal draws, the same seeds, "
                "split and Bi-LSTM settings as bilstm_*.",
    "crlb": "crlb_r_ceiling (alpha -> parameter): the best Pearson r any estimator can reach "
            "with unlimited training data, from the Fisher information of the ERP "
            "(nmmfit.infer.fisher: GLS source ERP, drive-fluctuation covariance from "
            "crlb.n_cov realisations, sensor noise exact, Gaussian posterior variance "
            "(F + I/V)^-1 averaged over crlb.n_sets prior draws). "
            "crlb_r_ceiling_one_at_a_time: the same with only that parameter varied.",
    "estimators": "baseline_pearson (PCA(50) of the EEG + gradient boosting), "
                  "baseline_mlp_pearson (PCA(50) + MLP) and best_pearson_n1000 (the "
                  "selected estimator) are trained on exactly the Bi-LSTM's 800 training "
                  "simulations per level and scored on test_n held-out simulations "
                  "(dataset seed + 2), the same for every estimator. best_pearson: the "
                  "selected estimator trained on best_estimator.n_train simulations per "
                  "level (seed + 100), same test set. estimator_selection: the choice, by "
                  "r on a separate validation set (seed + 3), never on the test set. "
                  "one_at_a_time_pearson: the selected estimator, one parameter varied, "
                  "trained on 1000 and scored on 1000 fresh simulations. bilstm_pearson "
                  "and npe_* are scored on the Bi-LSTM's 100-simulation test split.",
    "scaling": "bilstm_n10000_*: the same Bi-LSTM benchmark on 10,000 simulations per level "
               "(8000 train / 1000 val / 1000 test; dataset seed + 100) at the levels listed, "
               "to ask whether more data lifts the weakly recovered parameters.",
}


def benchmark_parser(cache=Path("runs") / "jr_inference",
                     out=Path("benchmarks") / "results" / "jr_inference.json",
                     fig_dir=None) -> argparse.ArgumentParser:
    """The options of :func:`run_benchmark` (``benchmarks/jr_inference.py``'s command line),
    with the defaults of ``--cache``, ``--out`` and ``--fig-dir`` given here (``fig_dir``
    None: ``figures/`` beside ``--out``)."""
    p = argparse.ArgumentParser(description="Jansen-Rit parameter inference benchmark: "
                                "Bi-LSTM across noise, one-at-a-time, NPE.")
    p.add_argument("--stages", default="bilstm,oat,npe",
                   help="comma-separated: bilstm, oat, npe, frame1, npe_compare, paper_v1, "
                        "crlb, select, estimators, best, oat_best")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=68)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--frame", type=int, default=8,
                   help="samples per LSTM step (1 = paper; 8 measured faster and better)")
    p.add_argument("--loss", choices=("snr_db", "mse"), default="snr_db")
    p.add_argument("--max-epochs", type=int, default=150)
    p.add_argument("--oat-n", type=int, default=1000)
    p.add_argument("--calib-n", type=int, default=1000)
    p.add_argument("--npe-embedding", choices=("cnn", "bilstm", "summary"), default="summary",
                   help="summary: NPE on the selected estimator's cross-fitted estimates "
                        "(nmmfit.infer.npe_summary); cnn / bilstm: on the ERP")
    p.add_argument("--npe-samples", type=int, default=1000)
    p.add_argument("--npe-hidden", type=int, default=32,
                   help="flow hidden units (32 and 3 transforms: chosen for the summary NPE "
                        "on a validation run at alpha 0; the CNN runs used 64 and 5)")
    p.add_argument("--npe-transforms", type=int, default=3)
    p.add_argument("--calib-seed", type=int, default=None,
                   help="seed of the NPE calibration set (default dataset seed + 1)")
    p.add_argument("--npe-max-epochs", type=int, default=300)
    p.add_argument("--fig-dir", type=Path, default=fig_dir,
                   help="default: figures/ beside --out")
    p.add_argument("--scaling-n", type=int, default=0, help="also run N per level (10000)")
    p.add_argument("--scaling-alphas", type=float, nargs="+", default=[0.0],
                   help="noise levels of the scaling run (default: 0 only, for time)")
    p.add_argument("--test-n", type=int, default=1000,
                   help="held-out simulations per level for the estimator stages")
    p.add_argument("--crlb-n", type=int, default=48,
                   help="prior draws for the Fisher information (crlb stage)")
    p.add_argument("--crlb-oat-n", type=int, default=8,
                   help="draws per parameter for the one-at-a-time ceiling")
    p.add_argument("--crlb-n-cov", type=int, default=3000,
                   help="drive realisations per draw for the fluctuation covariance")
    p.add_argument("--best-n", type=int, default=10000,
                   help="training simulations per level of the selected estimator (best)")
    p.add_argument("--progress", action="store_true", help="progress bars")
    p.add_argument("--cache", type=Path, default=cache)
    p.add_argument("--out", type=Path, default=out)
    return p


def _log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def _versions() -> dict:
    import sbi
    import torch

    return {**versions(), "torch": torch.__version__, "sbi": sbi.__version__}


def _write(res: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1, default=float))
    tmp.replace(path)


def _figures(opts) -> Path:
    return Path(opts.fig_dir) if opts.fig_dir else Path(opts.out).parent / "figures"


def _stage_bilstm(opts, data: LevelData, sim_wall: float, sim_cpu: float, res: dict,
                  cfg: BiLSTMConfig, tag: str = "", alphas=None) -> dict:
    """Train/test a Bi-LSTM at every alpha; fills bilstm_* keys of ``res``."""
    fig = _figures(opts)
    out = run_bilstm_levels(data, cfg, cache_dir=opts.cache, split_seed=opts.split_seed,
                            n_boot=opts.n_boot, log=_log,
                            alphas=alphas if alphas is not None else opts.alphas)
    lv = out["levels"]
    pre = f"bilstm{tag}"
    res[f"{pre}_pearson"] = {k: {n: m["pearson"] for n, m in v["metrics"].items()}
                             for k, v in lv.items()}
    res[f"{pre}_spearman"] = {k: {n: m["spearman"] for n, m in v["metrics"].items()}
                              for k, v in lv.items()}
    res[f"{pre}_ci95"] = {k: {n: {"pearson": m["pearson_ci"], "spearman": m["spearman_ci"]}
                              for n, m in v["metrics"].items()} for k, v in lv.items()}
    res[f"{pre}_levels"] = {k: {"epochs_run": v["history"]["epochs_run"],
                                "best_epoch": v["history"]["best_epoch"],
                                "wall_s": v["wall_s"], "cpu_s": v["cpu_s"],
                                "snr_db_mean": v.get("snr_db_mean")} for k, v in lv.items()}
    res[f"{pre}_benchmark_minutes"] = (sim_wall + out["wall_s"]) / 60
    res[f"{pre}_benchmark_cpu_minutes"] = (sim_cpu + out["cpu_s"]) / 60
    res[f"{pre}_timing"] = {
        "simulate_wall_s": sim_wall, "simulate_cpu_s": sim_cpu,
        "train_test_wall_s": out["wall_s"], "train_test_cpu_s": out["cpu_s"],
        "note": "wall and process CPU time (2 torch threads) on a 2-core machine shared with "
                "other jobs (run under nice 15); a level restored from the cache counts "
                "with the times recorded when it ran"}
    res[f"{pre}_split"] = out["split"]
    if not tag:
        res["paper_table"] = paper_table(res["bilstm_spearman"])
        fig.mkdir(parents=True, exist_ok=True)
        plot_r_vs_alpha(lv, fig / "jr_inf_r_vs_alpha.png", paper=PAPER)
        plot_r_vs_alpha(lv, fig / "jr_inf_spearman_vs_alpha.png", paper=PAPER,
                        metric="spearman")
        print(format_table(res["paper_table"]))
    elif len(lv) > 1:
        what = {"_paper_v1": "paper v1 simulator"}.get(tag, tag.strip("_"))
        plot_r_vs_alpha(lv, fig / f"jr_inf_r_vs_alpha{tag}.png", paper=PAPER,
                        title=f"JR parameter recovery vs noise, {what}, {data.n} simulations "
                              "(test split, 95% bootstrap CI)")
    return res


def _stage_npe(opts, data: LevelData, res: dict) -> dict:
    """NPE per alpha: posterior-mean r on the test split; coverage and SBC on fresh sims."""
    fig = _figures(opts)
    summary = opts.npe_embedding == "summary"
    cfg = NPEConfig(embedding="mlp" if summary else opts.npe_embedding, seed=opts.seed,
                    n_samples=opts.npe_samples, max_epochs=opts.npe_max_epochs,
                    hidden=opts.npe_hidden, transforms=opts.npe_transforms)
    prev = res.get("npe_config", {}).get("embedding")
    if prev is not None and prev != cfg.embedding:  # keep the other embedding's results
        res.setdefault("npe_previous", {})[prev] = {
            k: res[k] for k in ("npe_pearson", "npe_pearson_calib", "npe_coverage50",
                                "npe_coverage90", "npe_config") if k in res}
    tr, va, te = split_indices(data.n, opts.split_seed)
    fit_idx = np.concatenate([tr, va])
    t0, c0 = time.perf_counter(), time.process_time()
    calib_seed = opts.seed + 1 if opts.calib_seed is None else opts.calib_seed
    calib = LevelData(opts.calib_n, ALPHAS, seed=calib_seed)
    _log(f"calibration set: {calib.n} sims ({time.perf_counter() - t0:.0f} s)")
    cache = Path(opts.cache)
    tag = json.dumps({"cfg": asdict(cfg), "n": data.n, "calib": opts.calib_n,
                      "summary": summary, "calib_seed": calib_seed}, sort_keys=True)
    tag = hashlib.sha1(tag.encode()).hexdigest()[:12]
    test, cal = {}, {}
    names = list(data.names)
    for a in opts.alphas:
        k = alpha_key(a)
        f = cache / f"npe_{k}_{tag}.json"
        if f.exists():
            blob = json.loads(f.read_text())
            _log(f"NPE alpha {k}: cached")
        else:
            x = data.eeg(a)
            npe = (SummaryNPE(cfg) if summary else NPEstimator(cfg)).fit(
                x[fit_idx], data.theta[fit_idx])
            blob = {"test": npe.evaluate(x[te], data.theta[te])}
            blob["leakage_test"] = npe.leakage_
            blob["calib"] = npe.evaluate(calib.eeg(a), calib.theta)
            blob["leakage_calib"] = npe.leakage_
            blob["history"] = npe.meta_["history"]
            cache.mkdir(parents=True, exist_ok=True)
            if float(a) in (0.0, max(opts.alphas)):
                ex = npe.sample(x[te[:2]], 2000)
                np.savez_compressed(cache / f"npe_{k}_{tag}_examples.npz", samples=ex,
                                    truth=data.theta[te[:2]])
            f.write_text(json.dumps(blob))
            _log(f"NPE alpha {k}: epochs {blob['history']['epochs_run']}, "
                 f"wall {blob['history']['wall_s']:.0f} s; cov90 "
                 + ", ".join(f"{n} {blob['calib'][n]['coverage90']:.2f}" for n in names))
        test[k], cal[k] = blob["test"], blob["calib"]
        res.setdefault("npe_levels", {})[k] = blob["history"]
        res.setdefault("npe_leakage", {})[k] = {"test": blob.get("leakage_test"),
                                                "calib": blob.get("leakage_calib")}
    res["npe_pearson"] = {k: {n: v[n]["pearson"] for n in names} for k, v in test.items()}
    res["npe_pearson_calib"] = {k: {n: v[n]["pearson"] for n in names} for k, v in cal.items()}
    for lvl in (50, 90):
        res[f"npe_coverage{lvl}"] = {k: {n: v[n][f"coverage{lvl}"] for n in names}
                                     for k, v in cal.items()}
        res[f"npe_coverage{lvl}_test"] = {k: {n: v[n][f"coverage{lvl}"] for n in names}
                                          for k, v in test.items()}
    res["npe_sbc_ks_p"] = {k: {n: v[n]["sbc_ks_p"] for n in names} for k, v in cal.items()}
    res["npe_sbc_chi2_p"] = {k: {n: v[n]["sbc_chi2_p"] for n in names} for k, v in cal.items()}
    for key in ("sbc_ks_p_sbi", "sbc_c2st_ranks", "sbc_c2st_dap"):  # sbi's check_sbc
        if all(key in v[n] for v in cal.values() for n in names):  # absent in older caches
            res[f"npe_{key}"] = {k: {n: v[n][key] for n in names} for k, v in cal.items()}
    res["npe_posterior_sd_mean"] = {k: {n: v[n]["posterior_sd_mean"] for n in names}
                                    for k, v in cal.items()}
    cov = [(k, n, v) for k, d in res["npe_coverage90"].items() for n, v in d.items()]
    res["npe_coverage90_outside_085_095"] = [{"alpha": k, "param": n, "coverage": v}
                                             for k, n, v in cov if not 0.85 <= v <= 0.95]
    res["npe_config"] = {**asdict(cfg), "summary": SummaryNPE.__name__ if summary else None,
                         "calib_n": calib.n, "calib_seed": calib_seed,
                         "n_fit": int(len(fit_idx)), "n_test": int(len(te))}
    res["npe_timing"] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                         "per_level": res.get("npe_levels")}
    fig.mkdir(parents=True, exist_ok=True)
    plot_coverage(cal, fig / "jr_inf_npe_coverage.png")
    plot_sbc(cal, fig / "jr_inf_npe_sbc.png")
    if "bilstm_ci95" in res:
        lv = {k: {"metrics": {n: {"pearson": res["bilstm_pearson"][k][n],
                                  "pearson_ci": res["bilstm_ci95"][k][n]["pearson"]}
                              for n in names}} for k in res["bilstm_pearson"]}
        plot_r_vs_alpha(lv, fig / "jr_inf_r_vs_alpha_npe.png", npe=test, paper=PAPER)
    for k in (alpha_key(0.0), alpha_key(max(opts.alphas))):
        ex = cache / f"npe_{k}_{tag}_examples.npz"
        if ex.exists():
            z = np.load(ex)
            plot_pair(z["samples"][:, 0], z["truth"][0], names,
                      fig / f"jr_inf_npe_pair_alpha{k}.png",
                      title=f"NPE posterior, one test ERP, alpha = {k} (red: truth)")
    return res


def _stage_oat(opts, res: dict, cfg: BiLSTMConfig) -> dict:
    """One parameter at a time, noise-free (paper Figure 5)."""
    t0, c0 = time.perf_counter(), time.process_time()
    oat = one_at_a_time(n=opts.oat_n, alpha=0.0, config=cfg, cache_dir=opts.cache,
                        n_boot=opts.n_boot, log=_log)
    res["one_at_a_time"] = {p: {"pearson": v["metrics"][p]["pearson"],
                                "pearson_ci": v["metrics"][p]["pearson_ci"],
                                "spearman": v["metrics"][p]["spearman"],
                                "epochs_run": v["history"]["epochs_run"]}
                            for p, v in oat.items()}
    res["one_at_a_time_config"] = {"n": opts.oat_n, "alpha": 0.0, "seed": "[7, i]",
                                   "wall_s": time.perf_counter() - t0,
                                   "cpu_s": time.process_time() - c0}
    k0 = alpha_key(0.0)
    allv = ({"metrics": {n: {"pearson": r} for n, r in res["bilstm_pearson"][k0].items()}}
            if k0 in res.get("bilstm_pearson", {}) else None)
    plot_one_at_a_time(oat, allv, _figures(opts) / "jr_inf_one_at_a_time.png")
    return res


def _stage_frame1(opts, data: LevelData, res: dict, cfg: BiLSTMConfig) -> dict:
    """The paper-faithful input (722 LSTM steps of 60 channels) at alpha = 0, for the record
    behind the choice of ``--frame``."""
    c1 = replace(cfg, frame=1)
    out = run_bilstm_levels(data, c1, cache_dir=opts.cache, split_seed=opts.split_seed,
                            n_boot=opts.n_boot, alphas=[0.0], log=_log)
    v = out["levels"][alpha_key(0.0)]
    res["bilstm_frame1_alpha0"] = {
        "pearson": {n: m["pearson"] for n, m in v["metrics"].items()},
        "epochs_run": v["history"]["epochs_run"], "wall_s": v["wall_s"], "cpu_s": v["cpu_s"],
        "note": "frame=1 is the paper's input (722 steps x 60 channels); compare with "
                "bilstm_pearson['0.0'] and bilstm_levels['0.0'] (frame "
                f"{cfg.frame}: {-(-722 // cfg.frame)} steps x {60 * cfg.frame} features)"}
    return res


def _stage_paper_v1(opts, res: dict, cfg: BiLSTMConfig) -> dict:
    """The same Bi-LSTM benchmark on the paper v1 code's simulator (``ERPConfig.paper_v1``:
    its stimulus routing, no background drive, Euler, the a1 defect), like for like with
    the paper's numbers; keys ``bilstm_paper_v1_*``."""
    t0, c0 = time.perf_counter(), time.process_time()
    v1 = LevelData(opts.n, ALPHAS, seed=opts.seed, config=ERPConfig.paper_v1())
    _log(f"paper v1: simulated {v1.n} ERPs ({v1.n_diverged} diverged)")
    _stage_bilstm(opts, v1, time.perf_counter() - t0, time.process_time() - c0, res, cfg,
                  tag="_paper_v1")
    res["bilstm_paper_v1_config"] = {"erp": v1.sim.config.as_dict(),
                                     "n_diverged": v1.n_diverged}
    return res


def _stage_npe_compare(opts, data: LevelData, res: dict) -> dict:
    """NPE with the Bi-LSTM embedding at alpha 0 and max, on the same calibration set as the
    CNN run of :func:`_stage_npe` (whose numbers are copied beside it)."""
    tr, va, te = split_indices(data.n, opts.split_seed)
    fit_idx = np.concatenate([tr, va])
    calib = LevelData(opts.calib_n, ALPHAS, seed=opts.seed + 1)
    cfg = NPEConfig(embedding="bilstm", seed=opts.seed, n_samples=opts.npe_samples,
                    max_epochs=opts.npe_max_epochs, frame=opts.frame)
    comp: dict = {"bilstm": {}, "cnn": {}}
    for a in (0.0, max(opts.alphas)):
        k = alpha_key(a)
        x = data.eeg(a)
        npe = NPEstimator(cfg).fit(x[fit_idx], data.theta[fit_idx])
        ev = npe.evaluate(calib.eeg(a), calib.theta)
        comp["bilstm"][k] = {"pearson": {n: v["pearson"] for n, v in ev.items()},
                             "coverage90": {n: v["coverage90"] for n, v in ev.items()},
                             "fit_wall_s": npe.meta_["history"]["wall_s"],
                             "epochs_run": npe.meta_["history"]["epochs_run"]}
        if k in res.get("npe_pearson_calib", {}):
            comp["cnn"][k] = {"pearson": res["npe_pearson_calib"][k],
                              "coverage90": res["npe_coverage90"][k],
                              "fit_wall_s": res["npe_levels"][k]["wall_s"],
                              "epochs_run": res["npe_levels"][k]["epochs_run"]}
        _log(f"NPE bilstm alpha {k}: fit {npe.meta_['history']['wall_s']:.0f} s, r "
             + ", ".join(f"{n} {v['pearson']:.2f}" for n, v in ev.items()))
    res["npe_embedding_comparison"] = {**comp, "n_calib": calib.n}
    return res


def run_benchmark(opts, argv=None) -> dict:
    """Run the benchmark's stages and write the results JSON (``benchmarks/jr_inference.py``,
    ``nmmfit jr benchmark``).

    opts : the options of :func:`benchmark_parser` (``benchmark_parser().parse_args(...)``):
        ``stages`` (comma-separated: bilstm, oat, npe, frame1, npe_compare, paper_v1; and
        ``scaling_n`` > 0 adds the scaling run), sizes, seeds, Bi-LSTM / NPE settings,
        ``cache`` (per-level results, so that a killed run resumes), ``out`` (the JSON file;
        earlier results in it are kept and updated) and ``fig_dir``.
    argv : the command line recorded under ``commands`` (default ``sys.argv[1:]``).

    The JSON is rewritten after every stage (a partial run leaves partial results); figures
    ``jr_inf_*.png`` go to ``fig_dir``. Returns the results dict.
    """
    out_path = Path(opts.out)
    stages = set(opts.stages.split(","))
    res = json.loads(out_path.read_text()) if out_path.exists() else {}
    cfg = BiLSTMConfig(frame=opts.frame, loss=opts.loss, max_epochs=opts.max_epochs)
    res.update({"config": {"n_per_level": opts.n, "alphas": opts.alphas, "bilstm": asdict(cfg),
                           "split": "80/10/10", "n_boot": opts.n_boot,
                           "erp": "nmmfit.eeg.erp.ERPConfig() defaults",
                           "command": "benchmarks/jr_inference.py (see 'commands')"},
                "seeds": {"dataset": opts.seed, "split": opts.split_seed,
                          "bilstm_init": cfg.init_seed, "bilstm_train": cfg.seed,
                          "bootstrap": opts.split_seed, "npe": opts.seed,
                          "calibration_set": opts.seed + 1},
                "versions": _versions()})
    res.setdefault("commands", []).append(
        {"argv": list(argv) if argv is not None else sys.argv[1:],
         "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    t0, c0 = time.perf_counter(), time.process_time()
    data = LevelData(opts.n, ALPHAS, seed=opts.seed)
    sim_wall, sim_cpu = time.perf_counter() - t0, time.process_time() - c0
    _log(f"simulated {data.n} ERPs ({data.n_diverged} diverged) in {sim_wall:.1f} s")
    res["n_diverged"] = data.n_diverged
    # each asked stage in this order, the JSON rewritten after each (a killed run resumes)
    runs = {"bilstm": lambda: _stage_bilstm(opts, data, sim_wall, sim_cpu, res, cfg),
            "oat": lambda: _stage_oat(opts, res, cfg),
            "npe": lambda: _stage_npe(opts, data, res),
            "frame1": lambda: _stage_frame1(opts, data, res, cfg),
            "npe_compare": lambda: _stage_npe_compare(opts, data, res),
            "paper_v1": lambda: _stage_paper_v1(opts, res, cfg),
            "crlb": lambda: stage_crlb(opts, res, _log),
            "select": lambda: stage_select(opts, data, res, _log),
            "estimators": lambda: stage_estimators(opts, data, res, _log),
            "best": lambda: stage_best(opts, res, _log),
            "oat_best": lambda: stage_oat_best(opts, res, _log)}
    for name, run in runs.items():
        if name in stages:
            run()
            _write(res, out_path)
    if opts.scaling_n:
        t0, c0 = time.perf_counter(), time.process_time()
        big = LevelData(opts.scaling_n, ALPHAS, seed=opts.seed + 100)
        _stage_bilstm(opts, big, time.perf_counter() - t0, time.process_time() - c0, res, cfg,
                      tag=f"_n{opts.scaling_n}", alphas=opts.scaling_alphas)
        _write(res, out_path)
    res["notes"] = NOTES
    if "crlb_r_ceiling" in res or "best_pearson" in res:
        plot_ceiling(res, _figures(opts) / "jr_inf_ceiling.png")
    _write(res, out_path)
    _log(f"wrote {out_path}")
    return res
