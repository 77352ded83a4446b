"""Jansen-Rit (JR) neural mass column (Jansen & Rit 1995), the one definition of the model.

Units: time in s, potentials in mV, rates in s^-1 (The Virtual Brain's ``JansenRit`` uses ms
and ms^-1; :func:`from_tvb` converts). States y0..y2 are post-synaptic potentials (mV) and
y3..y5 their derivatives (mV/s)::

    S(v)  = v_max / (1 + exp(r (v0 - v)))                                        [s^-1]
    y0' = y3,  y3' = A_e b_e (I_y(t) + S(y1 - y2))               - 2 b_e y3 - b_e^2 y0
    y1' = y4,  y4' = A_e b_e (p(t) + I_p(t) + a2 C S(a1 C y0))   - 2 b_e y4 - b_e^2 y1
    y2' = y5,  y5' = A_i b_i (I_i(t) + a4 C S(a3 C y0))          - 2 b_i y5 - b_i^2 y2
    output (EEG source) = y1 - y2                                                [mV]

- y0 is the pyramidal output PSP that drives both interneuron populations; y1 is the
  excitatory PSP and y2 the inhibitory PSP on the pyramidal cells.
- p(t) = mu + sigma * xi_n is the background drive (mean ``mu``, noise ``sigma``; xi_n a standard
  normal held for one output sample).
- I_p(t) is the stimulus to the pyramidal population (it adds to the background drive) and
  I_i(t) the stimulus to the inhibitory interneurons (it adds to their firing rate, i.e. it
  recruits them directly: feed-forward inhibition). Both are boxcar pulse trains (see
  :class:`Stimulus`). I_y(t) is zero except in the paper-v1 routing
  (:data:`PAPER_V1_STIMULUS`). With I_p = I_i = 0 and mu constant the equations are exactly TVB's
  ``JansenRit`` with no coupling (checked against tvb-library in ``tests/test_jansen_rit.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from nmmfit._validate import as_array
from nmmfit.models.spec import Param

#: The 8 inferred parameters (Tilwani & O'Reilly, Table 1, consistent units) and C (optional 9th).
PARAMS: tuple[Param, ...] = (
    Param("A_e", 3.25, 2.6, 9.75, "mV", False, "max excitatory PSP amplitude (TVB A)"),
    Param("A_i", 22.0, 17.6, 110.0, "mV", False, "max inhibitory PSP amplitude (TVB B)"),
    Param("b_e", 100.0, 50.0, 150.0, "1/s", False, "excitatory synaptic rate constant (TVB a)"),
    Param("b_i", 50.0, 25.0, 75.0, "1/s", False, "inhibitory synaptic rate constant (TVB b)"),
    Param("a1", 1.0, 0.5, 1.5, "", False, "pyr -> exc. interneurons, fraction of C"),
    Param("a2", 0.8, 0.4, 1.2, "", False, "exc. interneurons -> pyr, fraction of C"),
    Param("a3", 0.25, 0.125, 0.375, "", False, "pyr -> inh. interneurons, fraction of C"),
    Param("a4", 0.25, 0.125, 0.375, "", False, "inh. interneurons -> pyr, fraction of C"),
    Param("C", 135.0, 65.0, 1350.0, "", False, "average number of synapses (TVB J)"),
)
PARAM_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMS)
INFERRED: tuple[str, ...] = PARAM_NAMES[:8]
PARAM_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}
N_STATE = 6


def defaults() -> np.ndarray:
    """JR typical values (Jansen & Rit 1995) of all 9 parameters, shape [9]."""
    return np.array([p.default for p in PARAMS])


def midpoints() -> np.ndarray:
    """Mid-range values of all 9 parameters, shape [9]."""
    return np.array([(p.lower + p.upper) / 2 for p in PARAMS])


def bounds(names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds (the spec's ranges, in the parameters' units) of the parameters
    ``names`` (default all 9, in :data:`PARAM_NAMES` order), each shape [len(names)].

    Raises ``KeyError`` for an unknown name.
    """
    ps = PARAMS if names is None else [PARAM_BY_NAME[n] for n in names]
    return np.array([p.lower for p in ps]), np.array([p.upper for p in ps])


