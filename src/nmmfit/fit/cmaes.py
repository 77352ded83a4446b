"""CMA-ES search (pycma ask/tell) and a random-search baseline, resumable through the store.

The CMA-ES updates are pycma's (``cma.CMAEvolutionStrategy``); this module only adds what the
paper's protocol needs around them (Zeng et al. 2026, DELSSOME):

- **rejection sampling**: children whose expanded regional parameters leave the box (or break
  the spatial constraint) are redrawn; after ``max_draws`` draws in one epoch a
  :class:`SamplingError` names the violated bounds;
- **recombination weights** chosen per epoch: ``"inverse_loss"`` (DELSSOME: w_i proportional
  to 1 / total cost of the i-th best, normalised), ``"log"`` (Hansen / Zhang: ln(mu + 1/2) -
  ln i) or ``"equal"``, over the mu best *valid* children (fewer when fewer are valid);
  they are written into pycma's ``RecombinationWeights`` before each ``tell`` (pycma's
  learning rates stay those it derived at start-up from its default weights for mu);
- **restarts**: when pycma's own termination criteria fire or an epoch has no valid child,
  a new CMA-ES starts from a fresh least-squares initialisation while restarts remain;
- **explicit seeds**: pycma draws its normal deviates from a ``numpy.random.Generator``
  seeded from ``SeedSequence([seed, 0, restart])`` (never the global numpy state), and epoch
  e is evaluated with seed ``SeedSequence([seed, 1, e])``;
- **resume**: after each ``tell`` the whole sampler (pycma state and its generator) is pickled
  into the same store transaction as the epoch's evaluations; a resumed run continues from the
  last complete epoch and gives the same result as an uninterrupted run.

The driver only sees an :class:`~nmmfit.fit.evaluator.Evaluator`. One concept, the search
loop; its length is the resumable state (sampler pickling, restarts) that the loop needs.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from nmmfit.fit.evaluator import Evaluation, Evaluator
from nmmfit.fit.parametrise import Parametrisation
from nmmfit.fit.store import EpochRecord, Store

__all__ = [
    "CMAESConfig",
    "SamplingError",
    "CMAESSampler",
    "RandomSampler",
    "EpochSummary",
    "SearchHistory",
    "recombination_weights",
    "run_search",
    "epoch_seed",
    "WEIGHT_SCHEMES",
]

#: Recombination weight schemes by name.
WEIGHT_SCHEMES = ("inverse_loss", "log", "equal")


class SamplingError(RuntimeError):
    """Rejection sampling hit its cap: too few children inside the bounds."""


@dataclass(frozen=True)
class CMAESConfig:
    """Search settings (paper defaults: DELSSOME group level, Zeng et al. 2026).

    Attributes
    ----------
    popsize : children per epoch (lambda).
    mu : children recombined (the best mu valid ones).
    sigma0 : initial global step size (the per-coordinate scales are DELSSOME's Lambda).
    n_epochs : epochs (generations) in all, across restarts.
    weights : "inverse_loss" (DELSSOME), "log", "equal", or mu positive numbers (by rank).
    restarts : how many times a new CMA-ES may be started.
    max_draws : rejection-sampling cap per epoch (DELSSOME: 20,000 x 100 draws).
    x0 : the starting mean of the first CMA-ES (a search vector); None: DELSSOME's random
        in-bounds draw (:meth:`~nmmfit.fit.parametrise.Parametrisation.initial_vector`).
        Restarts always start from a random draw. See :mod:`nmmfit.fit.warm_start`.
    """

    popsize: int = 100
    mu: int = 10
    sigma0: float = 0.2
    n_epochs: int = 100
    weights: str | tuple[float, ...] = "inverse_loss"
    restarts: int = 0
    max_draws: int = 2_000_000
    x0: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("popsize", "mu", "n_epochs", "max_draws"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.mu > self.popsize:
            raise ValueError(f"mu = {self.mu} exceeds popsize = {self.popsize}")
        if not (np.isfinite(self.sigma0) and self.sigma0 > 0):
            raise ValueError(f"sigma0 must be a positive number, got {self.sigma0}")
        if not isinstance(self.restarts, int | np.integer) or self.restarts < 0:
            raise ValueError(f"restarts must be a non-negative int, got {self.restarts!r}")
        if self.max_draws < self.popsize:
            raise ValueError(f"max_draws = {self.max_draws} is below popsize = {self.popsize}")
        if isinstance(self.weights, str):
            if self.weights not in WEIGHT_SCHEMES:
                raise ValueError(f"weights must be one of {WEIGHT_SCHEMES} or {self.mu} "
                                 f"numbers, got {self.weights!r}")
        else:
            w = np.asarray(self.weights, dtype=float)
            if w.shape != (self.mu,) or not np.all(np.isfinite(w)) or (w <= 0).any():
                raise ValueError(f"weights must be {self.mu} positive numbers (one per rank), "
                                 f"got {self.weights!r}")
            object.__setattr__(self, "weights", tuple(float(v) for v in w))
        if self.x0 is not None:
            x0 = np.asarray(self.x0, dtype=float)
            if x0.ndim != 1 or not np.all(np.isfinite(x0)):
                raise ValueError(f"x0 must be a finite search vector, got {self.x0!r}")
            object.__setattr__(self, "x0", tuple(float(v) for v in x0))

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["weights"] = self.weights if isinstance(self.weights, str) else list(self.weights)
        if self.x0 is None:
            d.pop("x0")  # configs (and their hashes) of runs without a start stay as they were
        else:
            d["x0"] = list(self.x0)
        return d


def recombination_weights(scheme: str | Sequence[float], sorted_totals: np.ndarray,
                          mu: int) -> np.ndarray:
    """Positive weights (summing to 1) for the best k = min(mu, len(sorted_totals)) children.

    ``sorted_totals`` are the totals of the valid children, ascending. "inverse_loss":
    w_i = (1 / L_i) / sum_j (1 / L_j) (a total of 0 is floored at 1e-12); "log":
    ln(mu + 1/2) - ln(i), i = 1..k; "equal": 1 / k; a sequence: its first k entries.
    """
    tot = np.asarray(sorted_totals, dtype=float)
    k = int(min(mu, tot.shape[0]))
    if k < 1:
        raise ValueError("no valid child to recombine")
    if isinstance(scheme, str):
        if scheme == "inverse_loss":
            w = 1.0 / np.maximum(tot[:k], 1e-12)
        elif scheme == "log":
            w = np.log(mu + 0.5) - np.log(np.arange(1, k + 1))
        elif scheme == "equal":
            w = np.ones(k)
        else:
            raise ValueError(f"unknown weight scheme {scheme!r}; one of {WEIGHT_SCHEMES}")
    else:
        w = np.asarray(scheme, dtype=float)[:k]
    return w / w.sum()


class _Randn:
    """Picklable N(0, 1) source for pycma's ``randn`` option (a seeded Generator)."""

    def __init__(self, seed_seq: np.random.SeedSequence) -> None:
        self.rng = np.random.default_rng(seed_seq)

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


def _seed_seq(seed: int, *keys: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), *[int(k) for k in keys]])


