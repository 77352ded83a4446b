"""Protocol settings: the presets, each phase's simulation settings, and the default data.

Presets (:data:`PRESETS`): ``"paper"`` is DELSSOME's group-level setting exactly (lambda 100,
mu 10, sigma0 0.2, 1/loss weights, 100 epochs, 3 duplicates, dt 0.006 s, 14.4 min runs after
2.4 min burn-in; validation 3 duplicates at dt 0.006 s; test dt 0.0005 s, the best candidate
with 1000 duplicates in groups of 10 as Zhang 2024). ``"quick"`` shortens the search so that
a fit takes minutes on 2 cores: search and validation runs are shorter than the empirical
ones (so those costs are noisier), with the paper's burn-in; every preset tests at the
target's full run length, so test costs are comparable with each other and with the papers'.
:func:`sim_config_for` turns a preset into the :class:`~nmmfit.sim.SimConfig` of a phase.

Default data (:func:`default_targets`), the paper's group-level setting on the bundled HCP
Schaefer-100 cohort with the myelin and FC-gradient maps:

- train: group ``train706`` (706 participants; group SC, FC and FCD of cubnm's release);
- validation: the two bundled individuals 100206 and 100307, four 1200-frame runs, with their
  own SC. They overlap neither group's participant list as shipped: the groups are
  precomputed aggregates whose subject lists are not part of the bundle, so this is the only
  held-out data available; it is a 2-subject target (noisier than a group) -- documented
  rather than hidden;
- test: group ``test303`` (303 participants).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from nmmfit import datasets
from nmmfit.data.sc import DEFAULT_SC_NORMALISATION
from nmmfit.data.target import Target
from nmmfit.fit.cmaes import CMAESConfig
from nmmfit.fit.warm_start import INITS
from nmmfit.sim import SimConfig

__all__ = ["Preset", "PRESETS", "get_preset", "sim_config_for", "default_targets"]


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
        name="paper", init="linear_fc", init_iter=240,
        note="DELSSOME group level: lambda 100, mu 10, sigma0 0.2, 1/loss weights, 100 epochs, "
             "3 duplicates at dt 0.006 s, full-length runs (the target's), 144 s burn-in, 5000 "
             "warm-up steps; validation 3 duplicates at dt 0.006 s; test: best validated "
             "candidate, 1000 duplicates at dt 0.0005 s in groups of 10 (Zhang 2024). Unlike "
             "DELSSOME, CMA-ES starts from the linearised-FC optimum found by a start search "
             "run to convergence (init='linear_fc', init_iter=240; both chosen by validation: "
             "docs/fit_quality.md)."),
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