@dataclass(frozen=True)
class JRConstants:
    """Fixed sigmoid constants and the background drive.

    v_max : sigmoid maximum, s^-1 (= 2 e0 = TVB 2 nu_max).
    v0 : potential at half-maximal firing, mV (JR 1995: 6; TVB default 5.52).
    r : sigmoid slope, mV^-1.
    mu : mean background drive p(t), s^-1. The default, 90 s^-1, keeps the column at its
        stable low-activity fixed point at the JR typical values (evoked, damped responses; no
        ongoing alpha: that fixed point vanishes near mu = 112 s^-1 for v0 = 6, and the
        column then settles on the alpha limit cycle; see docs/jansen_rit.md).
    sigma : standard deviation of the background noise, s^-1, drawn afresh for every output
        sample and held over it (band-limited white noise; any sub-step dt converges). The
        default, 20 s^-1, gives pre-stimulus fluctuations of ~0.13 mV in y1 - y2 against
        ERPs of ~10 mV peak to peak.
    """

    v_max: float = 5.0
    v0: float = 6.0
    r: float = 0.56
    mu: float = 90.0
    sigma: float = 20.0

    def __post_init__(self) -> None:
        for name in ("v_max", "r"):
            if not getattr(self, name) > 0:
                raise ValueError(f"JRConstants.{name} must be > 0, got {getattr(self, name)}")
        if not self.sigma >= 0:
            raise ValueError(f"JRConstants.sigma must be >= 0, got {self.sigma}")

    def as_dict(self) -> dict[str, float]:
        """Plain dict, for storing with results."""
        return asdict(self)


DEFAULT_CONSTANTS = JRConstants()


