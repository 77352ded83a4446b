"""What the ERP can say about the parameters: Fisher information and the Cramer-Rao ceiling.

For one parameter set theta the source ERP read out of the evoked EEG by the GLS spatial
filter (:meth:`nmmfit.eeg.erp.ERPSimulator.source_filter`, a sufficient statistic for a
fixed-orientation source) is modelled as Gaussian::

    z = m(theta) + d + e,   d ~ N(0, C_drive(theta)),   e ~ N(0, alpha sigma_w^2 T)

- m(theta): the mean source ERP over background-drive realisations (mV, [n_times]);
- d: the averaged background-drive fluctuation that the simulator has at every alpha,
  its covariance estimated from ``n_drive`` drive realisations at theta;
- e: the sensor noise after the filter, its covariance known exactly
  (:meth:`~nmmfit.eeg.erp.ERPSimulator.source_noise_cov`).

The Fisher information of the mean term is F = J^T (C_drive + alpha sigma_w^2 T)^-1 J, with
J = dm/dtheta by central finite differences on common drive realisations (the same keys on
both sides, so the drive noise cancels in the difference). The covariance's own dependence
on theta is left out, which can only lower F. Parameters are in scaled units,
u = (theta - lower) / (upper - lower).

The mean ERP and every fluctuation satisfy one linear constraint (baseline correction: the
mean over the baseline window is zero), so everything is computed in the 721-dimensional
complement of that direction. The drive covariance there is the sample covariance of
``n_cov`` realisations (default 3,000); the inverse of a sample covariance of M
realisations in p dimensions is biased upward by (M - 1) / (M - p - 2), so the drive
covariance is inflated by that factor (Hartlap et al. 2007, A&A 464, 399), which makes its
inverse unbiased. The information sits mostly in the high-variance directions of the
fluctuation (where the mean ERP moves), not in its smallest eigenvalues.

The ceiling on Pearson r. With unlimited training data the best estimator is the posterior
mean, and its r with the truth satisfies r^2 = 1 - E[Var(u | z)] / V (V the prior variance
of u: a normal of sd 0.25 truncated to [0, 1]). In the locally linear-Gaussian
approximation Var(u | z) = [(F(theta) + I / V)^-1]_jj, so

    r_ceiling_j = sqrt(1 - E_theta[(F + I/V)^-1]_jj / V)

averaged over prior draws of theta. Where the ERP does not depend on a parameter at some
theta the posterior stays at the prior there (contributing 0 to r^2); where it is well
determined the term is ~1. ``one_at_a_time`` uses 1 / (F_jj + 1/V) (the other parameters
known). This is an approximation (Gaussian fluctuation, mean term only, local
linearisation), not a strict bound; the benchmark reports it beside every estimator's r.
"""


from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.stats import truncnorm

from nmmfit.eeg.erp import ERPConfig, ERPSimulator, as_seedseq
from nmmfit.eeg.noise import check_alpha
from nmmfit.infer.jr_dataset import ALPHAS, PRIOR_LOC, PRIOR_SCALE
from nmmfit.models import jansen_rit as jr

__all__ = ["ERPFisher", "erp_fisher", "prior_variance_scaled"]


def prior_variance_scaled() -> float:
    """Variance of one parameter of the inference prior in scaled units: a normal with mean
    ``PRIOR_LOC`` and sd ``PRIOR_SCALE`` truncated to [0, 1]
    (:func:`nmmfit.infer.jr_dataset.sample_params`)."""
    a, b = (0.0 - PRIOR_LOC) / PRIOR_SCALE, (1.0 - PRIOR_LOC) / PRIOR_SCALE
    return float(truncnorm.var(a, b, loc=PRIOR_LOC, scale=PRIOR_SCALE))


