"""Train the surrogates from a generation store and evaluate them on held-out targets (the
library side of ``nmmfit surrogate train|evaluate``; the shipped models are found by
:mod:`nmmfit.surrogate.shipped`).

The split is the generation's: rows of "train" targets train, rows of "val" targets drive early
stopping, rows of "test" targets are only ever used for the reported metrics.
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nmmfit.fit.store import Store
from nmmfit.surrogate import networks
from nmmfit.surrogate.evaluator import model_sc_recipe
from nmmfit.surrogate.features import Normaliser
from nmmfit.surrogate.jobs import GENERATOR
from nmmfit.surrogate.shipped import PARCELLATION, model_files
from nmmfit.surrogate.store import data_hash, save_model
from nmmfit.surrogate.summaries import load_summaries
from nmmfit.surrogate.table import build_table, table_hash
from nmmfit.surrogate.train import (
    TrainConfig,
    classifier_metrics,
    cost_metrics,
    predict_costs,
    predict_valid_proba,
    train_classifier,
    train_cost_predictor,
)

__all__ = ["store_sim_settings", "ARCHITECTURES", "CLASSIFIERS", "SHIPPED_ARCH",
           "SHIPPED_SUMMARY_ROWS", "TrainedPair",
           "train_from_store", "evaluate_models", "subset"]

#: Cost-predictor architectures by name: (class name, constructor defaults).
ARCHITECTURES = {
    "transformer": ("CostPredictor", {"d_model": 64, "n_layers": 4, "n_heads": 8}),
    "mlp": ("MLPCostPredictor", {"width": 256, "mlp_hidden": (256, 256), "dropout": 0.2}),
    "mlp-structured": ("StructuredCostPredictor",
                       {"width": 256, "mlp_hidden": (256, 256), "dropout": 0.2}),
}
#: The predictor architecture shipped (and trained by ``nmmfit surrogate train``) per data set,
#: chosen by the validation target's loss (``benchmarks/surrogate_select.py``): on AAL2 the
#: structured heads generalise better to the held-out validation subject; on Schaefer-100 the
#: plain MLP has the lower validation loss, with or without simulated summaries.
SHIPPED_ARCH = {"hcp_schaefer100": "mlp", "hcp_aal": "mlp-structured", "gw_aal": "mlp"}
#: Data sets whose shipped predictor was also supervised by simulated summaries of this many
#: training rows (``nmmfit surrogate summarise --max-rows N``, default seed); chosen the same way.
SHIPPED_SUMMARY_ROWS = {"hcp_aal": 3000}
#: Classifier architectures by name.
CLASSIFIERS = {
    "transformer": ("ValidityClassifier", {"d_model": 32, "n_layers": 2, "n_heads": 4}),
    "mlp": ("MLPValidityClassifier", {"width": 128, "mlp_hidden": (128,)}),
}


def subset(table: dict, mask: np.ndarray) -> dict:
    """Rows ``mask`` of every per-row array of ``table``."""
    return {k: v[mask] for k, v in table.items()}


@dataclass
class TrainedPair:
    """Paths of a trained predictor and classifier with their training histories."""

    predictor: Path
    classifier: Path
    history: dict


def train_from_store(store: str | Path, out_dir: str | Path, *, dataset: str,
                     arch: str | None = None, seed: int = 0, max_epochs: int = 15,
                     batch_size: int = 256, threads: int | None = None,
                     progress: bool = False, arch_kwargs: dict | None = None,
                     max_rows: int | None = None,
                     classifier_arch: str = "mlp", patience: int | None = 8,
                     classifier_epochs: int | None = 15,
                     weights_dtype: str = "float32",
                     summaries: str | Path | None = None,
                     summary_weight: float = 1.0,
                     summary_rows: int | None = None) -> TrainedPair:
    """Train a cost predictor and a validity classifier on a generation store.

    Writes the predictor and classifier files (:func:`~nmmfit.surrogate.shipped.model_files`)
    to ``out_dir`` with their metadata
    (parcellation, region count, FCD bins, normaliser, training-data hash, simulation settings,
    seeds, histories, package versions). ``max_rows`` caps the training and validation rows
    (a seeded random subset; for quick checks). ``max_epochs`` and ``patience`` (early stop on
    the validation targets' loss) apply to the predictor; the classifier runs at most
    ``classifier_epochs`` (None: ``max_epochs``) with the same patience. ``weights_dtype``
    "float16" halves the files (the shipped models). ``arch`` None: the data set's shipped
    architecture (:data:`SHIPPED_ARCH`). ``summaries``: a
    :func:`~nmmfit.surrogate.summaries.simulate_summaries` file for this store (structured
    predictor only), whose simulated FC means and FCD CDFs also supervise the predictor;
    ``summary_rows`` uses only that file's first planned rows (None: all it holds).
    The models record the SC recipe of the store's targets as ``meta["sc_normalisation"]``
    (the surrogate evaluator refuses targets of another recipe).
    """
    import torch

    if arch is None:
        arch = SHIPPED_ARCH.get(dataset, "mlp")
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {arch!r}")
    if classifier_arch not in CLASSIFIERS:
        raise ValueError(f"classifier_arch must be one of {sorted(CLASSIFIERS)}, got "
                         f"{classifier_arch!r}")
    if dataset not in PARCELLATION:
        raise ValueError(f"dataset must be one of {sorted(PARCELLATION)}, got {dataset!r}")
    table, tg = build_table(store, roles=("train", "val"))
    is_tr = table["role"] == "train"
    tr = subset(table, is_tr)
    va = subset(table, table["role"] == "val")
    aux = None
    if summaries is not None:
        # (train_cost_predictor checks the CDF bins against the model)
        z = load_summaries(summaries, table["G"].size, max_rows=summary_rows)
        aux = {"m_sim": z["m_sim"][is_tr], "cdf": z["cdf"][is_tr]}
    if max_rows is not None:
        rng = np.random.default_rng(seed)
        keep_tr = np.sort(rng.permutation(tr["G"].size)[:max_rows])
        tr = subset(tr, keep_tr)
        va = subset(va, np.sort(rng.permutation(va["G"].size)[:max_rows]))
        if aux is not None:
            aux = {key: v[keep_tr] for key, v in aux.items()}
    if tr["G"].size == 0 or va["G"].size == 0:
        raise ValueError(f"store {store} needs rows of both 'train' and 'val' targets, has "
                         f"{tr['G'].size} and {va['G'].size}")
    n, bins = tg["sc"].shape[1], tg["fcd_pdf"].shape[1]
    norm = Normaliser.fit(tr, tg)
    cfg = TrainConfig(seed=seed, max_epochs=max_epochs, batch_size=batch_size, threads=threads,
                      patience=patience)
    cfg_clf = replace(cfg, max_epochs=classifier_epochs or max_epochs)
    meta_common = {"parcellation": PARCELLATION[dataset], "dataset": dataset,
                   # the recipe of the store's targets (one per store, build_table checks)
                   "sc_normalisation": tg["sc_normalisation"],
                   "data_hash": table_hash(table), "n_rows_train": int(tr["G"].size),
                   "n_rows_val": int(va["G"].size), "train_targets": sorted(
                       {tg["names"][i] for i in np.unique(tr["target_idx"])}),
                   "seed": int(seed), "sim": store_sim_settings(store)}
    if aux is not None:
        meta_common["summaries"] = {"file": Path(summaries).name,
                                    "hash": data_hash(aux["m_sim"], aux["cdf"]),
                                    "weight": float(summary_weight),
                                    "rows_used": int(z["done"])}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cls_name, defaults = ARCHITECTURES[arch]
    torch.manual_seed(seed)
    cls = getattr(networks, cls_name)
    # a network that computes cost terms from the raw FC needs the FC input's scale
    scale = ({"fc_scale": norm.fc_scale}
             if "fc_scale" in inspect.signature(cls).parameters else {})
    pred = cls(n, bins, **{**defaults, **scale, **(arch_kwargs or {})})
    pred, h_pred = train_cost_predictor(pred, tr, va, tg, norm, cfg, progress=progress,
                                        summaries=aux, summary_weight=summary_weight)
    torch.manual_seed(seed + 1)
    clf_name, clf_kw = CLASSIFIERS[classifier_arch]
    clf = getattr(networks, clf_name)(n, bins, **clf_kw)
    clf, h_clf = train_classifier(clf, tr, va, tg, norm, cfg_clf, progress=progress)
    f_pred, f_clf = model_files(out)
    p_pred = save_model(f_pred, pred, "cost_predictor", norm,
                        {**meta_common, "name": f"{dataset}-{arch}", "arch": arch,
                         "history": h_pred}, weights_dtype=weights_dtype)
    p_clf = save_model(f_clf, clf, "classifier", norm,
                       {**meta_common, "name": f"{dataset}-classifier-{classifier_arch}",
                        "arch": classifier_arch, "history": h_clf},
                       weights_dtype=weights_dtype)
    return TrainedPair(p_pred, p_clf, {"predictor": h_pred, "classifier": h_clf,
                                       "wall_s": time.perf_counter() - t0})


def store_sim_settings(store) -> dict:
    """The (single) simulation setting of the generation runs in ``store``: {"preset",
    "n_dup", "sim"}; ``ValueError`` when the runs differ in preset, duplicates or any
    simulation setting (burn-in, length, dt...), since a surrogate predicts one setting."""
    with Store(store) as st:
        sims = {}
        for rid in st.run_ids():
            cfg = st.run_config(rid) or {}
            if cfg.get("generator") == GENERATOR:
                ev = cfg["evaluator"]
                key = (cfg.get("preset"), ev.get("n_dup"),
                       json.dumps(ev.get("sim"), sort_keys=True, default=str))
                sims[key] = {"preset": cfg.get("preset"), "n_dup": ev.get("n_dup"),
                             "sim": ev.get("sim")}
    if len(sims) > 1:
        raise ValueError(f"store {store} mixes simulation settings {sorted(sims)}; a surrogate "
                         "predicts the costs of one setting")
    return next(iter(sims.values()), {})


def evaluate_models(store: str | Path, predictor, classifier, roles=("test",)) -> dict:
    """Quality of loaded models on the rows of ``roles`` targets of a generation store.

    Returns JSON-ready metrics: classifier accuracy, chance rate, AUC, confusion matrix;
    predictor Pearson r per term and for the total (valid rows); per-target breakdown; and
    the arrays behind them under ``"_arrays"`` (for figures). Models trained for another SC
    recipe than the store's targets are refused (ValueError naming both).
    """
    table, tg = build_table(store, roles=roles)
    for lm in (predictor, classifier):
        if model_sc_recipe(lm) != tg["sc_normalisation"]:
            raise ValueError(f"the models were trained for SC recipe {model_sc_recipe(lm)!r} "
                             f"but the targets of store {store} are built with "
                             f"{tg['sc_normalisation']!r}; evaluate them on a store of their "
                             "recipe (--sc-normalisation / --store)")
    proba = predict_valid_proba(classifier.model, table, tg, classifier.normaliser)
    valid = table["valid"]
    ok = valid & np.isfinite(table["costs"]).all(axis=1)
    pred = predict_costs(predictor.model, subset(table, ok), tg, predictor.normaliser)
    true = table["costs"][ok]
    cm = cost_metrics(pred, true)
    clm = classifier_metrics(proba, valid)
    yhat = proba >= 0.5
    conf = [[int((~valid & ~yhat).sum()), int((~valid & yhat).sum())],
            [int((valid & ~yhat).sum()), int((valid & yhat).sum())]]
    per_target = {}
    for i, name in enumerate(tg["names"]):
        sel = table["target_idx"] == i
        s_ok = sel[ok]
        entry = {"n_rows": int(sel.sum()), "n_valid": int(valid[sel].sum()),
                 "classifier_accuracy": float(((proba[sel] >= 0.5) == valid[sel]).mean())}
        if s_ok.sum() > 2:
            entry["predictor_r_total"] = cost_metrics(pred[s_ok], true[s_ok])["r_total"]
        per_target[name] = entry
    return {"n_rows": int(valid.size), "n_valid": int(valid.sum()), "targets": tg["names"],
            "classifier": clm, "confusion": {"rows_true_cols_pred_[invalid,valid]": conf},
            "predictor": cm, "per_target": per_target,
            "_arrays": {"pred": pred, "true": true, "proba": proba, "valid": valid}}
