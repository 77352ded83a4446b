"""Event-related EEG from Jansen-Rit columns: simulation -> lead field -> noise -> evoked.

The chain, per parameter set (all batched)::

    y1 - y2 (mV, 600.615 Hz, 61.0 s)  --epoch, average, baseline-->  source ERP [n_times] (mV)
    source ERP * k (A*m per mV) * g_ref (V/(A*m), average reference)  -> clean evoked [60, 722]
    + exact draw of the averaged noise at level alpha                  -> noisy evoked [60, 722]

With a fixed-orientation source the forward model is rank one and linear, so projecting the
averaged source waveform equals averaging the projected raw (tested against MNE's Epochs).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from numba import njit, prange

from nmmfit.eeg.epochs import EpochDesign, to_evoked
from nmmfit.eeg.leadfield import (
    SFREQ,
    LeadField,
    average_reference,
    check_channels,
    sphere_leadfield,
)
from nmmfit.eeg.noise import (
    EvokedNoiseSampler,
    NoiseModel,
    check_alpha,
    make_noise_model,
    reference_matrix,
    snr_db_expected,
)
from nmmfit.models import jansen_rit as jr
from nmmfit.sim import jr_numba
from nmmfit.sim.jr_numba import DIVERGE_MV

ENGINES = ("numba", "torch")


def _engine(engine: str):
    """The integrator module of ``engine`` (:data:`ENGINES`)."""
    if engine == "numba":
        return jr_numba
    # deferred: jr_torch imports torch, needed only by this engine
    from nmmfit.sim import jr_torch

    return jr_torch


@dataclass(frozen=True)
class ERPConfig:
    """Settings of one event-related experiment.

    method, n_sub : integration scheme and sub-steps per output sample (dt = 1/(sfreq n_sub)).
        Default RK4 with dt = 1/sfreq = 1.665 ms: the convergence check (docs/jansen_rit.md,
        ``benchmarks/jansen_rit.py``) gives a max ERP error of ~2e-4 of the peak-to-peak
        over random parameter sets, against RK4 at dt/32.
    source_scale : dipole moment per mV of y1 - y2, nA*m/mV (paper: 1 nA*m/mV per vertex of a
        ~10-vertex patch; here one dipole with 10).
    noise_sd_uv, sensor_fraction : noise covariance calibration (:mod:`nmmfit.eeg.noise`).
    a1_unscaled : reproduce the paper v1 code's defect C1 = a1 (not a1 C), which cuts the
        pyramidal -> excitatory-interneuron loop. Off by default; :meth:`paper_v1` sets it.
    """

    sfreq: float = SFREQ
    stimulus: jr.Stimulus = field(default_factory=lambda: jr.DEFAULT_STIMULUS)
    constants: jr.JRConstants = field(default_factory=lambda: jr.DEFAULT_CONSTANTS)
    method: str = "rk4"
    n_sub: int = 1
    tmin: float = -0.2
    tmax: float = 1.0
    source_scale: float = 10.0
    noise_sd_uv: float = 5.0
    sensor_fraction: float = 0.1
    chunk: int = 512
    a1_unscaled: bool = False

    @classmethod
    def paper_v1(cls, **changes) -> ERPConfig:
        """The simulator of the paper's v1 code, for like-for-like comparison (flagged mode).

        Its stimulus routing (:data:`~nmmfit.models.jansen_rit.PAPER_V1_STIMULUS`), no
        background drive (:data:`~nmmfit.models.jansen_rit.PAPER_V1_CONSTANTS`), forward Euler
        at one step per sample, and the a1 defect. Not its b_e range typo (5-150 s^-1), its
        untruncated draws or its compounding noise (docs/jansen_rit.md, "paper v1 mode").
        """
        base = dict(stimulus=jr.PAPER_V1_STIMULUS, constants=jr.PAPER_V1_CONSTANTS,
                    method="euler", n_sub=1, a1_unscaled=True)
        return cls(**{**base, **changes})

    def __post_init__(self) -> None:
        if self.method not in ("euler", "heun", "rk4"):
            raise ValueError(f"method must be 'euler', 'heun' or 'rk4', got {self.method!r}")
        if self.n_sub < 1 or self.sfreq <= 0 or self.source_scale <= 0 or self.chunk < 1:
            raise ValueError(f"n_sub ({self.n_sub}), sfreq ({self.sfreq}), source_scale "
                             f"({self.source_scale}) and chunk ({self.chunk}) must be positive")

    @property
    def dt(self) -> float:
        """Integration step, s."""
        return 1.0 / (self.sfreq * self.n_sub)

    @property
    def design(self) -> EpochDesign:
        """The epoch layout implied by the stimulus."""
        return EpochDesign(onsets=self.stimulus.onsets(self.sfreq), sfreq=self.sfreq,
                           tmin=self.tmin, tmax=self.tmax)

    @property
    def n_out(self) -> int:
        """Output samples simulated (sample 0 = t 0, the zero initial state)."""
        return self.design.n_raw

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["dt"] = self.dt
        d["n_out"] = self.n_out
        return d


def as_seedseq(seed) -> np.random.SeedSequence:
    """An int, a sequence of ints or a SeedSequence -> SeedSequence."""
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)


def _keys(seed, n: int) -> np.ndarray:
    return as_seedseq(seed).generate_state(n, dtype=np.uint64)


def simulate_source(theta, config: ERPConfig = ERPConfig(), seed=0, keys=None,
                    engine: str = "numba", check: bool = True,
                    states: bool = False, y_init=None) -> tuple[np.ndarray, np.ndarray]:
    """Simulate B columns; returns (y1 - y2 [B, n_out] mV, diverged [B] bool).

    theta : anything :func:`nmmfit.models.jansen_rit.as_params` takes. ``keys`` [B] uint64
    (background-noise streams) default to ``SeedSequence(seed)``. With ``states``, the
    second item is instead all six states [B, n_out, 6] (no divergence flag).
    """
    th = jr.as_params(theta, check=check)
    n = th.shape[0]
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    k = _keys(seed, n) if keys is None else np.asarray(keys, dtype=np.uint64)
    if k.shape != (n,):
        raise ValueError(f"keys has shape {k.shape}; expected ({n},) for {n} parameter sets")
    y0 = np.zeros((n, jr.N_STATE)) if y_init is None else np.asarray(y_init, dtype=float)
    if y0.shape != (n, jr.N_STATE):
        raise ValueError(f"y_init has shape {y0.shape}; expected ({n}, {jr.N_STATE})")
    if config.a1_unscaled:  # the kernels multiply a1 by C: pre-divide so that C1 = a1
        th = th.copy()
        th[:, 4] /= th[:, 8]
    c = config.constants
    consts = np.array([c.v_max, c.v0, c.r, c.mu, c.sigma])
    i_p, i_i = config.stimulus.waveforms(config.sfreq, config.n_out)
    i_y = config.stimulus.amp_y * config.stimulus.pulses(config.sfreq, config.n_out)
    out, extra = _engine(engine).run(th, i_p, i_i, k, y0, consts, config.dt, config.n_sub,
                                     config.method, states=states, i_y=i_y)
    if states:
        return out, extra
    bad = ~np.isfinite(out).all(axis=1) | (np.abs(out).max(axis=1, initial=0.0) > DIVERGE_MV)
    return out, bad


def simulate_states(theta, constants: jr.JRConstants, y_init, dt: float, n_steps: int,
                    method: str = "rk4", engine: str = "numba", i_p=None, i_i=None,
                    seed=0) -> np.ndarray:
    """All six states [B, n_steps + 1, 6] from ``y_init`` [B, 6], one step of ``dt`` per sample.

    No stimulus unless ``i_p``/``i_i`` [n_steps + 1] are given (used for the TVB oracle check).
    """
    th = jr.as_params(theta, check=False)
    y0 = np.asarray(y_init, dtype=float).reshape(th.shape[0], jr.N_STATE)
    n = int(n_steps) + 1
    ip = np.zeros(n) if i_p is None else np.asarray(i_p, dtype=float)
    ii = np.zeros(n) if i_i is None else np.asarray(i_i, dtype=float)
    if ip.shape != (n,) or ii.shape != (n,):
        raise ValueError(f"i_p {ip.shape} and i_i {ii.shape} must have shape ({n},)")
    c = constants
    consts = np.array([c.v_max, c.v0, c.r, c.mu, c.sigma])
    return _engine(engine).run(th, ip, ii, _keys(seed, th.shape[0]), y0, consts, dt, 1, method,
                   states=True)[1]


@njit(parallel=True, cache=True)
def _epoch_kernel(x, onsets, off0, n_t, bl_stop, lo, hi, avg, power):
    """Per lane (parallel): average of the epochs, baseline-corrected over samples
    [0, bl_stop), and mean(x^2) over raw samples [lo, hi)."""
    n_l = x.shape[0]
    n_ev = onsets.shape[0]
    for k in prange(n_l):
        for t in range(n_t):
            avg[k, t] = 0.0
        for e in range(n_ev):
            s0 = onsets[e] + off0
            for t in range(n_t):
                avg[k, t] += x[k, s0 + t]
        m = 0.0
        for t in range(n_t):
            avg[k, t] /= n_ev
        for t in range(bl_stop):
            m += avg[k, t]
        m /= bl_stop
        for t in range(n_t):
            avg[k, t] -= m
        acc = 0.0
        for t in range(lo, hi):
            acc += x[k, t] * x[k, t]
        power[k] = acc / (hi - lo)


@dataclass
class CleanERP:
    """Noise-free results for B parameter sets.

    source : [B, n_times] averaged, baseline-corrected y1 - y2 (mV).
    raw_power : [B] mean(clean^2) of the continuous, unreferenced sensor signal over the
        epoch span (V^2), for the Algorithm 2 SNR.
    diverged : [B] bool. keys : [B] uint64 background-noise streams.
    """

    source: np.ndarray
    raw_power: np.ndarray
    diverged: np.ndarray
    keys: np.ndarray


class ERPSimulator:
    """Batched event-related EEG: JR engine + lead field + noise + epochs.

    >>> sim = ERPSimulator()                          # doctest: +SKIP
    >>> clean = sim.clean(theta, seed=1)              # source ERPs, shared across alpha
    >>> eeg = sim.clean_eeg(clean)                    # [B, 60, 722] V, noise-free
    >>> noisy, snr, snr_ev = sim.noisy_eeg(clean, alpha=0.42, seed=2)
    """

    def __init__(self, config: ERPConfig = ERPConfig(), leadfield: LeadField | None = None,
                 engine: str = "numba", channels=None):
        self.config = config
        self.engine = engine
        self.leadfield = leadfield if leadfield is not None else sphere_leadfield()
        self.design = config.design
        self.noise_model: NoiseModel = make_noise_model(self.leadfield, config.noise_sd_uv,
                                                        config.sensor_fraction)
        if channels is not None:
            check_channels(self.leadfield, channels)
        self.gain_ref = average_reference(self.leadfield.gain)
        self.sampler = EvokedNoiseSampler(self.design)

    @property
    def ch_names(self) -> tuple[str, ...]:
        """Channel names."""
        return self.leadfield.ch_names

    def with_config(self, **changes) -> ERPSimulator:
        """A copy with some :class:`ERPConfig` fields changed (same lead field)."""
        return ERPSimulator(replace(self.config, **changes), self.leadfield, self.engine)

    def clean(self, theta, seed=0, keys=None, progress=None) -> CleanERP:
        """Simulate and epoch B columns in chunks (memory stays ~chunk x n_out doubles)."""
        th = jr.as_params(theta)
        n = th.shape[0]
        k = _keys(seed, n) if keys is None else np.asarray(keys, dtype=np.uint64)
        d = self.design
        bl = np.flatnonzero(d.baseline_mask)
        if bl.size == 0 or bl[0] != 0 or bl[-1] != bl.size - 1:
            raise ValueError("the baseline window must start at the first epoch sample")
        onsets = np.asarray(d.onsets, dtype=np.int64)
        lo, hi = d.span
        g2 = float(np.mean(self.leadfield.gain**2))
        scale = self.config.source_scale * 1e-9  # A*m per mV
        src = np.empty((n, d.n_times))
        power = np.empty(n)
        bad = np.empty(n, dtype=bool)
        for s in range(0, n, self.config.chunk):
            e = min(n, s + self.config.chunk)
            x, b = simulate_source(th[s:e], self.config, keys=k[s:e], engine=self.engine,
                                   check=False)
            pw = np.empty(e - s)
            _epoch_kernel(x, onsets, int(d.offsets[0]), d.n_times, bl.size, lo, hi,
                          src[s:e], pw)
            power[s:e] = g2 * scale**2 * pw
            bad[s:e] = b
            if progress is not None:
                progress(e - s)
        src[bad] = np.nan
        power[bad] = np.nan
        return CleanERP(source=src, raw_power=power, diverged=bad, keys=k)

    def clean_eeg(self, clean: CleanERP | np.ndarray, dtype=np.float64) -> np.ndarray:
        """Project source ERPs [B, n_times] (mV) -> clean evoked EEG [B, n_ch, n_times] (V)."""
        src = clean.source if isinstance(clean, CleanERP) else np.asarray(clean, dtype=float)
        if src.ndim != 2 or src.shape[1] != self.design.n_times:
            raise ValueError(f"source ERPs have shape {src.shape}; expected (B, "
                             f"{self.design.n_times})")
        g = ((self.config.source_scale * 1e-9) * self.gain_ref).astype(dtype)
        return g[None, :, None] * src.astype(dtype)[:, None, :]

    def noisy_eeg(self, clean: CleanERP, alpha: float, seed=0, keys=None,
                  dtype=np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noisy evoked EEG = clean projection + a fresh noise draw per simulation.

        Returns (noisy [B, n_ch, n_times] in ``dtype`` (V), SNR_dB [B] (Algorithm 2, on the
        continuous recording), evoked SNR_dB [B] = 10 log10(mean(clean evoked^2) /
        mean(noise evoked^2))). ``keys``: one uint64 noise key per simulation; default
        ``SeedSequence(seed).generate_state(B, uint64)``. Works in chunks of ``config.chunk``.
        """
        a = check_alpha(alpha)
        b = clean.source.shape[0]
        snr = snr_db_expected(clean.raw_power, self.noise_model, a)
        k = _keys(seed, b) if keys is None else np.asarray(keys, dtype=np.uint64)
        if k.shape != (b,):
            raise ValueError(f"keys has shape {k.shape}; expected ({b},)")
        out = np.empty((b, len(self.ch_names), self.design.n_times), dtype=dtype)
        snr_ev = np.full(b, np.inf)
        for s in range(0, b, self.config.chunk):
            e = min(b, s + self.config.chunk)
            eeg = self.clean_eeg(clean.source[s:e], dtype=dtype)
            if a > 0:
                noise = self.sampler.draw(self.noise_model, a, k[s:e], dtype=dtype)
                pc = np.mean(np.square(eeg, dtype=np.float64), axis=(1, 2))
                pn = np.mean(np.square(noise, dtype=np.float64), axis=(1, 2))
                snr_ev[s:e] = 10 * np.log10(pc / pn)
                eeg += noise
            out[s:e] = eeg
        return out, snr, snr_ev

    def source_filter(self) -> np.ndarray:
        """The spatial filter w [n_ch] (mV per V) that reads the source ERP out of evoked EEG.

        With one fixed-orientation source the evoked EEG is X = c g s(t) + N (c the dipole
        moment per mV, g the average-referenced gain, N the referenced noise with spatial
        covariance alpha * Sigma_ref at every sample), so the generalised-least-squares
        estimate of s is ``w @ X`` with w = Sigma_ref^+ g / (c g^T Sigma_ref^+ g): unbiased
        (``w @ clean_eeg(s) == s``) and, because the source lies along g only, a sufficient
        statistic for the parameters (no information in the 60 channels is lost). It does not
        depend on alpha.
        """
        r = reference_matrix(len(self.ch_names))
        cov = r @ self.noise_model.cov @ r.T
        g = self.gain_ref
        u = np.linalg.pinv(cov, rcond=1e-10, hermitian=True) @ g
        return u / ((self.config.source_scale * 1e-9) * float(g @ u))

    def source_noise_cov(self, alpha: float) -> np.ndarray:
        """Covariance of the sensor noise in ``source_filter() @ X`` at level alpha,
        [n_times, n_times] (mV^2): alpha * (w^T Sigma_ref w) * T, T the covariance of averaged,
        baseline-corrected white noise across epoch samples (overlapping epochs included)."""
        a = check_alpha(alpha)
        w = self.source_filter()
        r = reference_matrix(len(self.ch_names))
        var = float(w @ (r @ self.noise_model.cov @ r.T) @ w)
        return a * var * self.sampler.time_cov(baseline=True)

    def simulate(self, theta, alpha: float = 0.0, seed=0) -> dict:
        """One call: theta -> noisy evoked. Returns a dict of arrays plus timing."""
        root = as_seedseq(seed)
        s_drive, s_noise = root.spawn(2)
        t0 = time.perf_counter()
        clean = self.clean(theta, seed=s_drive)
        noisy, snr, snr_ev = self.noisy_eeg(clean, alpha, seed=s_noise)
        return {"eeg": noisy, "source": clean.source, "snr_db": snr,
                "snr_evoked_db": snr_ev, "diverged": clean.diverged,
                "wall_s": time.perf_counter() - t0}

    def to_evoked(self, data, nave: int | None = None, comment: str = ""):
        """MNE :class:`mne.EvokedArray` for one evoked array [n_ch, n_times] (V)."""
        info = self.leadfield.info(self.config.sfreq)
        return to_evoked(data, info, self.design, nave=nave, comment=comment)
