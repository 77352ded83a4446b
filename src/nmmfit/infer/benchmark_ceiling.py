"""Stages of the Jansen-Rit benchmark that set estimators against the information ceiling.

- ``crlb``: the Cramer-Rao ceiling on r per parameter and noise level
  (:mod:`nmmfit.infer.fisher`), jointly and one parameter at a time.
- ``estimators``: at every noise level, the baselines (:class:`~nmmfit.infer.estimators.
  PCABoosting`, :class:`~nmmfit.infer.estimators.PCAMLP`) and the selected estimator
  (:class:`~nmmfit.infer.estimators.SourceBoostingEnsemble`) trained on exactly the
  Bi-LSTM's 800 training simulations, all scored on 1,000 held-out simulations.
- ``select``: the estimator choice, by r on a separate validation set (never the test set).
- ``best``: the selected estimator trained on ``--best-n`` simulations per level.
- ``oat_best``: one parameter at a time with the selected estimator (1,000 training and
  1,000 held-out simulations per parameter).

Each writes keys of the results JSON (:data:`nmmfit.infer.benchmark_run.NOTES` says what
they mean); :func:`nmmfit.infer.benchmark_run.run_benchmark` runs them in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from nmmfit.infer.benchmark import LevelData, alpha_key, correlations, split_indices
from nmmfit.infer.estimators import ESTIMATORS, SourceBoostingEnsemble
from nmmfit.infer.fisher import erp_fisher
from nmmfit.infer.jr_dataset import ALPHAS, sample_params
from nmmfit.models import jansen_rit as jr

__all__ = ["stage_crlb", "stage_estimators", "stage_select", "stage_best", "stage_oat_best",
           "BEST", "BASELINES"]

#: The estimator the ``select`` stage chose (by validation r; docs/jansen_rit.md).
BEST = SourceBoostingEnsemble.name
#: The baselines trained on the Bi-LSTM's data and split.
BASELINES = ("pca_boosting", "pca_mlp")

Log = Callable[[str], None]


def _r(theta_true, theta_pred, names, n_boot: int, seed: int) -> dict:
    m = correlations(theta_true, theta_pred, list(names), n_boot=n_boot, seed=seed)
    return {n: {"pearson": v["pearson"], "pearson_ci": v["pearson_ci"]} for n, v in m.items()}


def _test_set(opts) -> LevelData:
    return LevelData(opts.test_n, ALPHAS, seed=opts.seed + 2)


def stage_crlb(opts, res: dict, log: Log) -> dict:
    """``crlb_r_ceiling`` (alpha -> parameter -> r ceiling), ``crlb_r_ceiling_one_at_a_time``
    (parameter -> r ceiling at alpha 0, only that parameter varied as in ``oat_best``) and
    ``crlb`` (settings, identifiable fractions)."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    theta = sample_params(opts.crlb_n, np.random.default_rng([opts.seed, 3]))
    with tqdm(total=opts.crlb_n, desc="Fisher information", unit="set",
              disable=not opts.progress) as bar:
        fi = erp_fisher(theta, ALPHAS, n_cov=opts.crlb_n_cov, seed=[opts.seed, 4],
                        progress=bar.update)
    blob = fi.to_json()
    res["crlb_r_ceiling"] = blob.pop("r_ceiling")
    oat = {}
    for i, p in enumerate(jr.INFERRED):
        th = sample_params(opts.crlb_oat_n, np.random.default_rng([opts.seed, 5, i]),
                           names=(p,))
        f1 = erp_fisher(th, (0.0,), n_cov=opts.crlb_n_cov, seed=[opts.seed, 6, i],
                        names=(p,))
        oat[p] = f1.r_ceiling(one_at_a_time=True)[alpha_key(0.0)][p]
        log(f"CRLB one at a time {p}: r ceiling {oat[p]:.4f}")
    res["crlb_r_ceiling_one_at_a_time"] = oat
    res["crlb"] = {**blob, "n_sets_one_at_a_time": opts.crlb_oat_n,
                   "wall_s": time.perf_counter() - t0}
    log("CRLB r ceiling at alpha 0: " + ", ".join(
        f"{n} {v:.3f}" for n, v in res["crlb_r_ceiling"][alpha_key(0.0)].items()))
    return res


def stage_select(opts, data: LevelData, res: dict, log: Log) -> dict:
    """``estimator_selection``: each candidate trained on the Bi-LSTM's 800 training
    simulations at alpha 0 and 0.95, scored on ``opts.test_n`` fresh validation
    simulations (seed + 3); the choice is the highest mean r over A_e, A_i, b_e, b_i."""
    tr, _, _ = split_indices(data.n, opts.split_seed)
    val = LevelData(opts.test_n, (0.0, max(opts.alphas)), seed=opts.seed + 3)
    names = list(data.names)
    cands = {"pca_boosting": lambda: ESTIMATORS["pca_boosting"](seed=opts.seed),
             "pca_mlp": lambda: ESTIMATORS["pca_mlp"](seed=opts.seed),
             "source_boosting_pca50": lambda: SourceBoostingEnsemble((50,), seed=opts.seed),
             "source_boosting_pca150": lambda: SourceBoostingEnsemble((150,), seed=opts.seed),
             BEST: lambda: SourceBoostingEnsemble(seed=opts.seed)}
    out: dict = {}
    for a in val.alphas:
        k = alpha_key(a)
        x, xv = data.eeg(a), val.eeg(a)
        for name, make in cands.items():
            pred = make().fit(x[tr], data.theta[tr]).predict(xv)
            r = {n: float(np.corrcoef(val.theta[:, j], pred[:, j])[0, 1])
                 for j, n in enumerate(names)}
            out.setdefault(name, {})[k] = {"pearson": r, "mean_r_main4": float(np.mean(
                [r[n] for n in ("A_e", "A_i", "b_e", "b_i")]))}
            log(f"select alpha {k} {name}: " + ", ".join(f"{n} {r[n]:.3f}" for n in names[:4]))
    score = {n: float(np.mean([v["mean_r_main4"] for v in d.values()])) for n, d in out.items()}
    res["estimator_selection"] = {"validation_pearson": out, "score_mean_r_main4": score,
                                  "chosen": max(score, key=score.get),
                                  "n_train": int(len(tr)), "n_validation": val.n,
                                  "validation_seed": opts.seed + 3}
    return res


