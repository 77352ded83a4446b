"""Helpers shared by the tests (importable from tests): small synthetic targets, and killing a
child process at a chosen point."""

import signal
import time

import numpy as np

from nmmfit.data.target import Target
from nmmfit.stats.fcd import FCDSpec


def tiny_target(n: int = 6, seed: int = 0, name: str = "tiny", n_bins: int = 1000,
                sc_normalisation: str | None = None) -> Target:
    """An n-region target: random symmetric SC, two 60-frame mixed-noise BOLD runs (TR 0.72 s),
    maps m1 (a ramp) and m2 (random), FCD with 10-frame windows, step 2; SC normalised by
    ``sc_normalisation`` (None: the library default)."""
    rng = np.random.default_rng(seed)
    a = rng.random((n, n)) * 100
    sc = (a + a.T) / 2
    np.fill_diagonal(sc, 0)
    mix = rng.standard_normal((n, n)) * 0.5 + np.eye(n)
    runs = [mix @ rng.standard_normal((n, 60)) for _ in range(2)]
    maps = {"m1": np.linspace(-1.5, 1.5, n), "m2": rng.standard_normal(n)}
    kw = {} if sc_normalisation is None else {"sc_normalisation": sc_normalisation}
    return Target.from_bold(sc, runs, tr=0.72, maps=maps, name=name,
                            fcd_spec=FCDSpec(window_frames=10, step_frames=2, n_bins=n_bins),
                            **kw)


def sigkill_when(proc, ready, timeout: float = 60.0) -> None:
    """Wait until ``ready()`` is true while ``proc`` runs, then SIGKILL it and check it died
    of that signal (the kill-and-resume tests)."""
    deadline = time.time() + timeout
    try:
        while not ready():
            assert proc.poll() is None, "the child ended before it could be killed"
            assert time.time() < deadline, "the child made no progress"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
