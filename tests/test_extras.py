"""Optional extras: a missing one is one clear line; the CLI starts without them; the
declared extras, the README's install commands and CI agree."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from nmmfit._extras import EXTRAS, MissingExtraError, missing_modules, require
from nmmfit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_require_names_the_extra_and_the_missing_module(monkeypatch):
    require("eeg")  # installed here
    monkeypatch.setitem(sys.modules, "sbi", None)  # `import sbi` now raises ImportError
    assert missing_modules("eeg") == ["sbi"]
    with pytest.raises(MissingExtraError) as err:
        require("eeg", feature="NPE")
    assert str(err.value) == ("NPE needs the 'eeg' extra: pip install 'nmmfit[eeg]' "
                              "(missing: sbi)")
    assert isinstance(err.value, ImportError)
    require("eeg", "mne")  # only the modules named are checked
    with pytest.raises(ValueError, match="unknown extra"):
        require("eeg2")


@pytest.mark.parametrize("package, module, extra", [("nmmfit.eeg", "mne", "eeg"),
                                                    ("nmmfit.infer", "sbi", "eeg"),
                                                    ("nmmfit.population", "pandas",
                                                     "population")])
def test_library_package_without_its_extra_is_one_import_error(monkeypatch, package, module,
                                                               extra):
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, package, raising=False)  # import it afresh
    with pytest.raises(ImportError) as err:
        importlib.import_module(package)
    assert str(err.value) == (f"{package} needs the {extra!r} extra: pip install "
                              f"'nmmfit[{extra}]' (missing: {module})")


def test_cli_command_without_its_extra_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "mne", None)
    assert main(["jr", "simulate", "--json"]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err == ("error: nmmfit jr needs the 'eeg' extra: pip install 'nmmfit[eeg]' "
                       "(missing: mne)\n")
    monkeypatch.setitem(sys.modules, "statsmodels", None)
    assert main(["population", "status", "--store", str(tmp_path / "p.db")]) == 2
    assert capsys.readouterr().err == (
        "error: nmmfit population needs the 'population' extra: pip install "
        "'nmmfit[population]' (missing: statsmodels)\n")
    assert not (tmp_path / "p.db").exists()


def test_cli_parser_imports_no_extra_and_no_subcommand_library():
    code = ("import sys; from nmmfit.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'numba', 'mne', 'sbi', 'distributed', 'statsmodels', 'pandas', "
            "'matplotlib') or m.startswith(('nmmfit.population', 'nmmfit.eeg', "
            "'nmmfit.infer', 'nmmfit.fit', 'nmmfit.surrogate', 'nmmfit.sim'))))")
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert out.strip() == "[]"


def test_cli_population_store_default_is_the_librarys():
    from nmmfit import cli_population
    from nmmfit.population.results import DEFAULT_DB

    assert cli_population.DEFAULT_DB == DEFAULT_DB


def test_pyproject_extras_match_the_check():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]

    def names(reqs):
        return {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
                for r in reqs}

    for extra, modules in EXTRAS.items():
        assert names(extras[extra]) == set(modules), extra
    assert extras["all"] == ["nmmfit[eeg,population]"]
    core = names(meta["dependencies"])
    assert not core & {m for mods in EXTRAS.values() for m in mods}
    assert {"xarray", "h5netcdf", "h5py", "llvmlite", "torch", "cma"} <= core


def test_readme_install_commands_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in readme.splitlines()  # CI runs the README's test command verbatim
    assert '-e ".[all,test]"' in ci
    assert 'pip install torch==2.13.0 -e ".[all]" && .venv/bin/nmmfit fit' in readme


def test_network_means_of_a_regional_map():
    from nmmfit.data.dataset import YEO7_NAMES, Dataset

    ds = Dataset("toy", "toy", 1.0, [f"r{i}" for i in range(5)],
                 networks=np.array([1, 1, 7, 7, 9]))
    out = ds.network_means(np.array([1.0, 3.0, np.nan, 4.0, 5.0]))
    assert out == {YEO7_NAMES[0]: 2.0, YEO7_NAMES[6]: 4.0, "9": 5.0}
    assert list(out) == ["Vis", "Default", "9"]
    with pytest.raises(ValueError, match="one per region"):
        ds.network_means(np.ones(4))
    ds.networks = None
    assert ds.network_means(np.ones(5)) is None
