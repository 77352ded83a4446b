"""Population runs: serial and Dask (a real LocalCluster), kill-and-resume, bad input, the
E/I regression, the CLI. A synthetic cohort of tiny 6-region subjects keeps it to seconds."""

import json
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import sigkill_when, tiny_target

from nmmfit.population import (
    Cohort,
    ResultsDB,
    SchedulerError,
    perturb_subject,
    regress,
    run_cohort,
    synthetic_cohort,
)
from nmmfit.population.analysis import network_contrast, networks_for

TINY = dict(popsize=6, mu=3, n_epochs=3, duration_s=43.2, test_duration_s=43.2,
            burn_in_s=0.0, warmup_steps=200,
            n_dup_train=2, n_dup_val=2, n_dup_test=4, test_group=2, test_dt=0.003)
SUBJECTS = ["s0", "s1", "s2", "s3"]
COV = {"s0": {"age": 21, "sex": "F"}, "s1": {"age": 35, "sex": "M"},
       "s2": {"age": 52, "sex": "F"}, "s3": {"age": 70, "sex": "M"}}
#: columns that must agree between runs (not timings or workers)
SAME = ["subject", "config_hash", "seed", "test_fc_corr", "test_fc_l1", "test_fcd_ks",
        "test_total", "best_val_cost", "ei_mean", "G"]


def _cohort(subjects=SUBJECTS):
    return Cohort.from_targets({s: tiny_target(seed=10 + int(s[1:]), name=s) for s in subjects},
                               {s: COV[s] for s in subjects}, name="syn")


def _table(db, out):
    with ResultsDB(db) as r:
        return r.table("syn", out["config_hash"])


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    db = tmp_path_factory.mktemp("serial") / "pop.db"
    out = run_cohort(_cohort(), executor="serial", store=db, **TINY)
    return db, out


def test_serial_run_gives_a_complete_table(serial):
    db, out = serial
    assert out["done"] == SUBJECTS and not out["failed"] and not out["skipped"]
    df = _table(db, out)
    assert df["subject"].tolist() == SUBJECTS
    assert df[["test_total", "x_G", "seed"]].notna().all().all()
    with ResultsDB(db) as r:
        subs, ei, sd = r.ei_maps("syn", out["config_hash"])
        st = r.status("syn", out["config_hash"], SUBJECTS)
        row = r.results("syn", out["config_hash"])["s1"]
    assert subs == SUBJECTS and ei.shape == (4, 6) and sd.shape == (4, 6)
    assert st["finished"] == SUBJECTS and not st["running"] and not st["pending"]
    s = row["summary"]
    assert set(s["test_cost"]) == {"fc_corr", "fc_l1", "fcd_ks", "total"}
    assert len(s["ei_map"]) == 6 and "bold" not in json.dumps(s).lower()


def test_rerun_of_a_finished_cohort_computes_nothing(serial):
    db, out = serial
    before = _table(db, out)
    t0 = time.perf_counter()
    again = run_cohort(_cohort(), executor="serial", store=db, **TINY)
    assert again["skipped"] == SUBJECTS and not again["done"]
    assert again["config_hash"] == out["config_hash"]
    assert time.perf_counter() - t0 < 5
    pd.testing.assert_frame_equal(_table(db, out), before)


def test_dask_local_cluster_equals_serial(serial, tmp_path):
    from distributed import LocalCluster

    db, out = serial
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        got = run_cohort(_cohort(), executor="dask", scheduler=cluster.scheduler_address,
                         store=tmp_path / "dask.db", **TINY)
    assert sorted(got["done"]) == SUBJECTS and not got["failed"]
    a, b = _table(db, out), _table(tmp_path / "dask.db", got)
    pd.testing.assert_frame_equal(a[SAME], b[SAME])
    assert {w.split(":")[0] for w in b["worker"]} == {"tcp"}  # ran on Dask workers
    with ResultsDB(db) as r1, ResultsDB(tmp_path / "dask.db") as r2:
        np.testing.assert_array_equal(r1.ei_maps("syn", out["config_hash"])[1],
                                      r2.ei_maps("syn", got["config_hash"])[1])


