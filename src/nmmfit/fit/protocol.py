"""The paper's train / validation / test protocol (``reference/delssome.md`` 4.1, 4.2).

1. **Train**: CMA-ES over the map coefficients against the training Target; every child is
   scored by the training evaluator (Euler by default: ``n_dup_train`` duplicates at
   ``train_dt``). A surrogate evaluator may replace it; validation and test stay Euler.
2. **Validation**: the best child of every training epoch is re-simulated at ``val_dt`` with
   ``n_dup_val`` duplicates against the validation Target (its own SC).
3. **Test**: the ``test_top`` best validated candidates (Zhang's rule: a candidate whose wEE,
   wEI and sigma profiles all correlate > 0.98 with an already chosen one is skipped) are
   simulated ``n_dup_test`` times at ``test_dt`` against the test Target. The duplicates are
   scored in groups of ``test_group`` (their FC and FCD averaged, as in training), which gives
   a mean and a spread of each cost term; the regional E/I ratio (time-averaged S_E / S_I) is
   reported per region as mean and standard deviation over the valid duplicates.

Default data (:func:`default_targets`), the paper's group-level setting on the bundled HCP
Schaefer-100 cohort with the myelin and FC-gradient maps:

- train: group ``train706`` (706 participants; group SC, FC and FCD of cubnm's release);
- validation: the two bundled individuals 100206 and 100307, four 1200-frame runs, with their
  own SC. They overlap neither group's participant list as shipped: the groups are
  precomputed aggregates whose subject lists are not part of the bundle, so this is the only
  held-out data available; it is a 2-subject target (noisier than a group) -- documented
  rather than hidden;
- test: group ``test303`` (303 participants).

Presets (:data:`PRESETS`): ``"paper"`` is DELSSOME's group-level setting exactly (lambda 100,
mu 10, sigma0 0.2, 1/loss weights, 100 epochs, 3 duplicates, dt 0.006 s, 14.4 min runs after
2.4 min burn-in; validation 3 duplicates at dt 0.006 s; test dt 0.0005 s, the best candidate
with 1000 duplicates in groups of 10 as Zhang 2024). ``"quick"`` shortens the search so that
a fit takes minutes on 2 cores: search and validation runs are shorter than the empirical
ones (so those costs are noisier), with the paper's burn-in; every preset tests at the
target's full run length, so test costs are comparable with each other and with the papers'.

Everything is stored (:mod:`nmmfit.fit.store`); running the same call again resumes.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from nmmfit.fit.cmaes import CMAESConfig, SearchHistory, epoch_seed, run_search
from nmmfit.fit.evaluator import EulerEvaluator, Evaluator, check_target_regions
from nmmfit.fit.parametrise import Parametrisation, RegionalParams
from nmmfit.fit.store import EpochRecord, Store, config_hash
from nmmfit.sim import SimConfig, simulate
from nmmfit.stats.cost import TERM_NAMES, distance
from nmmfit.stats.fcd import cdf_from_counts
from nmmfit.stats.summary import summarise

__all__ = ["Preset", "PRESETS", "get_preset", "fit", "FitResult", "default_targets",
           "sim_config_for", "DEFAULT_STORE"]

#: Default store path (relative to the working directory).
DEFAULT_STORE = "nmmfit_fit.db"


@dataclass(frozen=True)
class Preset:
    """All protocol settings.

    Attributes
    ----------
    name : preset label.
    search : CMA-ES settings (popsize, mu, sigma0, weights, epochs, restarts).
    train_dt, val_dt, test_dt : Euler steps (s) of the three phases.
    duration_s : recorded seconds per simulated run of the search and the validation; None =
        the target's run length (n_frames x TR).
    test_duration_s : recorded seconds per test run; None (the default of every preset) = the
        target's run length, so that test costs are comparable with the papers'.
    burn_in_s : discarded seconds with BOLD before recording; warmup_steps : neural-only steps.
    n_dup_train, n_dup_val, n_dup_test : noise duplicates per candidate.
    test_group : duplicates scored together in the test (costs: mean and std over groups).
    test_top : best validated candidates that are tested.
    rate_gate : r_E gate (Hz) for validity, None for finiteness only.
    init : where CMA-ES starts when ``fit(init=None)``: "paper" (DELSSOME's random draw) or
        "linear_fc" (:mod:`nmmfit.fit.warm_start`); chosen by validation
        (``docs/fit_quality.md``). Not part of :meth:`as_dict`: the start a run used is
        stored as ``config["init"]``.
    init_iter : iterations of the linearised-FC start search (``init="linear_fc"``; its
        population is 20, so about 20 x init_iter closed-form FCs, 60 ms each for 100
        regions); recorded in ``config["init"]``.
    note : what differs from the paper.
    """

    name: str
    search: CMAESConfig = field(default_factory=CMAESConfig)
    train_dt: float = 0.006
    val_dt: float = 0.006
    test_dt: float = 0.0005
    duration_s: float | None = None
    test_duration_s: float | None = None
    burn_in_s: float = 144.0
    warmup_steps: int = 5000
    n_dup_train: int = 3
    n_dup_val: int = 3
    n_dup_test: int = 1000
    test_group: int = 10
    test_top: int = 1
    rate_gate: tuple[float, float] | None = (2.7, 3.3)
    init: str = "paper"
    init_iter: int = 80
    note: str = ""

    def __post_init__(self) -> None:
        from nmmfit.fit.warm_start import INITS

        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        for name in ("n_dup_train", "n_dup_val", "n_dup_test", "test_group", "test_top",
                     "init_iter"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.n_dup_test % self.test_group:
            raise ValueError(f"n_dup_test = {self.n_dup_test} must be a multiple of test_group "
                             f"= {self.test_group}")
        for name in ("train_dt", "val_dt", "test_dt"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {v}")
        for name in ("duration_s", "test_duration_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be positive or None, got {v}")

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["search"] = self.search.as_dict()
        if d["test_duration_s"] is None:
            d.pop("test_duration_s")  # full-length tests: stored configs keep their hashes
        d["rate_gate"] = list(self.rate_gate) if self.rate_gate else None
        d.pop("init")  # recorded as config["init"] (runs keep their hashes)
        d.pop("init_iter")
        return d

    def with_overrides(self, **kw) -> Preset:
        """A copy with fields replaced; search fields (popsize, mu, sigma0, n_epochs, weights,
        restarts, max_draws) may be given directly. None values are ignored."""
        kw = {k: v for k, v in kw.items() if v is not None}
        search_keys = set(CMAESConfig.__dataclass_fields__)
        s_kw = {k: kw.pop(k) for k in list(kw) if k in search_keys}
        unknown = [k for k in kw if k not in self.__dataclass_fields__]
        if unknown:
            raise ValueError(f"unknown preset settings {unknown}; known: "
                             f"{sorted(set(self.__dataclass_fields__) | search_keys)}")
        search = replace(self.search, **s_kw) if s_kw else self.search
        return replace(self, search=search, **kw)


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        name="paper", init="linear_fc",
        note="DELSSOME group level: lambda 100, mu 10, sigma0 0.2, 1/loss weights, 100 epochs, "
             "3 duplicates at dt 0.006 s, full-length runs (the target's), 144 s burn-in, 5000 "
             "warm-up steps; validation 3 duplicates at dt 0.006 s; test: best validated "
             "candidate, 1000 duplicates at dt 0.0005 s in groups of 10 (Zhang 2024). Unlike "
             "DELSSOME, CMA-ES starts from the linearised-FC optimum (init='linear_fc', chosen "
             "by validation: docs/fit_quality.md)."),
    "quick": Preset(
        name="quick",
        search=CMAESConfig(popsize=50, mu=5, sigma0=0.2, n_epochs=30),
        duration_s=216.0, burn_in_s=144.0, warmup_steps=5000,
        n_dup_train=1, n_dup_val=2, n_dup_test=10, test_group=5, test_top=1,
        note="quick: lambda 50, mu 5, 30 epochs, 1 duplicate, 216 s runs (300 frames at TR "
             "0.72) after the paper's 144 s burn-in and 5000 warm-up steps (a shorter burn-in "
             "lets the search fit a start-up transient: docs/fit_quality.md); validation 2 "
             "duplicates at dt 0.006 s on 216 s runs; test at the target's full run length, "
             "10 duplicates at dt 0.0005 s in groups of 5, so the test cost is comparable "
             "with the paper preset's."),
}


def get_preset(name: str | Preset, **overrides) -> Preset:
    """A preset by name (``"paper"``, ``"quick"``), with optional overrides."""
    if isinstance(name, Preset):
        base = name
    elif name in PRESETS:
        base = PRESETS[name]
    else:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return base.with_overrides(**overrides) if overrides else base


def sim_config_for(target, preset: Preset, phase: str) -> SimConfig:
    """The SimConfig of a phase ("train", "val", "test") for a target's TR and run length."""
    dt = {"train": preset.train_dt, "val": preset.val_dt, "test": preset.test_dt}[phase]
    dur = preset.test_duration_s if phase == "test" else preset.duration_s
    if dur is None:
        dur = target.n_frames * target.tr
    return SimConfig.for_tr(target.tr, dt=dt, duration_s=dur, burn_in_s=preset.burn_in_s,
                            warmup_steps=preset.warmup_steps, rate_gate=preset.rate_gate)


def default_targets(dataset: str = "hcp_schaefer100", maps: Sequence[str] = ("myelin",
                    "fc_gradient"), sc_normalisation: str | None = None):
    """(train, validation, test) Targets of the default setting (module docstring), with SC
    normalised by ``sc_normalisation`` (:func:`nmmfit.data.sc.normalise_sc`; None: the
    library default, :data:`~nmmfit.data.sc.DEFAULT_SC_NORMALISATION`)."""
    from nmmfit import datasets
    from nmmfit.data.sc import DEFAULT_SC_NORMALISATION
    from nmmfit.data.target import Target

    sc_normalisation = sc_normalisation or DEFAULT_SC_NORMALISATION

    ds = datasets.load(dataset)
    kw = {"maps": maps, "sc_normalisation": sc_normalisation}
    if dataset == "hcp_schaefer100":
        train = Target.from_dataset(ds, group="train706", **kw)
        val = Target.from_dataset(ds, subjects=list(ds.subjects), **kw,
                                  name=f"{dataset}:val:" + "+".join(ds.subjects))
        test = Target.from_dataset(ds, group="test303", **kw)
        return train, val, test
    ids = list(ds.subjects)
    if len(ids) < 3:
        raise ValueError(f"dataset {dataset!r} has {len(ids)} subjects; need >= 3 for "
                         "disjoint train / validation / test targets")
    k = max(1, len(ids) // 3)
    parts = (ids[:len(ids) - 2 * k], ids[len(ids) - 2 * k:len(ids) - k], ids[len(ids) - k:])
    return tuple(Target.from_dataset(ds, subjects=p, **kw, name=f"{dataset}:{lab}")
                 for p, lab in zip(parts, ("train", "val", "test"), strict=True))


def _versions() -> dict[str, str]:
    import cma
    import numba
    import scipy

    import nmmfit

    return {"nmmfit": nmmfit.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__, "cma": cma.__version__,
            "python": platform.python_version()}


def _fingerprint(target) -> dict:
    import hashlib

    h = hashlib.sha256()
    for a in (target.sc, target.fc, target.fcd_cdf):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return {"name": target.name, "n_regions": target.n_regions, "tr": target.tr,
            "sha256": h.hexdigest()[:16]}


@dataclass
class FitResult:
    """Outcome of :func:`fit`.

    Attributes
    ----------
    run_id, preset, seed, config : identity and settings (the run id hashes config without
        ``n_epochs``, so a run can be extended).
    parametrisation : the map parametrisation; best_x [dim] : the tested best candidate.
    regional : its expanded parameters (wEE, wEI, sigma [N]; G scalar).
    train : search history (best child per epoch).
    val_epochs [E], val_terms [E, 3], val_total [E], val_valid [E], val_x [E, dim].
    test : one dict per tested candidate (terms mean/std over duplicate groups, E/I).
    test_cost : fc_corr, fc_l1, fcd_ks, total of the best candidate (mean over groups).
    ei_map, ei_map_std : [N] regional E/I ratio of the best candidate, mean / std over valid
        test duplicates.
    sim_fc [N, N], sim_fcd_cdf [bins] : test simulation's FC (mean over valid duplicates)
        and FCD CDF; emp_fc, emp_fcd_cdf : the test target's.
    timings : seconds (train, val, test, per epoch); versions : package versions.
    """

    run_id: str
    preset: str
    seed: int
    config: dict
    parametrisation: Parametrisation
    best_x: np.ndarray
    regional: dict
    train: SearchHistory
    val_epochs: np.ndarray
    val_terms: np.ndarray
    val_total: np.ndarray
    val_valid: np.ndarray
    val_x: np.ndarray
    test: list[dict]
    test_cost: dict
    ei_map: np.ndarray
    ei_map_std: np.ndarray
    sim_fc: np.ndarray
    sim_fcd_cdf: np.ndarray
    emp_fc: np.ndarray
    emp_fcd_cdf: np.ndarray
    timings: dict
    versions: dict
    store_path: str = ""

    @property
    def best_val_cost(self) -> float:
        """Lowest validation total over epochs (valid candidates)."""
        ok = self.val_valid
        return float(self.val_total[ok].min()) if ok.any() else float("nan")

    def summary(self) -> dict:
        """JSON-ready summary (no large matrices)."""
        ei = self.ei_map
        return {
            "run_id": self.run_id, "preset": self.preset, "seed": self.seed,
            "store": self.store_path,
            "n_epochs": len(self.train.epochs),
            "n_evaluations": len(self.train.epochs) * int(
                self.config["preset"]["search"]["popsize"]),
            "train_best_total": [float(v) for v in self.train.best_total],
            "val_total": [float(v) for v in self.val_total],
            "best_val_cost": self.best_val_cost,
            "test_cost": self.test_cost,
            "test": [{k: (v.item() if isinstance(v, np.generic) else v)
                      for k, v in t.items() if not isinstance(v, np.ndarray)}
                     for t in self.test],
            "best_x": {n: float(v) for n, v in zip(self.parametrisation.names, self.best_x,
                                                   strict=True)},
            "regional": {k: np.asarray(v).tolist() for k, v in self.regional.items()},
            "ei_ratio": {"mean": float(np.nanmean(ei)) if np.isfinite(ei).any() else None,
                         "per_region": [None if not np.isfinite(v) else float(v) for v in ei],
                         "per_region_std": [None if not np.isfinite(v) else float(v)
                                            for v in self.ei_map_std]},
            "timings": self.timings, "versions": self.versions, "config": self.config,
        }


def _regional_dict(reg: RegionalParams) -> dict:
    return {"wEE": reg.wEE[0], "wEI": reg.wEI[0], "G": float(reg.G[0]), "sigma": reg.sigma[0]}


def _distinct_top(order: np.ndarray, xs: np.ndarray, param: Parametrisation, k: int,
                  thr: float = 0.98) -> list[int]:
    """Zhang's test selection: walk ``order``; skip a candidate whose wEE, wEI and sigma
    profiles all correlate above ``thr`` with an already chosen one (and exact repeats)."""
    chosen: list[int] = []
    reg = param.expand(xs)
    for i in order:
        dup = False
        for j in chosen:
            if np.array_equal(xs[i], xs[j]):
                dup = True
                break
            rs = []
            for a in (reg.wEE, reg.wEI, reg.sigma):
                u, v = a[i] - a[i].mean(), a[j] - a[j].mean()
                den = np.linalg.norm(u) * np.linalg.norm(v)
                rs.append(float(u @ v / den) if den > 0 else 1.0)
            if min(rs) > thr:
                dup = True
                break
        if not dup:
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return chosen


def _test_candidate(x: np.ndarray, target, param: Parametrisation, config: SimConfig,
                    preset: Preset, seed: int, engine: str, threads: int | None) -> dict:
    """Simulate one candidate n_dup_test times; score groups of test_group duplicates."""
    reg = param.expand(x[None])
    g = preset.test_group
    n_groups = preset.n_dup_test // g
    per_call = max(1, 100 // g) * g  # duplicates per simulate call (memory bound)
    terms, valid_groups, n_valid, intra = [], [], [], []
    ei_rows, fc_sum, hist_sum = [], None, None
    n_ok_total = 0
    sim_s = 0.0
    for c, start in enumerate(range(0, preset.n_dup_test, per_call)):
        d = min(per_call, preset.n_dup_test - start)
        t0 = time.perf_counter()
        res = simulate(target.sc, reg.wEE, reg.wEI, reg.G, reg.sigma, config=config, n_dup=d,
                       seed=int(seed) + c, engine=engine, threads=threads)
        sim_s += time.perf_counter() - t0
        ok = res.valid[0].reshape(d // g, g)
        # each duplicate summarised once; its groups are scored, all of them summed below
        dups = summarise(res.bold[0], target.fcd_spec, valid=res.valid[0], threads=threads)
        ct = distance(dups.pool(g), target, warn_frames=False)
        terms.append(np.stack([ct.fc_corr, ct.fc_l1, ct.fcd_ks, ct.total], axis=1))
        intra.append(ct.fc_corr_intra if ct.fc_corr_intra is not None
                     else np.full(len(ct), np.nan))
        valid_groups.append(ct.valid)
        n_valid.append(ok.sum(axis=1))
        v = res.valid[0]
        if v.any():
            ei_rows.append(res.ei_ratio[0][v])
        if dups.valid.any():
            fcs = dups.fc_sum.sum(axis=0)
            hist = dups.fcd_counts.sum(axis=0)
            fc_sum = fcs if fc_sum is None else fc_sum + fcs
            hist_sum = hist if hist_sum is None else hist_sum + hist
            n_ok_total += int(dups.valid.sum())
    t = np.concatenate(terms)
    vg = np.concatenate(valid_groups)
    n = param.n_regions
    out = {"n_dup": preset.n_dup_test, "group": g, "n_groups": n_groups,
           "n_valid_groups": int(vg.sum()), "n_valid_dups": n_ok_total, "sim_s": sim_s}
    for k, name in enumerate((*TERM_NAMES, "total")):
        col = t[vg, k] if vg.any() else t[:, k]
        out[name] = float(col.mean())
        out[f"{name}_std"] = float(col.std(ddof=1)) if col.size > 1 else 0.0
    ia = np.concatenate(intra)[vg]
    # 1 - r over intra-hemispheric edges (cuBNM's FC score), beside the cost; None if unknown
    out["fc_corr_intra"] = float(ia.mean()) if ia.size and np.isfinite(ia).all() else None
    if ei_rows:
        ei = np.concatenate(ei_rows)
        out["ei_map"] = ei.mean(axis=0)
        out["ei_map_std"] = ei.std(axis=0, ddof=1) if ei.shape[0] > 1 else np.zeros(n)
        out["ei_mean"] = float(ei.mean())
        out["ei_mean_std"] = float(ei.mean(axis=1).std(ddof=1)) if ei.shape[0] > 1 else 0.0
    else:
        out["ei_map"] = out["ei_map_std"] = np.full(n, np.nan)
        out["ei_mean"] = out["ei_mean_std"] = float("nan")
    if n_ok_total:
        out["sim_fc"] = fc_sum / n_ok_total
        out["sim_fcd_cdf"] = cdf_from_counts(hist_sum)
    else:
        out["sim_fc"] = np.full((n, n), np.nan)
        out["sim_fcd_cdf"] = np.full(target.fcd_spec.n_bins, np.nan)
    out["valid"] = bool(vg.any())
    return out


def best_by_validation(results: Sequence[FitResult]) -> FitResult:
    """The fit with the lowest validation cost among several (seeds, starts or recipes).

    Zhang et al. 2024 ran five CMA-ES seeds and tested the solutions that validated best
    over all of them; their published test cost is that of the best-validated solution. The
    test costs of ``results`` play no part in the choice. Raises ``ValueError`` when
    ``results`` is empty or no fit has a valid validation candidate.
    """
    results = list(results)
    ok = [r for r in results if np.isfinite(r.best_val_cost)]
    if not ok:
        raise ValueError(f"none of the {len(results)} fits has a valid validation candidate")
    return min(ok, key=lambda r: r.best_val_cost)


def fit(train, val=None, test=None, *, preset: str | Preset = "quick",
        maps: Sequence[str] | None = ("myelin", "fc_gradient"),
        bounds: Mapping[str, Sequence[float]] | None = None,
        wei_rule: str | Sequence[float] | None = None,
        spatial_constraint: Mapping[str, int] | None = None,
        seed: int = 0, engine: str = "numba", threads: int | None = None,
        store: str | Path | Store = DEFAULT_STORE, run_id: str | None = None,
        resume: bool = True, evaluator: Evaluator | None = None, search: str = "cmaes",
        progress: bool = False, callback: Callable[[str, dict], None] | None = None,
        spot_check: int = 0, init: str | None = None, **overrides) -> FitResult:
    """Fit the pFIC model: CMA-ES training, per-epoch validation, test.

    Parameters
    ----------
    train, val, test : Targets (val defaults to train, test to val). All must have the
        training SC's region count.
    preset : "paper", "quick" or a :class:`Preset`; ``overrides`` replace its fields (e.g.
        ``n_epochs=5, popsize=10, n_dup_test=20``).
    maps, bounds, wei_rule, spatial_constraint : see
        :meth:`~nmmfit.fit.parametrise.Parametrisation.from_target` (maps of ``train``).
    seed : run seed; every sampling and noise seed derives from it.
    engine, threads : simulation engine and CPU threads.
    store : SQLite path or an open :class:`Store`.
    run_id : default ``"<search>-<config hash>"``, so the same call resumes.
    resume : False deletes a stored run with this id and starts afresh.
    evaluator : training evaluator (default :class:`EulerEvaluator` with the preset); e.g. a
        surrogate. Validation and test are always Euler.
    spot_check : with a non-Euler ``evaluator``, simulate this many of its best-scored
        candidates per epoch at the training setting and use their simulated scores
        (:class:`~nmmfit.surrogate.spotcheck.SpotCheckEvaluator`); 0 = off.
    search : "cmaes", or "random" (the baseline: same budget, no learning).
    init : where CMA-ES starts: "paper" (DELSSOME's random in-bounds draw) or "linear_fc"
        (the vector whose closed-form linearised FC best matches ``train.fc``, found in about
        two minutes for 100 regions; :mod:`nmmfit.fit.warm_start`). None = the preset's
        (``Preset.init``; "paper" for ``search="random"``, which has no start). Stored in the
        run's config (``config["init"]``, and the start vector as ``preset.search.x0``).
    progress : show tqdm progress bars; callback : called as callback(phase, info).

    Returns
    -------
    :class:`FitResult`.
    """
    pre = get_preset(preset, **overrides)
    if search not in ("cmaes", "random"):
        raise ValueError(f"search must be 'cmaes' or 'random', got {search!r}")
    val = train if val is None else val
    test = val if test is None else test
    param = (evaluator.parametrisation if evaluator is not None else
             Parametrisation.from_target(train, maps, bounds=bounds, wei_rule=wei_rule,
                                         spatial_constraint=spatial_constraint))
    for tgt, role in ((train, "training"), (val, "validation"), (test, "test")):
        check_target_regions(tgt, param.n_regions, what=f"the {role} parametrisation/SC")
    from nmmfit.fit.warm_start import INITS

    if init is None:
        init = pre.init if search == "cmaes" else "paper"
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if init != "paper" and search != "cmaes":
        raise ValueError(f"init={init!r} sets CMA-ES's start; search={search!r} has none")
    if spot_check and (evaluator is None or isinstance(evaluator, EulerEvaluator)):
        raise ValueError("spot_check re-scores a surrogate's candidates by simulation; pass "
                         "a surrogate evaluator (evaluator=...) or spot_check=0")
    if evaluator is None:
        evaluator = EulerEvaluator(train, param, config=sim_config_for(train, pre, "train"),
                                   n_dup=pre.n_dup_train, engine=engine, threads=threads)
    elif spot_check:
        from nmmfit.surrogate.spotcheck import SpotCheckEvaluator

        evaluator = SpotCheckEvaluator.at_training_setting(evaluator, pre, spot_check,
                                                           engine=engine, threads=threads)
    val_ev = EulerEvaluator(val, param, config=sim_config_for(val, pre, "val"),
                            n_dup=pre.n_dup_val, engine=engine, threads=threads)
    test_cfg = sim_config_for(test, pre, "test")
    warm = None
    if init == "linear_fc":
        from nmmfit.fit.warm_start import linear_fc_start

        if callback is not None:
            callback("init", {"init": init})
        warm = linear_fc_start(train, param, seed=seed, n_iter=pre.init_iter)
        pre = replace(pre, search=replace(pre.search, x0=tuple(float(v) for v in warm.x)))
    config = {
        "preset": pre.as_dict(), "search": search, "seed": int(seed),
        "parametrisation": param.describe(), "train_evaluator": evaluator.describe(),
        "val_evaluator": val_ev.describe(), "test_sim": test_cfg.as_dict(),
        "targets": {"train": _fingerprint(train), "val": _fingerprint(val),
                    "test": _fingerprint(test)},
    }
    if warm is not None:  # (runs with the paper's start keep the configs and hashes they had)
        config["init"] = {"init": init, **{k: v for k, v in warm.as_dict().items()
                                           if k != "wall_s"}}
    # n_epochs is left out of the hash: epoch e never depends on it, so re-running with more
    # epochs extends a stored run and gives what an uninterrupted longer run would give; the
    # preset's free-text note and name do not change results either
    hashed = {**config, "preset": {**config["preset"], "note": None, "name": None,
                                   "search": {**config["preset"]["search"], "n_epochs": None}}}
    rid = run_id or f"{search}-{config_hash(hashed)}"
    own = not isinstance(store, Store)
    st = Store(store) if own else store
    versions = _versions()
    try:
        if not resume:
            st.delete_run(rid)
        st.ensure_run(rid, hashed, dataset=str(train.meta.get("dataset", "")),
                      target=train.name, kind=search, seed=seed, engine=engine,
                      versions=versions)
        t0 = time.perf_counter()
        history = _train(evaluator, pre, seed, st, rid, search, progress, callback)
        t1 = time.perf_counter()
        val_rows = _validate(history, val_ev, seed, st, rid, progress, callback)
        t2 = time.perf_counter()
        tests = _test(val_rows, param, test, test_cfg, pre, seed, engine, threads, st, rid,
                      callback)
        t3 = time.perf_counter()
        n_ep = pre.search.n_epochs  # a store may hold more epochs of this run than asked
        epochs = [e for e in st.epoch_rows(rid, "train") if e["epoch"] < n_ep]
        walls = np.array([e["wall_s"] for e in epochs])
        timings = {"train_s_this_call": t1 - t0, "val_s_this_call": t2 - t1,
                   "test_s_this_call": t3 - t2,
                   "seconds_per_epoch": float(walls.mean()) if walls.size else float("nan"),
                   "train_s_total": float(walls.sum()),
                   "val_s_total": float(sum(e["wall_s"] for e in st.epoch_rows(rid, "val")
                                            if e["epoch"] < n_ep)),
                   "test_s_total": float(sum(t.get("sim_s", 0.0) for t in tests))}
        if warm is not None:
            timings["init_s_this_call"] = warm.wall_s
    finally:
        if own:
            st.close()
    best = tests[0]
    bx = np.asarray(best["x"])
    return FitResult(
        run_id=rid, preset=pre.name, seed=int(seed), config=config, parametrisation=param,
        best_x=bx, regional=_regional_dict(param.expand(bx[None])), train=history,
        val_epochs=val_rows["epoch"], val_terms=val_rows["terms"], val_total=val_rows["total"],
        val_valid=val_rows["valid"], val_x=val_rows["x"],
        test=tests, test_cost={k: best[k] for k in (*TERM_NAMES, "total")},
        ei_map=np.asarray(best["ei_map"]), ei_map_std=np.asarray(best["ei_map_std"]),
        sim_fc=np.asarray(best["sim_fc"]), sim_fcd_cdf=np.asarray(best["sim_fcd_cdf"]),
        emp_fc=test.fc, emp_fcd_cdf=test.fcd_cdf, timings=timings, versions=versions,
        store_path=str(st.path))


def _bar(progress: bool, total: int, initial: int, desc: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="epoch")


def _train(evaluator, pre: Preset, seed: int, st: Store, rid: str, search: str,
           progress: bool, callback) -> SearchHistory:
    done = st.last_epoch(rid, "train") + 1
    bar = _bar(progress, pre.search.n_epochs, done, f"train ({search})")
    best = [min([e["best_total"] for e in st.epoch_rows(rid, "train")], default=np.inf)]

    def on_epoch(e) -> None:
        if e.best_valid:
            best[0] = min(best[0], e.best_total)
        if bar is not None:
            bar.set_postfix(best=f"{best[0]:.4f}", epoch_best=f"{e.best_total:.4f}",
                            s_per_epoch=f"{e.wall_s:.1f}", valid=f"{e.n_valid}")
            bar.update(1)
        if callback is not None:
            callback("train", {"epoch": e.epoch, "best_total": best[0],
                               "epoch_best": e.best_total, "wall_s": e.wall_s,
                               "n_valid": e.n_valid})

    try:
        hist = run_search(evaluator, pre.search, seed=seed, store=st, run_id=rid, kind=search,
                          callback=on_epoch)
    finally:
        if bar is not None:
            bar.close()
    return hist


def _validate(history: SearchHistory, val_ev: EulerEvaluator, seed: int, st: Store, rid: str,
              progress: bool, callback) -> dict:
    """Re-simulate every epoch's best child against the validation target.

    All epochs are simulated in one batched call (seed ``epoch_seed(seed, 0, 2)``; epoch e is
    candidate e of the batch, so its noise does not depend on how the run was interrupted) and
    written in one transaction.
    """
    done = set(st.completed_epochs(rid, "val"))
    epochs = [e for e in history.epochs]
    if epochs and not all(e.epoch in done for e in epochs):
        t0 = time.perf_counter()
        s = epoch_seed(seed, 0, 2)
        if progress:
            print(f"validate: {len(epochs)} epoch bests x {val_ev.n_dup} duplicates at "
                  f"dt {val_ev.config.dt} s ...", flush=True)
        xs = np.array([e.best_x for e in epochs])
        ev = val_ev.evaluate(xs, s)
        wall = (time.perf_counter() - t0) / len(epochs)
        items = []
        for i, e in enumerate(epochs):
            rec = EpochRecord(x=xs[i:i + 1], terms=ev.terms[i:i + 1], total=ev.total[i:i + 1],
                              valid=ev.valid[i:i + 1], n_valid=ev.n_valid[i:i + 1],
                              ei_mean=ev.ei_mean[i:i + 1], ei_map=ev.ei_map[i:i + 1], seed=s,
                              wall_s=wall, candidates=[i])
            items.append((e.epoch, rec, {"restart": e.restart,
                                         "info": {"train_total": e.best_total}}))
        st.write_epochs(rid, "val", items, dataset=str(val_ev.target.meta.get("dataset", "")),
                        target=val_ev.target.name, engine=val_ev.engine)
        if callback is not None:
            for i, e in enumerate(epochs):
                callback("val", {"epoch": e.epoch, "total": float(ev.total[i]),
                                 "valid": bool(ev.valid[i])})
    ev = st.evaluations(rid, "val")
    want = {e.epoch for e in epochs}
    keep = np.array([ep in want for ep in ev["epoch"]], dtype=bool)
    order = np.argsort(ev["epoch"][keep], kind="stable")
    return {"epoch": ev["epoch"][keep][order], "terms": ev["terms"][keep][order],
            "total": ev["total"][keep][order], "valid": ev["valid"][keep][order],
            "x": ev["params"][keep][order]}


def _test(val_rows: dict, param: Parametrisation, target, config: SimConfig, pre: Preset,
          seed: int, engine: str, threads: int | None, st: Store, rid: str,
          callback) -> list[dict]:
    if val_rows["total"].size == 0:
        raise RuntimeError(f"run {rid!r} has no validated epoch to test")
    score = np.where(val_rows["valid"], val_rows["total"], np.inf)
    order = np.lexsort((val_rows["epoch"], score))
    chosen = _distinct_top(order, val_rows["x"], param, pre.test_top)
    out = []
    for rank, i in enumerate(chosen):
        name = f"test{rank}"
        got = st.get_artefact(rid, name)
        x = val_rows["x"][i]
        if got is not None and np.array_equal(got[0]["x"], x):
            arrays, info = got
            res = {**info, **{k: v for k, v in arrays.items() if k != "x"}}
        else:
            s = epoch_seed(seed, rank, 3)
            res = _test_candidate(x, target, param, config, pre, s, engine, threads)
            res.update(epoch=int(val_rows["epoch"][i]), val_total=float(val_rows["total"][i]),
                       rank=rank, seed=s)
            arrays = {k: np.asarray(res[k]) for k in ("ei_map", "ei_map_std", "sim_fc",
                                                       "sim_fcd_cdf")}
            arrays["x"] = x
            info = {k: v for k, v in res.items() if k not in arrays}
            terms = np.array([[res[t] for t in TERM_NAMES]])
            rec = EpochRecord(x=x[None], terms=terms, total=np.array([res["total"]]),
                              valid=np.array([res["valid"]]),
                              n_valid=np.array([res["n_valid_dups"]]),
                              ei_mean=np.array([res["ei_mean"]]),
                              ei_map=np.asarray(res["ei_map"])[None], seed=s,
                              wall_s=res["sim_s"])
            st.write_epoch(rid, "test", rank, rec, info=info,
                           dataset=str(target.meta.get("dataset", "")), target=target.name,
                           engine=engine)
            st.put_artefact(rid, name, arrays, info)
        res["x"] = x
        if callback is not None:
            callback("test", {"rank": rank, "total": res["total"]})
        out.append(res)
    return out
