"""The Jansen-Rit inference benchmark (Tilwani & O'Reilly), per noise level, resumable.

- :class:`LevelData`: the dataset of :func:`nmmfit.infer.jr_dataset.generate_dataset`
  (same seeds, same arrays), built one noise level at a time so that 10,000 simulations per
  level fit in memory: the clean ERPs are simulated once and shared by every alpha.
- :func:`correlations`: Pearson and Spearman r per parameter with bootstrap CIs.
- :func:`run_bilstm_levels`: train and test a Bi-LSTM at every alpha (80/10/10 split);
  each level's result is cached as JSON (+ model) so a killed run resumes where it stopped.
- :func:`one_at_a_time`: the paper's Figure 5, one parameter varied and inferred at a time.
- :data:`PAPER`: the paper's reported Spearman r, for the side-by-side table.

The whole run (stages, results JSON, figures) is :mod:`nmmfit.infer.benchmark_run`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from nmmfit.eeg.erp import ERPConfig, ERPSimulator, as_seedseq
from nmmfit.eeg.noise import check_alpha, snr_db_expected
from nmmfit.infer.bilstm import BiLSTMConfig, BiLSTMEstimator
from nmmfit.infer.jr_dataset import ALPHAS, sample_params
from nmmfit.models import jansen_rit as jr

#: Paper-reported Spearman r (abstract/intro of arXiv 2406.05002 v1; reference note section 6):
#: (value at alpha = 0, value at alpha = 0.95) or a (low, high) band over alpha; None: the paper
#: calls the parameter "inconsistent".
PAPER: dict[str, dict] = {
    "A_e": {"alpha0": 0.995, "alpha095": 0.782, "text": "0.995 -> 0.782"},
    "A_i": {"alpha0": 0.56, "alpha095": 0.40, "text": "0.56 -> 0.40"},
    "b_e": {"alpha0": 1.0, "alpha095": 1.0, "text": "~1.0"},
    "b_i": {"band": (0.50, 0.55), "text": "0.50-0.55"},
    "a1": {"text": "inconsistent"},
    "a2": {"text": "inconsistent"},
    "a3": {"text": "inconsistent"},
    "a4": {"band": (0.37, 0.55), "text": "0.37-0.55"},
}


def alpha_key(alpha: float) -> str:
    """The JSON key of a noise level: ``str(float(alpha))`` ("0.0", "0.11", ...)."""
    return str(float(alpha))


def split_indices(n: int, seed: int = 68,
                  fractions=(0.8, 0.1, 0.1)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random train / validation / test indices of ``n`` simulations (80/10/10 default)."""
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or (f <= 0).any() or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"fractions must be 3 positive numbers summing to 1, got {fractions}")
    n_tr, n_va = int(round(f[0] * n)), int(round(f[1] * n))
    if n_tr < 1 or n_va < 1 or n - n_tr - n_va < 2:
        raise ValueError(f"n = {n} simulations is too few for a {fractions} split")
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:]


class LevelData:
    """Simulations shared by all noise levels; the noisy ERPs of one level on request.

    Seeds exactly as :func:`nmmfit.infer.jr_dataset.generate_dataset` (``SeedSequence(seed)``
    -> parameters, background drive, sensor noise; one noise child per alpha of ``alphas``),
    so ``LevelData(n, alphas, seed).eeg(alphas[i])`` equals that function's ``eeg[i]``.

    theta : [n_ok, 8] (or [n_ok, 9] with C). eeg(alpha) : [n_ok, 60, 722] float32, V.
    """

    def __init__(self, n: int = 1000, alphas=ALPHAS, seed: int = 0,
                 config: ERPConfig | None = None, names=jr.INFERRED, theta=None,
                 progress: Callable[[int], None] | None = None):
        self.alphas = tuple(check_alpha(a) for a in alphas)
        self.seed = seed
        self.sim = ERPSimulator(config or ERPConfig())
        s_par, s_drive, s_noise = as_seedseq(seed).spawn(3)
        self.names = tuple(names)
        full = (sample_params(n, np.random.default_rng(s_par), self.names) if theta is None
                else jr.as_params(theta))
        n = full.shape[0]
        drive = s_drive.generate_state(n, dtype=np.uint64)
        self.clean = self.sim.clean(full, keys=drive, progress=progress)
        ok = ~self.clean.diverged
        self.n_diverged = int((~ok).sum())
        self.clean.source, self.clean.raw_power = self.clean.source[ok], self.clean.raw_power[ok]
        self._noise_keys = np.stack([c.generate_state(n, dtype=np.uint64)
                                     for c in s_noise.spawn(len(self.alphas))])[:, ok]
        cols = [jr.PARAM_NAMES.index(p) for p in self.names]
        self.theta = full[ok][:, cols]

    @property
    def n(self) -> int:
        """Valid (non-diverged) simulations."""
        return int(self.theta.shape[0])

    @property
    def ch_names(self) -> tuple[str, ...]:
        """EEG channel names."""
        return self.sim.ch_names

    def eeg(self, alpha: float) -> np.ndarray:
        """Noisy evoked EEG of every valid simulation at ``alpha``, [n, n_ch, n_times] (V)."""
        a = check_alpha(alpha)
        if a not in self.alphas:
            raise ValueError(f"alpha {a} is not one of this dataset's levels {self.alphas}")
        keys = self._noise_keys[self.alphas.index(a)]
        return self.sim.noisy_eeg(self.clean, a, keys=keys)[0]

    def snr_db(self, alpha: float) -> np.ndarray:
        """Algorithm 2 SNR of every valid simulation at ``alpha``, [n] dB."""
        return snr_db_expected(self.clean.raw_power, self.sim.noise_model, check_alpha(alpha))


