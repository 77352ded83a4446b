"""torch engine for pFIC + Balloon-Windkessel: runs on a GPU when one is present.

All lanes are integrated together as [L, N] tensors. The noise is the same counter-based
stream as the numba engine (:mod:`nmmfit.sim.vecmath`), computed with int64 tensor ops, so
the two engines give the same stochastic trajectories up to floating-point rounding.
"""

from __future__ import annotations

import numpy as np
import torch

_MASK64 = (1 << 64) - 1


def _signed(x: int) -> int:
    """uint64 constant as the int64 with the same bits."""
    x &= _MASK64
    return x - (1 << 64) if x >= (1 << 63) else x


_M1 = _signed(0xBF58476D1CE4E5B9)
_M2 = _signed(0x94D049BB133111EB)


def _srl(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def mix64(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser on int64 tensors (wrapping arithmetic, same bits as uint64)."""
    z = (z ^ _srl(z, 30)) * _M1
    z = (z ^ _srl(z, 27)) * _M2
    return z ^ _srl(z, 31)


def normal_pair(bits: torch.Tensor, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-Muller pair from int64 random bits, as :func:`nmmfit.sim.vecmath.normal_pair`."""
    u1 = (_srl(bits, 32).to(dtype) + 0.5) * 2.3283064365386963e-10
    u2 = ((bits & 0xFFFFFFFF).to(dtype) + 0.5) * 2.3283064365386963e-10
    r = torch.sqrt(-2.0 * torch.log(u1))
    ang = 6.283185307179586 * u2
    return r * torch.cos(ang), r * torch.sin(ang)


def _h(u: torch.Tensor, d: float) -> torch.Tensor:
    small = u.abs() < 1e-9
    den = -torch.expm1(-d * torch.where(small, torch.ones_like(u), u))
    return torch.where(small, 1.0 / d + 0.5 * u, u / den)


def integrate(sc, wee, wei, wie, sigma, g, keys, s_e0, s_i0, config, noise_on,
              device=None, dtype=torch.float64, progress=None):
    """Integrate L lanes; same array conventions as :func:`nmmfit.sim.fic_numba.integrate`.

    Returns numpy (bold [L, N, T] float32, sums [L, 3, N] float64).
    """
    dev = torch.device(device) if device is not None else (
        torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    c = config.constants
    bc = config.balloon
    n_lanes, n = wee.shape

    def t(x):
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=dev)

    sc_t = t(sc)
    wee_t, wei_t, wie_t = t(wee) * c.J_NMDA, t(wei) * c.J_NMDA, t(wie)
    amp = t(sigma) * float(np.sqrt(config.dt))
    g_t = (t(g) * c.J_NMDA)[:, None]
    key_t = torch.as_tensor(keys.astype(np.int64), device=dev)[:, None]  # same bits as uint64
    se, si = t(s_e0), t(s_i0)
    z = torch.zeros_like(se)
    f = torch.ones_like(se)
    v = torch.ones_like(se)
    q = torch.ones_like(se)
    acc = torch.zeros((3, n_lanes, n), dtype=torch.float64, device=dev)
    bold = torch.empty((config.n_frames, n_lanes, n), dtype=torch.float32, device=dev)
    dt = config.dt
    spf = config.steps_per_frame
    idx = torch.arange(n, device=dev, dtype=torch.int64)
    inv_alpha = 1.0 / bc.alpha
    log1mrho = float(np.log(1.0 - bc.rho))
    bscale = 100.0 / bc.rho * bc.V0
    n_total = config.warmup_steps + config.n_steps
    with torch.no_grad():
        for step in range(n_total):
            main = step >= config.warmup_steps
            cur_e = (c.W_E * c.I0 + wee_t * se + g_t * (se @ sc_t.T) - wie_t * si)
            cur_i = c.W_I * c.I0 + wei_t * se - si
            r_e = _h(c.a_E * cur_e - c.b_E, c.d_E)
            r_i = _h(c.a_I * cur_i - c.b_I, c.d_I)
            new_e = se + dt * (-se / c.tau_E + (1.0 - se) * c.gamma * r_e)
            new_i = si + dt * (-si / c.tau_I + r_i)
            if noise_on:
                bits = mix64(key_t ^ mix64(step * n + idx)[None, :])  # [L, N]
                xi_e, xi_i = normal_pair(bits, dtype)
                new_e = new_e + amp * xi_e
                new_i = new_i + amp * xi_i
            if main:
                acc[0] += r_e
                acc[1] += se
                acc[2] += si
                vpow = torch.exp(inv_alpha * torch.log(v))
                extr = 1.0 - torch.exp(log1mrho / f)
                z, f, v, q = (
                    z + dt * (se - bc.kappa * z - bc.gamma_h * (f - 1.0)),
                    f + dt * z,
                    v + dt * (f - vpow) / bc.tau,
                    q + dt * (f / bc.rho * extr - q * vpow / v) / bc.tau,
                )
                rel = step - config.warmup_steps + 1
                if rel % spf == 0:
                    frame = rel // spf - 1 - config.n_burn_frames
                    if frame >= 0:
                        bold[frame] = (bscale * (bc.k1 * (1.0 - q) + bc.k2 * (1.0 - q / v)
                                                 + bc.k3 * (1.0 - v))).float()
            se, si = new_e, new_i
            if progress is not None and (step + 1) % spf == 0:
                progress.update(spf)
    bold_np = bold.permute(1, 2, 0).contiguous().cpu().numpy()
    sums = acc.permute(1, 0, 2).contiguous().cpu().numpy()
    return bold_np, sums
