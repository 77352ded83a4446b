"""Torch engine for the Jansen-Rit column (GPU when available, CPU otherwise).

Same scheme, inputs and counter-based background noise as :mod:`nmmfit.sim.jr_numba`; the
two agree to rounding (``tests/test_jansen_rit.py``). The loop over time runs in Python, with
every operation batched over lanes, so use large batches.
"""

from __future__ import annotations

import math

import numpy as np
import torch

_MASK64 = (1 << 64) - 1


def _u64_to_i64(x: np.ndarray) -> torch.Tensor:
    """uint64 numpy -> int64 torch with the same bits."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint64).view(np.int64).copy())


def _srl(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _c(v: int) -> int:
    """A uint64 constant as a signed int64 Python int."""
    return v - (1 << 64) if v >= (1 << 63) else v


_M1 = _c(0xBF58476D1CE4E5B9)
_M2 = _c(0x94D049BB133111EB)


def mix64(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser on int64 bit patterns (wrapping multiply), as in vecmath.mix64."""
    z = (z ^ _srl(z, 30)) * _M1
    z = (z ^ _srl(z, 27)) * _M2
    return z ^ _srl(z, 31)


def _mix64_int(z: int) -> int:
    """mix64 of a Python int (exact, for the per-sample counter)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return _c(z ^ (z >> 31))


def box_muller(h: torch.Tensor) -> torch.Tensor:
    """Standard normals from int64 bit patterns (top 32 bits -> u1, bottom 32 -> u2)."""
    scale = 2.3283064365386963e-10
    u1 = (_srl(h, 32).to(torch.float64) + 0.5) * scale
    u2 = ((h & 0xFFFFFFFF).to(torch.float64) + 0.5) * scale
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)


def _rhs(y, pr, drive, ii, iy, vm, v0, r):
    y0, y1, y2, y3, y4, y5 = y
    ae, be, ai, bi, c1, c2, c3, c4 = pr
    s_out = vm / (1.0 + torch.exp(r * (v0 - (y1 - y2))))
    s_e = vm / (1.0 + torch.exp(r * (v0 - c1 * y0)))
    s_i = vm / (1.0 + torch.exp(r * (v0 - c3 * y0)))
    return (y3, y4, y5,
            ae * be * (iy + s_out) - 2.0 * be * y3 - be * be * y0,
            ae * be * (drive + c2 * s_e) - 2.0 * be * y4 - be * be * y1,
            ai * bi * (ii + c4 * s_i) - 2.0 * bi * y5 - bi * bi * y2)


def _step(y, pr, drive, ii, iy, vm, v0, r, dt, method):
    def f(z):
        return _rhs(z, pr, drive, ii, iy, vm, v0, r)

    def ax(z, h, k):  # z + h k, state-wise
        return tuple(a + h * b for a, b in zip(z, k, strict=True))

    k = f(y)
    if method == "euler":
        return ax(y, dt, k)
    if method == "heun":
        p = f(ax(y, dt, k))
        return tuple(a + 0.5 * dt * (b + c) for a, b, c in zip(y, k, p, strict=True))
    q = f(ax(y, 0.5 * dt, k))
    u = f(ax(y, 0.5 * dt, q))
    w = f(ax(y, dt, u))
    return tuple(a + dt / 6.0 * (b + 2.0 * (c + d) + e)
                 for a, b, c, d, e in zip(y, k, q, u, w, strict=True))


def run(theta: np.ndarray, i_p: np.ndarray, i_i: np.ndarray, keys: np.ndarray,
        y_init: np.ndarray, consts: np.ndarray, dt: float, n_sub: int, method: str,
        dtype=np.float64, states: bool = False,
        i_y: np.ndarray | None = None,
        device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integrate L lanes; returns (y1 - y2 [L, n_out], final state [L, 6]) as numpy arrays.

    Arguments, ``states`` and ``i_y`` as in :func:`nmmfit.sim.jr_numba.run`; ``device``
    defaults to CUDA when present.
    """
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    th = torch.as_tensor(theta, dtype=torch.float64, device=dev)
    pr = (th[:, 0], th[:, 2], th[:, 1], th[:, 3], th[:, 4] * th[:, 8], th[:, 5] * th[:, 8],
          th[:, 6] * th[:, 8], th[:, 7] * th[:, 8])
    vm, v0, r, mu, sigma = (float(x) for x in consts)
    y = tuple(torch.as_tensor(y_init[:, s], dtype=torch.float64, device=dev) for s in range(6))
    key = _u64_to_i64(keys).to(dev)
    n_out = int(i_p.shape[0])
    out = torch.empty((th.shape[0], n_out), dtype=torch.float64, device=dev)
    out[:, 0] = y[1] - y[2]
    traj = [torch.stack(y, dim=1)] if states else None
    for n in range(n_out - 1):
        drive = mu + float(i_p[n])
        if sigma > 0.0:
            drive = drive + sigma * box_muller(mix64(key ^ _mix64_int(n)))
        ii = float(i_i[n])
        iy = 0.0 if i_y is None else float(i_y[n])
        for _ in range(n_sub):
            y = _step(y, pr, drive, ii, iy, vm, v0, r, dt, method)
        out[:, n + 1] = y[1] - y[2]
        if traj is not None:
            traj.append(torch.stack(y, dim=1))
    fin = torch.stack(traj, dim=1) if traj is not None else torch.stack(y, dim=1)
    return out.cpu().numpy().astype(dtype, copy=False), fin.cpu().numpy()