@dataclass
class ERPFisher:
    """Fisher information of the ERP at K parameter sets, per noise level.

    names : the P parameters (scaled units throughout). alphas : [A] noise factors.
    theta : [K, P] the parameter sets (physical units).
    fisher : [A, K, P, P] information per scaled unit squared.
    n_cov, n_jac : drive realisations for the covariance and for the Jacobian.
    step : finite-difference half-step, scaled units.
    n_skipped : sets dropped because a simulation diverged.
    """

    names: tuple[str, ...]
    alphas: tuple[float, ...]
    theta: np.ndarray
    fisher: np.ndarray
    n_cov: int
    n_jac: int
    step: float
    n_skipped: int = 0
    meta: dict = field(default_factory=dict)

    def posterior_var(self, one_at_a_time: bool = False) -> np.ndarray:
        """Gaussian-approximation posterior variance per set and parameter, [A, K, P]
        (scaled units^2): diag((F + I/V)^-1), or 1 / (F_jj + 1/V) with ``one_at_a_time``."""
        v = prior_variance_scaled()
        f = self.fisher
        if one_at_a_time:
            return 1.0 / (np.diagonal(f, axis1=-2, axis2=-1) + 1.0 / v)
        eye = np.eye(f.shape[-1]) / v
        return np.diagonal(np.linalg.inv(f + eye), axis1=-2, axis2=-1).copy()

    def r_ceiling(self, one_at_a_time: bool = False) -> dict[str, dict[str, float]]:
        """alpha key ("0.0", ...) -> parameter -> sqrt(1 - E[posterior var] / V) (module
        docstring)."""
        v = prior_variance_scaled()
        pv = self.posterior_var(one_at_a_time).mean(axis=1)  # [A, P]
        r = np.sqrt(np.clip(1.0 - pv / v, 0.0, 1.0))
        return {str(float(a)): {p: float(r[i, j]) for j, p in enumerate(self.names)}
                for i, a in enumerate(self.alphas)}

    def identifiable_fraction(self, threshold: float = 0.5) -> dict[str, dict[str, float]]:
        """alpha -> parameter -> fraction of the sets whose posterior sd is below
        ``threshold`` x the prior sd (where the ERP pins the parameter down)."""
        v = prior_variance_scaled()
        ok = np.sqrt(self.posterior_var() / v) < threshold
        return {str(float(a)): {p: float(ok[i, :, j].mean()) for j, p in enumerate(self.names)}
                for i, a in enumerate(self.alphas)}

    def to_json(self) -> dict:
        """The ceilings and the settings, JSON-ready."""
        return {
            "r_ceiling": self.r_ceiling(),
            "r_ceiling_one_at_a_time": self.r_ceiling(one_at_a_time=True),
            "identifiable_fraction": self.identifiable_fraction(),
            "n_sets": int(self.theta.shape[0]), "n_skipped": self.n_skipped,
            "n_cov": self.n_cov, "n_jac": self.n_jac, "step_scaled": self.step,
            "prior_variance_scaled": prior_variance_scaled(), **self.meta,
        }


def _constraint_basis(baseline_mask: np.ndarray) -> np.ndarray:
    """Orthonormal basis [n_times, n_times - 1] of the ERPs with zero baseline mean."""
    v = baseline_mask.astype(float)
    v /= np.linalg.norm(v)
    q = np.linalg.qr(np.column_stack([v, np.eye(v.shape[0])]))[0]
    return q[:, 1:v.shape[0]]


