"""The SIMD-friendly maths kernels against numpy/scipy."""

import numpy as np
from scipy import stats

from nmmfit.sim import vecmath as vm


def test_exp_matches_numpy_to_double_precision():
    x = np.linspace(-700, 700, 200_001)
    assert np.max(np.abs(vm.exp_array(x) / np.exp(x) - 1)) < 1e-15


def test_log_matches_numpy_and_rejects_nonpositive():
    y = np.exp(np.linspace(-700, 700, 200_001))
    assert np.max(np.abs(vm.log_array(y) - np.log(y))) < 1e-12
    out = vm.log_array(np.array([0.0, -1.0, 1.0]))
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == 0.0


def test_counter_normals_are_standard_normal_and_independent():
    z = vm.normals(np.uint64(2024), 1_000_000)
    assert abs(z.mean()) < 5 * 1e-3
    assert abs(z.std() - 1) < 5e-3
    assert abs(stats.kurtosis(z)) < 0.03
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 5e-3  # the Box-Muller pair
    other = vm.normals(np.uint64(2025), 1_000_000)
    assert abs(np.corrcoef(z, other)[0, 1]) < 5e-3  # neighbouring keys


def test_sincos_matches_numpy():
    u = np.linspace(-2, 2, 10001)
    from numba import njit

    @njit
    def both(u):
        s = np.empty_like(u)
        c = np.empty_like(u)
        for i in range(u.shape[0]):
            s[i], c[i] = vm.sincos_2pi(u[i])
        return s, c

    s, c = both(u)
    assert np.max(np.abs(s - np.sin(2 * np.pi * u))) < 1e-12
    assert np.max(np.abs(c - np.cos(2 * np.pi * u))) < 1e-12
