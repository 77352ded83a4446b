"""Bad input, stale results and stray files (issue 19): every case gets a clear error that
names the offending file, array or value -- or the right answer -- never a hang, a traceback
or a silently wrong result.

Each test here failed on the code before the fix it covers.
"""

import json
import os
import sqlite3
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from synthetic import tiny_target

from nmmfit.cli import main
from nmmfit.population import Cohort, ResultsDB, SchedulerError, run_cohort

#: a tiny protocol (see tests/test_fit_protocol.py)
TINY = dict(popsize=6, mu=3, n_epochs=3, duration_s=43.2, test_duration_s=43.2,
            burn_in_s=0.0, warmup_steps=200,
            n_dup_train=2, n_dup_val=2, n_dup_test=4, test_group=2, test_dt=0.003)
#: simulated seconds of a directory cohort (TR 2 s: the default FCD window is 30 frames)
DIR_TINY = {**TINY, "duration_s": 120.0, "test_duration_s": 120.0}


def _write_cohort(root: Path, subjects=("sub-01", "sub-02")) -> Path:
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
        mix = rng.standard_normal((6, 6)) * 0.5 + np.eye(6)
        np.save(d / f"{s}_task-rest_run-1_bold.npy", mix @ rng.standard_normal((6, 120)))
        rows.append(f"{s}\t{20 + 10 * i}\t{'FM'[i % 2]}")
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    return root


# ------------------------------------------------------------- 1. no hang on no workers


@pytest.mark.parametrize("n", [-1, 0])
def test_non_positive_worker_count_is_rejected(tmp_path, capsys, n):
    c = Cohort.from_targets({"s0": tiny_target(seed=0)}, name="syn")
    with pytest.raises(ValueError, match=rf"n_workers must be a positive .*got {n}"):
        run_cohort(c, n_workers=n, store=tmp_path / "a.db", **TINY)
    d = _write_cohort(tmp_path / "cohort")
    t0 = time.perf_counter()
    assert main(["population", "fit", str(d), "--n-workers", str(n), "--store",
                 str(tmp_path / "b.db"), "--no-progress"]) == 2
    assert f"got {n}" in capsys.readouterr().err and time.perf_counter() - t0 < 30
    with ResultsDB(tmp_path / "b.db") as db:  # nothing left "running"
        assert db.attempts("mini") == []