@dataclass(frozen=True)
class Stimulus:
    """Pulse train of the event-related experiment (paper defaults).

    ``n_pulses`` boxcars of ``width_s`` seconds, one every ``isi_s`` seconds, the first at
    ``t_first_s``. Amplitudes in s^-1: ``amp_p`` for I_p, ``amp_i`` for I_i (the paper's 60 and
    60 * 0.56 = 33.6). ``amp_y`` is a third input, I_y, added to the firing rate that drives the
    pyramidal cells' own PSP (the y3 equation); it is 0 here and only the paper-v1 routing uses
    it (:data:`PAPER_V1_STIMULUS`). Onsets and widths are rounded to whole output samples.
    """

    n_pulses: int = 60
    isi_s: float = 1.0
    width_s: float = 0.05
    t_first_s: float = 1.0
    amp_p: float = 60.0
    amp_i: float = 33.6
    amp_y: float = 0.0

    def __post_init__(self) -> None:
        if self.n_pulses < 1:
            raise ValueError(f"Stimulus.n_pulses must be >= 1, got {self.n_pulses}")
        for name in ("isi_s", "width_s", "t_first_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Stimulus.{name} must be > 0, got {getattr(self, name)}")
        if self.width_s >= self.isi_s:
            raise ValueError(f"Stimulus.width_s={self.width_s} must be < isi_s={self.isi_s}")

    def onsets(self, sfreq: float) -> np.ndarray:
        """Onset sample indices, shape [n_pulses] (int64)."""
        t = self.t_first_s + self.isi_s * np.arange(self.n_pulses)
        return np.round(t * sfreq).astype(np.int64)

    def width_samples(self, sfreq: float) -> int:
        """Pulse width in output samples (at least 1)."""
        return max(1, int(round(self.width_s * sfreq)))

    def pulses(self, sfreq: float, n_out: int) -> np.ndarray:
        """The unit boxcar train per output sample (1 during a pulse), shape [n_out]."""
        on = np.zeros(n_out)
        w = self.width_samples(sfreq)
        for e in self.onsets(sfreq):
            on[e:min(e + w, n_out)] = 1.0
        return on

    def waveforms(self, sfreq: float, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        """I_p and I_i per output sample (held over [n, n+1) / sfreq), each shape [n_out], s^-1."""
        on = self.pulses(sfreq, n_out)
        return self.amp_p * on, self.amp_i * on

    def as_dict(self) -> dict[str, float]:
        """Plain dict, for storing with results."""
        return asdict(self)


DEFAULT_STIMULUS = Stimulus()

#: The paper's v1 code routing (Tilwani & O'Reilly, the code released with v1 of the preprint;
#: ``docs/jansen_rit.md``): I_p (60 s^-1) drives both interneuron PSPs and I_i (33.6 s^-1)
#: the pyramidal cells' own PSP. In this module's terms:
#: I_p = 60 into y4, I_i = 60 into y5, I_y = 33.6 into y3.
PAPER_V1_STIMULUS = Stimulus(amp_p=60.0, amp_i=60.0, amp_y=33.6)

#: The paper's v1 code had no background drive (p = 0.1 N(0, 1), drawn once): the column sits
#: at its low-activity fixed point. sigma 0.1 keeps the same tiny jitter (fresh per run here).
PAPER_V1_CONSTANTS = JRConstants(mu=0.0, sigma=0.1)


def as_params(theta, name: str = "theta", check: bool = True) -> np.ndarray:
    """Parameter sets as a float64 array of shape [B, 9] (order of :data:`PARAM_NAMES`).

    ``theta`` may be [9], [8] (C = 135 appended), [B, 9], [B, 8], or a dict of names to scalars
    or [B] arrays (missing names take their JR typical values). With ``check``, every value
    must lie inside its range; otherwise ``ValueError`` names the parameter and the shape.
    """
    if isinstance(theta, dict):
        unknown = set(theta) - set(PARAM_NAMES)
        if unknown:
            raise ValueError(f"{name}: unknown parameter names {sorted(unknown)}; "
                             f"expected a subset of {list(PARAM_NAMES)}")
        cols = [np.atleast_1d(np.asarray(theta.get(p.name, p.default), dtype=float))
                for p in PARAMS]
        n = max(c.shape[0] for c in cols)
        for p, c in zip(PARAMS, cols, strict=True):
            if c.ndim != 1 or c.shape[0] not in (1, n):
                raise ValueError(f"{name}['{p.name}'] has shape {c.shape}; expected () or ({n},)")
        arr = np.stack([np.broadcast_to(c, (n,)) for c in cols], axis=1)
    else:
        arr = as_array(theta, name, ndim=(1, 2))
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.shape[1] == 8:
            arr = np.concatenate([arr, np.full((arr.shape[0], 1), PARAM_BY_NAME["C"].default)],
                                 axis=1)
        elif arr.shape[1] != 9:
            raise ValueError(f"{name} has shape {arr.shape}; expected [B, 8] "
                             f"({', '.join(INFERRED)}) or [B, 9] (+ C)")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if check:
        check_params(arr, name)
    return arr


def check_params(theta: np.ndarray, name: str = "theta") -> None:
    """Raise ``ValueError`` if any column of a [B, 9] array leaves its parameter's range."""
    for j, p in enumerate(PARAMS):
        p.check(theta[:, j], where=f" ({name}[:, {j}] of shape {theta.shape})")


def sigmoid(v, v_max: float, v0: float, r: float):
    """Population firing rate S(v) = v_max / (1 + exp(r (v0 - v))), s^-1; any array shape."""
    return v_max / (1.0 + np.exp(r * (v0 - np.asarray(v))))


def dfun(y: np.ndarray, theta: np.ndarray, p, i_p, i_i,
         consts: JRConstants = DEFAULT_CONSTANTS, i_y=0.0) -> np.ndarray:
    """Right-hand side of the JR equations (reference numpy form).

    y : [6, B] states (mV, mV/s); theta : [B, 9]; p, i_p, i_i, i_y : scalars or [B] (s^-1);
    i_y adds to S(y1 - y2) in the y3 equation (see :class:`Stimulus`). Returns dy/dt, [6, B].
    """
    a_e, a_i, b_e, b_i, c1, c2, c3, c4, c = (theta[:, j] for j in range(9))
    vm, v0, r = consts.v_max, consts.v0, consts.r
    y0, y1, y2, y3, y4, y5 = y
    dy = np.empty_like(y)
    dy[0] = y3
    dy[1] = y4
    dy[2] = y5
    dy[3] = a_e * b_e * (i_y + sigmoid(y1 - y2, vm, v0, r)) - 2 * b_e * y3 - b_e**2 * y0
    dy[4] = (a_e * b_e * (p + i_p + c2 * c * sigmoid(c1 * c * y0, vm, v0, r))
             - 2 * b_e * y4 - b_e**2 * y1)
    dy[5] = a_i * b_i * (i_i + c4 * c * sigmoid(c3 * c * y0, vm, v0, r)) - 2 * b_i * y5 \
        - b_i**2 * y2
    return dy


# --- The Virtual Brain conversion -----------------------------------------------------------

#: TVB JansenRit defaults (tvb-library 2.10), in TVB's units (ms, ms^-1, mV).
TVB_DEFAULTS: dict[str, float] = {
    "A": 3.25, "B": 22.0, "a": 0.1, "b": 0.05, "v0": 5.52, "nu_max": 0.0025, "r": 0.56,
    "J": 135.0, "a_1": 1.0, "a_2": 0.8, "a_3": 0.25, "a_4": 0.25, "mu": 0.22,
}


def from_tvb(tvb: dict[str, float]) -> tuple[np.ndarray, JRConstants]:
    """TVB ``JansenRit`` parameters (ms units) -> (theta [9] in s units, noise-free constants)."""
    t = {**TVB_DEFAULTS, **tvb}
    theta = np.array([t["A"], t["B"], t["a"] * 1e3, t["b"] * 1e3, t["a_1"], t["a_2"], t["a_3"],
                      t["a_4"], t["J"]])
    consts = JRConstants(v_max=2 * t["nu_max"] * 1e3, v0=t["v0"], r=t["r"], mu=t["mu"] * 1e3,
                         sigma=0.0)
    return theta, consts


def state_from_tvb(y_tvb) -> np.ndarray:
    """TVB state(s) [..., 6] (mV, mV/ms) -> ours (mV, mV/s)."""
    y = np.array(y_tvb, dtype=float)
    y[..., 3:] *= 1e3
    return y
