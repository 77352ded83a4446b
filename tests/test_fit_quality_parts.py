"""SC recipes scaled by node strength, hemisphere labels, the intra-hemispheric FC score and the
noise-ceiling distance between two empirical targets."""

from dataclasses import replace

import numpy as np
import pytest
from synthetic import tiny_target

from nmmfit.data.hemisphere import hemispheres
from nmmfit.data.sc import SC_MEAN_STRENGTH, normalise_sc
from nmmfit.stats.cost import fc_fcd_cost, intra_fc_corr_cost, target_distance
from nmmfit.stats.fc import fc_matrix, upper_tri


def _sc(n=8, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(3.0, 2.0, size=(n, n))
    a = (a + a.T) / 2
    np.fill_diagonal(a, 50.0)
    return a


def test_strength_recipes_fix_the_mean_node_strength_and_ignore_the_units():
    a = _sc()
    lin, info = normalise_sc(a, "strength")
    assert np.allclose(lin.sum(axis=1).mean(), SC_MEAN_STRENGTH)
    assert np.all(np.diag(lin) == 0) and info["mean_strength"] == SC_MEAN_STRENGTH
    # linear: proportional to the input off the diagonal, whatever its units
    off = ~np.eye(8, dtype=bool)
    assert np.allclose(lin[off] / a[off], (lin[off] / a[off])[0])
    assert np.allclose(normalise_sc(a * 1000.0, "strength")[0], lin)
    # the log recipe is log1p of the input, rescaled (so unit changes do matter there)
    lg, _ = normalise_sc(a, "log_strength")
    ref = np.log1p(a)
    np.fill_diagonal(ref, 0.0)
    assert np.allclose(lg, ref / ref.sum(axis=1).mean())
    # the max recipe of the same matrix differs only by a constant factor from "strength"
    mx, _ = normalise_sc(a, "max")
    np.fill_diagonal(mx, 0.0)
    assert np.allclose(mx[off] / lin[off], (mx[off] / lin[off])[0])


def test_strength_recipe_refuses_an_empty_sc():
    with pytest.raises(ValueError, match="no positive off-diagonal entry"):
        normalise_sc(np.eye(4), "strength")


def test_hemispheres_from_labels_and_schaefer_order():
    assert hemispheres(["Precentral_L", "Precentral_R", "Insula_L"]).tolist() == [0, 1, 0]
    assert hemispheres(["7Networks_LH_Vis_1", "7Networks_RH_Vis_1"]).tolist() == [0, 1]
    assert hemispheres([f"r{i}" for i in range(6)], "schaefer-100").tolist() == [0, 0, 0,
                                                                                 1, 1, 1]
    assert hemispheres([f"r{i}" for i in range(6)], "aal2") is None
    assert hemispheres(None) is None


def test_intra_hemispheric_score_ignores_interhemispheric_edges():
    tgt = tiny_target(n=6, seed=0)
    rng = np.random.default_rng(1)
    bold = rng.standard_normal((2, 1, 6, 60))
    assert fc_fcd_cost(bold, tgt).fc_corr_intra is None  # no hemisphere labels
    h = np.array([0, 0, 0, 1, 1, 1])
    tgt = replace(tgt, meta={**tgt.meta, "hemisphere": h.tolist()})
    ct = fc_fcd_cost(bold, tgt)
    fc = fc_matrix(bold[0, 0])
    same = upper_tri((h[:, None] == h[None, :]).astype(float)) > 0
    ref = 1 - np.corrcoef(upper_tri(fc)[same], upper_tri(tgt.fc)[same])[0, 1]
    assert ct.fc_corr_intra[0] == pytest.approx(ref)
    assert intra_fc_corr_cost(fc, tgt) == pytest.approx(ref)
    assert ct.fc_corr_intra[0] != pytest.approx(ct.fc_corr[0])
    # changing only interhemispheric FC leaves the intra score alone
    fc2 = fc.copy()
    fc2[:3, 3:] = fc2[3:, :3] = 0.9
    assert intra_fc_corr_cost(fc2, tgt) == pytest.approx(ref)
    bad = replace(tgt, meta={**tgt.meta, "hemisphere": [0, 1]})
    with pytest.raises(ValueError, match=r"meta\['hemisphere'\] has shape \(2,\)"):
        fc_fcd_cost(bold, bad)


def test_target_distance_is_the_cost_of_one_target_scored_against_another():
    a, b = tiny_target(n=6, seed=0), tiny_target(n=6, seed=1)
    self_d = target_distance(a, a)
    assert self_d["fc_corr"] == pytest.approx(0.0, abs=1e-12)
    assert self_d["total"] == pytest.approx(0.0, abs=1e-12)
    d = target_distance(b, a)
    r = np.corrcoef(b.fc_upper, a.fc_upper)[0, 1]
    assert d["fc_corr"] == pytest.approx(1 - r)
    assert d["fc_l1"] == pytest.approx(abs(b.fc_upper.mean() - a.fc_upper.mean()))
    assert d["fcd_ks"] == pytest.approx(np.abs(b.fcd_cdf - a.fcd_cdf).max())
    assert d["total"] == pytest.approx(d["fc_corr"] + d["fc_l1"] + d["fcd_ks"])
    with pytest.raises(ValueError, match="region count"):
        target_distance(tiny_target(n=5), a)


def test_cli_fit_refuses_the_shipped_surrogate_for_another_sc_recipe(tmp_path, capsys):
    from nmmfit.cli import main

    rc = main(["fit", "--evaluator", "surrogate", "--sc-normalisation", "strength",
               "--epochs", "1", "--store", str(tmp_path / "f.db"), "--no-figures",
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "'delssome' recipe" in err and "'strength'" in err
    assert not (tmp_path / "f.db").exists() or (tmp_path / "f.db").stat().st_size == 0
