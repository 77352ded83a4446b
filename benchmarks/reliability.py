"""Reliability: bad input, kill-and-resume and two writers on one store, as a new user meets them.

Every case runs the real console command (``python -m nmmfit.cli ...``) in a fresh process
with a wall-clock limit, on small synthetic inputs written to a temporary folder:

- **bad input**: the command must exit with status 2, print no traceback, and say what is
  wrong in one line that names the offending file, option or value (``clear``); exit 0 on
  bad input is ``silent_wrong``; running past the limit is a ``hang``.
- **silently wrong answers**: commands that must succeed but must not return a stale or
  mismatched result (fewer epochs than stored, changed subject data, permuted EEG channels).
- **kill and resume**: ``nmmfit fit`` and ``nmmfit population fit`` killed (SIGKILL) part way,
  then run again; the resumed result must equal an uninterrupted run's to every digit.
- **concurrency**: two ``nmmfit fit`` processes (seeds 0 and 1) writing one store at once;
  each result must equal that seed's run alone.

Writes ``benchmarks/results/reliability.json``. Run: ``python benchmarks/reliability.py``
(a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

LIMIT_S = 240
TINY_FIT = ["--maps", "m1", "m2", "--popsize", "4", "--mu", "2", "--n-dup", "1",
            "--n-dup-test", "2", "--test-group", "2", "--no-figures", "--json", "--no-progress"]
POP_SET = ["--set", "popsize=6", "mu=3", "n_epochs=2", "duration_s=120.0",
           "test_duration_s=120.0", "burn_in_s=0.0", "warmup_steps=200", "n_dup_train=1",
           "n_dup_val=1", "n_dup_test=2", "test_group=2", "test_dt=0.003"]


def nmmfit(args, cwd, timeout=LIMIT_S):
    """(returncode or 'hang', stdout, stderr) of ``nmmfit ARGS`` in a fresh process."""
    cmd = [sys.executable, "-m", "nmmfit.cli", *map(str, args)]
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "hang", "", ""
    return p.returncode, p.stdout, p.stderr


def write_inputs(d: Path) -> dict:
    """Small inputs: tiny targets (.npz), a 2-subject cohort folder, EEG files, a model."""
    from synthetic import tiny_target
    from test_bad_input import _write_cohort

    from nmmfit.fit.store import Store
    from nmmfit.infer.bilstm import BiLSTMConfig, BiLSTMEstimator

    f = {}
    for k, seed in (("train", 0), ("val", 1), ("test", 2)):
        f[k] = tiny_target(seed=seed, name=k).save(d / f"{k}.npz")
    np.save(d / "plain.npy", np.zeros((6, 6)))
    f["npy"] = d / "plain.npy"
    rng = np.random.default_rng(0)
    coh = _write_cohort(d / "cohort", subjects=("sub-01", "sub-02"))  # the tests' cohort
    f["cohort"] = coh
    (d / "corrupt.db").write_bytes(b"not a database at all" * 50)
    f["corrupt"] = d / "corrupt.db"
    with Store(d / "fitstore.db"):
        pass
    f["fitstore"] = d / "fitstore.db"
    names = ["Fz", "Cz", "Pz", "Oz"]
    x = (1e-6 * rng.standard_normal((40, 4, 16))).astype(np.float32)
    th = np.column_stack([np.linspace(2.6, 9.75, 40), np.linspace(12.5, 75, 40)])
    est = BiLSTMEstimator(BiLSTMConfig(hidden=4, max_epochs=1, threads=1),
                          params=("A_e", "b_e")).fit(x, th, channel_names=names)
    f["model"] = est.save(d / "jr_model.pt")
    (d / "bad_model.pt").write_bytes(b"not a model")
    f["bad_model"] = d / "bad_model.pt"
    for key, eeg, ch in (("eeg_ok", x[:5], names), ("eeg_uv", x[:5] * 1e6, names),
                         ("eeg_renamed", x[:5], ["Fz", "Cz", "Pz", "O1"]),
                         ("eeg_perm", x[:5, [3, 1, 0, 2]], ["Oz", "Cz", "Fz", "Pz"]),
                         ("eeg_flat", np.zeros((722, 10)), ["a"] * 10)):
        np.savez(d / f"{key}.npz", eeg=eeg, channels=np.array(ch))
        f[key] = d / f"{key}.npz"
    np.savez(d / "eeg_nokeys.npz", x=np.zeros((2, 3, 4)))
    f["eeg_nokeys"] = d / "eeg_nokeys.npz"
    return f


def bad_input_cases(f: dict, d: Path) -> list[dict]:
    """(label, argv, a string the one-line message must contain)."""
    fit = ["fit", "--train", f["train"], "--val", f["val"], "--test", f["test"]]
    sim = ["simulate", "--group", "train706", "--duration", "7.2", "--burn-in", "0",
           "--warmup-steps", "10", "--n-dup", "1", "--no-progress"]
    return [
        ("population fit --n-workers -1", ["population", "fit", f["cohort"], "--n-workers", "-1",
                                           "--store", d / "w1.db", "--no-progress"], "-1"),
        ("population fit --n-workers 0", ["population", "fit", f["cohort"], "--n-workers", "0",
                                          "--store", d / "w0.db", "--no-progress"], "got 0"),
        ("population fit --timeout -1", ["population", "fit", f["cohort"], "--timeout", "-1",
                                         "--store", d / "t.db", "--no-progress"], "--timeout"),
        ("simulate --wEE -1", [*sim, "--wEE", "-1"], "wEE"),
        ("simulate --G -0.5", [*sim, "--G", "-0.5"], "G = "),
        ("simulate --G nan", [*sim, "--G", "nan"], "G = "),
        ("simulate --G inf", [*sim, "--G", "inf"], "G = "),
        ("population status, missing store", ["population", "status", "--store",
                                              d / "missing" / "pop.db"], "pop.db"),
        ("population report, missing store", ["population", "report", "--store",
                                              d / "missing" / "pop.db"], "pop.db"),
        ("population status, corrupt store", ["population", "status", "--store", f["corrupt"]],
         "corrupt.db"),
        ("population status, a fit store", ["population", "status", "--store", f["fitstore"]],
         "population"),
        ("fit, corrupt store", [*fit, *TINY_FIT, "--epochs", "1", "--store", f["corrupt"]],
         "corrupt.db"),
        ("fit --train FILE.npy", ["fit", "--train", f["npy"], "--epochs", "1", "--store",
                                  d / "n.db"], "plain.npy"),
        ("fit --maps nosuch", [*fit, "--maps", "nosuch", "--epochs", "1", "--store",
                               d / "m.db"], "nosuch"),
        ("fit --preset nope", ["fit", "--preset", "nope", "--store", d / "p.db"], "nope"),
        ("jr infer, .npz without keys", ["jr", "infer", "--data", f["eeg_nokeys"], "--model",
                                         f["model"]], "lacks"),
        ("jr infer, 2-D eeg", ["jr", "infer", "--data", f["eeg_flat"], "--model", f["model"]],
         "(722, 10)"),
        ("jr infer, missing model", ["jr", "infer", "--data", f["eeg_ok"], "--model",
                                     d / "nomodel.pt"], "nomodel.pt"),
        ("jr infer, corrupt model", ["jr", "infer", "--data", f["eeg_ok"], "--model",
                                     f["bad_model"]], "bad_model.pt"),
        ("jr infer, EEG in microvolts", ["jr", "infer", "--data", f["eeg_uv"], "--model",
                                         f["model"]], "volts"),
        ("jr infer, renamed channel", ["jr", "infer", "--data", f["eeg_renamed"], "--model",
                                       f["model"]], "O1"),
    ]


def run_bad_inputs(f, d) -> list[dict]:
    rows = []
    for label, argv, token in bad_input_cases(f, d):
        t0 = time.perf_counter()
        rc, out, err = nmmfit(argv, cwd=d)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        clear = (rc == 2 and "Traceback" not in err and len(lines) >= 1
                 and token in lines[-1] and lines[-1].startswith("error"))
        rows.append({"case": label, "returncode": rc, "clear": bool(clear),
                     "silent_wrong": rc == 0, "hang": rc == "hang",
                     "message": lines[-1][:300] if lines else "", "wall_s":
                     round(time.perf_counter() - t0, 2)})
        print(f"  {'ok ' if clear else 'BAD'} {label}: {rows[-1]['message'][:100]}",
              file=sys.stderr, flush=True)
    return rows


def _fit(f, store, epochs, seed=0):
    rc, out, err = nmmfit(["fit", "--train", f["train"], "--val", f["val"], "--test",
                           f["test"], *TINY_FIT, "--epochs", str(epochs), "--seed", str(seed),
                           "--store", store], cwd=store.parent)
    if rc != 0:
        raise RuntimeError(f"fit failed ({rc}): {err[-500:]}")
    return json.loads(out)


def _key(s: dict) -> dict:
    return {k: s[k] for k in ("run_id", "n_epochs", "best_x", "test_cost", "val_total",
                              "train_best_total")}


def _pop(f, store, extra=()):
    rc, out, err = nmmfit(["population", "fit", f["cohort"], "--executor", "serial",
                           "--store", store, "--no-progress", "--json", *POP_SET, *extra],
                          cwd=store.parent)
    if rc != 0:
        raise RuntimeError(f"population fit failed ({rc}): {err[-500:]}")
    return json.loads(out)


def _pop_table(store) -> dict:
    con = sqlite3.connect(store)
    rows = con.execute("SELECT subject, summary FROM population WHERE state='done' "
                       "ORDER BY subject").fetchall()
    con.close()
    out = {}
    for sub, summ in rows:
        s = json.loads(summ)
        out[sub] = {k: s.get(k) for k in ("test_cost", "best_x", "ei_map")}
    return out


def _kill_when(cmd, cwd, ready, timeout=LIMIT_S) -> bool:
    """Start ``nmmfit CMD``, SIGKILL it once ``ready()`` is true; False if it ended first."""
    p = subprocess.Popen([sys.executable, "-m", "nmmfit.cli", *map(str, cmd)], cwd=cwd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while p.poll() is None and time.monotonic() - t0 < timeout:
        if ready():
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            return True
        time.sleep(0.2)
    p.kill()
    p.wait()
    return False


def _count(store, sql) -> int:
    if not Path(store).exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
        n = con.execute(sql).fetchone()[0]
        con.close()
        return int(n)
    except sqlite3.Error:
        return 0


def run_silent_and_resume(f, d) -> tuple[list, list, dict]:
    silent, resume = [], []
    # fewer epochs than stored must give the N-epoch result, never the longer one
    three = _fit(f, d / "e.db", 3)
    two_after = _fit(f, d / "e.db", 2)
    two_fresh = _fit(f, d / "e2.db", 2)
    ok = two_after["n_epochs"] == 2 and _key(two_after) == _key(two_fresh)
    silent.append({"case": "fit --epochs 2 on a store holding 3 epochs", "correct": bool(ok),
                   "n_epochs_returned": two_after["n_epochs"],
                   "n_epochs_stored": three["n_epochs"]})
    # permuted EEG channels give the same predictions as the original order
    rc1, _, _ = nmmfit(["jr", "infer", "--data", f["eeg_ok"], "--model", f["model"], "--out",
                        d / "p1.json"], cwd=d)
    rc2, _, _ = nmmfit(["jr", "infer", "--data", f["eeg_perm"], "--model", f["model"], "--out",
                        d / "p2.json"], cwd=d)
    same = (rc1 == rc2 == 0 and json.loads((d / "p1.json").read_text())["predictions"]
            == json.loads((d / "p2.json").read_text())["predictions"])
    silent.append({"case": "jr infer with permuted, named channels", "correct": bool(same)})

    # kill and resume: nmmfit fit
    ref = _fit(f, d / "ref.db", 6)
    store = d / "killed.db"
    cmd = ["fit", "--train", f["train"], "--val", f["val"], "--test", f["test"], *TINY_FIT,
           "--epochs", "6", "--store", store]
    killed = _kill_when(cmd, d, lambda: _count(
        store, "SELECT COUNT(DISTINCT epoch) FROM evaluations") >= 2)
    res = _fit(f, store, 6)
    resume.append({"case": "nmmfit fit killed after >= 2 of 6 epochs, then re-run",
                   "killed": killed, "identical": bool(_key(res) == _key(ref))})

    # kill and resume: population fit (serial)
    pref = d / "pref.db"
    _pop(f, pref)
    ref_tab = _pop_table(pref)
    pk = d / "pkilled.db"
    killed = _kill_when(["population", "fit", f["cohort"], "--executor", "serial", "--store",
                         pk, "--no-progress", *POP_SET], d,
                        lambda: _count(pk, "SELECT COUNT(*) FROM population WHERE "
                                           "state='done'") >= 1)
    status_rc, status_out, _ = nmmfit(["population", "status", "--store", pk, "--json"],
                                      cwd=d)
    _pop(f, pk)
    st = json.loads(status_out) if status_rc == 0 else {}
    resume.append({"case": "population fit killed after its first subject, then re-run",
                   "killed": killed, "identical": bool(_pop_table(pk) == ref_tab),
                   "status_after_kill": st,
                   "status_running_after_kill": st.get("running"),
                   "status_interrupted_after_kill": st.get("interrupted")})

    # changed subject data: the stored result must not be returned
    bold = f["cohort"] / "sub-02" / "func" / "sub-02_task-rest_run-1_bold.npy"
    arr = np.load(bold)
    np.save(bold, arr * 1.5 + 0.1)
    again = _pop(f, pref)
    np.save(bold, arr)
    silent.append({"case": "population fit after a subject's BOLD changed",
                   "correct": "sub-02" in again.get("stale", []),
                   "stale": again.get("stale"), "skipped": again.get("skipped")})

    # two writers on one store
    alone1 = _fit(f, d / "alone1.db", 4, seed=1)
    alone0 = _fit(f, d / "alone0.db", 4, seed=0)
    shared = d / "shared.db"
    procs = [subprocess.Popen([sys.executable, "-m", "nmmfit.cli", "fit", "--train",
                               str(f["train"]), "--val", str(f["val"]), "--test",
                               str(f["test"]), *TINY_FIT, "--epochs", "4", "--seed", str(s),
                               "--store", str(shared)], cwd=d, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s in (0, 1)]
    outs = [p.communicate(timeout=LIMIT_S) for p in procs]
    rcs = [p.returncode for p in procs]
    same = rcs == [0, 0] and (_key(json.loads(outs[0][0])) == _key(alone0)
                              and _key(json.loads(outs[1][0])) == _key(alone1))
    conc = {"case": "two nmmfit fit processes (seeds 0 and 1) on one store at once",
            "returncodes": rcs, "identical_to_alone": bool(same),
            "stderr_tail": [o[1][-300:] for o in outs] if rcs != [0, 0] else None}
    return silent, resume, conc


def main() -> int:
    import nmmfit

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nmmfit_reliability_") as tmp:
        d = Path(tmp)
        f = write_inputs(d)
        bad = run_bad_inputs(f, d)
        silent, resume, conc = run_silent_and_resume(f, d)
        created = (d / "missing").exists()
    out = {
        "benchmark": "reliability",
        "machine": {"python": platform.python_version(), "nmmfit": nmmfit.__version__},
        "limit_s": LIMIT_S,
        "bad_input_cases": len(bad),
        "bad_input_clear": int(sum(r["clear"] for r in bad)),
        "resume_cases": len(resume),
        "resume_identical": int(sum(r["identical"] for r in resume)),
        "silent_wrong": int(sum(r["silent_wrong"] for r in bad)
                            + sum(not r["correct"] for r in silent)),
        "hangs": int(sum(r["hang"] for r in bad)),
        "status_after_kill_says_running": bool(any(r.get("status_running_after_kill")
                                                   for r in resume)),
        "read_only_commands_created_files": bool(created),
        "concurrency": conc,
        "bad_input": bad, "silent_wrong_checks": silent, "resume": resume,
        "wall_s": time.perf_counter() - t0,
    }
    dest = HERE / "results" / "reliability.json"
    from nmmfit.cli import strict_json

    dest.write_text(strict_json(out, indent=1))
    print(f"bad input {out['bad_input_clear']}/{out['bad_input_cases']} clear, resume "
          f"{out['resume_identical']}/{out['resume_cases']} identical, silent_wrong "
          f"{out['silent_wrong']}, hangs {out['hangs']}, concurrency "
          f"{conc['identical_to_alone']}; wrote {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
