"""Fast CPU engine for the Jansen-Rit column: numba, parallel over lanes, SIMD inner loops.

A lane is one parameter set. Lanes are split into one contiguous chunk per thread
(``prange``); within a chunk the innermost loop runs over lanes, so the arithmetic and
:func:`nmmfit.sim.vecmath.exp_` vectorise. Each output sample is integrated with ``n_sub``
sub-steps of Euler, Heun or classical RK4; inputs (stimulus and background drive) are held
constant over an output sample, so sub-steps never straddle a pulse edge.

The background noise xi_n of lane l at output sample n is counter-based: the 64-bit hash
``h = mix64(key_l ^ mix64(n))`` (SplitMix64 finaliser) gives two 32-bit uniforms u1, u2 and
xi_n = sqrt(-2 ln u1) cos(2 pi u2) (Box-Muller). It depends only on the lane's key, never on
how lanes are chunked, and the torch engine reproduces the same numbers.

Equations: :mod:`nmmfit.models.jansen_rit`.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from nmmfit.sim.vecmath import exp_, mix64, normal_pair

#: Integration schemes, by name -> code used in the kernel.
METHODS: dict[str, int] = {"euler": 0, "heun": 1, "rk4": 2}

#: |y1 - y2| above this (mV) flags a lane as diverged (physiological values stay below ~200).
DIVERGE_MV = 1e4


_BLK = 64  # output samples buffered per flush


@njit(inline="always", cache=True)
def box_muller(h) -> float:
    """Standard normal from a uint64 of random bits: the cosine member of the Box-Muller pair
    (top 32 bits -> u1, bottom 32 -> u2) of :func:`nmmfit.sim.vecmath.normal_pair`."""
    return normal_pair(h)[0]


@njit(cache=True)
def lane_normals(key, n: int) -> np.ndarray:
    """The first ``n`` background-noise normals of the lane with uint64 ``key`` (diagnostics)."""
    out = np.empty(n)
    for i in range(n):
        out[i] = box_muller(mix64(key ^ mix64(np.uint64(i))))
    return out


@njit(inline="always", cache=True)
def _sig(v, vm, v0, r):
    return vm / (1.0 + exp_(r * (v0 - v)))


@njit(inline="always", cache=True)
def _rhs(y0, y1, y2, y3, y4, y5, ae, be, ai, bi, c1, c2, c3, c4, drive, ii, iy, vm, v0, r):
    """The six derivatives (see the model module); ``drive`` = p + I_p, ``ii`` = I_i,
    ``iy`` = I_y (input to the pyramidal cells' own PSP; 0 except in the paper-v1 routing)."""
    d3 = ae * be * (iy + _sig(y1 - y2, vm, v0, r)) - 2.0 * be * y3 - be * be * y0
    d4 = ae * be * (drive + c2 * _sig(c1 * y0, vm, v0, r)) - 2.0 * be * y4 - be * be * y1
    d5 = ai * bi * (ii + c4 * _sig(c3 * y0, vm, v0, r)) - 2.0 * bi * y5 - bi * bi * y2
    return y3, y4, y5, d3, d4, d5


@njit(inline="always", cache=True)
def _euler_lanes(y, pr, drv, iin, iyn, vm, v0, r, dt, m):
    for k in range(m):
        ae, be, ai, bi = pr[0, k], pr[1, k], pr[2, k], pr[3, k]
        c1, c2, c3, c4 = pr[4, k], pr[5, k], pr[6, k], pr[7, k]
        a0, a1, a2, a3, a4, a5 = y[0, k], y[1, k], y[2, k], y[3, k], y[4, k], y[5, k]
        k0, k1, k2, k3, k4, k5 = _rhs(a0, a1, a2, a3, a4, a5, ae, be, ai, bi,
                                      c1, c2, c3, c4, drv[k], iin, iyn, vm, v0, r)
        y[0, k] = a0 + dt * k0
        y[1, k] = a1 + dt * k1
        y[2, k] = a2 + dt * k2
        y[3, k] = a3 + dt * k3
        y[4, k] = a4 + dt * k4
        y[5, k] = a5 + dt * k5


@njit(inline="always", cache=True)
def _heun_lanes(y, pr, drv, iin, iyn, vm, v0, r, dt, m):
    h2 = 0.5 * dt
    for k in range(m):
        ae, be, ai, bi = pr[0, k], pr[1, k], pr[2, k], pr[3, k]
        c1, c2, c3, c4 = pr[4, k], pr[5, k], pr[6, k], pr[7, k]
        dr = drv[k]
        a0, a1, a2, a3, a4, a5 = y[0, k], y[1, k], y[2, k], y[3, k], y[4, k], y[5, k]
        k0, k1, k2, k3, k4, k5 = _rhs(a0, a1, a2, a3, a4, a5, ae, be, ai, bi,
                                      c1, c2, c3, c4, dr, iin, iyn, vm, v0, r)
        p0, p1, p2, p3, p4, p5 = _rhs(a0 + dt * k0, a1 + dt * k1, a2 + dt * k2, a3 + dt * k3,
                                      a4 + dt * k4, a5 + dt * k5, ae, be, ai, bi,
                                      c1, c2, c3, c4, dr, iin, iyn, vm, v0, r)
        y[0, k] = a0 + h2 * (k0 + p0)
        y[1, k] = a1 + h2 * (k1 + p1)
        y[2, k] = a2 + h2 * (k2 + p2)
        y[3, k] = a3 + h2 * (k3 + p3)
        y[4, k] = a4 + h2 * (k4 + p4)
        y[5, k] = a5 + h2 * (k5 + p5)


@njit(inline="always", cache=True)
def _rk4_lanes(y, pr, drv, iin, iyn, vm, v0, r, dt, m):
    h2 = 0.5 * dt
    h6 = dt / 6.0
    for k in range(m):
        ae, be, ai, bi = pr[0, k], pr[1, k], pr[2, k], pr[3, k]
        c1, c2, c3, c4 = pr[4, k], pr[5, k], pr[6, k], pr[7, k]
        dr = drv[k]
        a0, a1, a2, a3, a4, a5 = y[0, k], y[1, k], y[2, k], y[3, k], y[4, k], y[5, k]
        k0, k1, k2, k3, k4, k5 = _rhs(a0, a1, a2, a3, a4, a5, ae, be, ai, bi,
                                      c1, c2, c3, c4, dr, iin, iyn, vm, v0, r)
        q0, q1, q2, q3, q4, q5 = _rhs(a0 + h2 * k0, a1 + h2 * k1, a2 + h2 * k2, a3 + h2 * k3,
                                      a4 + h2 * k4, a5 + h2 * k5, ae, be, ai, bi,
                                      c1, c2, c3, c4, dr, iin, iyn, vm, v0, r)
        u0, u1, u2, u3, u4, u5 = _rhs(a0 + h2 * q0, a1 + h2 * q1, a2 + h2 * q2, a3 + h2 * q3,
                                      a4 + h2 * q4, a5 + h2 * q5, ae, be, ai, bi,
                                      c1, c2, c3, c4, dr, iin, iyn, vm, v0, r)
        w0, w1, w2, w3, w4, w5 = _rhs(a0 + dt * u0, a1 + dt * u1, a2 + dt * u2, a3 + dt * u3,
                                      a4 + dt * u4, a5 + dt * u5, ae, be, ai, bi,
                                      c1, c2, c3, c4, dr, iin, iyn, vm, v0, r)
        y[0, k] = a0 + h6 * (k0 + 2.0 * (q0 + u0) + w0)
        y[1, k] = a1 + h6 * (k1 + 2.0 * (q1 + u1) + w1)
        y[2, k] = a2 + h6 * (k2 + 2.0 * (q2 + u2) + w2)
        y[3, k] = a3 + h6 * (k3 + 2.0 * (q3 + u3) + w3)
        y[4, k] = a4 + h6 * (k4 + 2.0 * (q4 + u4) + w4)
        y[5, k] = a5 + h6 * (k5 + 2.0 * (q5 + u5) + w5)


@njit(parallel=True, cache=True, fastmath=True)
def integrate(theta, i_p, i_i, i_y, keys, y_init, consts, dt, n_sub, method, n_chunks,
              out, states_out, traj):
    """Integrate L lanes over ``n_out - 1`` output samples.

    theta [L, 9]; i_p, i_i, i_y [n_out] (s^-1); keys [L] uint64; y_init [L, 6];
    consts [5] = (v_max, v0, r, mu, sigma); dt: sub-step (s); ``out`` [L, n_out] (written:
    y1 - y2 at each output sample, sample 0 = initial state); ``states_out`` [L, 6] (written:
    the final state); ``traj`` [L, n_out, 6] or [L, 0, 6]: when non-empty, every state at
    every output sample is written too. Returns nothing.
    """
    n_lanes = theta.shape[0]
    n_out = out.shape[1]
    n_thr = max(1, min(n_chunks, n_lanes))
    chunk = (n_lanes + n_thr - 1) // n_thr
    vm, v0, r, mu, sigma = consts[0], consts[1], consts[2], consts[3], consts[4]
    noise_on = sigma > 0.0
    rec = traj.shape[1] > 0
    for t in prange(n_thr):
        l0 = t * chunk
        l1 = min(n_lanes, l0 + chunk)
        m = l1 - l0
        if m <= 0:
            continue
        y = np.empty((6, m))
        pr = np.empty((8, m))  # A_e, b_e, A_i, b_i, C1, C2, C3, C4 (absolute counts)
        key = np.empty(m, dtype=np.uint64)
        drv = np.empty(m)
        buf = np.empty((_BLK, m))
        for k in range(m):
            th = theta[l0 + k]
            pr[0, k] = th[0]
            pr[1, k] = th[2]
            pr[2, k] = th[1]
            pr[3, k] = th[3]
            for j in range(4):
                pr[4 + j, k] = th[4 + j] * th[8]
            key[k] = keys[l0 + k]
            for s in range(6):
                y[s, k] = y_init[l0 + k, s]
            buf[0, k] = y[1, k] - y[2, k]
            if rec:
                for s in range(6):
                    traj[l0 + k, 0, s] = y[s, k]
        for n in range(n_out - 1):
            ipn = i_p[n]
            iin = i_i[n]
            iyn = i_y[n]
            if noise_on:
                hn = mix64(np.uint64(n))
                for k in range(m):
                    drv[k] = mu + ipn + sigma * box_muller(mix64(key[k] ^ hn))
            else:
                for k in range(m):
                    drv[k] = mu + ipn
            for _ in range(n_sub):
                if method == 0:
                    _euler_lanes(y, pr, drv, iin, iyn, vm, v0, r, dt, m)
                elif method == 1:
                    _heun_lanes(y, pr, drv, iin, iyn, vm, v0, r, dt, m)
                else:
                    _rk4_lanes(y, pr, drv, iin, iyn, vm, v0, r, dt, m)
            # buffer [time, lane] and flush in blocks: a direct out[lane, n] write per sample
            # would stride by n_out doubles and miss the cache every time
            j = (n + 1) % _BLK
            for k in range(m):
                buf[j, k] = y[1, k] - y[2, k]
            if j == _BLK - 1 or n == n_out - 2:
                n0 = n + 1 - j
                for k in range(m):
                    for i in range(j + 1):
                        out[l0 + k, n0 + i] = buf[i, k]
            if rec:
                for k in range(m):
                    for s in range(6):
                        traj[l0 + k, n + 1, s] = y[s, k]
        for k in range(m):
            if n_out == 1:
                out[l0 + k, 0] = buf[0, k]
            for s in range(6):
                states_out[l0 + k, s] = y[s, k]


def n_threads() -> int:
    """Threads the numba engine uses (numba's setting; set NUMBA_NUM_THREADS to change)."""
    return int(get_num_threads())


def run(theta: np.ndarray, i_p: np.ndarray, i_i: np.ndarray, keys: np.ndarray,
        y_init: np.ndarray, consts: np.ndarray, dt: float, n_sub: int, method: str,
        dtype=np.float64, states: bool = False,
        i_y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run :func:`integrate` on validated inputs (see :func:`nmmfit.eeg.erp.simulate_source`).

    ``i_y`` [n_out] (s^-1): input to the pyramidal PSP (y3 equation); None = zeros.

    Returns (y1 - y2 [L, n_out] in ``dtype``, final state [L, 6]); with ``states``, the
    second item is instead every state at every output sample, [L, n_out, 6].
    """
    n_lanes = theta.shape[0]
    out = np.empty((n_lanes, i_p.shape[0]), dtype=np.float64)
    fin = np.empty((n_lanes, 6))
    traj = np.empty((n_lanes, i_p.shape[0] if states else 0, 6))
    n_chunks = max(1, n_threads())
    integrate(np.ascontiguousarray(theta, dtype=np.float64), np.ascontiguousarray(i_p, float),
              np.ascontiguousarray(i_i, float),
              np.zeros_like(i_p, dtype=float) if i_y is None else np.ascontiguousarray(i_y, float),
              np.ascontiguousarray(keys, np.uint64),
              np.ascontiguousarray(y_init, float), np.ascontiguousarray(consts, float),
              float(dt), int(n_sub), METHODS[method], n_chunks, out, fin, traj)
    return (out if dtype == np.float64 else out.astype(dtype)), (traj if states else fin)