_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from test_population import _cohort, TINY
from nmmfit.population import run_cohort
def slow(subject, state, info):
    time.sleep(1.0)  # widen the window in which the parent kills us
run_cohort(_cohort(), executor="serial", store=sys.argv[1], callback=slow, **TINY)
"""


def _n_done(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM population WHERE state='done'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def test_killed_run_resumes_without_recomputing(serial, tmp_path):
    ref_db, ref = serial
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(tests=str(Path(__file__).parent)))
    db = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, str(script), str(db)])
    sigkill_when(proc, lambda: _n_done(db) >= 1)
    with ResultsDB(db) as r:
        first = {x["subject"]: x for x in r.attempts("syn") if x["state"] == "done"}
    assert 1 <= len(first) < len(SUBJECTS)
    out = run_cohort(_cohort(), executor="serial", store=db, **TINY)
    assert sorted(out["skipped"]) == sorted(first)
    assert sorted(out["done"] + out["skipped"]) == SUBJECTS
    with ResultsDB(db) as r:
        rows = r.attempts("syn")
        st = r.status("syn", out["config_hash"])
    for s, row in first.items():  # finished subjects were not recomputed
        done = [x for x in rows if x["subject"] == s and x["state"] == "done"]
        assert len(done) == 1 and done[0]["finished_at"] == row["finished_at"]
    assert all(x["state"] in ("done", "interrupted") for x in rows)
    assert st["finished"] == SUBJECTS and not st["running"]
    pd.testing.assert_frame_equal(_table(db, out)[SAME], _table(ref_db, ref)[SAME])


# ------------------------------------------------------------------------- bad input


def _write_dir(root: Path, subjects=("sub-01", "sub-02", "sub-03"), skip_bold=()):
    rng = np.random.default_rng(0)
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": "mini",
                                                               "RepetitionTime": 2.0}))
    rows = ["participant_id\tage\tsex"]
    for i, s in enumerate(subjects):
        d = root / s / "func"
        d.mkdir(parents=True)
        a = rng.random((6, 6)) * 100
        sc = (a + a.T) / 2
        np.fill_diagonal(sc, 0)
        np.savetxt(root / s / "sc.csv", sc, delimiter=",")
        if s not in skip_bold:
            mix = rng.standard_normal((6, 6)) * 0.5 + np.eye(6)
            np.save(d / f"{s}_task-rest_run-1_bold.npy", mix @ rng.standard_normal((6, 120)))
        rows.append(f"{s}\t{20 + 10 * i}\t{'FM'[i % 2]}")
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_read_folder_finds_each_subjects_files(tmp_path):
    from nmmfit.population.folders import read_folder

    d = _write_dir(tmp_path / "c")
    (d / "sub-02" / "notes.md").write_text("not a data file")
    f = read_folder(d, region_labels=[f"r{i}" for i in range(6)])
    assert f.name == "mini" and f.tr == 2.0 and f.region_labels == [f"r{i}" for i in range(6)]
    assert list(f.files) == ["sub-01", "sub-02", "sub-03"]
    sc, bold = f.files["sub-02"]
    assert sc == d / "sub-02" / "sc.csv"
    assert bold == (d / "sub-02" / "func" / "sub-02_task-rest_run-1_bold.npy",)
    assert list(f.covariates.index) == ["sub-01", "sub-02", "sub-03"]
    assert f.covariates.loc["sub-03", "age"] == 40
    assert read_folder(d, tr=0.5).tr == 0.5
    (d / "dataset_description.json").unlink()
    with pytest.raises(ValueError, match="no TR"):
        read_folder(d)
    np.save(d / "sub-01" / "sub-01_sc.npy", np.eye(6))
    with pytest.raises(ValueError, match="sub-01.*several SC files"):
        read_folder(d, tr=1.0)


def test_bad_input_errors(tmp_path):
    with pytest.raises(ValueError, match="sub-02.*no BOLD"):
        Cohort.from_directory(_write_dir(tmp_path / "a", skip_bold=("sub-02",)))
    with pytest.raises(ValueError, match=r"not in the cohort.*s9"):
        Cohort.from_targets({"s0": tiny_target(seed=0)}, {"s0": {"age": 1}, "s9": {"age": 2}})
    bad = _write_dir(tmp_path / "b")
    (bad / "participants.tsv").write_text("participant_id\tage\nsub-01\t20\nsub-77\t30\n")
    with pytest.raises(ValueError, match="sub-77"):
        Cohort.from_directory(bad)
    with pytest.raises(ValueError, match="no BOLD"):
        Cohort.from_dataset(_no_bold_dataset())
    c = _cohort(["s0"])
    t0 = time.perf_counter()
    with pytest.raises(SchedulerError, match=r"tcp://127.0.0.1:1"):
        run_cohort(c, scheduler="tcp://127.0.0.1:1", store=tmp_path / "x.db",
                   connect_timeout=2, **TINY)
    assert time.perf_counter() - t0 < 10
    with pytest.raises(FileNotFoundError, match="surrogate"):
        run_cohort(c, executor="serial", evaluator="surrogate", store=tmp_path / "y.db",
                   **TINY)


def _no_bold_dataset():
    from nmmfit.datasets import Dataset, Subject

    return Dataset("nobold", "user", 0.72, [f"r{i}" for i in range(6)],
                   subjects={"a": Subject("a", sc=np.ones((6, 6)) - np.eye(6))})


# ------------------------------------------------------------------------- synthetic cohort


def test_perturb_subject_keeps_a_valid_sc_and_bold():
    from nmmfit.datasets import load

    sub = load("hcp_aal").subjects["101309"]
    sc, runs = perturb_subject(sub.sc, sub.bold, 5)
    sc2, runs2 = perturb_subject(sub.sc, sub.bold, 5)
    sc3, runs3 = perturb_subject(sub.sc, sub.bold, 6)
    np.testing.assert_array_equal(sc, sc2)
    np.testing.assert_array_equal(runs[0], runs2[0])
    assert not np.allclose(sc, sc3) and not np.allclose(runs[0], runs3[0])
    np.testing.assert_array_equal(sc, sc.T)
    assert (sc >= 0).all() and (np.diag(sc) == 0).all()
    np.testing.assert_array_equal(sc == 0, sub.sc == 0)  # same sparsity
    assert 0.9 < sc.sum() / sub.sc.sum() < 1.1  # mean-1 noise
    assert runs[0].shape == sub.bold[0].shape and np.isfinite(runs[0]).all()
    fc = [np.corrcoef(r)[np.triu_indices(94, 1)] for r in (runs[0], sub.bold[0])]
    assert np.corrcoef(*fc)[0, 1] > 0.9  # block bootstrap: FC of the real subject kept


def test_synthetic_cohort_is_seeded_lazy_and_extendable():
    c = synthetic_cohort("hcp_aal", 9, seed=3)
    assert len(c) == 9 and c.parcellation == "aal2-94" and c.networks.shape == (94,)
    assert c.subjects[:2] == ["syn-00000", "syn-00001"]
    cov = c.covariates
    assert cov["age"].between(8, 90).all() and set(cov["sex"]) <= {"F", "M"}
    assert cov["source_subject"].tolist()[:8] == sorted(cov["source_subject"].unique()) + [
        cov["source_subject"].iloc[0]]  # the 7 real subjects, cycled
    assert all(s.target is None and s.kind == "synthetic" for s in c.specs.values())
    bigger = synthetic_cohort("hcp_aal", 12, seed=3)  # same subjects, more of them
    assert bigger.name == c.name and bigger.spec("syn-00004") == c.spec("syn-00004")
    pd.testing.assert_frame_equal(bigger.covariates.loc[c.subjects], cov)
    other = synthetic_cohort("hcp_aal", 9, seed=4)
    assert other.name != c.name and not other.covariates["age"].equals(cov["age"])
    t0, again, t7 = c.target("syn-00000"), c.target("syn-00000"), c.target("syn-00007")
    np.testing.assert_array_equal(t0.fc, again.fc)
    assert t7.meta["synthetic"]["base"] == t0.meta["synthetic"]["base"]
    assert not np.allclose(t0.fc, t7.fc) and not np.allclose(t0.sc, t7.sc)
    assert t0.n_regions == 94 and "fc_gradient" in t0.maps


# ------------------------------------------------------------------------- analysis


def test_regression_recovers_a_planted_age_slope():
    rng = np.random.default_rng(1)
    n = 60
    age = rng.uniform(8, 80, n)
    sex = rng.choice(["F", "M"], n)
    ei = 2.0 - 0.004 * age + 0.05 * (sex == "M") + rng.normal(0, 0.02, n)
    df = pd.DataFrame({"subject": [f"s{i}" for i in range(n)], "ei": ei, "age": age,
                       "sex": sex})
    lin = regress(df, "ei ~ age + C(sex)")
    assert abs(lin["params"]["age"] + 0.004) < 3 * lin["bse"]["age"]
    assert abs(lin["params"]["C(sex)[T.M]"] - 0.05) < 3 * lin["bse"]["C(sex)[T.M]"]
    spl = regress(df)  # natural cubic spline: its fitted curve has the planted slope
    pred = spl["model"].predict(pd.DataFrame({"age": [20.0, 60.0], "sex": ["F", "F"]}))
    assert abs((pred[1] - pred[0]) / 40 + 0.004) < 0.001
    assert spl["formula"] == "ei ~ cr(age, df=3) + C(sex)" and not spl["notes"]
    few = regress(df.iloc[:8])  # too few subjects for a spline: linear fallback
    assert few["formula"] == "ei ~ age + C(sex)" and "linear" in few["notes"][0]
    nosex = regress(df.drop(columns="sex"))
    assert nosex["formula"] == "ei ~ cr(age, df=3)"


def test_network_labels_and_contrast():
    from nmmfit.datasets import load

    aal = load("hcp_aal", include_bold=False)
    net = networks_for(aal.parcellation, aal.region_labels)
    assert net.shape == (94,) and (net >= 0).sum() > 70
    assert net[aal.region_labels.index("Calcarine_L")] == 0
    sch = Cohort.load("hcp_schaefer100")  # the bundled Yeo-7 labels (1..7) as indices 0..6
    np.testing.assert_array_equal(sch.networks, load("hcp_schaefer100").networks - 1)
    # and they agree with the networks that the regions' names give
    np.testing.assert_array_equal(sch.networks,
                                  networks_for(sch.parcellation, sch.region_labels))
    assert sch.networks[sch.region_labels.index("7Networks_LH_Vis_1")] == 0
    assert sch.networks[sch.region_labels.index("7Networks_RH_Default_PCC_2")] == 6
    ei = np.where(np.isin(net, [0, 1]), 2.0, 1.0)[None] + np.zeros((5, 1))
    con = network_contrast(ei + np.random.default_rng(0).normal(0, 0.01, (5, 94)), net)
    assert abs(con["mean"] - 1.0) < 0.02 and con["p"] < 1e-3
    assert "skipped" in network_contrast(ei, None)


# ------------------------------------------------------------------------- CLI


def test_cli_fit_status_report(tmp_path, capsys):
    from nmmfit.cli import main

    d = _write_dir(tmp_path / "cohort")
    db = tmp_path / "cli.db"
    # TR 2 s: the default FCD window is 30 frames; simulate 60 frames
    sets = [f"{k}={v}" for k, v in {**TINY, "duration_s": 120.0,
                                           "test_duration_s": 120.0}.items()]
    rc = main(["population", "fit", str(d), "--executor", "serial", "--store", str(db),
               "--subjects", "sub-01", "sub-02", "--json", "--set", *sets])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and sorted(out["done"]) == ["sub-01", "sub-02"]
    assert out["status"]["pending"] == ["sub-03"]
    assert main(["population", "status", "--store", str(db), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["finished"] == ["sub-01", "sub-02"] and st["cohort"] == "mini"
    rc = main(["population", "report", "--store", str(db), "--out", str(tmp_path / "rep"),
               "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["n_subjects"] == 2
    assert "skipped" in rep["regression"] or rep["regression"]["nobs"] == 2
    csv = pd.read_csv(rep["exports"]["subjects_csv"])
    assert csv["subject"].tolist() == ["sub-01", "sub-02"] and "age" in csv.columns
    pq = pd.read_parquet(rep["exports"]["subjects_parquet"])
    pd.testing.assert_frame_equal(pq[["subject", "age"]], csv[["subject", "age"]],
                                  check_dtype=False)
    reg = pd.read_parquet(rep["exports"]["regional_parquet"])
    sizes = reg.groupby("subject").size()
    assert sorted(sizes.index) == ["sub-01", "sub-02"] and sizes.nunique() == 1
    assert sizes.iloc[0] > 1
    pd.testing.assert_frame_equal(reg, pd.read_csv(rep["exports"]["regional_csv"]),
                                  check_dtype=False)
    # every figure listed is written; the network figure needs network labels (none here)
    assert set(rep["figures"]) == {"group_maps", "fit_quality", "trajectory"}
    for f in rep["figures"].values():
        assert Path(f).read_bytes()[:4] == b"\x89PNG"
    assert "network labels" in rep["figures_skipped"]["network_ei"]
    assert rep["test_protocol"] == "test cost on 120 s runs (4 duplicates at dt 3 ms, mean " \
                                   "over 2 groups of 2)"
    assert main(["population", "fit", "hcp_aal", "--scheduler", "tcp://127.0.0.1:1",
                 "--timeout", "1", "--store", str(db), "--no-progress"]) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


def test_default_maps_and_cohort_networks(tmp_path):
    from nmmfit.population import cohort_networks, default_maps

    assert default_maps("hcp_schaefer100") == ("myelin", "fc_gradient")
    assert default_maps("hcp_aal") == default_maps(str(tmp_path)) == ("fc_gradient",)
    net = cohort_networks("hcp_schaefer100")
    assert net.shape == (100,) and set(net.tolist()) == set(range(7))
    assert cohort_networks("hcp_aal").shape == (94,)
    for source in (None, "", "no_such_data_set", str(tmp_path / "missing")):
        assert cohort_networks(source) is None


def test_report_reads_the_covariates_beside_an_older_store(serial, tmp_path):
    """Stores written before the covariates table: report reads ``<store>.<cohort>.covariates
    .tsv`` beside the store (what `population fit` wrote then)."""
    import shutil

    from nmmfit.population import report

    db = tmp_path / "old.db"
    shutil.copy(serial[0], db)
    rep = report(db, "syn", out_dir=tmp_path / "before", figures=False)
    assert "age" not in pd.read_csv(rep["exports"]["subjects_csv"]).columns
    pd.DataFrame({"participant_id": SUBJECTS, "age": [COV[s]["age"] for s in SUBJECTS],
                  "sex": [COV[s]["sex"] for s in SUBJECTS]}).to_csv(
        db.with_suffix(".syn.covariates.tsv"), sep="\t", index=False)
    rep = report(db, "syn", out_dir=tmp_path / "after", figures=False)
    csv = pd.read_csv(rep["exports"]["subjects_csv"])
    assert csv["age"].tolist() == [COV[s]["age"] for s in csv["subject"]]
    assert "ei ~ age + C(sex)" in json.dumps(rep["regression"])


@pytest.fixture
def drawn(monkeypatch):
    """{PNG name: [(axes, collections, patches, texts, title) per axes]} of the population
    figures written while the test runs (recorded before each figure is closed)."""
    import nmmfit.plots.population as pp

    figs = {}
    real_save = pp.save

    def keep(fig, path, **kw):
        figs[Path(path).name] = [(a, list(a.collections), a.patches, a.texts, a.get_title())
                                 for a in fig.axes]
        return real_save(fig, path, **kw)

    monkeypatch.setattr(pp, "save", keep)
    return figs


def test_network_figure_dots_are_each_subjects_network_mean(tmp_path, drawn):
    """One dot per subject and network = the mean of the subject's E/I over the network's
    regions (NaN regions ignored), the same numbers as network_means."""
    from nmmfit.plots.population import plot_network_ei
    from nmmfit.population.analysis import network_means

    rng = np.random.default_rng(3)
    net = np.repeat([0, 1, 2, 3, 4, 5, 6, -1], 3)  # 3 regions each: a median is no mean
    ei = 2 + rng.standard_normal((5, net.size)) ** 2  # skewed: mean != median
    ei[1, 4] = np.nan
    plot_network_ei(ei, net, tmp_path / "n.png", [f"s{i}" for i in range(5)])
    nm = network_means(ei, net)
    dots = {c.get_gid(): c.get_offsets()[:, 1] for c in drawn["n.png"][0][1] if c.get_gid()}
    assert list(dots) == [f"network:{n}" for n in nm["names"]]
    for j, k in enumerate(nm["index"]):
        y = np.asarray(dots[f"network:{nm['names'][j]}"], dtype=float)
        np.testing.assert_allclose(y, nm["values"][:, j], rtol=1e-12)
        np.testing.assert_allclose(y, np.nanmean(ei[:, net == k], axis=1), rtol=1e-12)


@pytest.mark.filterwarnings("ignore:E/I trajectory")
def test_report_figures_show_the_analysis_numbers(serial, tmp_path, drawn):
    """``report`` writes and lists all four figures; the network figure's dots are each
    subject's mean E/I per network (network_means, the JSON's numbers, and a plain mean over
    the network's regions) and its contrast panel is network_contrast's; the fit-quality
    bars are the stored test cost terms."""
    from nmmfit.population import report
    from nmmfit.population.analysis import network_means

    figs = drawn
    net = np.array([0, 0, 1, 5, 6, -1])  # Vis Vis SomMot Cont Default none
    labels = ["Calcarine_L", "Calcarine_R", "Precentral_L", "Frontal_Mid_2_L",
              "Precuneus_L", "Thalamus_L"]
    rep = report(serial[0], "syn", out_dir=tmp_path / "rep", covariates=COV, networks=net,
                 labels=labels)
    assert set(rep["figures"]) == {"group_maps", "network_ei", "fit_quality", "trajectory"}
    assert "figures_skipped" not in rep
    for f in rep["figures"].values():
        assert Path(f).read_bytes()[:4] == b"\x89PNG" and Path(f).name in figs
    with ResultsDB(serial[0]) as db:
        subs, ei, _ = db.ei_maps("syn", serial[1]["config_hash"])
        table = db.table("syn", serial[1]["config_hash"])
    nm = network_means(ei, net, "subcortical (no Yeo-7)")
    assert nm["names"] == ["Vis", "SomMot", "Cont", "Default", "subcortical (no Yeo-7)"]
    assert nm["n_regions"] == [2, 1, 1, 1, 1]
    (ax, colls, _, _, _), (axc, ccolls, _, _, ctitle) = figs["syn_ei_networks.png"]
    drawn = {c.get_gid(): c.get_offsets()[:, 1] for c in colls if c.get_gid()}
    assert list(drawn) == [f"network:{n}" for n in nm["names"]]
    for j, name in enumerate(nm["names"]):
        y = np.asarray(drawn[f"network:{name}"], dtype=float)
        np.testing.assert_allclose(y, nm["values"][:, j], rtol=1e-12)
        js = rep["network_means"]["per_subject"][name]  # JSON: None for a NaN mean
        np.testing.assert_allclose(y, [np.nan if js[s] is None else js[s] for s in subs],
                                   rtol=1e-12)
        plain = ei[:, net == nm["index"][j]].mean(axis=1)  # by hand: mean over its regions
        np.testing.assert_allclose(y, plain, rtol=1e-12)
    assert np.isfinite(nm["values"]).sum() >= 4  # (tiny fits: some subjects have no E/I)
    con = rep["contrast"]
    np.testing.assert_allclose(
        [c for c in ccolls if c.get_gid() == "contrast"][0].get_offsets()[:, 1],
        [con["per_subject"][s] for s in subs], rtol=1e-12)
    np.testing.assert_allclose(  # sensory-motor (Vis + SomMot) - association (Cont + Default)
        [con["per_subject"][s] for s in subs], ei[:, :3].mean(1) - ei[:, 3:5].mean(1))
    assert f"mean {con['mean']:+.3f}" in ctitle and f"t({con['nobs'] - 1}) = {con['t']:.2f}" \
        in ctitle and f"p = {con['p']:.3g}" in ctitle and f"n = {con['nobs']}" in ctitle
    # fit quality: bars sorted by total; their heights are the stored terms
    ax, _, patches, texts, title = figs["syn_fit_quality.png"][0]
    order = table.sort_values("test_total", kind="stable")
    n = len(order)
    for i, term in enumerate(("fc_corr", "fc_l1", "fcd_ks")):
        np.testing.assert_allclose([p.get_height() for p in patches[i * n:(i + 1) * n]],
                                   order[f"test_{term}"], rtol=1e-12)
    assert [t.get_text() for t in texts] == [f"{v:.3f}" for v in order["test_total"]]
    assert rep["test_protocol"] in title
    # the E/I map names the regions without a network by what they are
    assert any("subcortical (no Yeo-7)" in t.get_text() for t in figs["syn_ei_maps.png"][0][3])
    assert "n = 4 subjects" in figs["syn_ei_maps.png"][0][4]


def test_trajectory_plot_accepts_string_dtype_covariates(tmp_path):
    """Covariates read as pandas' string dtype (not object) are held at their first level."""
    from nmmfit.plots.population import plot_trajectory

    rng = np.random.default_rng(0)
    age = rng.uniform(8, 90, 30)
    df = pd.DataFrame({"age": age, "sex": pd.array(rng.choice(["F", "M"], 30), dtype="string"),
                       "ei": 2 + 0.01 * age + 0.05 * rng.standard_normal(30)})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        path = plot_trajectory(df, tmp_path / "t.png")
    # the regression curve was drawn, not skipped
    assert not [w for w in seen if "no regression curve" in str(w.message)]
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.warns(UserWarning, match="no regression curve"):  # the skip is visible
        plot_trajectory(df.iloc[:2], tmp_path / "t2.png")


def test_run_config_tells_starts_apart():
    """A stored subject is never returned for another CMA-ES start or start budget."""
    from nmmfit.fit.store import config_hash
    from nmmfit.population import run_config

    base = run_config("quick")
    assert "init" not in base  # DELSSOME's random start: the hashes runs always had
    lin = run_config("quick", init="linear_fc")
    lin240 = run_config("quick", init="linear_fc", init_iter=240)
    hashes = {config_hash(c) for c in (base, lin, lin240)}
    assert len(hashes) == 3
    from nmmfit.fit import PRESETS

    assert run_config("paper")["init"] == {"init": "linear_fc",
                                           "init_iter": PRESETS["paper"].init_iter}