def epoch_seed(seed: int, epoch: int, stream: int = 1) -> int:
    """The evaluation seed of an epoch: a 31-bit int from ``SeedSequence([seed, stream, epoch])``
    (stream 1: training, 2: validation, 3: test)."""
    return int(_seed_seq(seed, stream, epoch).generate_state(1, dtype=np.uint32)[0] >> 1)


def _rejection_report(param: Parametrisation, x: np.ndarray) -> str:
    viol = param.violations(x)
    parts = [f"{k}: {int(v.sum())}/{x.shape[0]}" for k, v in viol.items() if v.any()]
    return ", ".join(parts) or "none"


class CMAESSampler:
    """One pycma CMA-ES (with rejection sampling and per-epoch weights), picklable."""

    kind = "cmaes"

    def __init__(self, param: Parametrisation, config: CMAESConfig, seed: int,
                 restart: int = 0) -> None:
        import cma

        self.param = param
        self.config = config
        self.seed = int(seed)
        self.restart = int(restart)
        init_rng = np.random.default_rng(_seed_seq(seed, 2, restart))
        if config.x0 is not None and restart == 0:
            self.x0 = param._as_batch(np.asarray(config.x0))[0].copy()
            if not param.in_bounds(self.x0)[0]:
                raise ValueError("the search's starting vector x0 lies outside the box or "
                                 f"breaks the spatial constraint: {param.violations(self.x0)}")
        else:
            self.x0 = param.initial_vector(init_rng)
        self.stds = param.initial_stds(self.x0)
        opts = {
            "popsize": config.popsize, "CMA_mu": config.mu, "CMA_active": False,
            "CMA_stds": self.stds.tolist(), "randn": _Randn(_seed_seq(seed, 0, restart)),
            "seed": np.nan, "verbose": -9, "maxiter": np.inf, "maxfevals": np.inf,
            "tolfun": 0, "tolfunhist": 0, "tolflatfitness": 10**9,
        }
        self.es = cma.CMAEvolutionStrategy(self.x0.tolist(), config.sigma0, opts)
        # No pycma bounds, scaling or integer variables: the genotype is the phenotype. So
        # ask draws with ask_geno (what ask draws, without its per-solution bookkeeping) and
        # pycma's archive of sent solutions (which maps phenotypes back to genotypes, keyed by
        # a hash of each vector) is replaced by its no-op variant. The draws and updates are
        # unchanged (tests/test_fit_cmaes.py); asks are 2-3x faster (surrogate_loop.json).
        if not self.es.gp.isidentity:  # pragma: no cover - guards a pycma behaviour change
            raise RuntimeError("pycma's genotype-phenotype map is not the identity; "
                               "CMAESSampler.ask assumes it is")
        from cma.evolution_strategy import get_CMASolutionDict
        from cma.utilities.utils import ElapsedWCTime

        self.es.sent_solutions = get_CMASolutionDict(False)()
        self.es.timer = ElapsedWCTime()  # pycma's ask makes its (unused) timer; ask_geno does not

    def ask(self) -> tuple[np.ndarray, int]:
        """popsize in-bounds children [popsize, dim] and the number of draws it took."""
        lam, cap = self.config.popsize, self.config.max_draws
        accepted: list[np.ndarray] = []
        draws = 0
        last = None
        while len(accepted) < lam:
            if draws >= cap:
                raise SamplingError(
                    f"rejection sampling drew {draws} children (cap max_draws={cap}) and only "
                    f"{len(accepted)} of {lam} had regional parameters inside the bounds "
                    f"{self.param.bounds} (spatial constraint {self.param.spatial_constraint}); "
                    f"violations in the last batch: {_rejection_report(self.param, last)}. "
                    "Widen the bounds, lower sigma0, or raise max_draws.")
            n = int(min(max(lam, 2 * (lam - len(accepted))), cap - draws))
            batch = np.asarray(self.es.ask_geno(n), dtype=float)
            draws += n
            ok = self.param.in_bounds(batch)
            accepted.extend(batch[ok])
            last = batch
        return np.array(accepted[:lam]), draws

    def tell(self, x: np.ndarray, total: np.ndarray, valid: np.ndarray) -> None:
        """Update with the scored children (invalid ones rank last and get weight 0)."""
        ok = np.asarray(valid, dtype=bool)
        if not ok.any():
            return
        ranked = np.sort(np.asarray(total, dtype=float)[ok])
        w = recombination_weights(self.config.weights, ranked, self.config.mu)
        weights = self.es.sp.weights
        for i in range(len(weights)):
            weights[i] = float(w[i]) if i < w.shape[0] else 0.0
        weights.set_attributes_from_weights()
        f = np.where(ok, total, np.inf)
        f = np.where(np.isfinite(f), f, np.nanmax(np.where(ok, total, -np.inf)) + 1e6)
        # check_points=False: the told points are the drawn genotypes, used as they are
        self.es.tell([row for row in np.asarray(x, dtype=float)], [float(v) for v in f],
                     check_points=False)

    def stop(self) -> dict:
        """pycma's termination conditions that hold now (empty: keep going)."""
        return {str(k): _jsonable(v) for k, v in self.es.stop().items()}

    @property
    def mean(self) -> np.ndarray:
        """Current distribution mean [dim]."""
        return np.asarray(self.es.mean, dtype=float)

    @property
    def sigma(self) -> float:
        """Current global step size."""
        return float(self.es.sigma)


