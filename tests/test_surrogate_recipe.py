"""The SC recipe of surrogate data generation (issue 18): targets built with the recipe asked
for, the recipe recorded in the store, the compact table and the trained models, and stores,
tables and shipped models of one recipe never mixed with another. Tiny synthetic targets."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from synthetic import tiny_target

from nmmfit.data.sc import LEGACY_SC_RECIPE
from nmmfit.fit import get_preset
from nmmfit.fit.store import Store
from nmmfit.surrogate.compact import (
    compact_sc_recipe,
    export_compact,
    import_compact,
    merge_stores,
)
from nmmfit.surrogate.generate import default_store, run_jobs
from nmmfit.surrogate.jobs import GENERATOR, GenJob, store_sc_recipe
from nmmfit.surrogate.table import build_table

N = 6
PRESET = replace(get_preset("quick", popsize=8, mu=2, n_dup_train=1), duration_s=43.2,
                 burn_in_s=0.0, warmup_steps=200)
JOBS = [GenJob("a", "train", "cmaes", 0, 3, 8), GenJob("a", "train", "random", 0, 2, 8),
        GenJob("c", "val", "random", 0, 1, 8)]


def _targets(recipe):
    # the same raw data and names under both recipes: only the SC normalisation differs
    return {"train": [tiny_target(N, 0, "a", 200, recipe)], "val": [tiny_target(N, 2, "c", 200,
                                                                            recipe)]}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """recipe -> a generation store of the same jobs and target names."""
    d = tmp_path_factory.mktemp("recipe")
    out = {}
    for recipe in (LEGACY_SC_RECIPE, "strength"):
        out[recipe] = d / f"{recipe}.db"
        run_jobs(JOBS, _targets(recipe), out[recipe], preset=PRESET, threads=1)
    return out


def test_generation_targets_use_the_recipe():
    from nmmfit.surrogate.targets import surrogate_targets

    old = surrogate_targets("hcp_schaefer100")
    new = surrogate_targets("hcp_schaefer100", sc_normalisation="strength")
    for role in old:
        assert [t.name for t in old[role]] == [t.name for t in new[role]]
        for a, b in zip(old[role], new[role], strict=True):
            assert (a.sc_normalisation, b.sc_normalisation) == (LEGACY_SC_RECIPE, "strength")
            assert not np.allclose(a.sc, b.sc)
            np.testing.assert_array_equal(a.fc, b.fc)
            assert a.fingerprint()["sha256"] != b.fingerprint()["sha256"]
    with pytest.raises(ValueError, match="sc_normalisation must be one of"):
        surrogate_targets("hcp_schaefer100", sc_normalisation="bogus")


def test_the_store_records_the_recipe(stores):
    with Store(stores[LEGACY_SC_RECIPE]) as a, Store(stores["strength"]) as b:
        assert store_sc_recipe(a) == LEGACY_SC_RECIPE and store_sc_recipe(b) == "strength"
        ca, cb = a.run_config(JOBS[0].run_id), b.run_config(JOBS[0].run_id)
        # legacy runs keep the config (and hash) they always had; others record the recipe
        assert "sc_normalisation" not in ca and cb["sc_normalisation"] == "strength"
        q = "SELECT config_hash FROM runs WHERE run_id = ?"
        assert (a.conn.execute(q, (JOBS[0].run_id,)).fetchone()
                != b.conn.execute(q, (JOBS[0].run_id,)).fetchone())
        assert a.get_artefact(JOBS[0].run_id, "target")[1]["sc_normalisation"] == "delssome"
        assert b.get_artefact(JOBS[0].run_id, "target")[1]["sc_normalisation"] == "strength"
    ta, ga = build_table(stores[LEGACY_SC_RECIPE])
    tb, gb = build_table(stores["strength"])
    assert (ga["sc_normalisation"], gb["sc_normalisation"]) == (LEGACY_SC_RECIPE, "strength")
    assert ga["names"] == gb["names"] == ["a", "c"]
    assert not np.allclose(ga["sc"], gb["sc"])


def test_a_store_refuses_runs_of_another_recipe(stores, tmp_path):
    legacy = tmp_path / "legacy.db"
    shutil.copy(stores[LEGACY_SC_RECIPE], legacy)
    with Store(legacy) as st:
        n = st.count()
    # the same run ids (target names, kinds, seeds) with strength targets: refused, not resumed
    more = [replace(JOBS[0], n_epochs=4)]
    with pytest.raises(ValueError, match=rf"{legacy.name}.*'delssome'.*'strength'"):
        run_jobs(more, _targets("strength"), legacy, preset=PRESET, threads=1)
    with pytest.raises(ValueError, match="several SC recipes"):
        run_jobs([JOBS[0], GenJob("c", "val", "random", 0, 1, 8)],
                 {"train": _targets("strength")["train"],
                  "val": _targets(LEGACY_SC_RECIPE)["val"]}, tmp_path / "x.db", preset=PRESET)
    with Store(legacy) as st:
        assert st.count() == n and store_sc_recipe(st) == LEGACY_SC_RECIPE
    # a store that mixes recipes anyway (written by hand) gives no table
    with Store(legacy) as st:
        st.ensure_run("gen:x:random:s0", {"generator": GENERATOR, "role": "train",
                                          "kind": "random", "sc_normalisation": "strength"})
    with pytest.raises(ValueError, match="mixes SC recipes"):
        build_table(legacy)


def test_the_compact_table_records_the_recipe_and_keeps_recipes_apart(stores, tmp_path):
    export_compact(stores["strength"], tmp_path / "s.npz")
    export_compact(stores[LEGACY_SC_RECIPE], tmp_path / "d.npz")
    assert compact_sc_recipe(tmp_path / "s.npz") == "strength"
    assert compact_sc_recipe(tmp_path / "d.npz") == LEGACY_SC_RECIPE
    with np.load(tmp_path / "s.npz") as z:
        assert json.loads(str(z["header"].item()))["sc_normalisation"] == "strength"
    rebuilt = tmp_path / "rebuilt.db"
    assert import_compact(tmp_path / "s.npz", rebuilt)["runs_added"] == len(JOBS)
    assert build_table(rebuilt)[1]["sc_normalisation"] == "strength"
    # a store of the legacy recipe takes neither the strength file nor the strength store
    legacy = tmp_path / "legacy.db"
    shutil.copy(stores[LEGACY_SC_RECIPE], legacy)
    with pytest.raises(ValueError, match=rf"{legacy.name}.*'delssome'.*s\.npz.*'strength'"):
        import_compact(tmp_path / "s.npz", legacy)
    with pytest.raises(ValueError, match=r"'delssome'.*'strength'"):
        merge_stores(stores["strength"], legacy)
    assert build_table(legacy)[1]["sc_normalisation"] == LEGACY_SC_RECIPE


def test_default_paths_name_the_recipe():
    from nmmfit.cli_surrogate import shipped_table, summaries_path

    assert default_store("hcp_aal") == "runs/surrogate_hcp_aal.db"  # today's store
    assert default_store("hcp_aal", "paper", "strength") == \
        "runs/surrogate_hcp_aal_paper_strength.db"
    assert default_store("hcp_aal", "paper") == "runs/surrogate_hcp_aal_paper_delssome.db"
    assert shipped_table("hcp_aal").name == "hcp_aal_quick.npz"
    assert shipped_table("hcp_aal", "paper", "strength").name == "hcp_aal_paper_strength.npz"
    assert summaries_path("hcp_aal").name == "surrogate_hcp_aal_summaries.npz"
    assert summaries_path("hcp_aal", "paper", "strength").name == \
        "surrogate_hcp_aal_paper_strength_summaries.npz"


def test_training_records_the_store_recipe_and_ship_keeps_recipes_apart(stores, tmp_path,
                                                                        capsys, monkeypatch):
    import nmmfit.surrogate.shipped as shipped
    import nmmfit.surrogate.workflow as wf
    from nmmfit.cli import main
    from nmmfit.surrogate.shipped import load_models

    original = wf.build_table

    def third_as_val(st, roles=("train", "val")):  # the tiny val target has few valid rows
        table, tg = original(st, roles=roles)
        role = table["role"].copy()
        role[np.flatnonzero(role == "train")[::3]] = "val"
        return {**table, "role": role}, tg

    monkeypatch.setattr(wf, "build_table", third_as_val)
    ship = tmp_path / "shipped"
    monkeypatch.setattr(shipped, "shipped_dir", lambda parcellation: ship)
    args = ["surrogate", "train", "--dataset", "hcp_aal", "--arch", "mlp", "--epochs", "1",
            "--patience", "1", "--classifier-epochs", "1", "--batch-size", "16",
            "--threads", "1", "--json"]
    assert main([*args, "--store", str(stores["strength"]), "--ship"]) == 0
    pred, clf = load_models(ship)
    assert pred.meta["sc_normalisation"] == clf.meta["sc_normalisation"] == "strength"
    assert json.loads(capsys.readouterr().out)["sc_normalisation"] == "strength"
    before = {p.name: p.read_bytes() for p in ship.iterdir()}
    # legacy data would replace strength models: refused, the shipped files untouched
    assert main([*args, "--store", str(stores[LEGACY_SC_RECIPE]), "--ship"]) == 2
    err = capsys.readouterr().err
    assert "'strength'" in err and "'delssome'" in err and "--replace-recipe" in err
    assert {p.name: p.read_bytes() for p in ship.iterdir()} == before
    # --sc-normalisation, when given, must be the store's recipe
    assert main([*args, "--store", str(stores[LEGACY_SC_RECIPE]), "--sc-normalisation",
                 "strength", "--out", str(tmp_path / "m")]) == 2
    assert "not 'strength'" in capsys.readouterr().err
    # models of one recipe are not evaluated on a store of another
    with pytest.raises(ValueError, match=r"'strength'.*'delssome'"):
        wf.evaluate_models(stores[LEGACY_SC_RECIPE], pred, clf, roles=("train",))
    # told to, --ship replaces them; the models then record the legacy recipe
    assert main([*args, "--store", str(stores[LEGACY_SC_RECIPE]), "--ship",
                 "--replace-recipe"]) == 0
    assert load_models(ship)[0].meta["sc_normalisation"] == LEGACY_SC_RECIPE


def test_store_sim_settings_refuses_runs_of_different_simulation_settings(tmp_path):
    from nmmfit.fit.store import Store
    from nmmfit.surrogate.jobs import GENERATOR
    from nmmfit.surrogate.workflow import store_sim_settings

    def cfg(burn_in):
        return {"generator": GENERATOR, "preset": "quick",
                "evaluator": {"n_dup": 1, "sim": {"burn_in_s": burn_in, "dt": 0.006}}}

    db = tmp_path / "gen.db"
    with Store(db) as st:
        st.ensure_run("gen:a", cfg(144.0))
        st.ensure_run("gen:b", cfg(144.0))
    got = store_sim_settings(db)
    assert got["preset"] == "quick" and got["sim"]["burn_in_s"] == 144.0
    with Store(db) as st:  # same preset and duplicates, another burn-in: not one setting
        st.ensure_run("gen:c", cfg(14.4))
    with pytest.raises(ValueError, match="mixes simulation settings"):
        store_sim_settings(db)
