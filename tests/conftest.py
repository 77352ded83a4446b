"""Shared fixtures: small networks and short simulations keep the suite fast."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def small_sc() -> np.ndarray:
    """A symmetric 8-region SC, zero diagonal, scaled to max 0.02 (the DELSSOME scale)."""
    rng = np.random.default_rng(42)
    n = 8
    a = rng.random((n, n))
    a = (a + a.T) / 2
    a[a < 0.3] = 0.0
    np.fill_diagonal(a, 0.0)
    return a * 0.02 / a.max()