def erp_fisher(theta, alphas=ALPHAS, simulator: ERPSimulator | None = None,
               n_cov: int = 3000, n_jac: int = 200, step: float = 0.01, seed=0,
               names=jr.INFERRED, progress: Callable[[int], None] | None = None) -> ERPFisher:
    """Fisher information of the ERP at each row of ``theta`` [K, 9 or 8] (module docstring).

    Per set: ``n_cov`` drive realisations at theta, and 2 P perturbed copies x ``n_jac``
    realisations (the first ``n_jac`` keys of the ``n_cov``: common random numbers), i.e.
    6,200 simulations with the defaults (~2 ms each per core). ``step``: half-step in scaled
    units (clipped at the range ends; the difference is divided by the actual span).
    ``names``: the parameters to differentiate (a subset gives the information with the
    others known, e.g. ``names=("a3",)`` for one-at-a-time experiments; the Jacobian then
    costs 2 x ``n_jac`` simulations). ``progress`` is called with 1 after each set.
    """
    sim = simulator or ERPSimulator(ERPConfig())
    th = jr.as_params(theta)
    al = tuple(check_alpha(a) for a in alphas)
    n_t = sim.design.n_times
    if n_cov < n_t + 10 or not 2 <= n_jac <= n_cov:
        raise ValueError(f"n_cov ({n_cov}) must exceed the {n_t} ERP samples by >= 10 and "
                         f"n_jac ({n_jac}) must lie in [2, n_cov]")
    if not 0 < step < 0.5:
        raise ValueError(f"step must be in (0, 0.5) scaled units, got {step}")
    cols = [jr.PARAM_NAMES.index(p) for p in names]
    lo = np.array([jr.PARAM_BY_NAME[p].lower for p in names])
    hi = np.array([jr.PARAM_BY_NAME[p].upper for p in names])
    n_p = len(cols)
    q = _constraint_basis(sim.design.baseline_mask)
    dim = q.shape[1]
    hartlap = (n_cov - dim - 2) / (n_cov - 1)
    sensor = {a: q.T @ sim.source_noise_cov(a) @ q for a in al}
    key_seqs = as_seedseq(seed).spawn(th.shape[0])
    out, kept = [], []
    for k in range(th.shape[0]):
        keys = key_seqs[k].generate_state(n_cov, dtype=np.uint64)
        sets, span = [], np.empty(n_p)
        for j, c in enumerate(cols):
            u = (th[k, c] - lo[j]) / (hi[j] - lo[j])
            up, dn = min(u + step, 1.0), max(u - step, 0.0)
            span[j] = up - dn
            for x in (up, dn):
                t = th[k].copy()
                t[c] = lo[j] + x * (hi[j] - lo[j])
                sets.append(t)
        centre = sim.clean(np.repeat(th[k:k + 1], n_cov, axis=0), keys=keys)
        pert = sim.clean(np.repeat(np.asarray(sets), n_jac, axis=0),
                         keys=np.tile(keys[:n_jac], len(sets)))
        if progress is not None:
            progress(1)
        if centre.diverged.any() or pert.diverged.any():
            continue
        mean = pert.source.reshape(len(sets), n_jac, n_t).mean(axis=1)
        jac = q.T @ ((mean[0::2] - mean[1::2]) / span[:, None]).T  # [dim, P]
        dev = (centre.source - centre.source.mean(axis=0)) @ q  # [n_cov, dim]
        c_drive = dev.T @ dev / (n_cov - 1) / hartlap
        fk = []
        for a in al:  # F = (L^-1 J)^T (L^-1 J), C = L L^T: symmetric and PSD by construction
            lj = solve_triangular(cholesky(c_drive + sensor[a], lower=True), jac, lower=True)
            fk.append(lj.T @ lj)
        out.append(fk)
        kept.append(k)
    if not kept:
        raise RuntimeError("every parameter set had a diverging simulation")
    fisher = np.transpose(np.asarray(out), (1, 0, 2, 3))
    return ERPFisher(names=tuple(names), alphas=al, theta=th[kept][:, cols], fisher=fisher,
                     n_cov=n_cov, n_jac=n_jac, step=step, n_skipped=th.shape[0] - len(kept),
                     meta={"method": "Gaussian mean-term Fisher of the GLS source ERP "
                                     "(721-dim, baseline constraint removed); drive "
                                     "covariance from n_cov realisations with Hartlap "
                                     "correction; r ceiling from the Gaussian posterior "
                                     "variance (F + I/V)^-1 averaged over prior draws"})