def test_negative_timeout_is_a_range_error(tmp_path, capsys):
    d = _write_cohort(tmp_path / "cohort")
    assert main(["population", "fit", str(d), "--timeout", "-1", "--store",
                 str(tmp_path / "t.db"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--timeout" in err and "-1" in err and "Traceback" not in err


def test_scheduler_without_workers_does_not_hang(tmp_path):
    from distributed import LocalCluster

    c = Cohort.from_targets({"s0": tiny_target(seed=0)}, name="syn")
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        t0 = time.perf_counter()
        with pytest.raises(SchedulerError, match="has no workers"):
            run_cohort(c, scheduler=cluster.scheduler_address, store=tmp_path / "w.db",
                       connect_timeout=2, **TINY)
        assert time.perf_counter() - t0 < 20
    with ResultsDB(tmp_path / "w.db") as db:
        assert not [r for r in db.attempts("syn") if r["state"] == "running"]


# ------------------------------------------------ 2. fewer epochs never give a longer run


def test_fewer_epochs_than_stored_give_the_shorter_run(tmp_path):
    from nmmfit.fit import fit

    tr, va, te = (tiny_target(seed=s, name=n) for s, n in ((0, "train"), (1, "val"),
                                                             (2, "test")))

    def run(store, n_epochs):
        return fit(tr, va, te, preset="quick", maps=("m1", "m2"), store=store, seed=3,
                   **{**TINY, "n_epochs": n_epochs})

    shared = tmp_path / "shared.db"
    longer = run(shared, 4)
    short = run(shared, 2)  # the same store holds the 4-epoch run
    fresh = run(tmp_path / "fresh.db", 2)
    assert len(short.train.epochs) == 2 and short.summary()["n_epochs"] == 2
    assert [e.epoch for e in short.train.epochs] == [0, 1]
    np.testing.assert_array_equal(short.val_total, fresh.val_total)
    np.testing.assert_array_equal(short.best_x, fresh.best_x)
    assert short.test_cost == fresh.test_cost
    # and the longer run is still there, unchanged, when asked for again
    again = run(shared, 4)
    assert len(again.train.epochs) == 4
    np.testing.assert_array_equal(again.val_total, longer.val_total)
    assert again.test_cost == longer.test_cost


# ----------------------------------------------------- 3. stale population results


def test_changed_input_data_are_fitted_again(tmp_path):
    d = _write_cohort(tmp_path / "cohort", subjects=("sub-01",))
    db = tmp_path / "pop.db"
    first = run_cohort(Cohort.load(d), executor="serial", store=db, **DIR_TINY)
    assert first["done"] == ["sub-01"]
    with ResultsDB(db) as r:
        old = r.results("mini", first["config_hash"])["sub-01"]["summary"]["target"]
    same = run_cohort(Cohort.load(d), executor="serial", store=db, **DIR_TINY)
    assert same["skipped"] == ["sub-01"] and not same["done"] and not same["stale"]
    # the subject's BOLD file changes: its stored result must not be returned as finished
    f = d / "sub-01" / "func" / "sub-01_task-rest_run-1_bold.npy"
    np.save(f, np.load(f)[:, ::-1].copy())
    again = run_cohort(Cohort.load(d), executor="serial", store=db, **DIR_TINY)
    assert again["done"] == ["sub-01"] and again["stale"] == ["sub-01"]
    assert not again["skipped"]
    with ResultsDB(db) as r:
        rows = r.attempts("mini", first["config_hash"])
        new = r.results("mini", first["config_hash"])["sub-01"]["summary"]["target"]
        st = r.status("mini", first["config_hash"])
    assert [x["state"] for x in rows] == ["stale", "done"]
    assert "input data of sub-01 changed" in rows[0]["error"]
    assert new["sha256"] != old["sha256"] and st["finished"] == ["sub-01"]
    # a row written before input fingerprints were kept is checked against the fitted
    # target's fingerprint once (unchanged data: kept, and the fingerprint recorded)
    con = sqlite3.connect(db)
    con.execute("UPDATE population SET input_hash=NULL WHERE state='done'")
    con.commit()
    con.close()
    legacy = run_cohort(Cohort.load(d), executor="serial", store=db, **DIR_TINY)
    assert legacy["skipped"] == ["sub-01"] and not legacy["stale"]
    with ResultsDB(db) as r:
        assert r.attempts("mini")[-1]["input_hash"] is not None


def test_cli_fit_names_the_refitted_subject(tmp_path, capsys):
    d = _write_cohort(tmp_path / "cohort", subjects=("sub-01",))
    db = tmp_path / "cli.db"
    sets = [f"{k}={v}" for k, v in DIR_TINY.items()]
    args = ["population", "fit", str(d), "--executor", "serial", "--store", str(db),
            "--no-progress", "--set", *sets]
    assert main(args) == 0
    capsys.readouterr()
    np.savetxt(d / "sub-01" / "sc.csv", np.loadtxt(d / "sub-01" / "sc.csv",
                                                     delimiter=",") * 2, delimiter=",")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 fitted, 0 already finished" in out and "fitted again: sub-01" in out


# -------------------------------------------------------- 5. impossible parameters


@pytest.mark.parametrize("name,value", [("wEE", -1.0), ("wEI", -0.5), ("G", -1.0),
                                        ("G", np.nan), ("G", np.inf), ("wEE", np.nan),
                                        ("sigma", -0.001), ("sigma", np.inf)])
def test_simulate_rejects_impossible_parameters(small_sc, name, value):
    from nmmfit.sim import SimConfig, simulate

    p = {"wEE": 3.0, "wEI": 2.0, "G": 1.0, "sigma": 0.005, name: value}
    with pytest.raises(ValueError, match=rf"^{name} = {value:g} at index .*must be finite "
                                         "and >= 0"):
        simulate(small_sc, p["wEE"], p["wEI"], p["G"], p["sigma"],
                 config=SimConfig(duration_s=7.2, burn_in_s=0.0, warmup_steps=10))


def test_simulate_names_the_bad_region(small_sc):
    from nmmfit.sim.common import FICBatch

    wee = np.full(8, 3.0)
    wee[5] = -0.2
    with pytest.raises(ValueError, match=r"wEE = -0.2 at index \(0, 5\) of shape \(1, 8\)"):
        FICBatch.from_values(wee, 2.0, 1.0, 0.005, 8)
    assert FICBatch.from_values(3.0, 2.0, 0.0, 0.0, 8).size == 1  # G = 0, sigma = 0: allowed


@pytest.mark.parametrize("flag,value", [("--wEE", "-1"), ("--G", "-0.5"), ("--G", "nan"),
                                        ("--G", "inf")])
def test_cli_simulate_rejects_impossible_parameters(capsys, flag, value):
    assert main(["simulate", "--group", "train706", "--duration", "7.2", "--burn-in", "0",
                 "--warmup-steps", "10", "--n-dup", "1", "--no-progress", flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag[2:]} = ") and "must be finite and >= 0" in err


# ------------------------------------------------------- 6. numeric header rows


@pytest.mark.parametrize("header", [[1, 2, 3, 4, 5], [0, 1, 2, 3, 4],
                                    [1001, 1002, 2001, 2002, 3005]])
def test_numeric_header_row_is_not_a_frame(tmp_path, header):
    from nmmfit.data.user import load_bold

    bold = np.random.default_rng(1).standard_normal((5, 40))  # [N, T]
    f = tmp_path / "tn.csv"
    f.write_text(",".join(map(str, header)) + "\n"
                 + "\n".join(",".join(f"{v:.6f}" for v in row) for row in bold.T) + "\n")
    with pytest.warns(UserWarning, match=r"tn\.csv: the first row .* header"):
        got = load_bold(f, n_regions=5)
    assert got.shape == (5, 40)
    np.testing.assert_allclose(got, bold, atol=1e-6)


def test_plain_numeric_tables_keep_their_first_row(tmp_path):
    from nmmfit.data.user import load_bold, load_sc

    bold = np.random.default_rng(2).standard_normal((5, 40))
    np.savetxt(tmp_path / "b.csv", bold.T, delimiter=",")
    counts = np.array([[0, 3, 9], [3, 0, 4], [9, 4, 0]])  # whole-number SC (streamlines)
    np.savetxt(tmp_path / "sc.csv", counts, delimiter=",", fmt="%d")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(load_bold(tmp_path / "b.csv", n_regions=5), bold)
        np.testing.assert_array_equal(load_sc(tmp_path / "sc.csv"), counts)


# --------------------------------------------------------- 7. no stray files


@pytest.mark.parametrize("command", ["status", "report"])
def test_read_only_commands_create_nothing(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "missing" / "pop.db"
    assert main(["population", command, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert str(store) in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no store, no folder, nothing in the cwd


def test_population_fit_writes_only_its_store(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = _write_cohort(tmp_path / "cohort", subjects=("sub-01",))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    db = out_dir / "pop.db"
    sets = [f"{k}={v}" for k, v in DIR_TINY.items()]
    assert main(["population", "fit", str(d), "--executor", "serial", "--store", str(db),
                 "--no-progress", "--set", *sets]) == 0
    assert [p.name for p in out_dir.iterdir()] == ["pop.db"]
    capsys.readouterr()
    # report still finds the covariates (kept in the store)
    assert main(["population", "report", "--store", str(db), "--out", str(tmp_path / "rep"),
                 "--no-figures", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    import pandas as pd

    assert "age" in pd.read_csv(rep["exports"]["subjects_csv"]).columns


def test_npe_writes_no_logs_in_the_working_folder(tmp_path, monkeypatch):
    from nmmfit.infer.npe import NPEConfig, NPEstimator

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 2, 16)).astype(np.float32)
    th = np.column_stack([rng.uniform(3.0, 3.5, 60), rng.uniform(40.0, 60.0, 60)])
    cfg = NPEConfig(max_epochs=1, stop_after_epochs=1, n_samples=10, batch_size=30, threads=1,
                    transforms=1, hidden=8, n_features=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        NPEstimator(cfg, params=("A_e", "b_i")).fit(x, th)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------- must improve: clear one-line errors


@pytest.mark.parametrize("content", [b"not a database at all, just text" * 40, b""])
def test_corrupt_store_is_one_clear_line(tmp_path, capsys, content):
    from nmmfit.fit.store import Store

    bad = tmp_path / "bad.db"
    bad.write_bytes(content or b"SQLite format 3\x00" + b"\x01" * 200)  # truncated header
    with pytest.raises(ValueError, match=r"bad\.db is not a readable SQLite store"):
        Store(bad)
    with pytest.raises(ValueError, match=r"bad\.db is not a readable SQLite store"):
        ResultsDB(bad)
    assert main(["population", "status", "--store", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err


def test_store_of_another_kind_is_named(tmp_path, capsys):
    from nmmfit.fit.store import Store

    with Store(tmp_path / "fit.db"):
        pass
    assert main(["population", "status", "--store", str(tmp_path / "fit.db")]) == 2
    assert "without a 'population' table" in capsys.readouterr().err


def test_semicolon_separated_sc(tmp_path):
    from nmmfit.data.user import load_sc

    sc = np.array([[0, 0.5, 0.25], [0.5, 0, 0.125], [0.25, 0.125, 0]])
    (tmp_path / "sc.csv").write_text("\n".join(";".join(map(str, r)) for r in sc))
    np.testing.assert_array_equal(load_sc(tmp_path / "sc.csv"), sc)
    (tmp_path / "eu.csv").write_text("0;0,5\n0,5;0\n")
    with pytest.raises(ValueError, match=r"eu\.csv: field .0,5. has a decimal comma"):
        load_sc(tmp_path / "eu.csv")


@pytest.mark.parametrize("suffix,content", [(".npy", b"garbage"), (".npy", None),
                                            (".mat", b"garbage"), (".npz", b"PK\x03\x04xx")])
def test_corrupt_array_files_are_named(tmp_path, suffix, content):
    from nmmfit.data.user import load_bold, load_sc

    f = tmp_path / f"data{suffix}"
    if content is None:  # a truncated .npy
        np.save(f, np.ones((50, 50)))
        f.write_bytes(f.read_bytes()[:300])
    else:
        f.write_bytes(content)
    for loader in (load_sc, load_bold):
        with pytest.raises(ValueError, match=rf"data\{suffix}"):
            loader(f)


def test_jr_infer_input_errors_are_one_line(tmp_path, capsys):
    np.savez(tmp_path / "nokeys.npz", x=np.zeros((2, 3, 4)))
    np.savez(tmp_path / "flat.npz", eeg=np.zeros((722, 10)), channels=np.array(["a"] * 10))
    (tmp_path / "model.pt").write_bytes(b"not a model")
    ok = tmp_path / "ok.npz"
    np.savez(ok, eeg=np.zeros((2, 3, 40)), channels=np.array(["a", "b", "c"]))
    cases = [(tmp_path / "nokeys.npz", tmp_path / "m.pt", "lacks ['eeg', 'channels']"),
             (tmp_path / "flat.npz", tmp_path / "m.pt", "has shape (722, 10)"),
             (tmp_path / "nothere.npz", tmp_path / "m.pt", "nothere.npz does not exist"),
             (ok, tmp_path / "nomodel.pt", "nomodel.pt does not exist"),
             (ok, tmp_path / "model.pt", "model.pt cannot be read")]
    for data, model, msg in cases:
        assert main(["jr", "infer", "--data", str(data), "--model", str(model)]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, err


def test_json_output_is_strict():
    from nmmfit.cli import strict_json

    text = strict_json({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float64(np.nan),
                        "d": np.array([1.0, np.nan]), "e": Path("x")})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": None, "d": [1.0, None],
                                "e": "x"}


def test_jr_infer_matches_channel_names_and_refuses_microvolts(tmp_path, capsys):
    """Issue 19, item 4: permuted channels are reordered by name, renamed ones and EEG in
    microvolts are refused with a message naming the channels / the scale."""
    from nmmfit.infer.bilstm import BiLSTMConfig, BiLSTMEstimator

    rng = np.random.default_rng(0)
    names = ["Fz", "Cz", "Pz", "Oz"]
    x = (1e-6 * rng.standard_normal((40, 4, 16))).astype(np.float32)
    x[:, 0] += 1e-6 * np.linspace(0, 1, 40)[:, None].astype(np.float32)
    th = np.column_stack([np.linspace(2.6, 9.75, 40), np.linspace(12.5, 75, 40)])
    est = BiLSTMEstimator(BiLSTMConfig(hidden=4, max_epochs=1, threads=1),
                          params=("A_e", "b_e")).fit(x, th, channel_names=names)
    model = est.save(tmp_path / "m.pt")

    def run(eeg, chans, out=None):
        f = tmp_path / "d.npz"
        np.savez(f, eeg=eeg, channels=np.array(chans))
        extra = ["--out", str(out)] if out else []
        return main(["jr", "infer", "--data", str(f), "--model", str(model), *extra])

    assert run(x[:6], names, tmp_path / "a.json") == 0
    perm = [3, 1, 0, 2]
    assert run(x[:6, perm], [names[i] for i in perm], tmp_path / "b.json") == 0
    a = json.loads((tmp_path / "a.json").read_text())["predictions"]
    b = json.loads((tmp_path / "b.json").read_text())["predictions"]
    assert a == b
    capsys.readouterr()
    assert run(x[:6], ["Fz", "Cz", "Pz", "O1"]) == 2
    err = capsys.readouterr().err
    assert "missing ['Oz']" in err and "['O1']" in err and err.count("\n") == 1, err
    assert run(x[:6] * 1e6, names) == 2
    err = capsys.readouterr().err
    assert "times the training data's" in err and "volts" in err and err.count("\n") == 1, err


def test_status_after_a_killed_run_says_interrupted_not_running(tmp_path):
    """Issue 19: a "running" row whose driving process stopped beating is interrupted."""
    from nmmfit.population.results import HEARTBEAT_STALE_S
    from nmmfit.population.runner import _Heartbeat

    db = ResultsDB(tmp_path / "p.db")
    t0 = time.time()
    db.start("c", "s1", "h", owner="host:1:aa")
    db.start("c", "s2", "h")  # a row written without an owner (older stores): no heartbeat
    st = db.status("c", "h", now=t0 + 1)
    assert st["running"] == ["s1", "s2"] and st["interrupted"] == []
    late = t0 + HEARTBEAT_STALE_S + 10
    st = db.status("c", "h", now=late)
    assert st["running"] == ["s2"] and st["interrupted"] == ["s1"]
    assert st["no_heartbeat_s"]["s1"] > HEARTBEAT_STALE_S
    assert db.beat("host:1:aa", now=late - 1) == 1  # alive again
    assert db.status("c", "h", now=late)["running"] == ["s1", "s2"]
    db.conn.commit()
    # the run's heartbeat thread keeps its rows fresh, on its own connection
    before = db.attempts("c", "h")[0]["heartbeat_at"]
    hb = _Heartbeat(db.path, "host:1:aa", interval=0.05)
    time.sleep(0.5)
    hb.stop()
    after = db.attempts("c", "h")[0]["heartbeat_at"]
    assert after > time.time() - 5 and after != before
    # on this host a dead owner process is noticed at once, without waiting for the beat
    import socket
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    dead = f"{socket.gethostname()}:{p.pid}:bb"
    db.start("c", "s3", "h", owner=dead)
    st = db.status("c", "h")
    assert "s3" in st["interrupted"] and "s3" not in st["running"]
    db.start("c", "s4", "h", owner=f"{socket.gethostname()}:{os.getpid()}:cc")  # alive
    assert "s4" in db.status("c", "h")["running"]
    db.close()


def test_fit_train_with_a_plain_npy_says_what_it_expects(tmp_path, capsys):
    np.save(tmp_path / "sc.npy", np.zeros((6, 6)))
    assert main(["fit", "--train", str(tmp_path / "sc.npy"), "--store",
                 str(tmp_path / "f.db")]) == 2
    err = capsys.readouterr().err
    assert "sc.npy holds one array of shape (6, 6)" in err and "Target.save" in err
    assert err.count("\n") == 1
    assert main(["fit", "--train", str(tmp_path / "none.npz"), "--store",
                 str(tmp_path / "f.db")]) == 2
    assert "none.npz does not exist" in capsys.readouterr().err


def test_from_bold_names_a_transposed_run_and_a_tr_in_milliseconds():
    from nmmfit.data.target import Target

    rng = np.random.default_rng(0)
    a = rng.random((6, 6))
    sc = (a + a.T) / 2
    np.fill_diagonal(sc, 0)
    bold = rng.standard_normal((6, 200))
    with pytest.raises(ValueError, match=r"bold\[0\] has shape \(200, 6\), which looks "
                                         r"transposed.*bold\.T"):
        Target.from_bold(sc, [bold.T], tr=0.72)
    with pytest.raises(ValueError, match=r"TR 720 s is 0 frame.*tr=720"):
        Target.from_bold(sc, [bold], tr=720.0)
    with pytest.raises(ValueError, match=r"TR 100 s is 1 frame"):
        Target.from_bold(sc, [bold], tr=100.0)
    assert Target.from_bold(sc, [bold], tr=0.72).n_regions == 6


def test_fit_with_an_unknown_map_lists_the_targets_maps(tmp_path, capsys):
    t = tiny_target(seed=0, name="train")
    t.save(tmp_path / "train.npz")
    assert main(["fit", "--train", str(tmp_path / "train.npz"), "--maps", "nosuch",
                 "--epochs", "1", "--store", str(tmp_path / "f.db")]) == 2
    err = capsys.readouterr().err
    assert "maps ['nosuch'] are not in target 'train' (has ['m1', 'm2'])" in err
    assert err.count("\n") == 1
