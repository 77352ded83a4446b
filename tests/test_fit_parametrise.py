"""Map parametrisation: layout, expansion, bounds, spatial constraint, initialisation."""

import numpy as np
import pytest

from nmmfit.fit.parametrise import (
    Parametrisation,
    check_bounds,
    default_bounds,
    wei_bounds_from_fc,
)

N = 12


@pytest.fixture()
def maps():
    rng = np.random.default_rng(3)
    a = np.column_stack([np.ones(N), rng.standard_normal((N, 2))])
    q, _ = np.linalg.qr(a)  # orthogonal to the constant and to each other
    m = q[:, 1:].T / q[:, 1:].T.std(axis=1, keepdims=True)
    return {"myelin": m[0], "fc_gradient": m[1]}


def test_layout_and_expand(maps):
    p = Parametrisation(maps)
    assert p.dim == 10
    assert p.names == ["wEE:1", "wEE:myelin", "wEE:fc_gradient", "wEI:1", "wEI:myelin",
                       "wEI:fc_gradient", "G", "sigma:1", "sigma:myelin", "sigma:fc_gradient"]
    x = np.array([5.0, 0.5, -0.2, 2.0, -0.3, 0.1, 1.3, 0.005, 0.0004, -0.0002])
    reg = p.expand(x)
    m1, m2 = maps["myelin"], maps["fc_gradient"]
    np.testing.assert_allclose(reg.wEE[0], 5.0 + 0.5 * m1 - 0.2 * m2)
    np.testing.assert_allclose(reg.wEI[0], 2.0 - 0.3 * m1 + 0.1 * m2)
    np.testing.assert_allclose(reg.sigma[0], 0.005 + 0.0004 * m1 - 0.0002 * m2)
    assert reg.G.shape == (1,) and reg.G[0] == 1.3
    # batch of 3
    xs = np.tile(x, (3, 1)) * np.array([[1.0], [2.0], [0.5]])
    assert p.expand(xs).wEE.shape == (3, N)
    np.testing.assert_array_equal(p.coupling(xs), [1.3, 2.6, 0.65])
    with pytest.raises(ValueError, match="length 10"):
        p.coupling(x[:9])


def test_generic_number_of_maps(maps):
    p0 = Parametrisation({}, n_regions=N)
    assert p0.dim == 4
    reg = p0.expand([4.0, 2.0, 1.0, 0.003])
    np.testing.assert_allclose(reg.wEE, 4.0)
    p3 = Parametrisation({**maps, "third": np.linspace(-1, 1, N)})
    assert p3.dim == 13


def test_least_squares_recovers_coefficients(maps):
    p = Parametrisation(maps)
    coef = np.array([4.0, 0.7, -0.4])
    prof = coef[0] + coef[1] * maps["myelin"] + coef[2] * maps["fc_gradient"]
    np.testing.assert_allclose(p.least_squares(prof), coef, atol=1e-12)


def test_bounds_checked_on_regional_values(maps):
    p = Parametrisation(maps)
    ok = np.array([5.0, 0.5, -0.2, 2.0, -0.3, 0.1, 1.3, 0.005, 0.0004, -0.0002])
    assert p.in_bounds(ok)[0]
    bad = ok.copy()
    bad[1] = 3.0  # a steep myelin slope pushes some regional wEE outside [1, 10]
    v = p.violations(np.stack([ok, bad]))
    assert not v["wEE"][0] and v["wEE"][1]
    assert list(p.in_bounds(np.stack([ok, bad]))) == [True, False]
    g_bad = ok.copy()
    g_bad[6] = 3.5
    assert not p.in_bounds(g_bad)[0]
    s_bad = ok.copy()
    s_bad[7] = 0.0003
    assert p.violations(s_bad)["sigma"][0]


