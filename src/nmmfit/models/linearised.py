"""The pFIC + Balloon-Windkessel model linearised at its FIC fixed point: BOLD FC in closed form.

Near a stable fixed point, with small noise, the pFIC model is an Ornstein-Uhlenbeck process::

    dx = A x dt + B dW,   x = (S_E[0..N), S_I[0..N)) - fixed point,  B = diag(sigma, sigma)

(``A`` is :func:`nmmfit.models.fic.fixed_point_jacobian`). Under FIC every region sits at the
same S_E, so the linearised Balloon-Windkessel model is one scalar filter H(w) from S_E to BOLD,
the same for every region. The stationary BOLD covariance is then::

    C = 1/(2 pi) int |H(w)|^2 [ (iw - A)^-1 B B^T (iw - A)^-H ]_EE dw

evaluated here through the eigen-decomposition of ``A`` and a quadrature over w. Its
correlation matrix is the FC that an infinitely long simulation converges to as sigma -> 0.
It costs one eigen-decomposition (tens of milliseconds for N = 100), against seconds for one
simulation, and has no sampling noise, so it tells what FC the model *can* produce (used by
``benchmarks/fc_ceiling.py``). It ignores the nonlinearity of the transfer function and of
the Balloon model, which grows near the stability boundary.
"""

from __future__ import annotations

import numpy as np

from nmmfit._validate import as_array, check_sc
from nmmfit.models import balloon, fic


def balloon_steady_state(s_e: float, c: balloon.BalloonConstants = balloon.DEFAULT_BALLOON
                         ) -> np.ndarray:
    """The Balloon-Windkessel rest point (z, f, v, q) for a constant drive ``s_e``, [4]."""
    from scipy.optimize import brentq

    f0 = 1.0 + s_e / c.gamma_h
    v0 = f0 ** c.alpha
    # dq/dt = 0: f/rho (1 - (1 - rho)^(1/f)) = q v^(1/alpha - 1)
    q0 = f0 / c.rho * (1.0 - (1.0 - c.rho) ** (1.0 / f0)) / v0 ** (1.0 / c.alpha - 1.0)
    # check it is a root (the closed form above is exact; brentq guards a changed model)
    dq = balloon.rhs(s_e, 0.0, f0, v0, q0, c)[3]
    if abs(dq) > 1e-9:
        q0 = brentq(lambda q: balloon.rhs(s_e, 0.0, f0, v0, q, c)[3], 1e-6, 10.0)
    return np.array([0.0, f0, v0, q0])


def balloon_transfer(omega, s_e: float,
                     c: balloon.BalloonConstants = balloon.DEFAULT_BALLOON) -> np.ndarray:
    """Transfer function H(w) of the Balloon model linearised at the rest point of ``s_e``:
    BOLD response to a small S_E oscillation of angular frequency ``omega`` (rad/s), [F]."""
    x0 = balloon_steady_state(s_e, c)
    eps = 1e-7

    def f(x, u):
        return np.array(balloon.rhs(u, *x, c))

    a = np.empty((4, 4))
    for k in range(4):
        d = np.zeros(4)
        d[k] = eps
        a[:, k] = (f(x0 + d, s_e) - f(x0 - d, s_e)) / (2 * eps)
    b = (f(x0, s_e + eps) - f(x0, s_e - eps)) / (2 * eps)
    out = np.empty(4)
    for k in range(4):
        d = np.zeros(4)
        d[k] = eps
        out[k] = (balloon.bold_signal(x0[2] + d[2], x0[3] + d[3], c)
                  - balloon.bold_signal(x0[2] - d[2], x0[3] - d[3], c)) / (2 * eps)
    w = np.atleast_1d(np.asarray(omega, dtype=float))
    eye = np.eye(4)
    return np.array([out @ np.linalg.solve(1j * wk * eye - a, b) for wk in w])


#: Quadrature nodes (rad/s) for the BOLD covariance integral: the Balloon filter passes
#: about 0.01-1 rad/s; below and above it the integrand is negligible or handled by the tails.
_OMEGA = np.concatenate([[0.0], np.geomspace(1e-4, 60.0, 160)])


def bold_covariance(wEE, wEI, G, sigma, sc, *, c: fic.FICConstants = fic.DEFAULT_CONSTANTS,
                    bc: balloon.BalloonConstants = balloon.DEFAULT_BALLOON) -> np.ndarray:
    """Stationary BOLD covariance of the linearised model, [B, N, N].

    Parameters
    ----------
    wEE, wEI : [B, N] (or [N]) regional weights.
    G : [B] (or scalar) global coupling.
    sigma : [B, N] (or [N], or [B]) noise amplitude (nA).
    sc : [N, N] normalised SC.

    A candidate whose fixed point is not linearly stable gets a matrix of NaN.
    """
    sc = check_sc(sc, "sc")
    n = sc.shape[0]
    wEE = np.atleast_2d(as_array(wEE, "wEE", ndim=(1, 2)))
    wEI = np.atleast_2d(as_array(wEI, "wEI", ndim=(1, 2)))
    G = np.atleast_1d(as_array(G, "G", ndim=(0, 1)))
    nb = max(wEE.shape[0], wEI.shape[0], G.shape[0])
    sig = np.asarray(sigma, dtype=float)
    sig = np.broadcast_to(sig[:, None] if sig.ndim == 1 and sig.shape[0] == nb != n
                          else np.atleast_2d(sig), (nb, n))
    jac = fic.fixed_point_jacobian(np.broadcast_to(wEE, (nb, n)),
                                   np.broadcast_to(wEI, (nb, n)),
                                   np.broadcast_to(G, (nb,)), sc, c)
    s_e = float(fic.excitatory_fixed_point(c)[0])
    h2 = np.abs(balloon_transfer(_OMEGA, s_e, bc)) ** 2  # [F]
    wts = np.zeros_like(_OMEGA)  # trapezoid weights on the non-uniform grid
    dw = np.diff(_OMEGA)
    wts[:-1] += dw / 2
    wts[1:] += dw / 2
    out = np.full((nb, n, n), np.nan)
    for b in range(nb):
        lam, vec = np.linalg.eig(jac[b])
        if lam.real.max() >= 0:
            continue
        vinv = np.linalg.inv(vec)
        q = np.concatenate([sig[b], sig[b]]) ** 2
        m = (vinv * q[None, :]) @ vinv.conj().T  # V^-1 Q V^-H, [2N, 2N]
        # K_kl = 1/pi int_0^inf |H|^2 / ((iw - l_k) conj(iw - l_l)) dw  (both half-lines)
        d = 1.0 / (1j * _OMEGA[:, None] - lam[None, :])  # [F, 2N]
        k = np.einsum("f,fk,fl->kl", wts * h2, d, d.conj()) / np.pi
        ve = vec[:n]  # rows of S_E
        cov = (ve @ (m * k) @ ve.conj().T).real
        out[b] = 0.5 * (cov + cov.T)
    return out


def bold_fc(wEE, wEI, G, sigma, sc, **kw) -> np.ndarray:
    """FC (Pearson correlation) of the linearised model's BOLD, [B, N, N] (NaN where the
    fixed point is unstable). Arguments as :func:`bold_covariance`."""
    cov = bold_covariance(wEE, wEI, G, sigma, sc, **kw)
    sd = np.sqrt(np.einsum("bii->bi", cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / (sd[:, :, None] * sd[:, None, :])
