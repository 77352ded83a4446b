"""``nmmfit jr simulate|dataset|sensitivity|infer|benchmark``: the Jansen-Rit ERP commands.

The lead's ``nmmfit.cli`` calls :func:`add_jr_parser`; :func:`main` runs the commands alone
(``python -m nmmfit.cli_jr ...``).

The commands need the ``eeg`` extra (``pip install 'nmmfit[eeg]'``); without it they print
one line naming it and exit with code 2.

Imports: the commands' library modules (:mod:`nmmfit.eeg`, :mod:`nmmfit.infer`, the plots)
are imported when a command runs, so that ``nmmfit --help`` and the light commands start fast
(and work without the extra); light modules (numpy only: the JR parameter table) are
imported at the top.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from nmmfit._extras import MissingExtraError, require
from nmmfit._json import strict_json
from nmmfit.models import jansen_rit as jr


def _config(args):
    """ERPConfig from the model flags: the defaults, or the paper-v1 mode with ``--paper-v1``;
    flags given explicitly override either."""
    from nmmfit.eeg.erp import ERPConfig

    base = ERPConfig.paper_v1() if args.paper_v1 else ERPConfig()
    c = replace(base.constants, **{k: v for k, v in (("mu", args.mu), ("sigma", args.sigma))
                                   if v is not None})
    st = replace(base.stimulus, **{k: v for k, v in (("n_pulses", args.n_pulses),
                                                     ("amp_p", args.amp_p),
                                                     ("amp_i", args.amp_i)) if v is not None})
    return replace(base, constants=c, stimulus=st, method=args.method or base.method,
                   n_sub=args.n_sub)


def _common(p: argparse.ArgumentParser) -> None:
    d, s = jr.DEFAULT_CONSTANTS, jr.DEFAULT_STIMULUS
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument("--paper-v1", action="store_true",
                   help="the paper v1 code's simulator (its stimulus routing, no background "
                   "drive, Euler, the a1 defect; docs/jansen_rit.md); flags below override it")
    p.add_argument("--mu", type=float, default=None,
                   help=f"background drive mean, 1/s (default {d.mu}; paper v1: 0)")
    p.add_argument("--sigma", type=float, default=None,
                   help=f"background noise sd, 1/s (default {d.sigma}; paper v1: 0.1)")
    p.add_argument("--n-pulses", type=int, default=None,
                   help=f"stimulus pulses (trials; default {s.n_pulses})")
    p.add_argument("--amp-p", type=float, default=None,
                   help=f"I_p amplitude, 1/s (default {s.amp_p})")
    p.add_argument("--amp-i", type=float, default=None,
                   help=f"I_i amplitude, 1/s (default {s.amp_i}; paper v1: 60)")
    p.add_argument("--method", choices=("euler", "heun", "rk4"), default=None,
                   help="integration scheme (default rk4; paper v1: euler)")
    p.add_argument("--n-sub", type=int, default=1, help="integration sub-steps per sample")
    p.add_argument("--json", action="store_true", help="print a JSON summary")


def add_jr_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``jr`` with its sub-commands on an argparse ``subparsers`` object."""
    jrp = subparsers.add_parser("jr", help="Jansen-Rit event-related EEG")
    sub = jrp.add_subparsers(dest="jr_command", required=True)

    p = sub.add_parser("simulate", help="simulate ERPs for given parameters")
    _common(p)
    for name in jr.PARAM_NAMES:
        p.add_argument(f"--{name}", type=float, nargs="+", default=None,
                       help=f"{name} value(s) (default: JR typical)")
    p.add_argument("--alpha", type=float, default=0.0, help="noise factor (>= 0)")
    p.add_argument("--engine", choices=("numba", "torch"), default="numba")
    p.add_argument("--out", type=Path, default=None, help="save arrays to this .npz")
    p.add_argument("--fif", type=Path, default=None, help="save the first ERP as MNE -ave.fif")
    p.set_defaults(func=_guard(cmd_simulate))

    p = sub.add_parser("dataset", help="generate a training dataset (NetCDF)")
    _common(p)
    p.add_argument("--n", type=int, default=1000, help="simulations (shared by all alphas)")
    p.add_argument("--alphas", type=float, nargs="+", default=None,
                   help="noise factors (default: the paper's 10)")
    p.add_argument("--include-c", action="store_true", help="also sample C (9th parameter)")
    p.add_argument("--out", type=Path, required=True, help="output .nc file")
    p.set_defaults(func=_guard(cmd_dataset))

    p = sub.add_parser("sensitivity", help="one-at-a-time sensitivity + heatmaps")
    _common(p)
    p.add_argument("--n-values", type=int, default=200)
    p.add_argument("--base", choices=("mid", "typical"), default="mid")
    p.add_argument("--channel", default=None, help="channel (default: largest gain)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=_guard(cmd_sensitivity))

    p = sub.add_parser("infer", help="train a Bi-LSTM on a dataset, or predict parameters")
    p.add_argument("--data", type=Path, required=True,
                   help="dataset .nc (jr dataset) or .npz with 'eeg' [N, 60, 722] (jr simulate)")
    p.add_argument("--alpha", type=float, default=0.0, help="noise level of a .nc dataset")
    p.add_argument("--model", type=Path, required=True, help="model file (.pt)")
    p.add_argument("--train", action="store_true", help="train and save --model")
    p.add_argument("--frame", type=int, default=8,
                   help="samples per LSTM step (1 = paper; 8 = faster and better here)")
    p.add_argument("--loss", choices=("snr_db", "mse"), default="snr_db")
    p.add_argument("--max-epochs", type=int, default=150)
    p.add_argument("--out", type=Path, default=None, help="predictions .json (predict mode)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=_guard(cmd_infer))

    p = sub.add_parser("benchmark", help="Bi-LSTM across noise, one-at-a-time, NPE")
    p.add_argument("--stages", default="bilstm,oat,npe")
    p.add_argument("--n", type=int, default=1000, help="simulations per noise level")
    p.add_argument("--frame", type=int, default=8,
                   help="samples per LSTM step (1 = paper; 8 = faster and better here)")
    p.add_argument("--cache", type=Path, default=Path("runs/jr_inference"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/jr_inference.json"))
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                   help="more options of the benchmark (those of "
                   "nmmfit.infer.benchmark_run.benchmark_parser, e.g. --alphas, --scaling-n)")
    p.set_defaults(func=_guard(cmd_benchmark))
    return jrp


def _guard(fn):
    """Run a command; a missing extra or an input error becomes one line on stderr and exit
    code 2 (no traceback)."""
    @functools.wraps(fn)
    def wrapped(args) -> int:
        try:
            require("eeg", feature="nmmfit jr")
            return fn(args)
        except (MissingExtraError, ValueError, FileNotFoundError, IsADirectoryError,
                PermissionError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return wrapped


def _emit(args, summary: dict) -> None:
    if args.json:
        print(strict_json(summary))
    else:
        for k, v in summary.items():
            print(f"{k}: {v}")


def cmd_simulate(args) -> int:
    """``nmmfit jr simulate``."""
    from nmmfit.eeg.erp import ERPSimulator

    theta = {k: v for k in jr.PARAM_NAMES if (v := getattr(args, k)) is not None}
    sim = ERPSimulator(_config(args), engine=args.engine)
    res = sim.simulate(theta, alpha=args.alpha, seed=args.seed)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.out, eeg=res["eeg"], source=res["source"],
                            snr_db=res["snr_db"], times=sim.design.times,
                            channels=np.array(sim.ch_names),
                            config=json.dumps(sim.config.as_dict(), default=str))
    if args.fif:
        sim.to_evoked(res["eeg"][0].astype(float)).save(args.fif, overwrite=True,
                                                        verbose="ERROR")
    _emit(args, {"n": int(res["eeg"].shape[0]), "shape": list(res["eeg"].shape),
                 "alpha": args.alpha,
                 "snr_db": [None if not np.isfinite(v) else v
                            for v in res["snr_db"].round(3).tolist()],
                 "n_diverged": int(res["diverged"].sum()), "wall_s": round(res["wall_s"], 3),
                 "out": str(args.out) if args.out else None})
    return 0


def cmd_dataset(args) -> int:
    """``nmmfit jr dataset``."""
    from nmmfit.infer.jr_dataset import ALPHAS, generate_dataset, save_dataset

    t0 = time.perf_counter()
    ds = generate_dataset(n=args.n, alphas=args.alphas or ALPHAS, seed=args.seed,
                          include_c=args.include_c, config=_config(args), progress=True)
    path = save_dataset(ds, args.out)
    snr = ds.snr_db.mean("sim").values
    _emit(args, {"out": str(path), "n_requested": args.n, "n_diverged": ds.attrs["n_diverged"],
                 "n_valid": int(ds.sizes["sim"]),
                 "snr_db_by_alpha": {str(a): (None if np.isinf(s) else round(float(s), 3))
                                     for a, s in zip(ds.alpha.values, snr, strict=True)},
                 "wall_s": round(time.perf_counter() - t0, 2)})
    return 0


def cmd_sensitivity(args) -> int:
    """``nmmfit jr sensitivity``: sweep, metrics, ranking and heatmaps for all parameters."""
    from nmmfit.infer.sensitivity import ranking_table, run_sensitivity
    from nmmfit.plots.jansen_rit import plot_sensitivity, plot_sensitivity_grid

    t0 = time.perf_counter()
    ds = run_sensitivity(n_values=args.n_values, base=args.base, channel=args.channel,
                         config=_config(args), seed=args.seed, progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figs = [str(plot_sensitivity(ds, str(p), out / f"sensitivity_{p}.png"))
            for p in ds.param.values]
    figs.append(str(plot_sensitivity_grid(ds, out / "sensitivity_all.png")))
    (out / "sensitivity_ranking.json").write_text(ds.attrs["ranking"])
    if not args.json:
        print(ranking_table(ds))
    _emit(args, {"channel": ds.attrs["channel"], "base": args.base,
                 "ranking": json.loads(ds.attrs["ranking"]), "figures": figs,
                 "n_diverged": int(ds.diverged.sum()),
                 "wall_s": round(time.perf_counter() - t0, 2)})
    return 0


def _load_eeg(path: Path, alpha: float):
    """(eeg [N, n_ch, n_times], theta [N, P] or None, param names, channel names);
    ValueError naming the file for a missing, unreadable or wrongly shaped input."""
    if not path.is_file():
        raise FileNotFoundError(f"EEG data file {path} does not exist")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("eeg", "channels") if k not in z.files]
                if missing:
                    raise ValueError(f"{path} lacks {missing} (has {sorted(z.files)}); give "
                                     "an .npz written by `nmmfit jr simulate --out` (eeg [N, "
                                     "channels, samples] and channels) or a jr dataset")
                eeg, chans = np.asarray(z["eeg"]), [str(c) for c in z["channels"]]
        except ValueError:
            raise
        except Exception as err:  # noqa: BLE001 - zip / format errors: name the file
            raise ValueError(f"{path} cannot be read as an .npz file ({_why(err)})") from None
        _check_eeg(eeg, chans, path)
        return eeg, None, None, chans
    from nmmfit.infer.jr_dataset import load_dataset

    try:
        ds = load_dataset(path)
    except (ValueError, FileNotFoundError):
        raise
    except Exception as err:  # noqa: BLE001 - netCDF / HDF5 errors: name the file
        raise ValueError(f"{path} cannot be read as a jr dataset (written by `nmmfit jr "
                         f"dataset`): {_why(err)}") from None
    if float(alpha) not in [float(a) for a in ds.alpha.values]:
        raise ValueError(f"alpha {alpha} is not in {path}: levels {ds.alpha.values.tolist()}")
    lv = ds.sel(alpha=float(alpha))
    chans = [str(c) for c in ds.channel.values]
    _check_eeg(lv.eeg.values, chans, path)
    return (lv.eeg.values, ds.theta.values, [str(p) for p in ds.param.values], chans)


def _why(err: BaseException) -> str:
    """``Type: first line of the message`` (library errors can run to many lines)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:200] if lines else ''}"


def _check_eeg(eeg: np.ndarray, chans: list[str], path: Path) -> None:
    if eeg.ndim != 3:
        raise ValueError(f"eeg in {path} has shape {eeg.shape}; expected [ERPs, channels, "
                         "samples] (3-D)")
    if len(chans) != eeg.shape[1]:
        raise ValueError(f"eeg in {path} has shape {eeg.shape} ({eeg.shape[1]} channels on "
                         f"axis 1) but {len(chans)} channel names; expected [ERPs, channels, "
                         "samples]")
    if not np.issubdtype(eeg.dtype, np.number) or not np.isfinite(eeg).all():
        raise ValueError(f"eeg in {path} (shape {eeg.shape}, dtype {eeg.dtype}) must be finite "
                         "numbers")


def _load_model(path: Path, n_channels: int):
    from nmmfit.infer.bilstm import BiLSTMEstimator

    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {path} does not exist; train one with `nmmfit jr "
                                "infer DATA --train --model PATH`")
    try:
        return BiLSTMEstimator.load(path, n_channels=n_channels)
    except ValueError:
        raise
    except Exception as err:  # noqa: BLE001 - torch / pickle / zip errors: name the file
        raise ValueError(f"model file {path} cannot be read ({_why(err)}); "
                         "is it a model saved by `nmmfit jr infer --train`?") from None


def cmd_infer(args) -> int:
    """``nmmfit jr infer``: train (``--train``) or apply a Bi-LSTM estimator."""
    from nmmfit.infer.benchmark import correlations, split_indices
    from nmmfit.infer.bilstm import BiLSTMConfig, BiLSTMEstimator

    t0 = time.perf_counter()
    x, theta, names, chans = _load_eeg(args.data, args.alpha)
    if args.train:
        if theta is None:
            raise ValueError(f"{args.data} holds no parameters to train on; use a jr dataset")
        tr, va, te = split_indices(x.shape[0])
        cfg = BiLSTMConfig(frame=args.frame, loss=args.loss, max_epochs=args.max_epochs)
        est = BiLSTMEstimator(cfg, params=names).fit(x[tr], theta[tr], x[va], theta[va],
                                                     channel_names=chans)
        est.save(args.model)
        r = correlations(theta[te], est.predict(x[te]), names, n_boot=200)
        _emit(args, {"model": str(args.model), "n_train": len(tr), "n_test": len(te),
                     "epochs": est.meta_.history["epochs_run"],
                     "test_pearson": {n: round(v["pearson"], 4) for n, v in r.items()},
                     "wall_s": round(time.perf_counter() - t0, 1)})
        return 0
    est = _load_model(args.model, x.shape[1])
    pred = est.predict(x, channel_names=chans)
    summary = {"n": int(x.shape[0]), "params": est.meta_.param_names,
               "predictions": pred.round(5).tolist()}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary))
        summary = {"n": summary["n"], "out": str(args.out)}
    _emit(args, summary)
    return 0


def cmd_benchmark(args) -> int:
    """``nmmfit jr benchmark``: :func:`nmmfit.infer.benchmark_run.run_benchmark` (JSON +
    figures; the same run as ``benchmarks/jr_inference.py``)."""
    from nmmfit.infer.benchmark_run import benchmark_parser, run_benchmark

    argv = ["--stages", args.stages, "--n", str(args.n), "--frame", str(args.frame),
            "--cache", str(args.cache), "--out", str(args.out), *args.extra]
    run_benchmark(benchmark_parser().parse_args(argv), argv)
    return 0


def main(argv=None) -> int:
    """Stand-alone entry point: ``python -m nmmfit.cli_jr jr simulate ...``."""
    parser = argparse.ArgumentParser(prog="nmmfit")
    add_jr_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
