"""``nmmfit fit``: CMA-ES fit of the pFIC model with the train / validation / test protocol.

Hooked into :mod:`nmmfit.cli` with :func:`add_fit_parser`; the subparser sets
``func=cmd_fit``. Resuming is the default: the same command continues a killed run from its
last complete epoch (``--fresh`` starts over).

Examples::

    nmmfit fit                                # quick preset, HCP Schaefer-100 defaults
    nmmfit fit --preset paper --seed 3        # the paper's settings (hours on 2 cores)
    nmmfit fit --epochs 5 --popsize 10 --json
    nmmfit fit --seed 0 1 2                   # three fits; the best-validated one is reported
    nmmfit fit --evaluator surrogate          # DELSSOME: surrogate training, Euler val/test

Imports: the command's library modules (:mod:`nmmfit.fit`, :mod:`nmmfit.data.target`, the
surrogates, the plots) are imported when the command runs, so that ``nmmfit --help`` and the
light commands start fast; light modules (numpy only) are imported at the top.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from nmmfit._json import strict_json
from nmmfit.data.sc import (
    DEFAULT_SC_NORMALISATION,
    LEGACY_SC_RECIPE,
    SC_NORMALISATIONS,
    fit_sc_recipe,
)


def add_fit_parser(subparsers) -> None:
    """Register the ``fit`` command on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "fit", help="fit the pFIC model by CMA-ES (train / validation / test)",
        description=__doc__.split("\n")[0])
    d = p.add_argument_group("data (default: HCP Schaefer-100 train706 / 2 subjects / test303)")
    d.add_argument("--dataset", default="hcp_schaefer100",
                   help="bundled dataset; default %(default)s")
    d.add_argument("--train", default=None, help="saved Target (.npz) to train on")
    d.add_argument("--val", default=None, help="saved Target (.npz) to validate on")
    d.add_argument("--test", default=None, help="saved Target (.npz) to test on")
    d.add_argument("--maps", nargs="*", default=["myelin", "fc_gradient"],
                   help="maps of the training target that parametrise wEE, wEI, sigma")
    s = p.add_argument_group("search")
    s.add_argument("--preset", default="quick", help="quick (minutes) or paper; default "
                   "%(default)s")
    s.add_argument("--search", default="cmaes", choices=("cmaes", "random"))
    s.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    s.add_argument("--popsize", type=int, default=None, help="children per epoch (lambda)")
    s.add_argument("--mu", type=int, default=None, help="children recombined")
    s.add_argument("--sigma0", type=float, default=None)
    s.add_argument("--weights", default=None, choices=("inverse_loss", "log", "equal"))
    s.add_argument("--restarts", type=int, default=None)
    s.add_argument("--n-dup", type=int, default=None, help="training noise duplicates")
    s.add_argument("--n-dup-test", type=int, default=None)
    s.add_argument("--test-group", type=int, default=None)
    s.add_argument("--wei-rule", default=None, choices=("zhang", "delssome_indiv"),
                   help="FC-dependent wEI bounds (default: wEI in [0, 5])")
    s.add_argument("--spatial-constraint", default=None,
                   help="e.g. 'myelin:-1,fc_gradient:+1' (sign of corr(wEI, map))")
    s.add_argument("--sc-normalisation", default=None, choices=SC_NORMALISATIONS,
                   help=f"SC recipe of the bundled targets (default: {DEFAULT_SC_NORMALISATION}"
                   ", chosen by validation cost, docs/fit_quality.md; with --evaluator "
                   f"surrogate: {LEGACY_SC_RECIPE}, the recipe the shipped surrogates were "
                   "built for)")
    s.add_argument("--g-max", type=float, default=None,
                   help="upper bound of the global coupling G (default: the model's, 3)")
    s.add_argument("--init", default=None, choices=("paper", "linear_fc"),
                   help="CMA-ES start: paper (random in-bounds draw, DELSSOME) or linear_fc "
                        "(best closed-form linearised FC; about 2 min); default: the "
                        "preset's (paper preset: linear_fc, quick: paper)")
    s.add_argument("--seed", type=int, nargs="+", default=[0], metavar="SEED",
                   help="CMA-ES seed; several seeds run one fit each and report the one "
                        "that validates best (Zhang et al. 2024's rule); default 0")
    r = p.add_argument_group("run")
    r.add_argument("--evaluator", default="euler", choices=("euler", "surrogate"),
                   help="training evaluator: Euler simulation, or the DELSSOME surrogates "
                   "(validation and test are always Euler)")
    r.add_argument("--spot-check", type=int, default=0, metavar="K",
                   help="with --evaluator surrogate: simulate the K best surrogate-scored "
                   "candidates of each epoch and use their simulated scores (default 0: off)")
    r.add_argument("--models", default=None,
                   help="surrogate model folder (default: the shipped models)")
    r.add_argument("--engine", default="numba", choices=("numba", "torch", "numpy"))
    r.add_argument("--threads", type=int, default=None)
    r.add_argument("--store", default="runs/fit.db", help="SQLite store; default %(default)s")
    r.add_argument("--out", default=None,
                   help="folder for figures and summary.json (default runs/fit/<run id>)")
    r.add_argument("--fresh", action="store_true",
                   help="discard a stored run with the same settings (default: resume)")
    r.add_argument("--no-figures", action="store_true")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_fit)


