"""Functional connectivity dynamics (FCD): sliding-window FC, FCD matrices, histograms, CDFs.

Definition (DELSSOME / pFIC: Zhang et al. 2024, Zeng et al. 2026; ``docs/pfic.md``): the run
is cut into windows of
``window_frames`` frames, starting at frame 0 and every ``step_frames`` frames after it; only
complete windows are used. The FC of each window is vectorised (upper triangle, k=1, E =
N(N-1)/2 edges), the FCD matrix [W, W] is the Pearson correlation between these vectors, and
its strict upper triangle (W(W-1)/2 values) is histogrammed into ``n_bins`` equal bins on
[lo, hi]. The cumulative histogram normalised to 1 is the FCD CDF.

How it is computed (fast path: numba kernels + float32 BLAS, one worker thread per core):

1. Each run is z-scored over time (float64, time-major [T, N]; Pearson is unchanged by this).
2. ``_window_fc_kernel`` keeps running window sums (sum x_i, sum x_i^2, sum x_i x_j), adding
   the frames that enter a window and subtracting those that leave it, so one window costs
   O(E * step) rather than O(E * window). Sums are float64; window FCs are written as float32
   [W, E], each row then centred and scaled to unit norm over edges.
3. FCD = X X^T is then one float32 BLAS product per simulation (numpy calls ``syrk`` for
   ``X @ X.T``: the upper triangle only, W^2 E / 2 multiply-adds).
4. ``_triu_hist_kernel`` bins the strict upper triangle in one pass (no gather, no
   ``np.histogram``).

Simulations are dealt to ``threads`` worker threads (the kernels release the GIL); BLAS is
limited to one thread per worker during the call (``threadpoolctl``), because an OpenMP pool
and a BLAS pool spinning against each other on 2 cores were measured ~1.6x slower. The only
Python loop is over the simulations of a worker (one ~70 ms compiled + BLAS step each for
1200 frames and 100 regions); there is none over windows.

For figures, :func:`sampled_fcd_matrix` keeps one run's FCD matrix (:func:`fcd_matrix`, every
``stride``-th window when the run has more than :data:`MAX_KEPT_WINDOWS`) with the times of
its windows, as an :class:`FCDMatrix`.

One concept, the FCD; its length is the compiled fast path beside the plain reference it is
tested against.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from nmmfit._parallel import default_threads
from nmmfit._validate import as_array

__all__ = [
    "FCDSpec",
    "window_fc",
    "fcd_matrix",
    "FCDMatrix",
    "MAX_KEPT_WINDOWS",
    "window_centres",
    "sampled_fcd_matrix",
    "fcd_histogram",
    "cdf_from_counts",
    "values_to_counts",
    "values_to_cdf",
]

@dataclass(frozen=True)
class FCDSpec:
    """Definition of an FCD: windows, histogram bins and a label.

    Attributes
    ----------
    window_frames : frames per sliding window (>= 2).
    step_frames : frames between consecutive window starts (>= 1).
    n_bins : number of equal histogram bins on [lo, hi] (DELSSOME: 10,000).
    lo, hi : histogram range (Pearson r: -1, 1).
    label : free text describing where the definition comes from (ignored by ``==``).

    Windows start at frame 0, then every ``step_frames``; only complete windows are used:
    ``n_windows(T) = (T - window_frames) // step_frames + 1``.
    """

    window_frames: int
    step_frames: int
    n_bins: int = 10000
    lo: float = -1.0
    hi: float = 1.0
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for field_name in ("window_frames", "step_frames", "n_bins"):
            v = getattr(self, field_name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise TypeError(f"FCDSpec.{field_name} must be an int, got {v!r}")
            object.__setattr__(self, field_name, int(v))
        if self.window_frames < 2:
            raise ValueError(f"FCDSpec.window_frames must be >= 2, got {self.window_frames}")
        if self.step_frames < 1:
            raise ValueError(f"FCDSpec.step_frames must be >= 1, got {self.step_frames}")
        if self.n_bins < 1:
            raise ValueError(f"FCDSpec.n_bins must be >= 1, got {self.n_bins}")
        lo, hi = float(self.lo), float(self.hi)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ValueError(f"FCDSpec needs finite lo < hi, got lo={self.lo}, hi={self.hi}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @classmethod
    def from_seconds(cls, window_s: float, step_s: float, tr: float, n_bins: int = 10000,
                     label: str = "") -> FCDSpec:
        """Windows given in seconds, DELSSOME convention.

        ``window_frames = round(window_s / tr)`` (60 s at TR 0.72 s -> 83 frames) and
        ``step_frames = max(1, round(step_s / tr))``.
        """
        tr = _positive(tr, "tr")
        window_s = _positive(window_s, "window_s")
        step_s = _positive(step_s, "step_s")
        w = int(round(window_s / tr))
        if w < 2:
            raise ValueError(f"a {window_s:g} s FCD window at TR {tr:g} s is {w} frame(s); a "
                             f"window needs at least 2: is the TR in seconds (tr={tr:g})?")
        s = max(1, int(round(step_s / tr)))
        lab = label or f"window {window_s:g} s, step {step_s:g} s at TR {tr:g} s"
        return cls(window_frames=w, step_frames=s, n_bins=n_bins, label=lab)

    @classmethod
    def delssome(cls, tr: float = 0.72) -> FCDSpec:
        """DELSSOME / pFIC FCD: 60 s windows (83 frames at TR 0.72 s), step 1 TR, 10,000 bins.

        For 1200 frames this gives 1118 windows and 624,403 FCD values per run.
        """
        return cls.from_seconds(60.0, tr, tr, label=f"DELSSOME: 60 s window, step 1 TR ({tr:g} s)")

    @classmethod
    def cubnm(cls, window_s: float = 30.0, step_s: float = 5.0, tr: float = 0.72,
              n_bins: int = 10000) -> FCDSpec:
        """cuBNM's FCD definition (centred windows with ``drop_edges``), as start-at-0 windows.

        ``window_frames = 2 * int(round(window_s / (2 tr))) + 1`` (43 frames for 30 s at
        0.72 s) and ``step_frames = int(round(step_s / tr))`` (7 frames for 5 s). cuBNM centres
        windows on frames ``c = half, half + step, ...`` and drops incomplete ones, which is the
        same set of windows as starting at frame 0 with the same step.
        """
        tr = _positive(tr, "tr")
        half = int(round(_positive(window_s, "window_s") / (2 * tr)))
        step = int(round(_positive(step_s, "step_s") / tr))
        return cls(window_frames=2 * half + 1, step_frames=max(1, step), n_bins=n_bins,
                   label=f"cuBNM: window {window_s:g} s, step {step_s:g} s at TR {tr:g} s")

    def n_windows(self, n_frames: int) -> int:
        """Number of complete windows in a run of ``n_frames`` frames (0 if it is too short)."""
        n_frames = int(n_frames)
        if n_frames < self.window_frames:
            return 0
        return (n_frames - self.window_frames) // self.step_frames + 1

    def n_values(self, n_frames: int) -> int:
        """Number of FCD values (strict upper triangle) per run: W (W - 1) / 2."""
        w = self.n_windows(n_frames)
        return w * (w - 1) // 2

    def to_dict(self) -> dict:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FCDSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


def _positive(v, name: str) -> float:
    v = float(v)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive number, got {v!r}")
    return v


# --------------------------------------------------------------------------------------------
# numba kernels (serial, GIL released: parallelism comes from one worker thread per core)

#: LLVM fast-math flags: reassociation (vectorised sums) and FMA, but NaN/inf keep their
#: IEEE meaning so that a degenerate window propagates NaN.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@numba.njit(fastmath=_FASTMATH, nogil=True, cache=True, error_model="numpy")
def _window_fc_kernel(z, w, s, n_win, zscore_rows, out):  # pragma: no cover - compiled
    """Window FCs of one run by running sums.

    z : [T, N] float64, each region z-scored over the run; out : [W, E] float32.
    With ``zscore_rows`` each output row is then centred and scaled to unit norm over edges.
    """
    n_reg = z.shape[1]
    n_edge = n_reg * (n_reg - 1) // 2
    acc = np.zeros(n_edge)
    sx = np.zeros(n_reg)
    sxx = np.zeros(n_reg)
    mu = np.empty(n_reg)
    isd = np.empty(n_reg)
    inv_w = 1.0 / w
    for k in range(n_win):
        st = k * s
        if k == 0 or s >= w:
            sx[:] = 0.0
            sxx[:] = 0.0
            acc[:] = 0.0
            for t in range(st, st + w):
                row = z[t]
                for q in range(n_reg):
                    sx[q] += row[q]
                    sxx[q] += row[q] * row[q]
                p = 0
                for i in range(n_reg):
                    ri = row[i]
                    for j in range(i + 1, n_reg):
                        acc[p] += ri * row[j]
                        p += 1
        else:
            for dt in range(s):
                ro = z[st - s + dt]  # frame leaving the window
                rn = z[st - s + w + dt]  # frame entering it
                for q in range(n_reg):
                    sx[q] += rn[q] - ro[q]
                    sxx[q] += rn[q] * rn[q] - ro[q] * ro[q]
                p = 0
                for i in range(n_reg):
                    a = rn[i]
                    c = ro[i]
                    for j in range(i + 1, n_reg):
                        acc[p] += a * rn[j] - c * ro[j]
                        p += 1
        for q in range(n_reg):
            mu[q] = sx[q] * inv_w
            isd[q] = 1.0 / math.sqrt(sxx[q] * inv_w - mu[q] * mu[q])
        ob = out[k]
        p = 0
        rsum = 0.0
        for i in range(n_reg):
            mi = mu[i]
            si = isd[i]
            for j in range(i + 1, n_reg):
                v = (acc[p] * inv_w - mi * mu[j]) * si * isd[j]
                ob[p] = v
                rsum += v
                p += 1
        if zscore_rows:
            m = rsum / n_edge
            ss = 0.0
            for e in range(n_edge):
                d = ob[e] - m
                ss += d * d
            inv = 1.0 / math.sqrt(ss)
            for e in range(n_edge):
                ob[e] = (ob[e] - m) * inv
    return out


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _triu_hist_kernel(f, lo, scale, n_bins):  # pragma: no cover - compiled
    """Counts of the strict upper triangle of f [W, W] in n_bins bins; skips non-finite."""
    n = f.shape[0]
    counts = np.zeros(n_bins, np.int64)
    for r in range(n - 1):
        row = f[r]
        for c in range(r + 1, n):
            v = np.float64(row[c])
            if not math.isfinite(v):
                continue
            idx = int(math.floor((v - lo) * scale))
            if idx < 0:
                idx = 0
            elif idx >= n_bins:
                idx = n_bins - 1
            counts[idx] += 1
    return counts


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _values_hist_kernel(v, lo, scale, n_bins):  # pragma: no cover - compiled
    counts = np.zeros(n_bins, np.int64)
    for k in range(v.shape[0]):
        x = v[k]
        if not math.isfinite(x):
            continue
        idx = int(math.floor((x - lo) * scale))
        if idx < 0:
            idx = 0
        elif idx >= n_bins:
            idx = n_bins - 1
        counts[idx] += 1
    return counts


# --------------------------------------------------------------------------------------------
# helpers


def _as_batch(bold, spec: FCDSpec, name: str = "bold") -> tuple[np.ndarray, tuple[int, ...]]:
    """[..., N, T] -> ([B, N, T] array, leading shape); checks the run covers one window."""
    x = np.asarray(bold)
    if x.dtype.kind not in "fiu":
        x = as_array(x, name)
    if x.ndim < 2:
        raise ValueError(f"{name} must be [..., N, T] (regions x frames), got shape {x.shape}")
    n, t = x.shape[-2:]
    if n < 2:
        raise ValueError(f"{name} has shape {x.shape}: FCD needs at least 2 regions")
    if t < spec.window_frames:
        raise ValueError(
            f"{name} has shape {x.shape} (regions x frames): {t} frames is shorter than one "
            f"FCD window of {spec.window_frames} frames"
        )
    return x.reshape(-1, n, t), x.shape[:-2]


def _standardise_time_major(x: np.ndarray) -> np.ndarray:
    """One run [N, T] -> [T, N] float64, each region z-scored over the run (constant -> NaN)."""
    z = np.array(x.T, dtype=np.float64, order="C")
    z -= z.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z /= np.sqrt((z * z).mean(axis=0))
    return z


def _run_workers(n_sim: int, threads: int | None, job) -> None:
    """Call ``job(worker_index, sims)`` on min(threads, n_sim) threads, sims dealt round-robin.

    BLAS is limited so that workers x BLAS threads = threads (one BLAS thread per worker when
    there are at least as many simulations as cores); this avoids two thread pools spinning
    against each other and runs the window FCs of different simulations in parallel.
    """
    threads = default_threads() if threads is None else max(1, int(threads))
    n_work = max(1, min(threads, n_sim))
    blas = max(1, threads // n_work)
    parts = [range(i, n_sim, n_work) for i in range(n_work)]
    with threadpool_limits(limits=blas, user_api="blas"):
        if n_work == 1:
            job(0, parts[0])
            return
        with ThreadPoolExecutor(max_workers=n_work) as ex:
            futures = [ex.submit(job, i, part) for i, part in enumerate(parts)]
            for fut in futures:
                fut.result()


# --------------------------------------------------------------------------------------------
# public API


def window_fc(bold, spec: FCDSpec, threads: int | None = None) -> np.ndarray:
    """Sliding-window FC vectors.

    Parameters
    ----------
    bold : [..., N, T] BOLD (regions x frames).
    spec : the FCD definition (window and step in frames).
    threads : worker threads (default: the usable cores).

    Returns
    -------
    [..., W, E] float32: row k is the upper triangle (k=1, row-major) of the Pearson FC of
    frames ``[k * step, k * step + window)``; E = N (N - 1) / 2. A region that is constant
    within a window gives NaN (or inf) in that window.
    """
    x, lead = _as_batch(bold, spec)
    b, n, t = x.shape
    n_win, n_edge = spec.n_windows(t), n * (n - 1) // 2
    out = np.empty((b, n_win, n_edge), np.float32)

    def job(_w, sims):
        for k in sims:
            with np.errstate(all="ignore"):
                _window_fc_kernel(_standardise_time_major(x[k]), spec.window_frames,
                                  spec.step_frames, n_win, False, out[k])

    _run_workers(b, threads, job)
    return out.reshape(*lead, n_win, n_edge)


def fcd_matrix(bold, spec: FCDSpec, threads: int | None = None) -> np.ndarray:
    """FCD matrices: Pearson correlation between the window-FC vectors.

    Parameters
    ----------
    bold : [..., N, T] BOLD (regions x frames).
    spec : the FCD definition.
    threads : worker threads (default: the usable cores).

    Returns
    -------
    [..., W, W] float32 (absolute error ~1e-6 against a float64 computation).
    """
    x, lead = _as_batch(bold, spec)
    b, n, t = x.shape
    n_win, n_edge = spec.n_windows(t), n * (n - 1) // 2
    out = np.empty((b, n_win, n_win), np.float32)

    def job(_w, sims):
        xw = np.empty((n_win, n_edge), np.float32)
        for k in sims:
            with np.errstate(all="ignore"):
                _window_fc_kernel(_standardise_time_major(x[k]), spec.window_frames,
                                  spec.step_frames, n_win, True, xw)
            np.matmul(xw, xw.T, out=out[k])

    _run_workers(b, threads, job)
    return out.reshape(*lead, n_win, n_win)


#: Most windows per side of a kept FCD matrix (:func:`sampled_fcd_matrix`). A 1200-frame run
#: with DELSSOME's FCD (83-frame windows, step 1) has 1118 windows: its full matrix is 5.0 MB
#: of float32; every 3rd window (373, one per 2.16 s, with 60 s windows) is 0.56 MB and shows
#: the same picture.
MAX_KEPT_WINDOWS = 400


@dataclass(frozen=True, eq=False)
class FCDMatrix:
    """One run's FCD matrix as kept for figures (a fit's simulated one, a Target's empirical
    one): every ``stride``-th window of :func:`fcd_matrix`.

    Attributes
    ----------
    values : [W', W'] float32, the correlation between the FC vectors of windows
        ``0, stride, 2 stride, ...`` (W' = ceil(W / stride) of the run's W windows); the
        entries are those of :func:`fcd_matrix` (no averaging over skipped windows).
    time_s : [W'] float64, the centre of each kept window in seconds from the run's first
        frame: ``(k * step_frames + (window_frames - 1) / 2) * tr`` for window k.
    stride : windows between kept windows (1: the full matrix).
    label : which run it is (e.g. "test duplicate 3 of 20", "run bold[0][0]").
    """

    values: np.ndarray
    time_s: np.ndarray
    stride: int = 1
    label: str = ""

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=np.float32)
        t = np.asarray(self.time_s, dtype=np.float64)
        if v.ndim != 2 or v.shape[0] != v.shape[1] or t.shape != (v.shape[0],):
            raise ValueError(f"FCDMatrix needs values [W, W] and time_s [W], got shapes "
                             f"{v.shape} and {t.shape}")
        if isinstance(self.stride, bool) or int(self.stride) != self.stride or self.stride < 1:
            raise ValueError(f"FCDMatrix.stride must be a positive int, got {self.stride!r}")
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "time_s", t)
        object.__setattr__(self, "stride", int(self.stride))
        object.__setattr__(self, "label", str(self.label))

    @property
    def n_windows(self) -> int:
        """W', the number of kept windows."""
        return int(self.values.shape[0])


def window_centres(spec: FCDSpec, n_frames: int, tr: float) -> np.ndarray:
    """[W] float64 centre of each window of a run of ``n_frames`` frames, in seconds from its
    first frame (frame f at ``f * tr``): ``(k * step_frames + (window_frames - 1) / 2) * tr``."""
    tr = _positive(tr, "tr")
    k = np.arange(spec.n_windows(n_frames), dtype=np.float64)
    return (k * spec.step_frames + (spec.window_frames - 1) / 2.0) * tr


def sampled_fcd_matrix(run, spec: FCDSpec, tr: float, max_windows: int = MAX_KEPT_WINDOWS,
                       label: str = "", threads: int | None = None) -> FCDMatrix:
    """One run's FCD matrix, at most ``max_windows`` windows per side, for figures and files.

    Parameters
    ----------
    run : [N, T] BOLD of one run (regions x frames); at least one FCD window long.
    spec : the FCD definition (a Target's ``fcd_spec``).
    tr : seconds per frame (for the window times).
    max_windows : the most windows kept per side; a run with W > max_windows windows keeps
        every ``stride = ceil(W / max_windows)``-th window, starting with the first.
    label : stored as :attr:`FCDMatrix.label`.
    threads : BLAS threads (default: the usable cores).

    Returns
    -------
    :class:`FCDMatrix`: ``values`` is ``fcd_matrix(run, spec)[::stride, ::stride]`` (float32).
    """
    x = np.asarray(run)
    if x.ndim != 2:
        raise ValueError(f"run must be one [N, T] BOLD run (regions x frames), got shape "
                         f"{x.shape}")
    max_windows = int(max_windows)
    if max_windows < 1:
        raise ValueError(f"max_windows must be >= 1, got {max_windows}")
    full = fcd_matrix(x, spec, threads=threads)
    stride = max(1, -(-full.shape[0] // max_windows))
    return FCDMatrix(values=np.ascontiguousarray(full[::stride, ::stride]),
                     time_s=window_centres(spec, x.shape[1], tr)[::stride], stride=stride,
                     label=label)


def fcd_histogram(bold, spec: FCDSpec, threads: int | None = None) -> np.ndarray:
    """Histogram of the FCD values (strict upper triangle of each FCD matrix).

    Parameters
    ----------
    bold : [..., N, T] BOLD (regions x frames); needs at least 2 windows.
    spec : the FCD definition; ``spec.n_bins`` equal bins on ``[spec.lo, spec.hi]``.
    threads : worker threads (default: the usable cores). Each worker holds a float32
        [W, E] and a [W, W] buffer (27 MB for 1200 frames and 100 regions).

    Returns
    -------
    [..., n_bins] int64 counts. Bin k holds ``lo + k h <= v < lo + (k + 1) h`` (h = bin width);
    values at or beyond the range ends (r = 1 up to rounding) go into the edge bins, so a
    finite FCD always sums to ``W (W - 1) / 2``. Non-finite FCD values (a region constant in
    a window) are not counted, so a short total flags such a run.
    """
    x, lead = _as_batch(bold, spec)
    b, n, t = x.shape
    n_win, n_edge = spec.n_windows(t), n * (n - 1) // 2
    if n_win < 2:
        raise ValueError(
            f"bold has shape {tuple(lead) + (n, t)}: {t} frames give {n_win} window(s) of "
            f"{spec.window_frames} frames (step {spec.step_frames}); an FCD needs at least 2"
        )
    counts = np.empty((b, spec.n_bins), np.int64)
    scale = spec.n_bins / (spec.hi - spec.lo)

    def job(_w, sims):
        xw = np.empty((n_win, n_edge), np.float32)
        f = np.empty((n_win, n_win), np.float32)
        for k in sims:
            with np.errstate(all="ignore"):
                _window_fc_kernel(_standardise_time_major(x[k]), spec.window_frames,
                                  spec.step_frames, n_win, True, xw)
            np.matmul(xw, xw.T, out=f)
            counts[k] = _triu_hist_kernel(f, spec.lo, scale, spec.n_bins)

    _run_workers(b, threads, job)
    return counts.reshape(*lead, spec.n_bins)


def cdf_from_counts(counts) -> np.ndarray:
    """Cumulative histogram normalised so that its last value is 1.

    Parameters
    ----------
    counts : [..., n_bins] histogram counts (or averaged counts), non-negative.

    Returns
    -------
    [..., n_bins] float64 CDF; rows whose total is 0 give NaN.
    """
    c = as_array(counts, "counts")
    if c.ndim < 1:
        raise ValueError(f"counts must be [..., n_bins], got shape {c.shape}")
    cdf = np.cumsum(c, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cdf / cdf[..., -1:]


def values_to_counts(values, spec: FCDSpec) -> np.ndarray:
    """Histogram of pooled FCD values (any shape, flattened) with the bins of ``spec``.

    Same binning as :func:`fcd_histogram`; non-finite values are dropped. Returns [n_bins]
    int64.
    """
    v = np.ascontiguousarray(as_array(values, "FCD values").ravel())
    return _values_hist_kernel(v, spec.lo, spec.n_bins / (spec.hi - spec.lo), spec.n_bins)


def values_to_cdf(values, spec: FCDSpec) -> np.ndarray:
    """Normalised CDF [n_bins] (float64, last value 1) of pooled FCD values."""
    counts = values_to_counts(values, spec)
    if counts.sum() == 0:
        raise ValueError(f"FCD values (shape {np.shape(values)}) hold no finite value")
    return cdf_from_counts(counts)
