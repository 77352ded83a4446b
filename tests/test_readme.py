"""The README's Python blocks run, importing only from the top-level package."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_imports_only_from_the_top_level():
    blocks = _blocks()
    assert len(blocks) >= 2
    for code in blocks:
        imports = re.findall(r"^\s*(?:from\s+(\S+)\s+import|import\s+(\S+))", code, flags=re.M)
        mods = {a or b for a, b in imports}
        assert mods and mods <= {"nmmfit"}, mods


def test_readme_simulation_block_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(_blocks()[0], "README.md block 1", "exec"), ns)
    cost, res, bold = ns["cost"], ns["res"], ns["bold"]
    assert cost.total.shape == (1,) and np.isfinite(cost.total).all()
    assert bold["bold"].dims == ("set", "duplicate", "region", "time")
    assert (tmp_path / "sim.nc").is_file()
    back = ns["nmmfit"].SimResult.load(tmp_path / "sim.nc")
    np.testing.assert_array_equal(back.bold, res.bold)
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_readme_fit_block_runs_with_tiny_settings(tmp_path, monkeypatch):
    """The fit block as written, with the call given tiny search and test settings (the
    README's quick preset takes minutes)."""
    monkeypatch.chdir(tmp_path)
    code = _blocks()[1]
    call = 'fit(train, val, test, preset="quick", seed=0, store="runs/fit.db")'
    assert call in code
    tiny = call[:-1] + (", n_epochs=1, popsize=4, mu=2, n_dup_val=1, n_dup_test=2, "
                        "test_group=2, duration_s=72.0, test_duration_s=72.0, "
                        "test_dt=0.006)")
    ns: dict = {}
    exec(compile(code.replace(call, tiny), "README.md block 2", "exec"), ns)
    res = ns["res"]
    assert set(res.test_cost) == {"fc_corr", "fc_l1", "fcd_ks", "total"}
    assert res.ei_map.shape == (100,) and (tmp_path / "runs" / "fit.db").is_file()
