"""Command line: a thin layer that parses, calls the library and prints (``--json`` for machines).

Commands
--------
nmmfit datasets              list the bundled cohorts
nmmfit simulate              simulate pFIC + BOLD on a target's SC; save BOLD and averages
nmmfit cost                  FC+FCD cost of saved simulations against a target
nmmfit run                   simulate the HCP Schaefer-100 training group once and print its
                             cost terms and E/I ratio
nmmfit fit                   CMA-ES fit with the train / validation / test protocol (the main
                             job; see :mod:`nmmfit.cli_fit`)
nmmfit surrogate ...         generate / train / evaluate the DELSSOME surrogates
nmmfit population ...        fit every subject of a cohort (Dask), resumable, E/I group
                             analysis (see :mod:`nmmfit.cli_population`)
nmmfit jr ...                Jansen-Rit event-related EEG (see :mod:`nmmfit.cli_jr`)

Imports: a command's library modules (the simulator, the cost, the fit, the surrogates, the
population and Jansen-Rit packages) are imported when the command runs, so that
``nmmfit --help`` and the light commands start fast; light modules (no numba, torch or
optional extra: the bundled data sets, the model's parameter table, the other commands'
parsers) are imported at the top.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace

import numpy as np

from nmmfit import __version__, datasets
from nmmfit._json import strict_json, to_builtin
from nmmfit.cli_fit import add_fit_parser
from nmmfit.cli_jr import add_jr_parser
from nmmfit.cli_population import add_population_parser
from nmmfit.cli_surrogate import add_surrogate_parser
from nmmfit.models import fic


def _add_target_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target")
    g.add_argument("--dataset", default="hcp_schaefer100",
                   help="bundled dataset (see `nmmfit datasets`); default %(default)s")
    g.add_argument("--group", default=None,
                   help="precomputed group of the dataset (e.g. train706, test303)")
    g.add_argument("--subjects", nargs="*", default=None,
                   help="subject ids to average into the target (default: the group, or all)")


def _add_sim_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model parameters (scalars are broadcast to every region)")
    for prm in fic.PARAMS:
        g.add_argument(f"--{prm.name}", type=float, default=prm.default,
                       help=f"{prm.description} [{prm.lower}, {prm.upper}] {prm.unit}; "
                            "default %(default)s")
    g.add_argument("--params", default=None,
                   help=".npz or .json with arrays wEE, wEI, sigma ([N] or [B, N]) and G")
    s = p.add_argument_group("integration")
    s.add_argument("--engine", default="numba", choices=("numba", "torch", "numpy"))
    s.add_argument("--dt", type=float, default=0.006, help="Euler step in s; default %(default)s")
    s.add_argument("--duration", type=float, default=864.0,
                   help="recorded seconds (multiple of TR); default %(default)s")
    s.add_argument("--burn-in", type=float, default=144.0,
                   help="discarded seconds before recording; default %(default)s")
    s.add_argument("--warmup-steps", type=int, default=5000)
    s.add_argument("--n-dup", type=int, default=3, help="noise duplicates; default %(default)s")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--no-gate", action="store_true",
                   help="do not require every region's mean r_E in [2.7, 3.3] Hz for validity")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for the ``nmmfit`` command."""
    parser = argparse.ArgumentParser(prog="nmmfit", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"nmmfit {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v: the phases of long runs, -vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="only errors: no log lines, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list the bundled cohorts")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("simulate", help="simulate pFIC + BOLD for a batch of parameter sets")
    _add_target_args(p)
    _add_sim_args(p)
    p.add_argument("--out", default=None, help="write BOLD, averages and config to this .npz")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("cost", help="FC+FCD cost of saved simulations against a target")
    _add_target_args(p)
    p.add_argument("bold", help=".npz written by `nmmfit simulate --out`")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("run", help="main job: simulate the HCP training group, print cost and E/I")
    _add_target_args(p)
    _add_sim_args(p)
    p.add_argument("--quick", action="store_true",
                   help="shorter run (72 s recorded after 14.4 s burn-in) for a first look")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-progress", action="store_true")

    add_fit_parser(sub)
    add_surrogate_parser(sub)
    add_population_parser(sub)
    add_jr_parser(sub)
    return parser


def _load_target(args):
    from nmmfit.data.target import Target

    ds = datasets.load(args.dataset)
    group = args.group
    if group is None and args.subjects is None and ds.groups:
        group = next(iter(ds.groups))
    return Target.from_dataset(ds, subjects=args.subjects, group=group), ds


def _params_from_args(args):
    if args.params is None:
        return args.wEE, args.wEI, args.G, args.sigma
    if args.params.endswith(".json"):
        with open(args.params) as fh:
            d = json.load(fh)
    else:
        d = dict(np.load(args.params))
    missing = [k for k in ("wEE", "wEI", "G", "sigma") if k not in d]
    if missing:
        raise SystemExit(f"error: {args.params} lacks {missing}")
    return (np.asarray(d["wEE"]), np.asarray(d["wEI"]), np.asarray(d["G"]),
            np.asarray(d["sigma"]))


def _config_from_args(args, tr: float):
    from nmmfit.sim import SimConfig

    cfg = SimConfig.for_tr(tr, dt=args.dt, duration_s=args.duration, burn_in_s=args.burn_in,
                           warmup_steps=args.warmup_steps)
    if abs(cfg.dt - args.dt) > 1e-12 or abs(cfg.duration_s - args.duration) > 1e-9:
        print(f"note: TR = {tr} s: using dt = {cfg.dt:.6g} s, {cfg.duration_s:g} s recorded after "
              f"{cfg.burn_in_s:g} s burn-in (whole steps per TR, whole TRs)", file=sys.stderr)
    if args.no_gate:
        cfg = replace(cfg, rate_gate=None)
    return cfg


def _simulate(args, target):
    from nmmfit.sim import simulate

    cfg = _config_from_args(args, target.tr)
    wee, wei, g, sig = _params_from_args(args)
    return simulate(target.sc, wee, wei, g, sig, config=cfg, n_dup=args.n_dup, seed=args.seed,
                    engine=args.engine, threads=args.threads,
                    progress=not (args.no_progress or args.json))


def _print(obj, as_json: bool, text: str) -> None:
    if as_json:
        print(strict_json(obj))
    else:
        print(text)


def cmd_datasets(args) -> int:
    rows = []
    for name in datasets.available():
        ds = datasets.load(name)
        rows.append({"name": name, "parcellation": ds.parcellation, "n_regions": ds.n_regions,
                     "tr": ds.tr, "subjects": list(ds.subjects), "groups": list(ds.groups),
                     "maps": list(ds.maps)})
    text = "\n".join(
        f"{r['name']:<16} {r['parcellation']:<14} N={r['n_regions']:<4} TR={r['tr']} s  "
        f"subjects={len(r['subjects'])} groups={r['groups']} maps={r['maps']}" for r in rows)
    _print(rows, args.json, text)
    return 0


def _sim_summary(res) -> dict:
    return {
        "shape_B_D_N_T": list(res.bold.shape),
        "valid": res.valid.tolist(),
        "mean_rE_hz": {"min": float(np.nanmin(res.mean_rE)), "max": float(np.nanmax(res.mean_rE))},
        "ei_ratio": {"mean": float(np.nanmean(res.ei_ratio)),
                     "min": float(np.nanmin(res.ei_ratio)), "max": float(np.nanmax(res.ei_ratio))},
        "wall_s": res.meta["wall_s"],
        "region_steps_per_s": res.meta["region_steps"] / res.meta["wall_s"],
    }


def cmd_simulate(args) -> int:
    target, _ = _load_target(args)
    res = _simulate(args, target)
    out = _sim_summary(res)
    if args.out:
        np.savez_compressed(
            args.out, bold=res.bold, mean_rE=res.mean_rE, mean_SE=res.mean_SE,
            mean_SI=res.mean_SI, ei_ratio=res.ei_ratio, valid=res.valid, wIE=res.wIE,
            meta=json.dumps(res.meta, default=to_builtin))
        out["out"] = args.out
    text = (f"simulated B x D x N x T = {tuple(res.bold.shape)} in {out['wall_s']:.1f} s "
            f"({out['region_steps_per_s'] / 1e6:.1f} M region-steps/s)\n"
            f"valid: {int(res.valid.sum())}/{res.valid.size}; mean r_E "
            f"{out['mean_rE_hz']['min']:.3f}-{out['mean_rE_hz']['max']:.3f} Hz; E/I ratio mean "
            f"{out['ei_ratio']['mean']:.4f}" + (f"\nwrote {args.out}" if args.out else ""))
    _print(out, args.json, text)
    return 0


def cmd_cost(args) -> int:
    from nmmfit.stats.cost import fc_fcd_cost

    target, _ = _load_target(args)
    with np.load(args.bold) as d:
        bold, valid = d["bold"], d["valid"]
    terms = fc_fcd_cost(bold, target, valid=valid)
    out = terms.as_dict()
    text = "\n".join(
        f"set {b}: fc_corr={terms.fc_corr[b]:.4f} fc_l1={terms.fc_l1[b]:.4f} "
        f"fcd_ks={terms.fcd_ks[b]:.4f} total={terms.total[b]:.4f} valid={bool(terms.valid[b])}"
        for b in range(terms.total.shape[0]))
    _print(out, args.json, text)
    return 0


def cmd_run(args) -> int:
    from nmmfit.stats.cost import fc_fcd_cost

    if args.quick:
        args.duration, args.burn_in = 72.0, 14.4
    t0 = time.perf_counter()
    target, ds = _load_target(args)
    res = _simulate(args, target)
    terms = fc_fcd_cost(res.bold, target, valid=res.valid)
    ei = np.nanmean(np.where(res.valid[..., None], res.ei_ratio, np.nan), axis=1)[0]  # [N]
    out = {
        "target": target.name, "n_regions": target.n_regions,
        "params": {"wEE": args.wEE, "wEI": args.wEI, "G": args.G, "sigma": args.sigma,
                   "file": args.params},
        "cost": {k: float(np.asarray(v)[0]) for k, v in terms.as_dict().items()},
        "ei_ratio": {"mean": float(np.nanmean(ei)), "min": float(np.nanmin(ei)),
                     "max": float(np.nanmax(ei)), "per_region": ei},
        "simulation": _sim_summary(res),
        "wall_s": time.perf_counter() - t0,
        "config": res.meta["config"], "seed": args.seed, "versions": res.meta["versions"],
    }
    rate = out["simulation"]["mean_rE_hz"]
    lines = [f"target {target.name} (N={target.n_regions}); {res.valid.sum()}/{res.valid.size} "
             f"valid simulations (regional mean r_E {rate['min']:.2f}-{rate['max']:.2f} Hz; valid "
             f"needs [2.7, 3.3] Hz), {out['simulation']['wall_s']:.1f} s",
             "cost: " + "  ".join(f"{k}={out['cost'][k]:.4f}"
                                  for k in ("fc_corr", "fc_l1", "fcd_ks", "total")),
             f"E/I ratio (mean S_E / mean S_I): mean {out['ei_ratio']['mean']:.4f}, range "
             f"{out['ei_ratio']['min']:.4f}-{out['ei_ratio']['max']:.4f}"]
    if ds.networks is not None and np.isfinite(ei).any():
        per_net = ds.network_means(ei)
        out["ei_ratio"]["by_yeo7"] = per_net
        lines.append("E/I by Yeo-7 network: " + ", ".join(f"{k} {v:.4f}"
                                                        for k, v in per_net.items()))
    _print(out, args.json, "\n".join(lines))
    return 0


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Log lines of the ``nmmfit`` loggers to stderr: warnings by default, INFO with
    ``verbose`` 1, DEBUG with 2; ``quiet``: errors only, and no tqdm progress bars."""
    level = (logging.ERROR if quiet else logging.WARNING if verbose == 0
             else logging.INFO if verbose == 1 else logging.DEBUG)
    log = logging.getLogger("nmmfit")
    log.setLevel(level)
    if not log.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s",
                                         "%H:%M:%S"))
        log.addHandler(h)
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"  # tqdm >= 4.66 reads it for every new bar


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nmmfit`` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    if args.quiet and hasattr(args, "no_progress"):
        args.no_progress = True
    handlers = {"datasets": cmd_datasets, "simulate": cmd_simulate, "cost": cmd_cost,
                "run": cmd_run}
    if args.command in handlers:
        try:
            return handlers[args.command](args)
        except (ValueError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
