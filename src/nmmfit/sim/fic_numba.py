"""Fast CPU engine for pFIC + Balloon-Windkessel: numba, parallel over lanes, SIMD inner loops.

A "lane" is one (parameter set, noise duplicate) simulation. Lanes are split into one
contiguous chunk per thread (``prange``); each thread integrates its chunk for the whole run
with state arrays laid out [N, lanes] so that every inner loop runs over contiguous lanes
and vectorises (see :mod:`nmmfit.sim.vecmath`). Noise is counter-based, so a lane's result
depends only on its key, never on the chunking.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nmmfit.sim.vecmath import exp_, log_, mix64, normal_pair

_CONST_ORDER = ("I0", "W_E", "W_I", "J_NMDA", "a_E", "b_E", "d_E", "a_I", "b_I", "d_I",
                "tau_E", "tau_I", "gamma")
_BW_ORDER = ("rho", "V0", "kappa", "gamma_h", "tau", "alpha", "k1", "k2", "k3")


def pack_constants(constants, balloon) -> tuple[np.ndarray, np.ndarray]:
    """Constants as float64 arrays in the order the kernel reads them."""
    c = constants.as_dict()
    b = balloon.as_dict()
    return (np.array([c[k] for k in _CONST_ORDER], dtype=np.float64),
            np.array([b[k] for k in _BW_ORDER], dtype=np.float64))


@njit(inline="always", cache=True)
def _h(u, d):
    """u / (1 - exp(-d u)) with the removable singularity at u = 0 handled."""
    small = abs(u) < 1e-9
    den = 1.0 - exp_(-d * (1.0 if small else u))
    return 1.0 / d + 0.5 * u if small else u / den


#: Order of the state variables in the ``state`` array passed to :func:`integrate`.
STATE_VARS = ("S_E", "S_I", "z", "f", "v", "q")


@njit(parallel=True, cache=True, fastmath={"contract"})
def integrate(sc, wee, wei, wie, sigma, g, keys, consts, bw, dt, step0, n_seg, n_warm,
              n_burn_frames, spf, noise_on, n_chunks, state, sums, bold_out):
    """Advance L lanes by ``n_seg`` Euler steps, from global step ``step0``.

    Arrays: sc [N,N]; wee, wei, wie, sigma [L,N]; g [L]; keys [L] uint64;
    state [6,L,N] (S_E, S_I, z, f, v, q; read and written); sums [L,3,N] (running sums of
    r_E, S_E, S_I over the main loop; read and written); bold_out [L,N,T] float32 (frames
    that fall in this segment are written). Steps < ``n_warm`` are warm-up (no BOLD, no
    sums). ``n_chunks``: one chunk of lanes per thread.
    """
    n_lanes, n = wee.shape
    n_frames = bold_out.shape[2]
    n_thr = max(1, min(n_chunks, n_lanes))
    chunk = (n_lanes + n_thr - 1) // n_thr
    if chunk >= 16:
        # whole SIMD vectors (4 lanes) per chunk, so that the loops have no scalar remainder
        chunk = (chunk + 3) // 4 * 4
    i0, w_e, w_i, jn = consts[0], consts[1], consts[2], consts[3]
    a_e, b_e, d_e, a_i, b_i, d_i = consts[4], consts[5], consts[6], consts[7], consts[8], consts[9]
    tau_e, tau_i, gam = consts[10], consts[11], consts[12]
    rho, v0, kappa, gam_h, tau_h, alpha = bw[0], bw[1], bw[2], bw[3], bw[4], bw[5]
    k1, k2, k3 = bw[6], bw[7], bw[8]
    inv_alpha = 1.0 / alpha
    inv_tau_e = 1.0 / tau_e
    inv_tau_i = 1.0 / tau_i
    inv_rho = 1.0 / rho
    dt_tau_h = dt / tau_h
    log1mrho = np.log(1.0 - rho)
    bscale = 100.0 / rho * v0
    sqdt = np.sqrt(dt)
    for t in prange(n_thr):
        l0 = t * chunk
        l1 = min(n_lanes, l0 + chunk)
        m = l1 - l0
        if m <= 0:
            continue
        # per-thread copies, laid out [N, m] so that inner loops run over contiguous lanes
        st = np.empty((6, n, m))
        cpl = np.empty((n, m))
        p_wee = np.empty((n, m))
        p_wei = np.empty((n, m))
        p_wie = np.empty((n, m))
        p_sig = np.empty((n, m))
        acc = np.empty((3, n, m))
        gl = np.empty(m)
        key = np.empty(m, dtype=np.uint64)
        for k in range(m):
            gl[k] = g[l0 + k] * jn
            key[k] = keys[l0 + k]
            for i in range(n):
                for c in range(6):
                    st[c, i, k] = state[c, l0 + k, i]
                for c in range(3):
                    acc[c, i, k] = sums[l0 + k, c, i]
                p_wee[i, k] = wee[l0 + k, i] * jn
                p_wei[i, k] = wei[l0 + k, i] * jn
                p_wie[i, k] = wie[l0 + k, i]
                p_sig[i, k] = sigma[l0 + k, i] * sqdt
        se = st[0]
        si = st[1]
        z = st[2]
        f = st[3]
        v = st[4]
        q = st[5]
        for step in range(step0, step0 + n_seg):
            main = step >= n_warm
            # network input: cpl[i] = sum_j SC_ij S_E,j (a small single-threaded BLAS gemm)
            np.dot(sc, se, cpl)
            base = np.uint64(step) * np.uint64(n)
            for i in range(n):
                h = mix64(base + np.uint64(i))
                for k in range(m):
                    s_e = se[i, k]
                    s_i = si[i, k]
                    cur_e = w_e * i0 + p_wee[i, k] * s_e + gl[k] * cpl[i, k] - p_wie[i, k] * s_i
                    cur_i = w_i * i0 + p_wei[i, k] * s_e - s_i
                    r_e = _h(a_e * cur_e - b_e, d_e)
                    r_i = _h(a_i * cur_i - b_i, d_i)
                    ds_e = -s_e * inv_tau_e + (1.0 - s_e) * gam * r_e
                    ds_i = -s_i * inv_tau_i + r_i
                    new_e = s_e + dt * ds_e
                    new_i = s_i + dt * ds_i
                    if noise_on:
                        xi_e, xi_i = normal_pair(mix64(key[k] ^ h))
                        new_e += p_sig[i, k] * xi_e
                        new_i += p_sig[i, k] * xi_i
                    se[i, k] = new_e
                    si[i, k] = new_i
                    if main:
                        acc[0, i, k] += r_e
                        acc[1, i, k] += s_e
                        acc[2, i, k] += s_i
                        # Balloon-Windkessel, driven by S_E at the start of the step
                        zz = z[i, k]
                        ff = f[i, k]
                        vv = v[i, k]
                        qq = q[i, k]
                        vpow = exp_(inv_alpha * log_(vv))
                        extr = 1.0 - exp_(log1mrho / ff)
                        z[i, k] = zz + dt * (s_e - kappa * zz - gam_h * (ff - 1.0))
                        f[i, k] = ff + dt * zz
                        v[i, k] = vv + dt_tau_h * (ff - vpow)
                        q[i, k] = qq + dt_tau_h * (ff * inv_rho * extr - qq * vpow / vv)
            if main:
                rel = step - n_warm + 1
                if rel % spf == 0:
                    frame = rel // spf - 1 - n_burn_frames
                    if 0 <= frame < n_frames:
                        for i in range(n):
                            for k in range(m):
                                vv = v[i, k]
                                qq = q[i, k]
                                bold_out[l0 + k, i, frame] = bscale * (
                                    k1 * (1.0 - qq) + k2 * (1.0 - qq / vv) + k3 * (1.0 - vv))
        for k in range(m):
            for i in range(n):
                for c in range(6):
                    state[c, l0 + k, i] = st[c, i, k]
                for c in range(3):
                    sums[l0 + k, c, i] = acc[c, i, k]