def correlations(theta_true, theta_pred, names, n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95) -> dict[str, dict]:
    """Pearson and Spearman r per parameter with percentile bootstrap CIs.

    theta_true, theta_pred : [N, P]. Returns name -> {pearson, pearson_ci, spearman,
    spearman_ci} (CIs over ``n_boot`` resamples of the N pairs, seed ``seed``).
    """
    t = np.asarray(theta_true, dtype=float)
    p = np.asarray(theta_pred, dtype=float)
    if t.shape != p.shape or t.ndim != 2 or t.shape[1] != len(names):
        raise ValueError(f"theta_true {t.shape} and theta_pred {p.shape} must both be "
                         f"[N, {len(names)}]")
    idx = np.random.default_rng(seed).integers(0, t.shape[0], size=(n_boot, t.shape[0]))
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]

    def r_rows(a, b):  # Pearson r along the last axis
        a = a - a.mean(-1, keepdims=True)
        b = b - b.mean(-1, keepdims=True)
        den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, (a * b).sum(-1) / den, np.nan)

    out = {}
    for j, name in enumerate(names):
        a, b = t[:, j], p[:, j]
        ab, bb = a[idx], b[idx]
        pr, sr = r_rows(ab, bb), r_rows(rankdata(ab, axis=1), rankdata(bb, axis=1))
        out[name] = {
            "pearson": float(r_rows(a, b)),
            "pearson_ci": [float(v) for v in np.nanpercentile(pr, q)],
            "spearman": float(r_rows(rankdata(a), rankdata(b))),
            "spearman_ci": [float(v) for v in np.nanpercentile(sr, q)],
        }
    return out


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_level(x, theta, names, split, config: BiLSTMConfig, n_boot: int = 1000,
              boot_seed: int = 0, channel_names=None):
    """Train on the train split, early-stop on validation, score the test split.

    Returns (result dict, fitted estimator, test predictions [n_test, P]).
    """
    tr, va, te = split
    t0, c0 = time.perf_counter(), time.process_time()
    est = BiLSTMEstimator(config, params=names).fit(x[tr], theta[tr], x[va], theta[va],
                                                    channel_names=channel_names)
    pred = est.predict(x[te])
    res = {"metrics": correlations(theta[te], pred, names, n_boot=n_boot, seed=boot_seed),
           "history": {k: v for k, v in est.meta_.history.items()},
           "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
           "n_train": int(len(tr)), "n_val": int(len(va)), "n_test": int(len(te))}
    return res, est, pred


