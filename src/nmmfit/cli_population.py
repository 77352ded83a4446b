"""``nmmfit population fit|status|report``: fit every subject of a cohort, resumably.

Examples::

    nmmfit population fit hcp_aal --store pop.db                 # LocalCluster, all CPUs
    nmmfit population fit ./my_cohort --tr 2.0 --scheduler tcp://10.0.0.5:8786
    nmmfit population fit hcp_aal --executor serial --set n_epochs=5 popsize=10
    nmmfit population status --store pop.db --json
    nmmfit population report --store pop.db --out reports/ --covariates participants.tsv

A cohort is a bundled data set name or a BIDS-like directory (see
:mod:`nmmfit.population.folders`). Re-running ``fit`` skips finished subjects whose input
data have not changed (a subject whose files changed is fitted again).

Files: ``fit`` writes only the ``--store`` SQLite file (results, and the cohort's covariate
table in its ``covariates`` table) and, with ``--fit-store-dir``, one evaluation store per
subject there. ``status`` and ``report`` only read the store (a missing one is an error, not
created); ``report`` writes its exports and figures under ``--out``.

The commands need the ``population`` extra (``pip install 'nmmfit[population]'``); without
it they print one line naming it and exit with code 2.

Imports: :mod:`nmmfit.population` is imported when a command runs, so that ``nmmfit --help``
and the light commands start fast (and work without the extra); light modules (numpy only)
are imported at the top.
"""

from __future__ import annotations

import functools
import sqlite3
import sys

from nmmfit._extras import MissingExtraError, require
from nmmfit._json import strict_json
from nmmfit.data.sc import DEFAULT_SC_NORMALISATION, LEGACY_SC_RECIPE, SC_NORMALISATIONS

#: the default ``--store``: :data:`nmmfit.population.results.DEFAULT_DB` (a test checks that
#: they agree; the package is not imported to build the parser)
DEFAULT_DB = "nmmfit_population.db"


def add_population_parser(subparsers) -> None:
    """Register ``population`` and its sub-commands on an argparse ``subparsers`` object."""
    sp = subparsers.add_parser("population", help="fit every subject of a cohort (Dask), "
                               "resumable, with E/I group analysis")
    sub = sp.add_subparsers(dest="population_command", required=True)

    p = sub.add_parser("fit", help="fit every unfinished subject of a cohort")
    p.add_argument("cohort", help="bundled data set (hcp_aal, gw_aal, hcp_schaefer100) or a "
                   "BIDS-like directory")
    p.add_argument("--name", default=None, help="cohort key in the store (default its name)")
    p.add_argument("--covariates", default=None, help="covariate table (.tsv/.csv with "
                   "participant_id); a directory's participants.tsv is read by default")
    p.add_argument("--tr", type=float, default=None, help="TR in s (directory cohorts)")
    p.add_argument("--subjects", nargs="*", default=None, help="only these subjects")
    p.add_argument("--maps", nargs="*", default=None,
                   help="parametrisation maps (default: myelin and fc_gradient for "
                   "hcp_schaefer100, fc_gradient otherwise)")
    p.add_argument("--store", default=DEFAULT_DB, help="results SQLite file (also keeps the "
                   "covariate table); default %(default)s")
    p.add_argument("--fit-store-dir", default=None,
                   help="keep per-subject evaluation stores here (resume inside a subject)")
    p.add_argument("--preset", default="quick", help="fit preset (quick, paper)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="preset overrides, e.g. n_epochs=5 popsize=10 n_dup_test=20")
    p.add_argument("--evaluator", default="euler", choices=("euler", "surrogate"))
    p.add_argument("--sc-normalisation", default=None, choices=SC_NORMALISATIONS,
                   help=f"SC recipe (default {DEFAULT_SC_NORMALISATION}; with --evaluator "
                   f"surrogate {LEGACY_SC_RECIPE}, the shipped surrogates' recipe)")
    p.add_argument("--executor", default="dask", choices=("dask", "serial"))
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler "
                   "(default: start a LocalCluster here)")
    p.add_argument("--n-workers", type=int, default=None, help="LocalCluster workers, >= 1 "
                   "(default: CPU count)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds (> 0) to wait for --scheduler and for its first worker; "
                   "default %(default)s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", default="numba", choices=("numba", "torch", "numpy"))
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("status", help="finished, running and failed subjects")
    p.add_argument("--store", default=DEFAULT_DB)
    p.add_argument("--cohort", default=None, help="cohort key (default: the latest run's)")
    p.add_argument("--config", default=None, help="config hash (prefix; default latest)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="export CSV/Parquet, E/I regression, contrast, figures")
    p.add_argument("--store", default=DEFAULT_DB)
    p.add_argument("--cohort", default=None)
    p.add_argument("--config", default=None)
    p.add_argument("--out", default="population_report", help="folder; default %(default)s")
    p.add_argument("--covariates", default=None,
                   help="covariate table (default: the one recorded by `fit`, if any)")
    p.add_argument("--formula", default=None,
                   help="statsmodels formula; default 'ei ~ cr(age, df=3) + C(sex)'")
    p.add_argument("--dataset", default=None, help="bundled data set or directory whose "
                   "region names give the networks (default: the cohort key if bundled)")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report)