def _spatial(text: str | None) -> dict[str, int] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, _, sign = part.partition(":")
        if sign.strip() not in ("+1", "1", "-1"):
            raise ValueError(f"--spatial-constraint entry {part!r} must be MAP:+1 or MAP:-1")
        out[name.strip()] = int(sign)
    return out


def _bounds(args) -> dict | None:
    return None if args.g_max is None else {"G": (0.0, args.g_max)}


def _surrogate(args, train):
    """The surrogate training evaluator for ``train`` (shipped models unless --models)."""
    from nmmfit.surrogate.evaluator import SurrogateEvaluator

    # the target's parcellation is unknown here (a target file, too): the shipped set is the
    # one with its region count
    return SurrogateEvaluator.for_fit(train, args.maps, preset=args.preset,
                                      wei_rule=args.wei_rule, bounds=_bounds(args),
                                      spatial_constraint=_spatial(args.spatial_constraint),
                                      folder=args.models or None, threads=args.threads)


def _targets(args):
    from nmmfit.data.target import Target
    from nmmfit.fit import default_targets

    if args.train is not None:
        train = Target.load(args.train)
        val = Target.load(args.val) if args.val else None
        test = Target.load(args.test) if args.test else None
        return train, val, test
    tr, va, te = default_targets(args.dataset, maps=tuple(args.maps),
                                 sc_normalisation=fit_sc_recipe(args.evaluator,
                                                                args.sc_normalisation))
    if args.val:
        va = Target.load(args.val)
    if args.test:
        te = Target.load(args.test)
    return tr, va, te


