"""``nmmfit surrogate generate|train|evaluate``: the DELSSOME surrogates' pipeline.

Examples::

    nmmfit surrogate generate --dataset hcp_schaefer100 --max-minutes 60   # resumable
    nmmfit surrogate train --dataset hcp_schaefer100 --arch transformer --ship
    nmmfit surrogate evaluate --dataset hcp_schaefer100 --json
    nmmfit surrogate export --dataset hcp_schaefer100       # -> data/surrogate/..._quick.npz
    nmmfit surrogate summarise --dataset hcp_aal --max-minutes 20   # resumable
    nmmfit surrogate train --dataset hcp_aal --summaries runs/surrogate_hcp_aal_summaries.npz

``generate`` first imports the repository's compact table (``data/surrogate/``) into the
store, so generation continues across machines and sessions where it stopped.

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

__all__ = ["add_surrogate_parser"]

DATASETS = ("hcp_schaefer100", "hcp_aal", "gw_aal")


def add_surrogate_parser(subparsers) -> None:
    """Register ``surrogate`` and its sub-commands on an argparse ``subparsers`` object."""
    sp = subparsers.add_parser("surrogate", help="generate data, train and evaluate the "
                               "DELSSOME surrogates")
    sub = sp.add_subparsers(dest="surrogate_command", required=True)

    def common(p):
        p.add_argument("--dataset", default="hcp_schaefer100", choices=DATASETS)
        p.add_argument("--store", default=None,
                       help="generation store (default runs/surrogate_<dataset>.db)")
        p.add_argument("--threads", type=int, default=None)
        p.add_argument("--json", action="store_true", help="print a JSON summary")

    p = sub.add_parser("generate", help="Euler-labelled evaluations into the store (resumes)")
    common(p)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs-train", type=int, default=30, help="epochs per train-target run")
    p.add_argument("--epochs-val", type=int, default=10)
    p.add_argument("--epochs-test", type=int, default=10)
    p.add_argument("--preset", default="quick", help="simulation settings (preset's training)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop between epochs after")
    p.add_argument("--no-import", action="store_true",
                   help="do not first import the repository's shipped table "
                   "(data/surrogate/<dataset>_<preset>.npz) into the store")
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
                   help="default data/surrogate/<dataset>_quick.npz (the shipped table)")
    p.add_argument("--exclude", default=None, metavar="NPZ",
                   help="leave out the runs this compact file holds (write an extension)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("summarise", help="re-simulate training rows and keep their FC mean "
                       "and FCD CDF, which supervise the structured predictor (resumes)")
    common(p)
    p.add_argument("--out", default=None,
                   help="default runs/surrogate_<dataset>_summaries.npz (resumed if present)")
    p.add_argument("--max-rows", type=int, default=None,
                   help="at most this many rows, a seeded uniform subsample (default: the "
                   "shipped recipe's count, SHIPPED_SUMMARY_ROWS, else all)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop between batches after")
    p.add_argument("--preset", default="quick", help="simulation settings (preset's training)")
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
                   "weights)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="quality on held-out (test) targets, with figures")
    common(p)
    p.add_argument("--models", default=None,
                   help="model folder (default: the shipped models of the parcellation)")
    p.add_argument("--out", default=None, help="figure folder (default runs/surrogate_eval)")
    p.set_defaults(func=cmd_evaluate)


def _store(args) -> str:
    return args.store or f"runs/surrogate_{args.dataset}.db"


def shipped_table(dataset: str, preset: str = "quick") -> Path:
    """The repository's compact training table of a dataset (may not exist)."""
    return Path(__file__).resolve().parents[2] / "data" / "surrogate" / f"{dataset}_{preset}.npz"


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
        targets = surrogate_targets(args.dataset, n_boot=args.n_boot)
        jobs = plan_jobs(targets, {"train": args.epochs_train, "val": args.epochs_val,
                                   "test": args.epochs_test}, seeds=args.seeds,
                         kinds=args.kinds, only=args.targets)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = shipped_table(args.dataset, args.preset)
    files = ([table] if not args.no_import and table.is_file() else []) + [
        Path(p) for p in args.extra_tables]
    try:  # file -> runs added / skipped
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

    out = run_jobs(jobs, targets, _store(args), preset=args.preset, threads=args.threads,
                   max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
                   callback=cb)
    bar.close()
    from nmmfit.fit.store import Store

    with Store(_store(args)) as st:
        n_rows = st.count(phase="train")
    out.update(store=_store(args), n_jobs=len(jobs), total_rows_in_store=n_rows,
               imported=imported)
    _emit(args, out, f"{out['evaluations_written']} evaluations written in "
          f"{out['wall_s']:.0f} s; {out['jobs_finished']}/{len(jobs)} jobs complete; "
          f"{n_rows} rows in {_store(args)}" + (" (stopped at the time budget; run again to "
                                               "continue)" if out["stopped_early"] else ""))
    return 0