def _value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(v.lower(), v)


def parse_overrides(items) -> dict:
    """``["KEY=VALUE", ...]`` -> {key: int, float, bool, None or str value}; ValueError on an
    item without ``=``."""
    out = {}
    for it in items:
        if "=" not in it:
            raise ValueError(f"--set expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = _value(v.strip())
    return out


def _emit(obj, as_json: bool, text: str) -> None:
    print(strict_json(obj) if as_json else text)


def _guard(fn):
    """Run a command: a missing extra or an input error becomes one line on stderr and exit
    code 2 (no traceback)."""
    @functools.wraps(fn)
    def wrapped(args) -> int:
        try:
            require("population", feature="nmmfit population")
            return fn(args)
        except (MissingExtraError, ValueError, FileNotFoundError, ConnectionError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except sqlite3.DatabaseError as err:
            print(f"error: store {getattr(args, 'store', '?')} cannot be read ({err}); it may "
                  "be corrupt or truncated: move it away or pass another --store",
                  file=sys.stderr)
            return 2
    return wrapped


@_guard
def cmd_fit(args) -> int:
    from nmmfit.population import fit_cohort

    out = fit_cohort(args.cohort, args.covariates, name=args.name, tr=args.tr, maps=args.maps,
                     store=args.store, executor=args.executor, scheduler=args.scheduler,
                     n_workers=args.n_workers, preset=args.preset, evaluator=args.evaluator,
                     seed=args.seed, engine=args.engine, sc_normalisation=args.sc_normalisation,
                     subjects=args.subjects, fit_store_dir=args.fit_store_dir,
                     progress=not (args.no_progress or args.json),
                     connect_timeout=args.timeout, **parse_overrides(args.set))
    text = (f"cohort {out['cohort']} (config {out['config_hash']}): {len(out['done'])} fitted, "
            f"{len(out['skipped'])} already finished, {len(out['failed'])} failed in "
            f"{out['wall_s']:.1f} s -> {out['store']}")
    if out.get("stale"):
        text += (f"\n  input data changed since the stored fit, fitted again: "
                 f"{' '.join(out['stale'])}")
    for s, e in out["failed"].items():
        text += f"\n  failed {s}: {e.strip().splitlines()[-1]}"
    _emit(out, args.json, text)
    return 1 if out["failed"] else 0


@_guard
def cmd_status(args) -> int:
    from nmmfit.population import ResultsDB

    with ResultsDB(args.store, readonly=True) as db:
        cname, chash = db.resolve(args.cohort, args.config)
        st = db.status(cname, chash)
    lines = [f"cohort {cname} config {chash} ({st['store']})",
             f"  finished    {len(st['finished'])}",
             f"  running     {len(st['running'])}: {' '.join(st['running'])}",
             f"  interrupted {len(st['interrupted'])}: {' '.join(st['interrupted'])}",
             f"  failed      {len(st['failed'])}"]
    if st.get("stale"):
        lines.insert(4, f"  stale       {len(st['stale'])}: {' '.join(st['stale'])} (input "
                        "data changed; `fit` fits them again)")
    for s, e in st["failed"].items():
        lines.append(f"    {s}: {(e or '').strip().splitlines()[-1] if e else ''}")
    _emit(st, args.json, "\n".join(lines))
    return 0


@_guard
def cmd_report(args) -> int:
    from nmmfit.population import ResultsDB, cohort_regions, report

    with ResultsDB(args.store, readonly=True) as db:
        cname, chash = db.resolve(args.cohort, args.config)
    labels, networks = cohort_regions(args.dataset or cname)
    out = report(args.store, cname, chash, args.out, args.covariates, args.formula,
                 networks, figures=not args.no_figures, labels=labels)
    reg = out.get("regression", {})
    con = out.get("contrast", {})
    lines = [f"cohort {cname} config {chash}: {out['n_subjects']} subjects"]
    for k, v in out.get("exports", {}).items():
        lines.append(f"  {k}: {v}")
    if "skipped" in reg:
        lines.append(f"  regression skipped: {reg['skipped']}")
    elif reg:
        lines.append(f"  regression {reg['formula']}: R2 {reg['rsquared']:.3f}, n {reg['nobs']}"
                     + (f" ({'; '.join(reg['notes'])})" if reg["notes"] else ""))
    if "skipped" in con:
        lines.append(f"  sensory-motor vs association: skipped ({con['skipped']})")
    elif con:
        lines.append(f"  sensory-motor - association E/I: mean {con['mean']:.4f}"
                     + (f", t {con['t']:.2f}, p {con['p']:.3g}" if "t" in con else ""))
    for k, v in out.get("figures", {}).items():
        lines.append(f"  figure {k}: {v}")
    for k, v in out.get("figures_skipped", {}).items():
        lines.append(f"  figure {k} not drawn: {v}")
    _emit(out, args.json, "\n".join(lines))
    return 0