def cmd_fit(args) -> int:
    """Run the fit and print a summary (text or ``--json``)."""
    from nmmfit.fit import best_by_validation, fit, get_preset

    t0 = time.perf_counter()
    seeds = list(dict.fromkeys(args.seed))  # unique, in the order given
    try:
        get_preset(args.preset)  # fail fast on an unknown preset
        train, val, test = _targets(args)
        evaluator = _surrogate(args, train) if args.evaluator == "surrogate" else None
        fits = [fit(train, val, test, preset=args.preset, evaluator=evaluator, maps=args.maps,
                    seed=seed,
                    engine=args.engine, threads=args.threads, store=args.store,
                    resume=not args.fresh, search=args.search, wei_rule=args.wei_rule,
                    bounds=_bounds(args), spatial_constraint=_spatial(args.spatial_constraint),
                    progress=not (args.json or args.no_progress),
                    n_epochs=args.epochs, popsize=args.popsize, mu=args.mu,
                    sigma0=args.sigma0, weights=args.weights, restarts=args.restarts,
                    n_dup_train=args.n_dup, n_dup_test=args.n_dup_test,
                    test_group=args.test_group, spot_check=args.spot_check, init=args.init)
                for seed in seeds]
        res = fits[0] if len(fits) == 1 else best_by_validation(fits)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out_dir = Path(args.out) if args.out else Path("runs") / "fit" / res.run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = res.summary()
    summary["evaluator"] = args.evaluator
    summary["sc_normalisation"] = train.sc_normalisation
    summary["init"] = (res.config.get("init") or {}).get("init", "paper")
    if len(fits) > 1:
        summary["seeds"] = [{"seed": f.seed, "run_id": f.run_id,
                             "best_val_cost": f.best_val_cost, "test_cost": f.test_cost,
                             "chosen": f is res} for f in fits]
        summary["chosen_by"] = "lowest validation cost over seeds"
    summary["wall_s_this_call"] = time.perf_counter() - t0
    if not args.no_figures:
        from nmmfit.plots.fit import plot_fit

        summary["figures"] = [str(p) for p in plot_fit(res, out_dir)]
    summary["result_file"] = str(res.save(out_dir / "fit.nc"))  # nmmfit.FitResult.load
    (out_dir / "summary.json").write_text(strict_json(summary))
    summary["summary_file"] = str(out_dir / "summary.json")
    if args.json:
        print(strict_json(summary))
        return 0
    tc = res.test_cost
    sd = res.test[0]
    ei = res.ei_map
    lines = [
        f"run {res.run_id} ({res.preset} preset, {len(res.train.epochs)} epochs, seed "
        f"{res.seed}); store {res.store_path}",
        f"search evaluator: {_evaluator_label(args)}; SC recipe {train.sc_normalisation!r}"
        + (" (the shipped surrogates' recipe; Euler fits default to "
           f"{DEFAULT_SC_NORMALISATION!r})" if args.evaluator == "surrogate"
           and train.sc_normalisation != DEFAULT_SC_NORMALISATION else ""),
        f"best validation cost {res.best_val_cost:.4f} ({val_name(res)})",
        "test cost (mean +- std over duplicate groups): " + "  ".join(
            f"{k}={tc[k]:.4f}+-{sd[f'{k}_std']:.4f}" for k in ("fc_corr", "fc_l1", "fcd_ks",
                                                                 "total")),
        (f"E/I ratio: mean {np.nanmean(ei):.4f}, regional range {np.nanmin(ei):.4f}-"
         f"{np.nanmax(ei):.4f} (mean std over duplicates {np.nanmean(res.ei_map_std):.4f})"
         if np.isfinite(ei).any() else "E/I ratio: no valid test simulation"),
        f"G = {float(res.regional['G']):.4f}; seconds per epoch "
        f"{res.timings['seconds_per_epoch']:.1f}; this call {summary['wall_s_this_call']:.1f} s",
        f"summary: {summary['summary_file']}; result: {summary['result_file']} "
        "(nmmfit.FitResult.load)",
    ]
    if "figures" in summary:
        lines.append("figures: " + ", ".join(summary["figures"]))
    for f in fits if len(fits) > 1 else ():
        lines.append(f"  seed {f.seed}: validation {f.best_val_cost:.4f}, test total "
                     f"{f.test_cost['total']:.4f}" + ("  <- chosen by validation"
                                                      if f is res else ""))
    print("\n".join(lines))
    return 0


def _evaluator_label(args) -> str:
    if args.evaluator == "surrogate":
        return ("DELSSOME surrogates" + (f" from {args.models}" if args.models else " (shipped)")
                + "; validation and test simulated (Euler)")
    return "Euler simulation (train, validation and test)"


def val_name(res) -> str:
    """The validation target's name, from the run config."""
    return res.config["targets"]["val"]["name"]
