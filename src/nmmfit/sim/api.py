"""Single entry point for pFIC + BOLD simulation: :func:`simulate`."""

from __future__ import annotations

import platform
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

import nmmfit
from nmmfit.sim import fic_numba, fic_numpy
from nmmfit.sim.common import (
    SEARCH,
    FICBatch,
    SimConfig,
    default_threads,
    lane_keys,
    prepare,
)
from nmmfit.sim.result import SimResult, finish_result

ENGINES = ("numba", "torch", "numpy")


def _versions() -> dict[str, str]:
    import torch  # deferred: importing nmmfit.sim does not load torch

    return {"nmmfit": nmmfit.__version__, "numpy": np.__version__, "numba": numba.__version__,
            "torch": torch.__version__, "python": platform.python_version()}


def simulate(
    sc,
    wEE,
    wEI,
    G,
    sigma,
    *,
    config: SimConfig = SEARCH,
    n_dup: int = 1,
    seed: int = 0,
    engine: str = "numba",
    start: str = "fixed_point",
    threads: int | None = None,
    device: str | None = None,
    progress: bool | str = False,
) -> SimResult:
    """Simulate the pFIC model with Balloon-Windkessel BOLD for a batch of parameter sets.

    Parameters
    ----------
    sc : [N, N] normalised structural connectivity (e.g. ``Target.sc``).
    wEE, wEI, sigma : regional parameters: scalar, [N] or [B, N]. sigma in nA.
    G : global coupling: scalar or [B].
    config : integration settings (:data:`SEARCH` dt = 0.006 s, :data:`TEST` dt = 0.0005 s).
    n_dup : noise duplicates D per parameter set.
    seed : the run seed; simulation (b, d) gets noise derived from (seed, b, d).
    engine : "numba" (fast CPU), "torch" (GPU if present) or "numpy" (reference).
    start : "fixed_point" (S_E*, S_I* of the FIC solve, the papers' start) or "zero"
        (S_E = S_I = 0, useful to exercise the transient).
    threads : CPU threads for the numba engine (default: all usable cores).
    device : torch device string (default: cuda if available, else cpu).
    progress : show a progress bar (in Euler steps); a string is the bar's label.

    Returns
    -------
    SimResult with bold [B, D, N, T] and time averages [B, D, N]; invalid (diverged or
    out-of-gate) simulations are flagged in ``valid``, never raised.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if not isinstance(n_dup, (int, np.integer)) or n_dup < 1:
        raise ValueError(f"n_dup must be a positive int, got {n_dup!r}")
    sc_arr = np.asarray(sc, dtype=float)
    n = sc_arr.shape[0] if sc_arr.ndim == 2 else -1
    batch = FICBatch.from_values(wEE, wEI, G, sigma, n)
    sc_arr, fp = prepare(sc_arr, batch, config)
    b = batch.size
    n_lanes = b * n_dup
    rep = np.repeat  # lane l = b * n_dup + d

    def lanes(x):
        return np.ascontiguousarray(rep(x, n_dup, axis=0))

    wee, wei, wie, sig = lanes(batch.wEE), lanes(batch.wEI), lanes(fp.wIE), lanes(batch.sigma)
    g = lanes(batch.G)
    if start == "fixed_point":
        s_e0, s_i0 = lanes(fp.S_E), lanes(fp.S_I)
    elif start == "zero":
        s_e0, s_i0 = np.zeros_like(wee), np.zeros_like(wee)
    else:
        raise ValueError(f"start must be 'fixed_point' or 'zero', got {start!r}")
    keys = lane_keys(seed, b, n_dup).reshape(-1)
    noise_on = bool((sig > 0).any())
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.warmup_steps + config.n_steps, unit="step", unit_scale=True,
                   desc=progress if isinstance(progress, str) else f"pFIC {engine} x{n_lanes}")
    with np.errstate(all="ignore"):
        if engine == "numba":
            bold, sums = _run_numba(sc_arr, wee, wei, wie, sig, g, keys, s_e0, s_i0, config,
                                    noise_on, threads, progress=bar)
        elif engine == "torch":
            # deferred: fic_torch imports torch, needed only by this engine
            from nmmfit.sim import fic_torch

            bold, sums = fic_torch.integrate(sc_arr, wee, wei, wie, sig, g, keys, s_e0, s_i0,
                                             config, noise_on, device=device, progress=bar)
        else:
            bold, sums = fic_numpy.integrate(sc_arr, wee, wei, wie, sig, g, keys, s_e0, s_i0,
                                             config, noise_on, progress=bar)
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - t0
    n_main = config.n_steps
    meta = {
        "engine": engine, "seed": int(seed), "n_dup": int(n_dup), "start": start,
        "wall_s": wall, "threads": threads or default_threads(),
        "region_steps": int(n_lanes * n * (config.warmup_steps + config.n_steps)),
        "versions": _versions(), "config": config.as_dict(),
    }
    t = config.n_frames
    return finish_result(
        bold.reshape(b, n_dup, n, t), sums.reshape(b, n_dup, 3, n), n_main, fp.wIE, config, meta,
        params=batch,
    )


def _run_numba(sc, wee, wei, wie, sig, g, keys, s_e0, s_i0, config, noise_on, threads,
               progress=None, seg_frames: int = 25):
    """Run the numba kernel in segments of ``seg_frames`` TRs (for progress reporting)."""
    consts, bw = fic_numba.pack_constants(config.constants, config.balloon)
    n_lanes, n = wee.shape
    bold = np.full((n_lanes, n, config.n_frames), np.nan, dtype=np.float32)
    sums = np.zeros((n_lanes, 3, n))
    state = np.empty((6, n_lanes, n))
    state[0], state[1] = s_e0, s_i0
    state[2] = 0.0
    state[3:] = 1.0
    n_thr = min(threads or default_threads(), numba.config.NUMBA_NUM_THREADS)
    total = config.warmup_steps + config.n_steps
    seg = max(1, seg_frames) * config.steps_per_frame
    prev = numba.get_num_threads()
    numba.set_num_threads(n_thr)
    try:
        # each numba thread calls a small single-threaded BLAS gemm for the coupling
        with threadpool_limits(limits=1, user_api="blas"):
            step = 0
            while step < total:
                n_seg = min(seg, total - step)
                fic_numba.integrate(sc, wee, wei, wie, sig, g, keys, consts, bw, config.dt,
                                    step, n_seg, config.warmup_steps, config.n_burn_frames,
                                    config.steps_per_frame, noise_on, n_thr, state, sums, bold)
                step += n_seg
                if progress is not None:
                    progress.update(n_seg)
    finally:
        numba.set_num_threads(prev)
    return bold, sums