def summaries_path(dataset: str) -> Path:
    """Default file of ``nmmfit surrogate summarise``."""
    return Path(f"runs/surrogate_{dataset}_summaries.npz")


def cmd_summarise(args) -> int:
    """Re-simulate training rows; store their FC mean and FCD CDF (resumable)."""
    from nmmfit.surrogate.summaries import simulate_summaries
    from nmmfit.surrogate.table import build_table
    from nmmfit.surrogate.targets import training_targets
    from nmmfit.surrogate.workflow import SHIPPED_SUMMARY_ROWS

    if not Path(_store(args)).is_file():
        print(f"error: no store at {_store(args)}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else summaries_path(args.dataset)
    out.parent.mkdir(parents=True, exist_ok=True)
    table, tg = build_table(_store(args), roles=("train", "val"))
    objs = training_targets(args.dataset)
    try:
        res = simulate_summaries(table, tg, objs, out, preset=args.preset,
                                 max_rows=args.max_rows or SHIPPED_SUMMARY_ROWS.get(
                                     args.dataset), seed=args.seed, threads=args.threads,
                                 max_minutes=args.max_minutes, progress=not args.json)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = {"file": str(out), "rows_done": int(res["done"]), "rows_planned": int(res["rows"].size),
            "rows_valid": int(np.isfinite(res["m_sim"]).sum()), "wall_s": float(res["wall_s"])}
    _emit(args, info, f"{info['rows_done']} of {info['rows_planned']} rows simulated "
          f"({info['rows_valid']} valid) -> {out}")
    return 0


def cmd_export(args) -> int:
    """Write the compact table (rows, epoch markers, last optimiser states, targets)."""
    from nmmfit.surrogate.compact import compact_run_ids, export_compact

    out = Path(args.out) if args.out else shipped_table(args.dataset)
    if not Path(_store(args)).is_file():
        print(f"error: no store at {_store(args)}", file=sys.stderr)
        return 2
    try:
        skip = compact_run_ids(args.exclude) if args.exclude else ()
        info = export_compact(_store(args), out, exclude=skip)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _emit(args, info, f"{info['rows']} rows of {info['runs']} runs -> {info['path']} "
          f"({info['bytes'] / 1e6:.1f} MB)")
    return 0


def cmd_train(args) -> int:
    """Train both networks and save them with their metadata."""
    from nmmfit.surrogate.shipped import PARCELLATION, shipped_dir
    from nmmfit.surrogate.workflow import SHIPPED_ARCH, SHIPPED_SUMMARY_ROWS, train_from_store

    arch = args.arch or SHIPPED_ARCH[args.dataset]
    out = (shipped_dir(PARCELLATION[args.dataset]) if args.ship else
           Path(args.out or f"runs/surrogate_models/{args.dataset}-{arch}"))
    summaries, summary_rows = args.summaries, args.summary_rows
    if (args.ship and summaries is None and args.dataset in SHIPPED_SUMMARY_ROWS
            and arch == SHIPPED_ARCH[args.dataset]):
        # the shipped recipe of this data set includes simulated summaries
        summaries = summaries_path(args.dataset)
        summary_rows = summary_rows or SHIPPED_SUMMARY_ROWS[args.dataset]
        if not summaries.is_file():
            print(f"error: the shipped {args.dataset} predictor is trained with simulated "
                  f"summaries; run `nmmfit surrogate summarise --dataset {args.dataset}` first "
                  f"(writes {summaries}) or pass --summaries", file=sys.stderr)
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
               "classifier_chance": hc["chance_rate"], "wall_s": time.perf_counter() - t0}
    _emit(args, summary, "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


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
