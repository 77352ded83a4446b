"""``nmmfit surrogate generate|train|evaluate``: the DELSSOME surrogates' pipeline.

Examples::

    nmmfit surrogate generate --dataset hcp_schaefer100 --max-minutes 60   # resumable
    nmmfit surrogate train --dataset hcp_schaefer100 --arch transformer --ship
    nmmfit surrogate evaluate --dataset hcp_schaefer100 --json
    nmmfit surrogate export --dataset hcp_schaefer100       # -> data/surrogate/..._quick.npz
    nmmfit surrogate summarise --dataset hcp_aal --max-minutes 20   # resumable
    nmmfit surrogate train --dataset hcp_aal --summaries runs/surrogate_hcp_aal_summaries.npz
    nmmfit surrogate generate --dataset hcp_aal --preset paper --sc-normalisation strength

``generate`` first imports the repository's compact table (``data/surrogate/``) into the
store, so generation continues across machines and sessions where it stopped.

SC recipe: ``--sc-normalisation`` (every sub-command; default the legacy recipe of the shipped
tables and models) builds the generation targets with another SC recipe. A store holds one
recipe and refuses another; the default store, table and summaries file of a setting other
than the quick preset with the legacy recipe are named after the preset and recipe
(:func:`nmmfit.surrogate.generate.default_store`), and trained models record the store's
recipe.

Imports: the commands' library modules (:mod:`nmmfit.surrogate`, which loads torch, the fit
store, the plots) are imported when a command runs, so that ``nmmfit --help`` and the light
commands start fast; light modules (numpy only) are imported at the top.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from nmmfit._json import strict_json
from nmmfit.data.sc import LEGACY_SC_RECIPE, SC_NORMALISATIONS

__all__ = ["add_surrogate_parser"]

DATASETS = ("hcp_schaefer100", "hcp_aal", "gw_aal")


def add_surrogate_parser(subparsers) -> None:
    """Register ``surrogate`` and its sub-commands on an argparse ``subparsers`` object."""
    sp = subparsers.add_parser("surrogate", help="generate data, train and evaluate the "
                               "DELSSOME surrogates")
    sub = sp.add_subparsers(dest="surrogate_command", required=True)

    def common(p, preset_help="names the default store (the store records its runs' "
               "simulation settings)"):
        p.add_argument("--dataset", default="hcp_schaefer100", choices=DATASETS)
        p.add_argument("--store", default=None,
                       help="generation store (default runs/surrogate_<dataset>.db for the "
                       "quick preset and the legacy SC recipe, else "
                       "runs/surrogate_<dataset>_<preset>_<recipe>.db)")
        p.add_argument("--preset", default="quick", help=preset_help)
        p.add_argument("--sc-normalisation", default=None, choices=SC_NORMALISATIONS,
                       help=f"SC recipe of the generation targets (default {LEGACY_SC_RECIPE}, "
                       "the recipe of the shipped tables and models); a store holds one "
                       "recipe, which the other commands read from it (when given, it names "
                       "the default store and must be the store's)")
        p.add_argument("--threads", type=int, default=None)
        p.add_argument("--json", action="store_true", help="print a JSON summary")

    p = sub.add_parser("generate", help="Euler-labelled evaluations into the store (resumes)")
    common(p, "simulation settings (the preset's training settings; default quick)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs-train", type=int, default=30, help="epochs per train-target run")
    p.add_argument("--epochs-val", type=int, default=10)
    p.add_argument("--epochs-test", type=int, default=10)
    p.add_argument("--max-minutes", type=float, default=None, help="stop between epochs after")
    p.add_argument("--no-import", action="store_true",
                   help="do not first import the repository's shipped table "
                   "(data/surrogate/<dataset>_<preset>.npz; <dataset>_<preset>_<recipe>.npz "
                   "for a recipe other than the legacy one) into the store")
    p.add_argument("--import", dest="extra_tables", nargs="+", default=[], metavar="NPZ",
                   help="also import these compact files first (e.g. an extension written "
                   "by `export --exclude`)")
    p.add_argument("--kinds", nargs="+", default=["cmaes", "random"],
                   choices=("cmaes", "random"), help="run kinds (default both)")
    p.add_argument("--targets", nargs="+", default=None, metavar="NAME",
                   help="only these targets (names as in the store, e.g. "
                   "hcp_schaefer100:train706)")
    p.add_argument("--n-boot", type=int, default=6,
                   help="bootstrap groups of the training subjects (AAL2; default 6, the "
                   "shipped table's; more adds groups and keeps the first ones)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("export", help="write the store's generation runs to a compact .npz")
    common(p)
    p.add_argument("--out", default=None,
                   help="default: the shipped table of the store's preset and SC recipe, "
                   "data/surrogate/<dataset>_<preset>.npz (legacy recipe) or "
                   "<dataset>_<preset>_<recipe>.npz")
    p.add_argument("--exclude", default=None, metavar="NPZ",
                   help="leave out the runs this compact file holds (write an extension)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("summarise", help="re-simulate training rows and keep their FC mean "
                       "and FCD CDF, which supervise the structured predictor (resumes)")
    common(p, "simulation settings (the preset's training settings; default quick)")
    p.add_argument("--out", default=None,
                   help="default runs/surrogate_<dataset>_summaries.npz, or "
                   "runs/surrogate_<dataset>_<preset>_<recipe>_summaries.npz for another "
                   "setting (resumed if present)")
    p.add_argument("--max-rows", type=int, default=None,
                   help="at most this many rows, a seeded uniform subsample (default: the "
                   "shipped recipe's count, SHIPPED_SUMMARY_ROWS, else all)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop between batches after")
    p.add_argument("--seed", type=int, default=7001)
    p.set_defaults(func=cmd_summarise)

    p = sub.add_parser("train", help="train the cost predictor and the classifier")
    common(p)
    p.add_argument("--arch", default=None, choices=("transformer", "mlp", "mlp-structured"),
                   help="cost predictor (default: the data set's shipped architecture, "
                   "nmmfit.surrogate.workflow.SHIPPED_ARCH): the MLP, the MLP whose fc_l1 and "
                   "fcd_ks come from predicted simulation summaries, or the published "
                   "transformer (slow to train without a GPU)")
    p.add_argument("--classifier-arch", default="mlp", choices=("transformer", "mlp"))
    p.add_argument("--epochs", type=int, default=100,
                   help="predictor epochs at most (early stopping usually ends sooner)")
    p.add_argument("--classifier-epochs", type=int, default=15)
    p.add_argument("--patience", type=int, default=8,
                   help="early stop after this many epochs without a validation improvement")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="model folder (default runs/surrogate_models/"
                   "<dataset>-<arch>)")
    p.add_argument("--summaries", default=None,
                   help="`nmmfit surrogate summarise` file of this store: simulated summaries "
                   "that also supervise a structured predictor")
    p.add_argument("--summary-weight", type=float, default=1.0)
    p.add_argument("--summary-rows", type=int, default=None,
                   help="use the summaries file's first N planned rows (default: all it "
                   "holds; with --ship, the shipped recipe's count)")
    p.add_argument("--ship", action="store_true",
                   help="write into the package's shipped-model folder instead (float16 "
                   "weights); refused when the shipped models there were trained for another "
                   "SC recipe than the store's, unless --replace-recipe")
    p.add_argument("--replace-recipe", action="store_true",
                   help="with --ship: replace shipped models of another SC recipe (surrogate "
                   "fits then need targets of the new recipe: `nmmfit fit --evaluator "
                   "surrogate --sc-normalisation RECIPE`)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="quality on held-out (test) targets, with figures")
    common(p)
    p.add_argument("--models", default=None,
                   help="model folder (default: the shipped models of the parcellation)")
    p.add_argument("--out", default=None, help="figure folder (default runs/surrogate_eval)")
    p.set_defaults(func=cmd_evaluate)


def _store(args) -> str:
    from nmmfit.surrogate.generate import default_store

    return args.store or default_store(args.dataset, args.preset, _recipe(args))


def _recipe(args) -> str:
    """The SC recipe named by ``--sc-normalisation`` (default: the legacy recipe)."""
    return args.sc_normalisation or LEGACY_SC_RECIPE


def _setting_suffix(preset: str, recipe: str) -> str:
    """File-name suffix of a generation setting: "" for the quick preset with the legacy
    recipe (today's files), else ``_<preset>_<recipe>``."""
    return "" if (preset, recipe) == ("quick", LEGACY_SC_RECIPE) else f"_{preset}_{recipe}"


def shipped_table(dataset: str, preset: str = "quick",
                  sc_normalisation: str = LEGACY_SC_RECIPE) -> Path:
    """The repository's compact training table of a dataset, preset and SC recipe (may not
    exist): ``<dataset>_<preset>.npz`` for the legacy recipe, else
    ``<dataset>_<preset>_<recipe>.npz``."""
    tail = "" if sc_normalisation == LEGACY_SC_RECIPE else f"_{sc_normalisation}"
    return (Path(__file__).resolve().parents[2] / "data" / "surrogate"
            / f"{dataset}_{preset}{tail}.npz")


def _store_recipe(path) -> str | None:
    """SC recipe of a generation store's runs (None: no generation runs; ValueError: mixed)."""
    from nmmfit.fit.store import Store
    from nmmfit.surrogate.jobs import store_sc_recipe

    with Store(path) as st:
        return store_sc_recipe(st)


def _emit(args, out: dict, text: str) -> None:
    print(strict_json(out) if args.json else text)


def cmd_generate(args) -> int:
    """Run the generation jobs (resumable)."""
    from tqdm.auto import tqdm

    from nmmfit.surrogate.compact import import_compact
    from nmmfit.surrogate.generate import run_jobs
    from nmmfit.surrogate.jobs import plan_jobs
    from nmmfit.surrogate.targets import surrogate_targets

    try:
        targets = surrogate_targets(args.dataset, n_boot=args.n_boot,
                                    sc_normalisation=_recipe(args))
        jobs = plan_jobs(targets, {"train": args.epochs_train, "val": args.epochs_val,
                                   "test": args.epochs_test}, seeds=args.seeds,
                         kinds=args.kinds, only=args.targets)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = shipped_table(args.dataset, args.preset, _recipe(args))
    files = ([table] if not args.no_import and table.is_file() else []) + [
        Path(p) for p in args.extra_tables]
    try:  # file -> runs added / skipped
        if Path(_store(args)).is_file():  # refuse before importing anything
            have = _store_recipe(_store(args))
            if have not in (None, _recipe(args)):
                raise ValueError(f"generation store {_store(args)} holds runs of SC recipe "
                                 f"{have!r}; it cannot be extended with targets of SC recipe "
                                 f"{_recipe(args)!r} (--sc-normalisation): use another "
                                 f"--store (the default one of {_recipe(args)!r} is "
                                 f"{_default_store_of(args)})")
        imported = {str(f): import_compact(f, _store(args)) for f in files}
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    total = sum(j.n_epochs for j in jobs)
    bar = tqdm(total=total, unit="epoch", desc=f"generate {args.dataset}",
               disable=args.json)
    def cb(job, done, n):
        bar.set_postfix_str(f"{job.target.split(':', 1)[-1]} {job.kind} {done}/{n}")
        bar.update(1)

    try:
        out = run_jobs(jobs, targets, _store(args), preset=args.preset, threads=args.threads,
                       max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
                       callback=cb)
    except ValueError as err:
        bar.close()
        print(f"error: {err}", file=sys.stderr)
        return 2
    bar.close()
    from nmmfit.fit.store import Store

    with Store(_store(args)) as st:
        n_rows = st.count(phase="train")
    out.update(store=_store(args), n_jobs=len(jobs), total_rows_in_store=n_rows,
               imported=imported, sc_normalisation=_recipe(args), preset=args.preset)
    _emit(args, out, f"{out['evaluations_written']} evaluations written in "
          f"{out['wall_s']:.0f} s; {out['jobs_finished']}/{len(jobs)} jobs complete; "
          f"{n_rows} rows in {_store(args)}" + (" (stopped at the time budget; run again to "
                                               "continue)" if out["stopped_early"] else ""))
    return 0


def _default_store_of(args) -> str:
    from nmmfit.surrogate.generate import default_store

    return default_store(args.dataset, args.preset, _recipe(args))


def summaries_path(dataset: str, preset: str = "quick",
                   sc_normalisation: str = LEGACY_SC_RECIPE) -> Path:
    """Default file of ``nmmfit surrogate summarise`` for a preset and SC recipe."""
    return Path(f"runs/surrogate_{dataset}{_setting_suffix(preset, sc_normalisation)}"
                "_summaries.npz")


def _check_recipe_arg(args, recipe: str | None) -> None:
    """ValueError when ``--sc-normalisation`` was given and is not the store's recipe."""
    if args.sc_normalisation is not None and recipe not in (None, args.sc_normalisation):
        raise ValueError(f"generation store {_store(args)} holds runs of SC recipe {recipe!r}, "
                         f"not {args.sc_normalisation!r} (--sc-normalisation)")


def cmd_summarise(args) -> int:
    """Re-simulate training rows; store their FC mean and FCD CDF (resumable)."""
    from nmmfit.surrogate.summaries import simulate_summaries
    from nmmfit.surrogate.table import build_table
    from nmmfit.surrogate.targets import training_targets
    from nmmfit.surrogate.workflow import SHIPPED_SUMMARY_ROWS

    if not Path(_store(args)).is_file():
        print(f"error: no store at {_store(args)}", file=sys.stderr)
        return 2
    try:
        table, tg = build_table(_store(args), roles=("train", "val"))
        _check_recipe_arg(args, tg["sc_normalisation"])
        out = (Path(args.out) if args.out else
               summaries_path(args.dataset, args.preset, tg["sc_normalisation"]))
        out.parent.mkdir(parents=True, exist_ok=True)
        # the re-simulated targets are built with the store's recipe
        objs = training_targets(args.dataset, sc_normalisation=tg["sc_normalisation"])
        res = simulate_summaries(table, tg, objs, out, preset=args.preset,
                                 max_rows=args.max_rows or SHIPPED_SUMMARY_ROWS.get(
                                     args.dataset), seed=args.seed, threads=args.threads,
                                 max_minutes=args.max_minutes, progress=not args.json)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = {"file": str(out), "rows_done": int(res["done"]), "rows_planned": int(res["rows"].size),
            "rows_valid": int(np.isfinite(res["m_sim"]).sum()), "wall_s": float(res["wall_s"]),
            "sc_normalisation": tg["sc_normalisation"]}
    _emit(args, info, f"{info['rows_done']} of {info['rows_planned']} rows simulated "
          f"({info['rows_valid']} valid) -> {out}")
    return 0


def cmd_export(args) -> int:
    """Write the compact table (rows, epoch markers, last optimiser states, targets)."""
    from nmmfit.surrogate.compact import compact_run_ids, export_compact
    from nmmfit.surrogate.workflow import store_sim_settings

    if not Path(_store(args)).is_file():
        print(f"error: no store at {_store(args)}", file=sys.stderr)
        return 2
    try:
        recipe = _store_recipe(_store(args))
        _check_recipe_arg(args, recipe)
        if args.out:
            out = Path(args.out)
        else:  # the shipped table of the store's own preset and recipe
            preset = store_sim_settings(_store(args)).get("preset") or args.preset
            out = shipped_table(args.dataset, preset, recipe or _recipe(args))
        skip = compact_run_ids(args.exclude) if args.exclude else ()
        info = export_compact(_store(args), out, exclude=skip)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info["sc_normalisation"] = recipe
    _emit(args, info, f"{info['rows']} rows of {info['runs']} runs (SC recipe {recipe!r}) -> "
          f"{info['path']} ({info['bytes'] / 1e6:.1f} MB)")
    return 0


def cmd_train(args) -> int:
    """Train both networks and save them with their metadata."""
    from nmmfit.surrogate.shipped import PARCELLATION, shipped_dir
    from nmmfit.surrogate.workflow import (
        SHIPPED_ARCH,
        SHIPPED_SUMMARY_ROWS,
        store_sim_settings,
        train_from_store,
    )

    arch = args.arch or SHIPPED_ARCH[args.dataset]
    out = (shipped_dir(PARCELLATION[args.dataset]) if args.ship else
           Path(args.out or f"runs/surrogate_models/{args.dataset}-{arch}"))
    try:
        if not Path(_store(args)).is_file():
            raise FileNotFoundError(f"no store at {_store(args)}")
        recipe = _store_recipe(_store(args))
        _check_recipe_arg(args, recipe)
        if args.ship and not args.replace_recipe:
            _check_ship_recipe(out, recipe)
        preset = store_sim_settings(_store(args)).get("preset") or args.preset
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summaries, summary_rows = args.summaries, args.summary_rows
    if (args.ship and summaries is None and args.dataset in SHIPPED_SUMMARY_ROWS
            and arch == SHIPPED_ARCH[args.dataset]):
        # the shipped recipe of this data set includes simulated summaries (of the store's
        # preset and SC recipe)
        summaries = summaries_path(args.dataset, preset, recipe or LEGACY_SC_RECIPE)
        summary_rows = summary_rows or SHIPPED_SUMMARY_ROWS[args.dataset]
        if not summaries.is_file():
            flags = ("" if summaries == summaries_path(args.dataset) else
                     f" --preset {preset} --sc-normalisation {recipe}")
            print(f"error: the shipped {args.dataset} predictor is trained with simulated "
                  f"summaries; run `nmmfit surrogate summarise --dataset {args.dataset}"
                  f"{flags}` first (writes {summaries}) or pass --summaries", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    try:
        pair = train_from_store(_store(args), out, dataset=args.dataset, arch=arch,
                                seed=args.seed, max_epochs=args.epochs,
                                batch_size=args.batch_size, threads=args.threads,
                                progress=not args.json, classifier_arch=args.classifier_arch,
                                patience=args.patience, classifier_epochs=args.classifier_epochs,
                                weights_dtype="float16" if args.ship else "float32",
                                summaries=summaries, summary_weight=args.summary_weight,
                                summary_rows=summary_rows)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    hp, hc = pair.history["predictor"], pair.history["classifier"]
    summary = {"predictor": str(pair.predictor), "classifier": str(pair.classifier),
               "predictor_best_val_loss": hp["best_val_loss"],
               "predictor_arch": arch,
               # best_epoch counts from 1
               "predictor_val_r_total": hp["val_r_total"][hp["best_epoch"] - 1],
               "classifier_val_accuracy": hc["val_accuracy"][hc["best_epoch"] - 1],
               "classifier_chance": hc["chance_rate"], "sc_normalisation": recipe,
               "wall_s": time.perf_counter() - t0}
    _emit(args, summary, "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


def _check_ship_recipe(folder: Path, recipe: str | None) -> None:
    """ValueError when the models shipped in ``folder`` were trained for another SC recipe
    than ``recipe`` (the store's): ``--ship`` would replace them with models that refuse the
    targets the shipped ones accept (the surrogate evaluator checks the recipe)."""
    from nmmfit.surrogate.evaluator import model_sc_recipe
    from nmmfit.surrogate.shipped import model_files
    from nmmfit.surrogate.store import load_model

    if recipe is None:
        return
    for f in model_files(folder):
        have = model_sc_recipe(load_model(f)) if f.is_file() else recipe
        if have != recipe:
            raise ValueError(f"the shipped model {f} was trained for SC recipe {have!r}, the "
                             f"store's targets are built with {recipe!r}; `--ship` would "
                             "replace it: pass --replace-recipe to do so (surrogate fits then "
                             f"need `--sc-normalisation {recipe}`), or train into a folder of "
                             "its own with --out")


def cmd_evaluate(args) -> int:
    """Metrics and figures on the store's test targets."""
    from nmmfit.plots.surrogate import plot_classifier, plot_predictor
    from nmmfit.surrogate.shipped import PARCELLATION, load_models, load_shipped
    from nmmfit.surrogate.workflow import evaluate_models

    try:
        if args.models:
            pred, clf = load_models(args.models)
        else:
            pred, clf = load_shipped(PARCELLATION[args.dataset])
        res = evaluate_models(_store(args), pred, clf)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    arr = res.pop("_arrays")
    fig_dir = Path(args.out or "runs/surrogate_eval")
    res["figures"] = [str(plot_predictor(arr["pred"], arr["true"],
                                         fig_dir / f"{args.dataset}_predictor.png")),
                      str(plot_classifier(arr["proba"], arr["valid"],
                                          fig_dir / f"{args.dataset}_classifier.png"))]
    c, p = res["classifier"], res["predictor"]
    _emit(args, res, f"classifier accuracy {c['accuracy']:.3f} (chance {c['chance_rate']:.3f}, "
          f"AUC {c['auc']:.3f}); predictor r total {p['r_total']:.3f} (fc_corr "
          f"{p['r_fc_corr']:.3f}, fc_l1 {p['r_fc_l1']:.3f}, fcd_ks {p['r_fcd_ks']:.3f}) on "
          f"{res['n_rows']} rows of {res['targets']}; figures {res['figures']}")
    return 0
