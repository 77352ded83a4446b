"""Balloon-Windkessel hemodynamic model (Friston 2000 / Stephan 2007 form used by Deco 2014).

Driven by the excitatory gating variable S_E. States: z (vasodilatory signal), f (inflow),
v (volume), q (deoxyhaemoglobin); initial values z = 0, f = v = q = 1::

    dz/dt = S_E - kappa*z - gamma_h*(f - 1)
    df/dt = z
    dv/dt = (f - v**(1/alpha)) / tau
    dq/dt = (f/rho * (1 - (1 - rho)**(1/f)) - q * v**(1/alpha - 1)) / tau
    BOLD  = 100/rho * V0 * (k1*(1 - q) + k2*(1 - q/v) + k3*(1 - v))

with k1 = 4.3*theta0*rho*TE*B0-scaled, k2 = eps*r0*rho*TE, k3 = 1 - eps (values below).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class BalloonConstants:
    """Balloon-Windkessel constants (rates in 1/s, times in s, field in T)."""

    rho: float = 0.34
    V0: float = 0.02
    kappa: float = 0.65
    gamma_h: float = 0.41
    tau: float = 0.98
    alpha: float = 0.33
    B0: float = 3.0
    TE: float = 0.0331
    r0: float = 110.0
    epsilon: float = 0.47

    @property
    def k1(self) -> float:
        """4.3 * theta0 * B0 * TE * rho, with theta0 = 28.265 Hz/T."""
        return 4.3 * 28.265 * self.B0 * self.TE * self.rho

    @property
    def k2(self) -> float:
        """epsilon * r0 * TE * rho."""
        return self.epsilon * self.r0 * self.TE * self.rho

    @property
    def k3(self) -> float:
        """1 - epsilon."""
        return 1.0 - self.epsilon

    def as_dict(self) -> dict[str, float]:
        """Plain dict (with the derived k1, k2, k3), for storing with results."""
        d = asdict(self)
        d.update(k1=self.k1, k2=self.k2, k3=self.k3)
        return d


DEFAULT_BALLOON = BalloonConstants()


def rhs(s_e, z, f, v, q, c: BalloonConstants = DEFAULT_BALLOON):
    """Time derivatives (dz, df, dv, dq) for arrays of any common shape."""
    v_pow = v ** (1.0 / c.alpha)
    dz = s_e - c.kappa * z - c.gamma_h * (f - 1.0)
    df = z
    dv = (f - v_pow) / c.tau
    dq = (f / c.rho * (1.0 - (1.0 - c.rho) ** (1.0 / f)) - q * v_pow / v) / c.tau
    return dz, df, dv, dq


def bold_signal(v, q, c: BalloonConstants = DEFAULT_BALLOON):
    """BOLD signal (percent signal change scale) from volume v and deoxyhaemoglobin q."""
    return 100.0 / c.rho * c.V0 * (c.k1 * (1.0 - q) + c.k2 * (1.0 - q / v) + c.k3 * (1.0 - v))


def initial_state(shape) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Resting state (z, f, v, q) = (0, 1, 1, 1) with the given shape."""
    return np.zeros(shape), np.ones(shape), np.ones(shape), np.ones(shape)
