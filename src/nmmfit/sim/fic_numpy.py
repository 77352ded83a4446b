"""Plain numpy reference engine for pFIC + Balloon-Windkessel.

Written for clarity, not speed: one vectorised Euler-Maruyama step over all lanes per loop
iteration, using the model functions of :mod:`nmmfit.models` directly. Noise comes from
``numpy.random.Generator`` (one per lane), so it agrees with the fast engines in
distribution, not bit for bit.
"""

from __future__ import annotations

import numpy as np

from nmmfit.models import balloon, fic


def integrate(sc, wee, wei, wie, sigma, g, keys, s_e0, s_i0, config, noise_on, progress=None):
    """Integrate L lanes; same array conventions as :func:`nmmfit.sim.fic_numba.integrate`.

    Returns (bold [L, N, T] float32, sums [L, 3, N]).
    """
    c = config.constants
    bc = config.balloon
    n_lanes, n = wee.shape
    dt = config.dt
    rngs = [np.random.default_rng(int(k)) for k in keys]
    se, si = s_e0.copy(), s_i0.copy()
    z, f, v, q = balloon.initial_state((n_lanes, n))
    spf = config.steps_per_frame
    bold = np.empty((n_lanes, n, config.n_frames), dtype=np.float32)
    sums = np.zeros((n_lanes, 3, n))
    amp = sigma * np.sqrt(dt)
    n_total = config.warmup_steps + config.n_steps
    for step in range(n_total):
        main = step >= config.warmup_steps
        ds_e, ds_i, r_e, _ = fic.rhs(se, si, wee, wei, wie, g, sc, c)
        new_e = se + dt * ds_e
        new_i = si + dt * ds_i
        if noise_on:
            xi = np.stack([r.standard_normal((2, n)) for r in rngs])  # [L, 2, N]
            new_e += amp * xi[:, 0]
            new_i += amp * xi[:, 1]
        if main:
            sums[:, 0] += r_e
            sums[:, 1] += se
            sums[:, 2] += si
            dz, df, dv, dq = balloon.rhs(se, z, f, v, q, bc)
            z, f, v, q = z + dt * dz, f + dt * df, v + dt * dv, q + dt * dq
            rel = step - config.warmup_steps + 1
            if rel % spf == 0:
                frame = rel // spf - 1 - config.n_burn_frames
                if frame >= 0:
                    bold[:, :, frame] = balloon.bold_signal(v, q, bc)
        se, si = new_e, new_i
        if progress is not None and (step + 1) % spf == 0:
            progress.update(spf)
    return bold, sums