class RandomSampler:
    """Random search baseline: children uniform over the feasible coefficient set
    (:meth:`~nmmfit.fit.parametrise.Parametrisation.uniform_vectors`, rejection sampling)."""

    kind = "random"

    def __init__(self, param: Parametrisation, config: CMAESConfig, seed: int,
                 restart: int = 0) -> None:
        self.param = param
        self.config = config
        self.restart = int(restart)
        self.rng = np.random.default_rng(_seed_seq(seed, 4, restart))

    def ask(self) -> tuple[np.ndarray, int]:
        """popsize in-bounds random vectors and the number of draws."""
        lam, cap = self.config.popsize, self.config.max_draws
        out: list[np.ndarray] = []
        draws = 0
        while len(out) < lam:
            if draws >= cap:
                raise SamplingError(f"random search drew {draws} vectors (cap {cap}); only "
                                    f"{len(out)} of {lam} were inside the bounds")
            m = int(min(max(10 * lam, 1000), cap - draws))
            batch = self.param.uniform_vectors(self.rng, m)
            draws += m
            out.extend(batch[self.param.in_bounds(batch)])
        return np.array(out[:lam]), draws

    def tell(self, x, total, valid) -> None:
        """Random search does not learn."""

    def stop(self) -> dict:
        """Never stops early."""
        return {}


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float | int | str | bool) or v is None:
        return v
    return str(v)


