"""Epoching and averaging: fast array path and MNE ``Evoked`` objects (tested to agree).

Epochs span ``tmin``..``tmax`` around each stimulus onset, with MNE's sample convention
(first sample round(tmin * sfreq), last round(tmax * sfreq), both included): -0.2..1.0 s at
600.615 Hz gives 722 samples. Baseline correction subtracts the mean over the samples with
t <= 0 (MNE's ``baseline=(None, 0)``). Averaging and baseline correction are linear, so they
commute; the array path averages first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nmmfit._validate import as_array


@dataclass(frozen=True)
class EpochDesign:
    """Where the epochs sit in a continuous recording.

    onsets : [n_events] sample indices of the stimulus onsets (int).
    sfreq : sampling rate, Hz.
    tmin, tmax : epoch limits, s. bmin, bmax : baseline window, s (None: from the start).
    """

    onsets: np.ndarray
    sfreq: float
    tmin: float = -0.2
    tmax: float = 1.0
    bmin: float | None = None
    bmax: float = 0.0

    def __post_init__(self) -> None:
        on = np.asarray(self.onsets)
        if on.ndim != 1 or on.size == 0:
            raise ValueError(f"EpochDesign.onsets must be a non-empty 1-D array, got {on.shape}")
        if not self.tmin < self.tmax:
            raise ValueError(f"EpochDesign: tmin={self.tmin} must be < tmax={self.tmax}")
        if on[0] + self.offsets[0] < 0:
            raise ValueError(f"the first epoch starts before sample 0 (onset {on[0]}, "
                             f"tmin {self.tmin} s)")

    @property
    def offsets(self) -> np.ndarray:
        """Sample offsets of the epoch relative to its onset, [n_times]."""
        return np.arange(int(round(self.tmin * self.sfreq)), int(round(self.tmax * self.sfreq)) + 1)

    @property
    def times(self) -> np.ndarray:
        """Epoch time axis, s, [n_times]."""
        return self.offsets / self.sfreq

    @property
    def n_times(self) -> int:
        """Samples per epoch."""
        return int(self.offsets.shape[0])

    @property
    def n_events(self) -> int:
        """Number of epochs averaged."""
        return int(np.asarray(self.onsets).shape[0])

    @property
    def baseline_mask(self) -> np.ndarray:
        """Boolean [n_times], True inside the baseline window."""
        t = self.times
        lo = -np.inf if self.bmin is None else self.bmin
        return (t >= lo - 1e-12) & (t <= self.bmax + 1e-12)

    @property
    def n_raw(self) -> int:
        """Samples a continuous recording needs to hold every epoch."""
        return int(np.asarray(self.onsets)[-1] + self.offsets[-1] + 1)

    @property
    def span(self) -> tuple[int, int]:
        """[start, stop) of the raw samples covered by the epochs."""
        return int(self.onsets[0] + self.offsets[0]), self.n_raw


def epoch_average(x, design: EpochDesign, baseline: bool = True) -> np.ndarray:
    """Average the epochs of continuous ``x`` [..., n_raw] -> [..., n_times], baseline-corrected."""
    arr = as_array(x, "x")
    if arr.ndim < 1 or arr.shape[-1] < design.n_raw:
        raise ValueError(f"x has shape {arr.shape}; its last axis must hold at least "
                         f"{design.n_raw} samples for the epochs")
    idx = np.asarray(design.onsets)[:, None] + design.offsets[None, :]
    ev = arr[..., idx].mean(axis=-2)
    if baseline:
        ev = ev - ev[..., design.baseline_mask].mean(axis=-1, keepdims=True)
    return ev


def to_evoked(data, info, design: EpochDesign, nave: int | None = None, comment: str = ""):
    """Wrap an evoked array [n_ch, n_times] (V) as an :class:`mne.EvokedArray`."""
    import mne

    arr = as_array(data, "evoked data", ndim=2)
    if arr.shape != (len(info["ch_names"]), design.n_times):
        raise ValueError(f"evoked data has shape {arr.shape}; expected "
                         f"({len(info['ch_names'])}, {design.n_times}) (channels x times)")
    return mne.EvokedArray(arr, info, tmin=design.offsets[0] / design.sfreq,
                           nave=design.n_events if nave is None else nave, comment=comment,
                           baseline=(design.bmin, design.bmax), verbose="ERROR")


def mne_evoked_from_raw(raw_data, info, design: EpochDesign, average_ref: bool = True):
    """The MNE route: RawArray -> (average-reference projector) -> Epochs -> average().

    ``raw_data`` [n_ch, n_raw] in V. Used to check the array path; slow.
    """
    import mne

    arr = as_array(raw_data, "raw_data", ndim=2)
    raw = mne.io.RawArray(arr, info, verbose="ERROR")
    if average_ref:
        raw.set_eeg_reference("average", projection=True, verbose="ERROR")
    events = np.column_stack([np.asarray(design.onsets), np.zeros(design.n_events, int),
                              np.ones(design.n_events, int)])
    epochs = mne.Epochs(raw, events, tmin=design.tmin, tmax=design.tmax,
                        baseline=(design.bmin, design.bmax), proj=True, preload=True,
                        reject=None, flat=None, reject_by_annotation=False, verbose="ERROR")
    return epochs.average()
