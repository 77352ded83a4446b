"""What every pFIC engine shares: the run settings, the batch layout, and the result.

Time line of one simulation (all engines)::

    warm-up   : ``warmup_steps`` Euler steps of the neural model only (no BOLD), discarded
    burn-in   : ``burn_in_s`` seconds with the neural and Balloon-Windkessel models, discarded
    recording : ``n_frames`` BOLD frames, one every ``tr`` seconds (sampled at the end of each TR)

Time averages of r_E, S_E and S_I are taken over burn-in + recording (the "main loop"
of Zhang 2024 and DELSSOME), not over the warm-up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from nmmfit._parallel import default_threads
from nmmfit._validate import as_array, check_sc
from nmmfit.models import fic
from nmmfit.models.balloon import DEFAULT_BALLOON, BalloonConstants


@dataclass(frozen=True)
class SimConfig:
    """Integration settings (seconds).

    Defaults are the papers': dt 0.006 s for the search (0.0005 s for the test), 14.4 min
    recorded after 2.4 min of burn-in, TR 0.72 s, 5000 warm-up steps.
    """

    dt: float = 0.006
    tr: float = 0.72
    duration_s: float = 864.0
    burn_in_s: float = 144.0
    warmup_steps: int = 5000
    rate_gate: tuple[float, float] | None = fic.RATE_GATE_HZ
    constants: fic.FICConstants = field(default_factory=lambda: fic.DEFAULT_CONSTANTS)
    balloon: BalloonConstants = field(default_factory=lambda: DEFAULT_BALLOON)

    def __post_init__(self) -> None:
        if self.dt <= 0 or self.tr <= 0:
            raise ValueError(f"dt and tr must be positive, got dt={self.dt}, tr={self.tr}")
        ratio = self.tr / self.dt
        if abs(ratio - round(ratio)) > 1e-6 * ratio:
            raise ValueError(f"tr={self.tr} s must be an integer multiple of dt={self.dt} s")
        for name in ("duration_s", "burn_in_s"):
            val = getattr(self, name)
            k = val / self.tr
            if val < 0 or abs(k - round(k)) > 1e-6 * max(k, 1):
                raise ValueError(
                    f"{name}={val} s must be a non-negative multiple of tr={self.tr} s"
                )
        if self.n_frames < 1:
            raise ValueError(f"duration_s={self.duration_s} gives no BOLD frame at tr={self.tr}")

    @classmethod
    def for_tr(cls, tr: float, dt: float = 0.006, duration_s: float = 864.0,
               burn_in_s: float = 144.0, **kwargs) -> SimConfig:
        """A config for a given TR: dt is lowered to TR / ceil(TR / dt) so that a TR is a whole
        number of steps, and the durations are rounded to whole TRs (at least one frame).

        E.g. TR = 2.0 s with dt = 0.006 s gives dt = 2.0 / 334 = 0.005988 s.
        """
        if tr <= 0 or dt <= 0:
            raise ValueError(f"tr and dt must be positive, got tr={tr}, dt={dt}")
        k = int(np.ceil(tr / dt - 1e-9))
        n_rec = max(1, int(round(duration_s / tr)))
        n_burn = max(0, int(round(burn_in_s / tr)))
        return cls(dt=tr / k, tr=tr, duration_s=n_rec * tr, burn_in_s=n_burn * tr, **kwargs)

    @property
    def steps_per_frame(self) -> int:
        """Euler steps per TR."""
        return int(round(self.tr / self.dt))

    @property
    def n_frames(self) -> int:
        """Recorded BOLD frames."""
        return int(round(self.duration_s / self.tr))

    @property
    def n_burn_frames(self) -> int:
        """TRs of burn-in (simulated with BOLD, discarded)."""
        return int(round(self.burn_in_s / self.tr))

    @property
    def n_steps(self) -> int:
        """Euler steps after the warm-up."""
        return (self.n_frames + self.n_burn_frames) * self.steps_per_frame

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["constants"] = self.constants.as_dict()
        d["balloon"] = self.balloon.as_dict()
        return d


#: Preset for CMA-ES search (dt = 0.006 s) and for the test (dt = 0.0005 s).
SEARCH = SimConfig()
TEST = SimConfig(dt=0.0005)


#: the physical range of each pFIC parameter: finite and >= 0 (wEE, wEI and G weight
#: excitatory inputs, so a negative value has no meaning and gives a negative FIC weight wIE;
#: sigma = 0 is the noise-free mode)
_PARAM_RULES = {"wEE": "a recurrent E->E weight", "wEI": "an E->I weight",
                "G": "the global coupling", "sigma": "a noise amplitude in nA; 0 = noise-free"}


def _check_param(name: str, arr: np.ndarray) -> None:
    """ValueError naming ``name``, its first bad value, that value's index and the shape when
    ``arr`` holds NaN, inf or a negative value."""
    bad = ~np.isfinite(arr)
    what = "non-finite"
    if not bad.any():
        bad = arr < 0
        what = "negative"
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        spec = fic.PARAM_BY_NAME[name]
        raise ValueError(
            f"{name} = {float(arr[first]):g} at index {first} of shape {arr.shape} "
            f"({int(bad.sum())} {what} value(s)): {name} must be finite and >= 0 "
            f"({_PARAM_RULES[name]}; search range [{spec.lower:g}, {spec.upper:g}])")


@dataclass
class FICBatch:
    """A batch of pFIC parameter sets, broadcast to full shape.

    Attributes
    ----------
    wEE, wEI, sigma : [B, N].
    G : [B].
    """

    wEE: np.ndarray
    wEI: np.ndarray
    G: np.ndarray
    sigma: np.ndarray

    @classmethod
    def from_values(cls, wEE, wEI, G, sigma, n_regions: int) -> FICBatch:
        """Broadcast scalars, [N] or [B, N] regional values and scalar or [B] G to a batch."""
        arrs = {}
        for name, val in (("wEE", wEE), ("wEI", wEI), ("sigma", sigma)):
            a = as_array(val, name, ndim=(0, 1, 2))
            if a.ndim == 0:
                a = np.full((1, n_regions), float(a))
            elif a.ndim == 1:
                if a.shape[0] != n_regions:
                    raise ValueError(
                        f"{name} has shape {a.shape}, but SC has {n_regions} regions"
                    )
                a = a[None, :]
            elif a.shape[1] != n_regions:
                raise ValueError(f"{name} has shape {a.shape}, but SC has {n_regions} regions")
            arrs[name] = a
        g = np.atleast_1d(as_array(G, "G", ndim=(0, 1)))
        b = max(arrs["wEE"].shape[0], arrs["wEI"].shape[0], arrs["sigma"].shape[0], g.shape[0])
        out = {}
        for name, a in arrs.items():
            if a.shape[0] not in (1, b):
                raise ValueError(f"{name} has shape {a.shape}; batch size {b} expected")
            out[name] = np.ascontiguousarray(np.broadcast_to(a, (b, n_regions)), dtype=np.float64)
        if g.shape[0] not in (1, b):
            raise ValueError(f"G has shape {g.shape}; batch size {b} expected")
        out["G"] = np.ascontiguousarray(np.broadcast_to(g, (b,)), dtype=np.float64)
        for name in ("wEE", "wEI", "G", "sigma"):
            _check_param(name, out[name])
        return cls(**out)

    @property
    def size(self) -> int:
        """Number of parameter sets B."""
        return self.G.shape[0]


def lane_keys(seed: int, n_sets: int, n_dup: int) -> np.ndarray:
    """One 64-bit noise key per (parameter set, duplicate), [B, D] uint64.

    Derived from ``numpy.random.SeedSequence(seed)`` so that simulation (b, d) gets the same
    noise whatever the batch it is run in.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    ss = np.random.SeedSequence(int(seed))
    state = ss.generate_state(2 * n_sets * n_dup + 2, dtype=np.uint64)
    return state[2:2 + n_sets * n_dup].reshape(n_sets, n_dup).copy()


def prepare(sc, batch: FICBatch, config: SimConfig):
    """Check inputs and solve the FIC fixed point. Returns (sc, fixed_point)."""
    sc = check_sc(sc, "sc")
    if sc.shape[0] != batch.wEE.shape[1]:
        raise ValueError(
            f"sc has shape {sc.shape} but the parameters have {batch.wEE.shape[1]} regions"
        )
    fp = fic.solve_wie(batch.wEE, batch.wEI, batch.G, sc, config.constants)
    return np.ascontiguousarray(sc, dtype=np.float64), fp


__all__ = ["SimConfig", "SEARCH", "TEST", "FICBatch", "lane_keys", "prepare",
           "default_threads"]
