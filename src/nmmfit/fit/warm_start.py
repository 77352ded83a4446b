"""A starting point for CMA-ES from the closed-form FC of the linearised model.

DELSSOME starts CMA-ES from a random in-bounds vector. On the bundled Schaefer-100 data the
searches then settle where the FCD is realistic but the FC pattern is poor (1 - r about
0.75), although the model can make a much better FC pattern: the linearised model
(:mod:`nmmfit.models.linearised`) reaches r 0.49 with the same two maps, and simulating that
candidate confirms it (``benchmarks/results/fc_ceiling.json``, ``docs/fit_quality.md``).

:func:`linear_fc_start` finds, with a small CMA-ES (pycma) on the linearised FC alone (about
60 ms per candidate for 100 regions, no simulation), the search vector that minimises the FC
part of the cost, (1 - r) + |mean FC - mean empirical FC|, among candidates whose fixed
point is linearly stable. The fit then starts from it (``fit(..., init="linear_fc")``,
``nmmfit fit --init linear_fc``) and the full FC + FCD cost, simulated, takes over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from nmmfit.fit.parametrise import Parametrisation
from nmmfit.models import fic, linearised
from nmmfit.stats.fc import upper_tri

__all__ = ["WarmStart", "linear_fc_start", "INITS"]

#: Accepted values of ``fit(init=...)``.
INITS = ("paper", "linear_fc")


@dataclass(frozen=True)
class WarmStart:
    """The result of :func:`linear_fc_start`.

    Attributes
    ----------
    x : [dim] the starting search vector (in bounds).
    fc_corr, fc_l1 : 1 - r and |mean FC difference| of its linearised FC on the target.
    evaluations : candidates scored; wall_s : seconds; n_iter : the search's iteration budget.
    """

    x: np.ndarray
    fc_corr: float
    fc_l1: float
    evaluations: int
    wall_s: float
    n_iter: int = 80

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        return {"x": [float(v) for v in self.x], "fc_corr": self.fc_corr,
                "fc_l1": self.fc_l1, "evaluations": self.evaluations, "wall_s": self.wall_s,
                "n_iter": self.n_iter}


def linear_fc_start(target, param: Parametrisation, *, seed: int = 0, popsize: int = 20,
                    n_iter: int = 80, sigma0: float = 0.2, n_draws: int = 100,
                    euler_dt: float | None = None) -> WarmStart:
    """The in-bounds search vector whose linearised FC best matches ``target.fc``.

    Parameters
    ----------
    target : the training :class:`~nmmfit.data.target.Target` (its SC and FC).
    param : the fit's parametrisation (box and spatial constraint are respected).
    seed : pycma's seed (the start is a deterministic function of target, param and seed).
    n_draws : uniform in-bounds draws scored first (with DELSSOME's random start); the
        small CMA-ES starts from the best of them, so a draw whose fixed point is unstable,
        common with steep maps, does not have to find its way out alone.
    popsize, n_iter : the small CMA-ES's population and iterations (1600 candidates).
    sigma0 : its step, times DELSSOME's per-coordinate scales; the G scale is the G box.
    euler_dt : if given (s), candidates whose fixed point is unstable under explicit Euler at
        this step (spectral radius of I + dt J >= 1; :func:`nmmfit.models.fic.
        euler_spectral_radius`) count as unstable too. The search simulates at dt 6 ms, and
        there such a candidate leaves its fixed point and fails the rate gate, although the
        continuous-time model (and the linearised FC) is stable.

    Raises ``RuntimeError`` when no candidate has a stable fixed point inside the box.
    """
    import warnings

    import cma

    if target.n_regions != param.n_regions:
        raise ValueError(f"target {target.name!r} has {target.n_regions} regions, the "
                         f"parametrisation {param.n_regions}")
    t0 = time.perf_counter()
    emp = upper_tri(target.fc)
    emp_c = emp - emp.mean()
    emp_n = np.linalg.norm(emp_c)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    x_paper = param.initial_vector(rng)
    n_draws = max(int(n_draws), 0)
    draws = param.uniform_vectors(rng, 4 * n_draws)
    draws = np.concatenate([x_paper[None], draws[param.in_bounds(draws)][:n_draws]])
    g_lo, g_hi = param.bounds["G"]
    gi = param.names.index("G")
    best: dict = {"f": np.inf}

    def fc_terms(x) -> tuple[float, float]:
        reg = param.expand(np.asarray(x)[None])
        fc = linearised.bold_fc(reg.wEE, reg.wEI, reg.G, reg.sigma, target.sc)[0]
        if not np.isfinite(fc).all():
            return np.inf, np.inf
        u = upper_tri(fc)
        uc = u - u.mean()
        r = float(uc @ emp_c / (np.linalg.norm(uc) * emp_n))
        return 1.0 - r, abs(float(u.mean() - emp.mean()))

    def objective(x) -> float:
        # out of the box: 4 + the violation; unstable fixed point: 3 + a growing function of
        # the largest real part of the Jacobian's eigenvalues (so that a start drawn where
        # every candidate is unstable still has a direction to go); stable: the FC cost (< 3)
        x = np.asarray(x)
        if not param.in_bounds(x)[0]:
            return 4.0 + float(sum(v[0] for v in param.violations(x).values()))
        c, l1 = fc_terms(x)
        if not np.isfinite(c) or euler_dt is not None:
            reg = param.expand(x[None])
            jac = fic.fixed_point_jacobian(reg.wEE, reg.wEI, reg.G, target.sc)[0]
            eig = np.linalg.eigvals(jac)
            lam = max(float(eig.real.max()), 0.0)
            if euler_dt is not None:
                lam = max(lam, float(np.abs(1.0 + euler_dt * eig).max()) - 1.0)
            if not np.isfinite(c) or lam > 0:
                return 3.0 + lam / (1.0 + lam)
        f = c + l1
        if f < best["f"]:
            best.update(f=f, x=x.copy(), c=c, l1=l1)
        return f

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scores = [objective(x) for x in draws]
    x_start = draws[int(np.argmin(scores))]
    stds = param.initial_stds(x_start)
    stds[gi] = max(g_hi - g_lo, 1e-6)
    es = cma.CMAEvolutionStrategy(x_start.tolist(), sigma0,
                                  {"CMA_stds": stds.tolist(), "popsize": int(popsize),
                                   "seed": int(seed) + 1, "maxiter": int(n_iter),
                                   "verbose": -9})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        while not es.stop():
            xs = es.ask()
            es.tell(xs, [objective(x) for x in xs])
    if "x" not in best:
        raise RuntimeError(f"linear_fc_start: no candidate with a stable fixed point in the "
                           f"box among {es.countevals} (bounds {param.bounds})")
    return WarmStart(x=best["x"], fc_corr=best["c"], fc_l1=best["l1"],
                     evaluations=int(es.countevals) + len(draws), wall_s=time.perf_counter() - t0,
                     n_iter=int(n_iter))