def test_spatial_constraint(maps):
    p = Parametrisation(maps, spatial_constraint={"myelin": -1, "fc_gradient": 1})
    x = np.array([5.0, 0.0, 0.0, 2.0, -0.3, 0.1, 1.0, 0.005, 0.0, 0.0])
    assert p.in_bounds(x)[0]  # corr(wEI, myelin) < 0, corr(wEI, grad) > 0
    y = x.copy()
    y[4] = 0.3  # wEI now rises with myelin
    v = p.violations(y)
    assert v["spatial:myelin"][0] and not p.in_bounds(y)[0]
    with pytest.raises(ValueError, match="spatial_constraint names map 'nope'"):
        Parametrisation(maps, spatial_constraint={"nope": 1})
    with pytest.raises(ValueError, match=r"must be \+1 or -1"):
        Parametrisation(maps, spatial_constraint={"myelin": 2})


def test_initialisation_and_lambda(maps):
    p = Parametrisation(maps)
    rng = np.random.default_rng(0)
    x0 = p.initial_vector(rng)
    assert p.in_bounds(x0)[0]
    # least squares of uniform draws: intercepts near the middle of the box
    assert 3.0 < x0[0] < 8.0 and 1.0 < x0[3] < 4.0 and 0.0 <= x0[6] <= 3.0
    lam = p.initial_stds(x0)
    np.testing.assert_allclose(lam[:3], x0[0])
    np.testing.assert_allclose(lam[3:6], x0[3])
    assert lam[6] == 0.4
    np.testing.assert_allclose(lam[7:], 0.0005)
    # same seed -> same start
    np.testing.assert_array_equal(x0, p.initial_vector(np.random.default_rng(0)))


def test_uniform_vectors_cover_feasible_set(maps):
    p = Parametrisation(maps)
    x = p.uniform_vectors(np.random.default_rng(1), 20000)
    ok = p.in_bounds(x)
    assert 0.001 < ok.mean() < 0.5
    reg = p.expand(x[ok])
    assert reg.wEE.min() >= 1.0 and reg.wEE.max() <= 10.0
    # the regional means spread over most of the box (not stuck in the middle)
    assert reg.wEE.mean(axis=1).min() < 3.0 and reg.wEE.mean(axis=1).max() > 8.0


def test_bad_configuration_errors(maps):
    with pytest.raises(ValueError, match=r"maps\['fc_gradient'\] has shape \(11,\)"):
        Parametrisation({"myelin": maps["myelin"], "fc_gradient": maps["fc_gradient"][:11]})
    with pytest.raises(ValueError, match="has shape"):
        Parametrisation(maps, n_regions=N + 1)
    with pytest.raises(ValueError, match=r"bounds\['wEE'\] = \(5.0, 1.0\): min > max"):
        Parametrisation(maps, bounds={"wEE": (5.0, 1.0)})
    with pytest.raises(ValueError, match="unknown parameter 'wII'"):
        check_bounds({"wII": (0, 1)})
    with pytest.raises(ValueError, match="rank deficient"):
        Parametrisation({"a": np.ones(N)})
    p = Parametrisation(maps)
    with pytest.raises(ValueError, match="vectors of length 10"):
        p.expand(np.zeros(9))


def test_default_bounds_from_model_spec():
    b = default_bounds()
    assert b == {"wEE": (1.0, 10.0), "wEI": (0.0, 5.0), "G": (0.0, 3.0),
                 "sigma": (0.0005, 0.01)}


def test_wei_rules():
    fc = np.full((5, 5), 0.2)
    np.fill_diagonal(fc, 1.0)
    lo, hi = wei_bounds_from_fc(fc, "zhang")  # m = 0.2: max clip(2.2) = 3.2, min clip(-1.6) = 0
    assert (lo, hi) == (0.0, 3.2)
    fc2 = np.full((5, 5), 0.4)
    np.fill_diagonal(fc2, 1.0)
    lo, hi = wei_bounds_from_fc(fc2, "zhang")  # max 4.4, min 2.8
    assert hi == pytest.approx(4.4) and lo == pytest.approx(2.8)
    lo, hi = wei_bounds_from_fc(fc2, "delssome_indiv")  # min = 2*4.4 - 6 = 2.8
    assert lo == pytest.approx(2.8)
    assert wei_bounds_from_fc(fc2, (0, 5, 0, 0)) == (0.0, 5.0)
    with pytest.raises(ValueError, match="wei_rule"):
        wei_bounds_from_fc(fc2, "nope")
