"""Parametric feedback-inhibition-control (pFIC) mean-field model (Deco et al. 2014).

This module is the one definition of the model: constants, the parameter spec, the
transfer function, the right-hand side, and the analytic FIC solve for wIE.
Integrators in :mod:`nmmfit.sim` implement exactly these equations.

Equations, for region i (SC already normalised, see :mod:`nmmfit.data.target`)::

    I_E = W_E*I0 + J*wEE*S_E + J*G*sum_j SC_ij S_E,j - wIE*S_I        [nA]
    I_I = W_I*I0 + J*wEI*S_E - S_I                                    [nA]
    r   = H(I) = (a*I - b) / (1 - exp(-d*(a*I - b)))                  [Hz]
    dS_E/dt = -S_E/tau_E + (1 - S_E)*gamma*r_E   (+ sigma*dW_E)
    dS_I/dt = -S_I/tau_I + r_I                   (+ sigma*dW_I)

The noise terms are independent Wiener increments for S_E and S_I with the same regional
sigma. wIE is not free: :func:`solve_wie` sets it so that the excitatory rate sits at
``r_E_target`` (3 Hz) at the fixed point (Demirtas et al. 2019; Zhang et al. 2024).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq

from nmmfit._validate import as_array, check_sc
from nmmfit.models.spec import Param


@dataclass(frozen=True)
class FICConstants:
    """Fixed constants of the FIC model (Deco 2014; values used by Zhang 2024 and DELSSOME).

    Currents in nA, rates in Hz, time constants in s.
    """

    I0: float = 0.382
    W_E: float = 1.0
    W_I: float = 0.7
    J_NMDA: float = 0.15
    a_E: float = 310.0
    b_E: float = 125.0
    d_E: float = 0.16
    a_I: float = 615.0
    b_I: float = 177.0
    d_I: float = 0.087
    tau_E: float = 0.1
    tau_I: float = 0.01
    gamma: float = 0.641
    r_E_target: float = 3.0

    def as_dict(self) -> dict[str, float]:
        """Plain dict, for storing with results."""
        return asdict(self)


DEFAULT_CONSTANTS = FICConstants()

#: The pFIC free parameters, as data. Bounds are DELSSOME's group-level search box.
PARAMS: tuple[Param, ...] = (
    Param("wEE", 3.5, 1.0, 10.0, "", True, "recurrent excitation E->E"),
    Param("wEI", 2.5, 0.0, 5.0, "", True, "excitation of inhibition E->I"),
    Param("G", 1.0, 0.0, 3.0, "", False, "global coupling scaling the normalised SC"),
    Param("sigma", 0.005, 0.0005, 0.01, "nA", True, "noise amplitude on S_E and S_I"),
)
PARAM_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}

#: Firing-rate gate of Zhang 2024: every region's time-averaged r_E must lie in this range (Hz).
RATE_GATE_HZ: tuple[float, float] = (2.7, 3.3)


def transfer(current, a: float, b: float, d: float):
    """Rate transfer function H(I) = (a*I - b) / (1 - exp(-d*(a*I - b))), in Hz.

    Works on numpy arrays of any shape; the removable singularity at a*I = b is handled
    with its series (1/d + u/2).
    """
    u = a * np.asarray(current, dtype=float) - b
    small = np.abs(u) < 1e-9
    denom = -np.expm1(-d * np.where(small, 1.0, u))
    return np.where(small, 1.0 / d + 0.5 * u, u / np.where(small, 1.0, denom))


def excitatory_fixed_point(c: FICConstants = DEFAULT_CONSTANTS) -> tuple[float, float]:
    """(S_E*, I_E*) that give r_E = ``c.r_E_target`` at steady state.

    S_E* solves S/(tau_E*gamma*(1-S)) = r, i.e. S = r*tau*gamma/(1 + r*tau*gamma);
    I_E* solves H_E(I) = r (a scalar root, bracketed on [0, 2] nA).
    """
    rtg = c.r_E_target * c.tau_E * c.gamma
    s_e = rtg / (1.0 + rtg)
    i_e = brentq(lambda x: float(transfer(x, c.a_E, c.b_E, c.d_E)) - c.r_E_target, 0.0, 2.0,
                 xtol=1e-15, rtol=1e-15)
    return s_e, i_e


def _solve_inhibitory_current(rhs, c: FICConstants, tol: float = 1e-14, max_iter: int = 100):
    """Vectorised root of g(I) = I + tau_I*H_I(I) - rhs (g is strictly increasing).

    Newton steps safeguarded by a shrinking bracket; ``rhs`` is any array (nA).
    """
    rhs = np.asarray(rhs, dtype=float)
    lo = np.full_like(rhs, -1.0)
    hi = np.maximum(rhs, 0.0) + 1.0  # g(hi) >= hi - rhs > 0 since H_I >= 0
    x = np.clip(rhs - 0.03, lo, hi)
    for _ in range(max_iter):
        h = transfer(x, c.a_I, c.b_I, c.d_I)
        g = x + c.tau_I * h - rhs
        lo = np.where(g < 0, x, lo)
        hi = np.where(g > 0, x, hi)
        # dH/dI by a central difference on the smooth H (accurate to ~1e-9 relative)
        eps = 1e-7
        dh = (transfer(x + eps, c.a_I, c.b_I, c.d_I) - transfer(x - eps, c.a_I, c.b_I, c.d_I)) / (
            2 * eps
        )
        x_new = x - g / (1.0 + c.tau_I * dh)
        outside = (x_new <= lo) | (x_new >= hi) | ~np.isfinite(x_new)
        x_new = np.where(outside, 0.5 * (lo + hi), x_new)
        if np.all(np.abs(x_new - x) <= tol * (1.0 + np.abs(x))):
            return x_new
        x = x_new
    return x


@dataclass(frozen=True)
class FixedPoint:
    """FIC fixed point for a batch: all arrays [B, N].

    Attributes
    ----------
    wIE : inhibitory-to-excitatory weight that holds r_E at the target.
    S_E, S_I : steady-state gating variables.
    I_E, I_I : steady-state currents (nA).
    """

    wIE: np.ndarray
    S_E: np.ndarray
    S_I: np.ndarray
    I_E: np.ndarray
    I_I: np.ndarray


def solve_wie(wEE, wEI, G, sc, c: FICConstants = DEFAULT_CONSTANTS) -> FixedPoint:
    """Solve the FIC condition for wIE, vectorised over candidates and regions.

    Parameters
    ----------
    wEE, wEI : [B, N] regional weights.
    G : [B] global coupling.
    sc : [N, N] normalised SC.

    Returns
    -------
    FixedPoint with arrays of shape [B, N].
    """
    sc = check_sc(sc, "sc")
    wEE = np.atleast_2d(as_array(wEE, "wEE", ndim=(1, 2)))
    wEI = np.atleast_2d(as_array(wEI, "wEI", ndim=(1, 2)))
    G = np.atleast_1d(as_array(G, "G", ndim=(0, 1)))
    s_e, i_e = excitatory_fixed_point(c)
    rhs = c.W_I * c.I0 + c.J_NMDA * wEI * s_e
    i_i = _solve_inhibitory_current(rhs, c)
    s_i = c.tau_I * transfer(i_i, c.a_I, c.b_I, c.d_I)
    row = sc.sum(axis=1)  # [N]
    num = c.W_E * c.I0 + c.J_NMDA * wEE * s_e + c.J_NMDA * G[:, None] * row[None, :] * s_e - i_e
    wie = num / s_i
    full = np.broadcast_shapes(wEE.shape, wEI.shape)
    return FixedPoint(
        wIE=np.broadcast_to(wie, full).copy(),
        S_E=np.full(full, s_e),
        S_I=np.broadcast_to(s_i, full).copy(),
        I_E=np.full(full, i_e),
        I_I=np.broadcast_to(i_i, full).copy(),
    )


def rhs(S_E, S_I, wEE, wEI, wIE, G, sc, c: FICConstants = DEFAULT_CONSTANTS):
    """Deterministic right-hand side, for arrays [B, N] (sc [N, N], G [B]).

    Returns (dS_E/dt, dS_I/dt, r_E, r_I), each [B, N], rates in Hz.
    """
    coupling = S_E @ sc.T  # [B, N]: sum_j SC_ij S_E,j
    i_e = c.W_E * c.I0 + c.J_NMDA * wEE * S_E + c.J_NMDA * G[:, None] * coupling - wIE * S_I
    i_i = c.W_I * c.I0 + c.J_NMDA * wEI * S_E - S_I
    r_e = transfer(i_e, c.a_E, c.b_E, c.d_E)
    r_i = transfer(i_i, c.a_I, c.b_I, c.d_I)
    ds_e = -S_E / c.tau_E + (1.0 - S_E) * c.gamma * r_e
    ds_i = -S_I / c.tau_I + r_i
    return ds_e, ds_i, r_e, r_i


def fixed_point_jacobian(wEE, wEI, G, sc, c: FICConstants = DEFAULT_CONSTANTS) -> np.ndarray:
    """Jacobian of the deterministic FIC system at its fixed point, [B, 2N, 2N] (1/s).

    State order is (S_E[0..N), S_I[0..N)).
    """
    sc = check_sc(sc, "sc")
    fp = solve_wie(wEE, wEI, G, sc, c)
    B, N = fp.wIE.shape
    wEE = np.broadcast_to(np.atleast_2d(wEE), (B, N))
    wEI = np.broadcast_to(np.atleast_2d(wEI), (B, N))
    G = np.broadcast_to(np.atleast_1d(G), (B,))
    eps = 1e-6
    dh_e = (transfer(fp.I_E + eps, c.a_E, c.b_E, c.d_E)
            - transfer(fp.I_E - eps, c.a_E, c.b_E, c.d_E)) / (2 * eps)
    dh_i = (transfer(fp.I_I + eps, c.a_I, c.b_I, c.d_I)
            - transfer(fp.I_I - eps, c.a_I, c.b_I, c.d_I)) / (2 * eps)
    out = np.empty((B, 2 * N, 2 * N))
    eye = np.eye(N)
    for b in range(B):
        g_e = (1.0 - fp.S_E[b]) * c.gamma * dh_e[b]  # d(dS_E/dt)/dI_E, [N]
        dIe_dSe = c.J_NMDA * (wEE[b][:, None] * eye + G[b] * sc)
        out[b, :N, :N] = -np.diag(np.full(N, 1.0 / c.tau_E + c.gamma * c.r_E_target)) \
            + g_e[:, None] * dIe_dSe
        out[b, :N, N:] = np.diag(-g_e * fp.wIE[b])
        out[b, N:, :N] = np.diag(dh_i[b] * c.J_NMDA * wEI[b])
        out[b, N:, N:] = np.diag(-1.0 / c.tau_I - dh_i[b])
    return out


def jacobian_max_real_eig(wEE, wEI, G, sc, c: FICConstants = DEFAULT_CONSTANTS) -> np.ndarray:
    """Largest real part of the eigenvalues of the linearised FIC system at its fixed point.

    A value < 0 means the fixed point is linearly stable in continuous time. Returns [B] (1/s).
    """
    jac = fixed_point_jacobian(wEE, wEI, G, sc, c)
    return np.array([np.linalg.eigvals(j).real.max() for j in jac])


def euler_spectral_radius(wEE, wEI, G, sc, dt: float,
                          c: FICConstants = DEFAULT_CONSTANTS) -> np.ndarray:
    """Spectral radius of the Euler map I + dt*J at the fixed point, [B].

    A value > 1 means that explicit Euler at step ``dt`` (s) leaves the fixed point even when
    the continuous-time system is stable: with dt = 0.006 s this happens when the inhibitory
    loop is stiff, dt*(1/tau_I + H_I') > 2 (large wEI).
    """
    jac = fixed_point_jacobian(wEE, wEI, G, sc, c)
    eye = np.eye(jac.shape[1])
    return np.array([np.abs(np.linalg.eigvals(eye + dt * j)).max() for j in jac])
