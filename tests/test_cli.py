"""The command line: simulate -> cost round trip, --json output, clear errors."""

import json

import numpy as np

from nmmfit.cli import main

SHORT = ["--duration", "72", "--burn-in", "1.44", "--warmup-steps", "100", "--n-dup", "2"]


def test_simulate_then_cost_round_trip(tmp_path, capsys):
    out = tmp_path / "sim.npz"
    assert main(["simulate", "--group", "train706", *SHORT, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shape_B_D_N_T"] == [1, 2, 100, 100]
    assert 2.7 <= summary["mean_rE_hz"]["min"] <= summary["mean_rE_hz"]["max"] <= 3.3
    with np.load(out) as d:
        assert d["bold"].shape == (1, 2, 100, 100)
    assert main(["cost", "--group", "train706", str(out), "--json"]) == 0
    cost = json.loads(capsys.readouterr().out)
    for key in ("fc_corr", "fc_l1", "fcd_ks", "total"):
        assert np.isfinite(cost[key][0])
    assert cost["total"][0] == sum(cost[k][0] for k in ("fc_corr", "fc_l1", "fcd_ks"))


def test_run_json_reports_cost_and_ei(capsys):
    assert main(["run", "--quick", "--n-dup", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["cost"]) >= {"fc_corr", "fc_l1", "fcd_ks", "total"}
    assert len(out["ei_ratio"]["per_region"]) == 100
    assert set(out["ei_ratio"]["by_yeo7"]) == {"Vis", "SomMot", "DorsAttn", "SalVentAttn",
                                               "Limbic", "Cont", "Default"}


def test_bad_parameter_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "p.npz"
    np.savez(bad, wEE=np.ones(7), wEI=np.ones(7), G=1.0, sigma=0.005)
    assert main(["simulate", "--group", "train706", *SHORT, "--params", str(bad)]) == 2
    assert "wEE has shape (7,)" in capsys.readouterr().err


def test_verbose_and_quiet_flags(capsys):
    import logging
    import os

    from nmmfit.cli import configure_logging

    log = logging.getLogger("nmmfit")
    old_env = os.environ.pop("TQDM_DISABLE", None)
    try:
        assert main(["-v", "datasets", "--json"]) == 0
        assert log.level == logging.INFO
        assert main(["-vv", "datasets", "--json"]) == 0
        assert log.level == logging.DEBUG
        assert main(["-q", "datasets", "--json"]) == 0
        assert log.level == logging.ERROR and os.environ.get("TQDM_DISABLE") == "1"
        capsys.readouterr()
    finally:
        configure_logging(0, False)
        os.environ.pop("TQDM_DISABLE", None)
        if old_env is not None:
            os.environ["TQDM_DISABLE"] = old_env
    assert log.level == logging.WARNING
