"""The gallery scripts in examples/ run end to end with their smoke settings.

Each script runs as ``__main__`` (runpy, in this process, so that the five share imports and
compiled kernels) with ``--smoke --out <tmp>``; the assertions check what it wrote and
printed. Example 01 runs with ``NMMFIT_EXAMPLES_SMOKE=1`` instead of ``--smoke`` and without
``--out``, from a temporary working directory, to check the environment switch and the
default output folder.
"""

from __future__ import annotations

import ast
import json
import math
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))


def _run(name: str, out: Path, monkeypatch, capsys, args=None) -> tuple[dict, str]:
    """Run examples/<name>.py with ``args`` (default --smoke --out <out>); (its summary.json
    in ``out``, printed text)."""
    args = ["--smoke", "--out", str(out)] if args is None else args
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / f"{name}.py"), *args])
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["example"] == name and summary["smoke"] is True
    return summary, printed


def _finite(*values) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def test_five_examples_with_docstrings_smoke_switch_and_public_imports():
    names = [p.stem for p in SCRIPTS]
    assert names == ["01_simulate_and_score", "02_fit_bundled_group", "03_fit_your_own_cohort",
                     "04_population_study", "05_eeg_erp_and_inference"]
    for path in SCRIPTS:
        tree = ast.parse(path.read_text())
        doc = ast.get_docstring(tree)
        assert doc and len(doc.split()) > 80, path.name  # prose, not a one-liner
        src = path.read_text()
        assert "--smoke" in src and "NMMFIT_EXAMPLES_SMOKE" in src and "--out" in src
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        nm = {m for m in mods if m and m.split(".")[0] == "nmmfit"}
        assert nm, path.name
        private = [m for m in nm if any(part.startswith("_") for part in m.split("."))]
        assert not private, (path.name, private)


def test_01_simulate_and_score_env_switch_and_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NMMFIT_EXAMPLES_SMOKE", "1")
    out = tmp_path / "runs" / "examples" / "01_simulate_and_score"
    s, printed = _run("01_simulate_and_score", out, monkeypatch, capsys, args=[])
    assert s["bold_shape"] == [4, 1, 100, 300]
    valid = [r for r in s["sets"] if r["valid"]]
    assert len(valid) >= 2
    for r in valid:
        assert _finite(r["fc_corr"], r["fc_l1"], r["fcd_ks"], r["total"], r["ei_mean"])
        assert r["total"] == pytest.approx(r["fc_corr"] + r["fc_l1"] + r["fcd_ks"])
        assert 0 < r["total"] < 3
    assert set(s["ei_by_network"]) == {"Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic",
                                       "Cont", "Default"}
    assert all(_finite(v) and v > 0 for v in s["ei_by_network"].values())
    assert s["ei_by_network"]["Vis"] > s["ei_by_network"]["Limbic"]  # wEI follows myelin
    assert (out / "sim.nc").is_file() and (out / "target.nc").is_file()
    assert "7Networks_LH_Vis_1" in printed and "read back unchanged" in printed


def test_02_fit_bundled_group(tmp_path, monkeypatch, capsys):
    s, printed = _run("02_fit_bundled_group", tmp_path, monkeypatch, capsys)
    tc = s["test_cost"]
    assert set(tc) == {"fc_corr", "fc_l1", "fcd_ks", "total"}
    assert _finite(*tc.values(), s["best_val_cost"], s["ei_mean"])
    assert tc["total"] < 5  # a valid candidate was tested, not the sentinel
    assert "Zhang et al. 2024" in printed and "0.572" in printed
    assert (tmp_path / "fit.nc").is_file() and (tmp_path / "fit.db").is_file()
    assert sorted(Path(p).name for p in s["figures"]) == sorted(
        f"fit_{k}.png" for k in ("cost", "fc", "fcd", "maps", "ei"))
    assert all(Path(p).stat().st_size > 10_000 for p in s["figures"])


def test_03_fit_your_own_cohort(tmp_path, monkeypatch, capsys):
    s, printed = _run("03_fit_your_own_cohort", tmp_path, monkeypatch, capsys)
    folder = tmp_path / "my_cohort"
    assert (folder / "participants.tsv").is_file()
    assert (folder / "sub-01" / "sc.csv").is_file()
    assert (folder / "sub-01" / "func" / "sub-01_task-rest_run-1_bold.npy").is_file()
    assert s["done"] == ["sub-01", "sub-02"] and not s["failed"]
    assert s["skipped_second_call"] == ["sub-01", "sub-02"]
    for row in s["subjects"]:
        assert _finite(row["test_total"], row["ei_mean"]) and row["test_total"] < 5
    assert _finite(s["contrast_mean"])
    assert all(Path(p).is_file() for p in s["exports"].values())
    assert sorted(s["figures"]) == ["fit_quality", "group_maps", "network_ei"]  # no age
    assert all(Path(p).is_file() for p in s["figures"].values())
    assert "second call: skipped 2, fitted 0" in printed


def test_04_population_study(tmp_path, monkeypatch, capsys):
    s, printed = _run("04_population_study", tmp_path, monkeypatch, capsys)
    assert s["n_subjects"] == 4 and len(s["done"]) == 4 and not s["failed"]
    assert len(s["ei_mean"]) == 4 and _finite(*s["ei_mean"])
    reg = s["regression"]
    assert reg["formula"] == "ei ~ age + C(sex)" and reg["nobs"] == 4  # spline -> linear, n<12
    assert _finite(reg["rsquared"], *reg["params"].values())
    assert {"Intercept", "age", "C(sex)[T.M]"} == set(reg["params"])
    assert _finite(s["contrast_mean"])
    figs = s["figures"]
    assert set(figs) == {"trajectory", "group_maps", "network_ei", "fit_quality"}
    assert all(Path(p).stat().st_size > 10_000 for p in figs.values())
    assert all(Path(p).is_file() for p in s["exports"].values())
    assert "regression ei ~ age + C(sex)" in printed


@pytest.mark.filterwarnings("ignore:Maximum number of epochs")
def test_05_eeg_erp_and_inference(tmp_path, monkeypatch, capsys):
    s, printed = _run("05_eeg_erp_and_inference", tmp_path, monkeypatch, capsys)
    assert s["eeg_shape"] == [1, 60, 722]
    assert _finite(s["snr_db"], s["peak"]["latency_s"], s["peak"]["amplitude_v"])
    assert -0.2 <= s["peak"]["latency_s"] <= 1.0
    assert s["n_train"] == 96
    assert len(s["posterior"]) == 8
    for name, row in s["posterior"].items():
        lo, hi = row["ci90"]
        assert _finite(row["posterior_mean"], lo, hi) and lo <= row["posterior_mean"] <= hi, name
    for row in s["heldout"].values():
        assert 0 <= row["coverage90"] <= 1
    assert all(Path(p).is_file() for p in s["files"])

    import mne

    ev = mne.read_evokeds(tmp_path / "erp-ave.fif", verbose="ERROR")[0]
    assert len(ev.ch_names) == 60 and ev.get_montage() is not None
    assert "NPE trained" in printed