@dataclass
class EpochSummary:
    """One training epoch.

    Attributes
    ----------
    epoch : index (0-based, counted across restarts); restart : which CMA-ES.
    best_total, best_terms [3], best_x [dim], best_valid : the epoch's lowest-total child.
    n_valid : valid children; n_draws : rejection-sampling draws; seed : evaluation seed.
    wall_s : epoch wall time (s); eval_s : time inside the evaluator (s).
    """

    epoch: int
    restart: int
    best_total: float
    best_terms: np.ndarray
    best_x: np.ndarray
    best_valid: bool
    n_valid: int
    n_draws: int
    seed: int
    wall_s: float
    eval_s: float
    info: dict = field(default_factory=dict)


@dataclass
class SearchHistory:
    """All epochs of a search (read back from the store on resume)."""

    run_id: str
    kind: str
    epochs: list[EpochSummary]
    stopped: dict = field(default_factory=dict)
    resumed_from: int = -1

    @property
    def best_total(self) -> np.ndarray:
        """[E] the best total of each epoch."""
        return np.array([e.best_total for e in self.epochs])

    @property
    def best_so_far(self) -> np.ndarray:
        """[E] running minimum of :attr:`best_total`."""
        return np.minimum.accumulate(self.best_total) if self.epochs else np.zeros(0)

    def best(self) -> EpochSummary:
        """The epoch whose best child has the lowest total."""
        return self.epochs[int(np.argmin(self.best_total))]


def _summary(epoch: int, restart: int, x: np.ndarray, ev: Evaluation, n_draws: int, seed: int,
             wall: float, info: dict) -> EpochSummary:
    score = np.where(ev.valid, ev.total, np.inf)
    i = int(np.argmin(score)) if ev.valid.any() else int(np.argmin(ev.total))
    return EpochSummary(epoch=epoch, restart=restart, best_total=float(ev.total[i]),
                        best_terms=ev.terms[i].copy(), best_x=x[i].copy(),
                        best_valid=bool(ev.valid[i]), n_valid=int(ev.valid.sum()),
                        n_draws=int(n_draws), seed=int(seed), wall_s=float(wall),
                        eval_s=float(ev.wall_s), info=info)


def _history_from_store(store: Store, run_id: str, kind: str) -> list[EpochSummary]:
    ev = store.evaluations(run_id, "train")
    out = []
    for row in store.epoch_rows(run_id, "train"):
        e = row["epoch"]
        sel = np.flatnonzero(ev["epoch"] == e)
        tot = ev["total"][sel]
        val = ev["valid"][sel]
        score = np.where(val, tot, np.inf)
        i = sel[int(np.argmin(score))] if val.any() else sel[int(np.argmin(tot))]
        info = row["info"]
        out.append(EpochSummary(
            epoch=e, restart=row["restart"], best_total=float(ev["total"][i]),
            best_terms=ev["terms"][i].copy(), best_x=ev["params"][i].copy(),
            best_valid=bool(ev["valid"][i]), n_valid=int(val.sum()), n_draws=row["n_draws"],
            seed=int(ev["seed"][i]), wall_s=row["wall_s"], eval_s=float(info.get("eval_s", 0)),
            info=info))
    return out