def stage_estimators(opts, data: LevelData, res: dict, log: Log) -> dict:
    """``baseline_pearson`` (gradient boosting), ``baseline_mlp_pearson`` and
    ``best_pearson_n1000`` (the selected estimator): each trained at every alpha on the
    Bi-LSTM's 800 training simulations and scored on the held-out test set."""
    tr, _, _ = split_indices(data.n, opts.split_seed)
    test = _test_set(opts)
    names = list(data.names)
    keys = {"pca_boosting": "baseline", "pca_mlp": "baseline_mlp", BEST: "best_n1000"}
    timing: dict = {}
    for a in opts.alphas:
        k = alpha_key(a)
        x, xt = data.eeg(a), test.eeg(a)
        for name, key in keys.items():
            t0 = time.perf_counter()
            est = ESTIMATORS[name](seed=opts.seed).fit(x[tr], data.theta[tr])
            r = _r(test.theta, est.predict(xt), names, opts.n_boot, opts.split_seed)
            res.setdefault(f"{key}_pearson", {})[k] = {n: v["pearson"] for n, v in r.items()}
            res.setdefault(f"{key}_ci95", {})[k] = {n: v["pearson_ci"] for n, v in r.items()}
            timing.setdefault(name, {})[k] = time.perf_counter() - t0
            log(f"alpha {k} {name}: " + ", ".join(f"{n} {r[n]['pearson']:.3f}"
                                                  for n in names[:4]))
    res["estimators_config"] = {"n_train": int(len(tr)), "train": "the Bi-LSTM's training "
                                "split (dataset seed, split seed)", "n_test": test.n,
                                "test_seed": opts.seed + 2, "wall_s": timing}
    return res


def stage_best(opts, res: dict, log: Log) -> dict:
    """``best_pearson`` (alpha -> parameter -> r) of the selected estimator trained on
    ``opts.best_n`` simulations per level (dataset seed + 100, as the Bi-LSTM scaling run),
    scored on the held-out test set; ``best_estimator`` names it and its training size."""
    t0 = time.perf_counter()
    big = LevelData(opts.best_n, ALPHAS, seed=opts.seed + 100)
    test = _test_set(opts)
    log(f"best: simulated {big.n} ERPs ({time.perf_counter() - t0:.0f} s)")
    names = list(big.names)
    wall = {}
    for a in opts.alphas:
        k = alpha_key(a)
        t1 = time.perf_counter()
        est = SourceBoostingEnsemble(seed=opts.seed).fit(big.eeg(a), big.theta)
        r = _r(test.theta, est.predict(test.eeg(a)), names, opts.n_boot, opts.split_seed)
        res.setdefault("best_pearson", {})[k] = {n: v["pearson"] for n, v in r.items()}
        res.setdefault("best_ci95", {})[k] = {n: v["pearson_ci"] for n, v in r.items()}
        wall[k] = time.perf_counter() - t1
        log(f"best alpha {k}: " + ", ".join(f"{n} {r[n]['pearson']:.3f}" for n in names[:4])
            + f" ({wall[k]:.0f} s)")
    res["best_estimator"] = {"name": BEST, "n_train": big.n, "dataset_seed": opts.seed + 100,
                             "sizes": list(SourceBoostingEnsemble().sizes),
                             "n_test": test.n, "test_seed": opts.seed + 2, "wall_s": wall}
    return res


def stage_oat_best(opts, res: dict, log: Log) -> dict:
    """``one_at_a_time_pearson``: per parameter, only it varied (the others at JR typical
    values), alpha 0; the selected estimator trained on ``opts.oat_n`` simulations (seed
    [7, i], the Bi-LSTM's one-at-a-time data) and scored on ``opts.test_n`` fresh ones
    (seed [8, i])."""
    out, cfg = {}, {}
    for i, p in enumerate(jr.INFERRED):
        tr = LevelData(opts.oat_n, (0.0,), seed=[7, i], names=(p,))
        te = LevelData(opts.test_n, (0.0,), seed=[8, i], names=(p,))
        est = SourceBoostingEnsemble(params=(p,), seed=opts.seed).fit(tr.eeg(0.0), tr.theta)
        r = _r(te.theta, est.predict(te.eeg(0.0)), [p], opts.n_boot, opts.split_seed)[p]
        out[p] = r["pearson"]
        cfg[p] = {"pearson_ci": r["pearson_ci"], "n_train": tr.n, "n_test": te.n}
        log(f"one at a time {p}: r {r['pearson']:.4f}")
    res["one_at_a_time_pearson"] = out
    res["one_at_a_time_best"] = {"estimator": BEST, "alpha": 0.0, "per_param": cfg,
                                 "train_seed": "[7, i]", "test_seed": "[8, i]"}
    return res
