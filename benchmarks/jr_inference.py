"""Jansen-Rit parameter inference benchmark: Bi-LSTM across noise, one-at-a-time, NPE.

    nice -n 15 .venv/bin/python benchmarks/jr_inference.py [--stages bilstm,oat,npe]
        [--n 1000] [--frame 1] [--cache runs/jr_inference] [--scaling-n 10000]

Writes ``benchmarks/results/jr_inference.json`` (after every stage, so a partial run leaves
partial results) and ``benchmarks/results/figures/jr_inf_*.png``. Each noise level's results
are cached under ``--cache`` (gitignored ``runs/``): a killed run resumes where it stopped.
The benchmark itself is :func:`nmmfit.infer.benchmark_run.run_benchmark` (also ``nmmfit jr
benchmark``); this script gives it the repository's paths.

Keys: ``bilstm_pearson`` / ``bilstm_spearman`` (alpha -> parameter -> r, test split),
``bilstm_benchmark_minutes`` (wall: simulating the 10 x 1000 ERPs + training and testing all
10 levels; CPU minutes beside it, since the 2-core machine is shared), ``npe_pearson``
(posterior mean, same test split), ``npe_coverage50`` / ``npe_coverage90`` and
``npe_sbc_ks_p`` (on ``--calib-n`` fresh simulations per level; sbi's ``check_sbc`` of the
same ranks in ``npe_sbc_ks_p_sbi``, ``npe_sbc_c2st_ranks``, ``npe_sbc_c2st_dap``),
``one_at_a_time``, ``paper_table``, and config, seeds and versions.
"""

from __future__ import annotations

from pathlib import Path

from nmmfit.infer.benchmark_run import benchmark_parser, run_benchmark

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results" / "jr_inference.json"
FIG = HERE / "results" / "figures"


def main(argv=None) -> int:
    opts = benchmark_parser(cache=ROOT / "runs" / "jr_inference", out=OUT,
                            fig_dir=FIG).parse_args(argv)
    run_benchmark(opts, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