_SAMPLERS = {"cmaes": CMAESSampler, "random": RandomSampler}


def run_search(evaluator: Evaluator, config: CMAESConfig, *, seed: int, store: Store,
               run_id: str, kind: str = "cmaes",
               callback: Callable[[EpochSummary], None] | None = None) -> SearchHistory:
    """Run (or resume) a search of ``config.n_epochs`` epochs, storing every evaluation.

    Parameters
    ----------
    evaluator : scores each epoch's children (``evaluator.parametrisation`` defines bounds).
    config : search settings.
    seed : the run seed (sampling and evaluation seeds derive from it).
    store : evaluation store; ``run_id`` must already be registered (``store.ensure_run``).
    kind : "cmaes" or "random" (same budget: popsize x n_epochs evaluations).
    callback : called after each completed epoch (progress display).

    Returns
    -------
    :class:`SearchHistory` of epochs 0 .. n_epochs - 1 (fewer if the search stopped),
    including those read back from the store; a stored run with more epochs gives its first
    ``n_epochs`` (the result of an ``n_epochs`` run), not the longer run.
    """
    if kind not in _SAMPLERS:
        raise ValueError(f"kind must be one of {list(_SAMPLERS)}, got {kind!r}")
    param = evaluator.parametrisation
    tgt = getattr(evaluator.target, "name", "")
    dataset = str(getattr(evaluator.target, "meta", {}).get("dataset", ""))
    engine = str(evaluator.describe().get("engine", evaluator.name))
    last = store.last_epoch(run_id, "train")
    history = _history_from_store(store, run_id, kind) if last >= 0 else []
    stopped: dict = {}
    if last >= config.n_epochs:
        # the store holds a longer run: epoch e never depends on n_epochs, so its first
        # n_epochs epochs are exactly what an n_epochs run gives; never return the longer run
        history = [e for e in history if e.epoch < config.n_epochs]
        info = history[-1].info if history else {}
        stopped = info.get("stopped", {}) if info.get("final") else {}
        return SearchHistory(run_id=run_id, kind=kind, epochs=history, stopped=stopped,
                             resumed_from=config.n_epochs - 1)
    if last >= 0:
        state, info = store.epoch_state(run_id, "train", last)
        if state is None:
            raise ValueError(f"run {run_id!r} epoch {last} has no optimiser state to resume")
        sampler = pickle.loads(state)
        stopped = info.get("stopped", {}) if info.get("final") else {}
    else:
        sampler = _SAMPLERS[kind](param, config, seed, 0)
    epoch = last + 1
    while epoch < config.n_epochs and not stopped:
        t0 = time.perf_counter()
        restart = sampler.restart  # the CMA-ES that produced this epoch
        x, n_draws = sampler.ask()
        s = epoch_seed(seed, epoch, 1)
        ev = evaluator.evaluate(x, s)
        sampler.tell(x, ev.total, ev.valid)
        info: dict = {"eval_s": ev.wall_s, "sigma": getattr(sampler, "sigma", None)}
        reason = sampler.stop()
        if not ev.valid.any():
            reason = {**reason, "no_valid_child": True}
        if reason:
            info["stop_reason"] = reason
            if sampler.restart < config.restarts:
                sampler = _SAMPLERS[kind](param, config, seed, sampler.restart + 1)
                info["restarted"] = sampler.restart
            elif kind == "cmaes" and set(reason) != {"no_valid_child"}:
                stopped = reason
                info["final"] = True
                info["stopped"] = reason
        wall = time.perf_counter() - t0
        rec = EpochRecord.from_evaluation(x, ev, seed=s, wall_s=wall)
        store.write_epoch(run_id, "train", epoch, rec, restart=restart,
                          state=pickle.dumps(sampler, protocol=pickle.HIGHEST_PROTOCOL),
                          n_draws=n_draws, info=info, dataset=dataset, target=tgt,
                          engine=engine)
        summ = _summary(epoch, restart, x, ev, n_draws, s, wall, info)
        history.append(summ)
        if callback is not None:
            callback(summ)
        epoch += 1
    return SearchHistory(run_id=run_id, kind=kind, epochs=history, stopped=stopped,
                         resumed_from=last)