def run_bilstm_levels(data: LevelData, config: BiLSTMConfig | None = None,
                      cache_dir=None, split_seed: int = 68, n_boot: int = 1000,
                      alphas=None, log: Callable[[str], None] = print) -> dict:
    """The per-alpha Bi-LSTM benchmark. Results per level are cached under ``cache_dir``
    (``bilstm_<alpha>.json``, ``.pt``, ``_test.npz``) and reused when the config matches.

    Returns {"levels": {alpha_key: result}, "split": sizes, "wall_s", "cpu_s"} where the
    times sum the per-level training + testing times (cached levels keep their recorded
    times).
    """
    config = config or BiLSTMConfig()
    split = split_indices(data.n, split_seed)
    tag = _digest({"cfg": asdict(config), "n": data.n, "seed": str(data.seed),
                   "split_seed": split_seed, "names": data.names,
                   "erp": data.sim.config.as_dict()})
    levels = {}
    cache = Path(cache_dir) if cache_dir is not None else None
    for a in (alphas if alphas is not None else data.alphas):
        key = alpha_key(a)
        f = cache / f"bilstm_{key}_{tag}.json" if cache else None
        if f is not None and f.exists():
            levels[key] = json.loads(f.read_text())
            log(f"alpha {key}: cached ({f.name})")
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        x = data.eeg(a)
        noise_wall, noise_cpu = time.perf_counter() - t0, time.process_time() - c0
        res, est, pred = run_level(x, data.theta, list(data.names), split, config, n_boot,
                                   boot_seed=split_seed, channel_names=list(data.ch_names))
        res["wall_s"] += noise_wall  # the level's noisy ERPs are part of its cost
        res["cpu_s"] += noise_cpu
        res["alpha"] = float(a)
        res["snr_db_mean"] = (None if a == 0 else
                              float(np.mean(data.snr_db(a)[split[2]])))
        levels[key] = res
        log(f"alpha {key}: epochs {res['history']['epochs_run']}, wall {res['wall_s']:.0f} s, "
            + ", ".join(f"{n} {m['pearson']:.3f}" for n, m in res["metrics"].items()))
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            est.save(cache / f"bilstm_{key}_{tag}.pt")
            np.savez_compressed(cache / f"bilstm_{key}_{tag}_test.npz", pred=pred,
                                true=data.theta[split[2]], test_idx=split[2])
            f.write_text(json.dumps(res))
    return {"levels": levels, "tag": tag,
            "split": {"seed": split_seed, "n_train": int(len(split[0])),
                      "n_val": int(len(split[1])), "n_test": int(len(split[2]))},
            "wall_s": float(sum(v["wall_s"] for v in levels.values())),
            "cpu_s": float(sum(v["cpu_s"] for v in levels.values()))}


def one_at_a_time(n: int = 1000, alpha: float = 0.0, params=jr.INFERRED, seed: int = 7,
                  config: BiLSTMConfig | None = None, cache_dir=None, n_boot: int = 1000,
                  erp_config: ERPConfig | None = None,
                  log: Callable[[str], None] = print) -> dict:
    """Paper Figure 5: for each parameter, vary only it (truncated normal; the others at JR
    typical values), simulate ``n`` ERPs at ``alpha`` and train a one-output Bi-LSTM.

    Returns name -> result of :func:`run_level` (with its single-parameter metrics).
    """
    config = config or BiLSTMConfig()
    out = {}
    cache = Path(cache_dir) if cache_dir is not None else None
    for i, p in enumerate(params):
        tag = _digest({"cfg": asdict(config), "n": n, "alpha": alpha, "seed": seed, "p": p})
        f = cache / f"oat_{p}_{tag}.json" if cache else None
        if f is not None and f.exists():
            out[p] = json.loads(f.read_text())
            log(f"one-at-a-time {p}: cached")
            continue
        data = LevelData(n, alphas=(alpha,), seed=[seed, i], config=erp_config, names=(p,))
        split = split_indices(data.n, 68)
        res, _, _ = run_level(data.eeg(alpha), data.theta, [p], split, config, n_boot)
        res["alpha"] = float(alpha)
        out[p] = res
        log(f"one-at-a-time {p}: r {res['metrics'][p]['pearson']:.4f}, "
            f"epochs {res['history']['epochs_run']}, wall {res['wall_s']:.0f} s")
        if f is not None:
            cache.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(res))
    return out


def paper_table(bilstm_spearman: dict[str, dict[str, float]]) -> list[dict]:
    """Rows (one per parameter) of our Spearman r at alpha = 0 and 0.95 (min/max over
    alpha too) beside the paper's numbers. ``bilstm_spearman``: alpha_key -> name -> r."""
    keys = sorted(bilstm_spearman, key=float)
    rows = []
    for name, paper in PAPER.items():
        vals = [bilstm_spearman[k][name] for k in keys if name in bilstm_spearman[k]]
        rows.append({"param": name, "paper": paper["text"],
                     "ours_alpha0": bilstm_spearman[keys[0]].get(name),
                     "ours_alpha_max": bilstm_spearman[keys[-1]].get(name),
                     "ours_min": float(min(vals)) if vals else None,
                     "ours_max": float(max(vals)) if vals else None})
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown table of :func:`paper_table` rows."""
    lines = ["| param | paper Spearman r | ours alpha=0 | ours alpha=max | ours min..max |",
             "|---|---|---|---|---|"]
    def f(v):
        return "-" if v is None else f"{v:.3f}"

    for r in rows:
        lines.append(f"| {r['param']} | {r['paper']} | {f(r['ours_alpha0'])} | "
                     f"{f(r['ours_alpha_max'])} | {f(r['ours_min'])}..{f(r['ours_max'])} |")
    return "\n".join(lines)
