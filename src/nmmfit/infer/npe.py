"""Amortised neural posterior estimation (NPE, ``sbi``) of Jansen-Rit parameters from ERPs.

One network per noise level, trained once on the simulations of that level, then applied to
any ERP without retraining::

    ERP [N, 60, 722] (V) --standardise per channel--> embedding net (1-D CNN or Bi-LSTM)
    -> features [N, n_features] -> conditional normalizing flow (sbi NSF/MAF)
    -> q(u | x), u = parameters scaled to [0, 1] by the spec ranges (prior support [0, 1]^P)

The prior given to sbi is :class:`nmmfit.infer.jr_dataset.TruncatedNormalPrior`, the
distribution the training parameters are drawn from (:func:`~nmmfit.infer.jr_dataset.
sample_params`, in the scaled space). Single-round NPE trains and samples the flow without
evaluating the prior; sbi uses it for support checks, ``posterior.log_prob`` and its
diagnostics.

Diagnostics (pure numpy, on posterior samples [S, N, P] and true values [N, P]):
:func:`coverage` (empirical coverage of central credible intervals), :func:`sbc_ranks` and
:func:`rank_uniformity` (simulation-based calibration, Talts et al. 2018). The ranks are those
of ``sbi.diagnostics.run_sbc`` (reduce_fns="marginals"); :meth:`NPEstimator.evaluate` also
reports ``sbi.diagnostics.check_sbc`` (its KS p-values and C2ST scores) beside ours.

Calibration is only meaningful on parameters drawn from the distribution the network was
trained on (here the truncated-normal draws of :mod:`nmmfit.infer.jr_dataset`).
"""

from __future__ import annotations

import io
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import chisquare, kstest
from torch import nn

from nmmfit._validate import as_array, check_finite
from nmmfit.infer.benchmark import correlations
from nmmfit.infer.jr_dataset import TruncatedNormalPrior
from nmmfit.models import jansen_rit as jr

EMBEDDINGS = ("cnn", "bilstm", "mlp")


@dataclass(frozen=True)
class NPEConfig:
    """Settings of :class:`NPEstimator`.

    embedding : "cnn" (1-D CNN), "bilstm" (the Bi-LSTM of the point estimator, frame
    samples per step) or "mlp" (two dense layers, for low-dimensional inputs such as the
    summaries of :class:`nmmfit.infer.npe_summary.SummaryNPE`). n_features : embedding
    output size. density : sbi flow ("nsf", "maf"). hidden, transforms : flow size.
    batch_size, lr, stop_after_epochs, max_epochs, val_fraction : sbi training (early
    stopping on sbi's own validation split).
    n_samples : posterior samples per ERP for the diagnostics. seed : torch seed (init,
    split, batches, sampling). threads : torch CPU threads. proposal_factor : sampling draws
    ``proposal_factor x n_samples`` unconstrained flow samples per ERP and keeps those inside
    the prior box (rejection with a fixed budget, so a leaky posterior cannot stall a run;
    see :meth:`NPEstimator.sample_scaled`).
    """

    embedding: str = "cnn"
    n_features: int = 32
    density: str = "nsf"
    hidden: int = 64
    transforms: int = 5
    batch_size: int = 64
    lr: float = 5e-4
    stop_after_epochs: int = 20
    max_epochs: int = 300
    val_fraction: float = 0.1
    frame: int = 8
    n_samples: int = 1000
    seed: int = 0
    threads: int = 2
    proposal_factor: int = 4

    def __post_init__(self) -> None:
        if self.embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {self.embedding!r}")
        if self.density not in ("nsf", "maf", "mdn"):
            raise ValueError(f"density must be 'nsf', 'maf' or 'mdn', got {self.density!r}")
        if int(self.proposal_factor) < 1:
            raise ValueError(f"proposal_factor must be >= 1, got {self.proposal_factor}")


class CNNEmbedding(nn.Module):
    """1-D CNN: flat [B, n_ch * n_times] -> [B, n_features].

    A 1x1 convolution (a learned spatial filter bank, 16 maps) then four stride-2
    convolutions (kernel 7, 32 maps, GELU), average pooling to 16 steps and two dense layers.
    """

    def __init__(self, n_ch: int, n_times: int, n_features: int = 32) -> None:
        super().__init__()
        self.n_ch, self.n_times = n_ch, n_times
        layers: list[nn.Module] = [nn.Conv1d(n_ch, 16, 1)]
        c = 16
        for _ in range(4):
            layers += [nn.Conv1d(c, 32, 7, stride=2, padding=3), nn.GELU()]
            c = 32
        self.conv = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(16))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 16, 64), nn.GELU(),
                                  nn.Linear(64, n_features))

    def forward(self, x):
        return self.head(self.conv(x.view(x.shape[0], self.n_ch, self.n_times)))


class MLPEmbedding(nn.Module):
    """Two dense layers (64 units, GELU): flat [B, n_in] -> [B, n_features]."""

    def __init__(self, n_in: int, n_features: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, 64), nn.GELU(), nn.Linear(64, n_features))

    def forward(self, x):
        return self.net(x)


class BiLSTMEmbedding(nn.Module):
    """Bi-LSTM: flat [B, n_ch * n_times] -> [B, n_features] (``frame`` samples per step,
    the end zero-padded)."""

    def __init__(self, n_ch: int, n_times: int, n_features: int = 32, frame: int = 8,
                 hidden: int = 64) -> None:
        super().__init__()
        self.n_ch, self.n_times, self.frame = n_ch, n_times, frame
        self.pad = -(-n_times // frame) * frame - n_times
        self.lstm = nn.LSTM(n_ch * frame, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, n_features)

    def forward(self, x):
        b = x.shape[0]
        z = nn.functional.pad(x.view(b, self.n_ch, self.n_times), (0, self.pad))
        z = z.transpose(1, 2).reshape(b, -1, self.n_ch * self.frame)
        _, (h, _) = self.lstm(z)
        return self.head(torch.cat([h[0], h[1]], dim=1))


# --- diagnostics (numpy) --------------------------------------------------------------------

def _check_samples(samples, theta) -> tuple[np.ndarray, np.ndarray]:
    s = as_array(samples, "samples", ndim=3)
    t = as_array(theta, "theta", ndim=2)
    if s.shape[1:] != t.shape:
        raise ValueError(f"samples has shape {s.shape} (S, N, P) but theta has shape "
                         f"{t.shape}; expected (N, P) = {s.shape[1:]}")
    return s, t


def coverage(samples, theta, levels=(0.5, 0.9)) -> dict[float, np.ndarray]:
    """Empirical coverage of central credible intervals.

    samples : [S, N, P] posterior draws per ERP; theta : [N, P] true values. For each level
    c, the interval is the [(1 - c) / 2, (1 + c) / 2] quantile range of the S draws; returns
    c -> [P] fraction of the N true values inside.
    """
    s, t = _check_samples(samples, theta)
    out = {}
    for c in levels:
        lo, hi = np.quantile(s, [(1 - c) / 2, (1 + c) / 2], axis=0)
        out[float(c)] = ((t >= lo) & (t <= hi)).mean(axis=0)
    return out


def sbc_ranks(samples, theta) -> np.ndarray:
    """SBC ranks [N, P] (integers 0..S): per ERP and parameter, the number of the S posterior
    draws strictly below the true value.

    samples : [S, N, P] posterior draws; theta : [N, P] true values (any units, the same for
    both). The same ranks as ``sbi.diagnostics.run_sbc`` with ``reduce_fns="marginals"``
    (it counts ``draw < truth`` too, so a tie does not raise the rank).
    """
    s, t = _check_samples(samples, theta)
    return (s < t[None]).sum(axis=0)


def rank_uniformity(ranks, n_samples: int, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Uniformity tests of SBC ranks [N, P] (integers 0..n_samples), per parameter.

    Returns {"ks_p": [P] Kolmogorov-Smirnov p-values of u = (rank + 0.5) / (S + 1) (the
    rank's bin centre among S + 1 equal bins of [0, 1]) against U(0, 1), "ks_stat": [P] the
    KS statistics, "chi2_p": [P] chi-square p-values over ``n_bins`` equal bins of u,
    "hist": [P, n_bins] counts}.

    ``sbi.diagnostics.check_sbc`` tests rank / S against U(0, 1) instead; the two points
    differ by at most 0.5 / (S + 1), and so do the two KS statistics (negligible for
    S >> sqrt(N)).
    """
    r = as_array(ranks, "ranks", ndim=2)
    u = (r + 0.5) / (n_samples + 1)
    bins = np.minimum((u * n_bins).astype(int), n_bins - 1)
    hist = np.stack([np.bincount(bins[:, j], minlength=n_bins) for j in range(r.shape[1])])
    ks = [kstest(u[:, j], "uniform") for j in range(r.shape[1])]
    return {"ks_p": np.array([k.pvalue for k in ks]),
            "ks_stat": np.array([k.statistic for k in ks]),
            "chi2_p": np.array([chisquare(h).pvalue for h in hist]), "hist": hist}


# --- the estimator ----------------------------------------------------------------------------

class _MemoryTracker:
    """An sbi training tracker that keeps the metrics in memory: sbi's default writes
    TensorBoard logs to ``./sbi-logs/`` in the working folder, which nobody asked for. The
    training summary is kept in ``meta_["history"]`` instead."""

    log_dir = None

    def __init__(self) -> None:
        self.metrics: dict[str, list] = {}

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        self.metrics.setdefault(name, []).append((step, float(value)))

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        for k, v in metrics.items():
            self.log_metric(k, v, step)

    def log_params(self, params: dict) -> None:
        pass

    def add_figure(self, name: str, figure, step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass


class NPEstimator:
    """Amortised posterior q(theta | ERP) for one noise level (scikit-learn-like).

    >>> npe = NPEstimator().fit(X_train, theta_train)          # doctest: +SKIP
    >>> draws = npe.sample(X_test, 1000)    # [1000, N, P] physical units
    """

    def __init__(self, config: NPEConfig | None = None, params=jr.INFERRED):
        self.config = config or NPEConfig()
        self.params = tuple(params)
        self.meta_: dict | None = None
        self.posterior_ = None

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return jr.bounds(self.params)

    def _check_x(self, x, name="X") -> np.ndarray:
        arr = as_array(x, name, ndim=3, dtype=np.float32)
        if self.meta_ is not None and arr.shape[1:] != tuple(self.meta_["shape"]):
            raise ValueError(f"{name} has shape {arr.shape}; this posterior was trained on ERPs "
                             f"of shape (N, {self.meta_['shape'][0]} channels, "
                             f"{self.meta_['shape'][1]} samples)")
        return check_finite(arr, name)

    def _flat(self, x: np.ndarray):
        import torch

        m = np.asarray(self.meta_["x_mean"], dtype=np.float32)[None, :, None]
        s = np.asarray(self.meta_["x_std"], dtype=np.float32)[None, :, None]
        return torch.from_numpy(((x - m) / s).reshape(x.shape[0], -1).astype(np.float32))

    def _build(self, n_ch: int, n_t: int):
        """The sbi ``NPE`` object (prior: the training prior in the scaled space, support
        [0, 1]^P) and that prior."""
        from sbi.inference import NPE
        from sbi.neural_nets import posterior_nn

        cfg = self.config
        emb = {"cnn": lambda: CNNEmbedding(n_ch, n_t, cfg.n_features),
               "bilstm": lambda: BiLSTMEmbedding(n_ch, n_t, cfg.n_features, cfg.frame),
               "mlp": lambda: MLPEmbedding(n_ch * n_t, cfg.n_features)}[cfg.embedding]()
        # the training draws' distribution; no sample validation, as sbi's process_prior sets
        prior = TruncatedNormalPrior(len(self.params), validate_args=False)
        est = posterior_nn(model=cfg.density, embedding_net=emb, z_score_x="none",
                           z_score_theta="independent", hidden_features=cfg.hidden,
                           num_transforms=cfg.transforms)
        return NPE(prior=prior, density_estimator=est, show_progress_bars=False,
                   tracker=_MemoryTracker()), prior

    def fit(self, X, theta, verbose: bool = False) -> NPEstimator:
        """Train on ERPs ``X`` [N, n_ch, n_times] (V) and parameters ``theta`` [N, P]."""
        import torch

        cfg = self.config
        self.meta_ = None
        x = self._check_x(X)
        t = check_finite(as_array(theta, "theta", ndim=2), "theta")
        if t.shape != (x.shape[0], len(self.params)):
            raise ValueError(f"theta has shape {t.shape}; expected ({x.shape[0]}, "
                             f"{len(self.params)}) for parameters {list(self.params)}")
        lo, hi = self._bounds()
        std = x.std(axis=(0, 2), dtype=np.float64)
        self.meta_ = {"shape": [int(x.shape[1]), int(x.shape[2])], "params": list(self.params),
                      "lower": lo.tolist(), "upper": hi.tolist(),
                      "x_mean": x.mean(axis=(0, 2), dtype=np.float64).tolist(),
                      "x_std": np.where(std > 0, std, 1.0).tolist(), "config": asdict(cfg)}
        prev = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            inf, prior = self._build(x.shape[1], x.shape[2])
            u = torch.from_numpy(((t - lo) / (hi - lo)).astype(np.float32))
            with warnings.catch_warnings():  # its z-score check; x is standardised already
                warnings.filterwarnings("ignore", message="Data has extreme outliers")
                inf.append_simulations(u, self._flat(x))
            de = inf.train(training_batch_size=cfg.batch_size, learning_rate=cfg.lr,
                           validation_fraction=cfg.val_fraction,
                           stop_after_epochs=cfg.stop_after_epochs,
                           max_num_epochs=cfg.max_epochs)
            self.posterior_ = inf.build_posterior(de)
            summ = inf.summary
        finally:
            torch.set_num_threads(prev)
        self.meta_["history"] = {
            "epochs_run": int(summ["epochs_trained"][-1]),
            "best_val_log_prob": float(summ["best_validation_loss"][-1]) * -1
            if "best_validation_loss" in summ else None,
            "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
        if verbose:
            print(f"NPE trained: {self.meta_['history']}")
        return self

    def sample_scaled(self, X, n_samples: int | None = None, chunk: int = 100) -> np.ndarray:
        """Posterior draws in the scaled [0, 1] space, [S, N, P].

        Rejection against the prior box with a fixed budget: S flow draws per ERP, and for an
        ERP with fewer than S inside the box, ``(proposal_factor - 1) x S`` more; the first S
        inside draws are kept. An ERP with fewer than S
        inside draws (the flow leaks mass outside the prior) gets its inside draws resampled
        with replacement up to S; one with none gets its flow draws clipped to the box. The
        counts of both cases are kept in ``self.leakage_`` for the last call.
        """
        import torch

        if self.posterior_ is None:
            raise RuntimeError("this NPEstimator is not fitted; call fit() or load()")
        s = n_samples or self.config.n_samples
        m = s * int(self.config.proposal_factor)
        x = self._check_x(X)
        prev = torch.get_num_threads()
        torch.set_num_threads(self.config.threads)
        torch.manual_seed(self.config.seed + 1)
        rng = np.random.default_rng(self.config.seed + 1)
        out, short, empty, inside_frac = [], 0, 0, []

        def draw(xs, n):  # [n, len(xs), P] unconstrained flow draws
            return self.posterior_.sample_batched(
                (n,), x=self._flat(xs), show_progress_bars=False, reject_outside_prior=False,
                max_sampling_batch_size=max(1, 100_000 // chunk)).numpy()

        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*triangular_solve is deprecated")
                for i in range(0, x.shape[0], chunk):
                    xs = x[i:i + chunk]
                    raw = draw(xs, s)
                    inside = ((raw >= 0.0) & (raw <= 1.0)).all(axis=2)  # [s, chunk]
                    need = np.flatnonzero(inside.sum(axis=0) < s)
                    extra = draw(xs[need], m - s) if need.size and m > s else None
                    col = {int(j): c for c, j in enumerate(need)} if extra is not None else {}
                    for j in range(raw.shape[1]):
                        d = raw[:, j]
                        if j in col:
                            d = np.concatenate([d, extra[:, col[j]]])
                        ok = d[((d >= 0.0) & (d <= 1.0)).all(axis=1)]
                        inside_frac.append(ok.shape[0] / d.shape[0])
                        if ok.shape[0] >= s:
                            out.append(ok[:s])
                        elif ok.shape[0] > 0:
                            short += 1
                            out.append(ok[rng.integers(0, ok.shape[0], s)])
                        else:
                            empty += 1
                            out.append(np.clip(d[:s], 0.0, 1.0))
        finally:
            torch.set_num_threads(prev)
        self.leakage_ = {"n_erps": int(x.shape[0]), "n_short": short, "n_empty": empty,
                         "mean_inside_fraction": float(np.mean(inside_frac)),
                         "proposal_draws": int(m)}
        return np.stack(out, axis=1).astype(np.float64)

    def sample(self, X, n_samples: int | None = None) -> np.ndarray:
        """Posterior draws in physical units, [S, N, P], for ERPs ``X`` [N, n_ch, n_times]."""
        lo, hi = self._bounds()
        return lo + self.sample_scaled(X, n_samples) * (hi - lo)

    def evaluate(self, X, theta, levels=(0.5, 0.9), sbi_checks: bool = True) -> dict:
        """Posterior-mean Pearson r, coverage and SBC per parameter on held-out (X, theta).

        X : [N, n_ch, n_times] ERPs (V); theta : [N, P] their true parameters (physical
        units), drawn from the training prior for the calibration numbers to mean anything.
        Returns parameter name -> {"pearson", "pearson_ci", "spearman", "coverage50",
        "coverage90" (one per level), "sbc_ks_p", "sbc_chi2_p", "sbc_hist" (ours:
        :func:`sbc_ranks`, :func:`rank_uniformity`), "posterior_sd_mean" (physical units)}.

        sbi_checks : also run ``sbi.diagnostics.check_sbc`` on the same ranks, with the true
        values as the prior draws and the first posterior draw per ERP as the data-averaged
        posterior draws (as ``run_sbc`` takes them), all in the scaled space; adds
        "sbc_ks_p_sbi" (its KS p-value), "sbc_c2st_ranks" (C2ST accuracy of the ranks against
        uniform draws on [0, S]) and "sbc_c2st_dap" (C2ST accuracy of the data-averaged
        posterior against the prior; 0.5 = indistinguishable). sbi's C2STs are random-forest
        classifiers with 5-fold cross-validation, two per parameter, about 1.5 s each for
        N = 1000 on one core. Its rank C2ST compares integer ranks with continuous uniform
        draws, which a classifier partly tells apart: exactly uniform ranks score about 0.57
        (N = S = 1000), not 0.5, so read it against that. sbi warns when N < 100.
        """
        t = as_array(theta, "theta", ndim=2)
        draws = self.sample(X)
        mean = draws.mean(axis=0)
        cov = coverage(draws, t, levels)
        ranks = sbc_ranks(draws, t)
        uni = rank_uniformity(ranks, draws.shape[0])
        corr = correlations(t, mean, list(self.params), n_boot=200)
        sd = draws.std(axis=0).mean(axis=0)
        out = {p: {"pearson": corr[p]["pearson"], "pearson_ci": corr[p]["pearson_ci"],
                   "spearman": corr[p]["spearman"],
                   **{f"coverage{int(round(c * 100))}": float(v[j]) for c, v in cov.items()},
                   "sbc_ks_p": float(uni["ks_p"][j]), "sbc_chi2_p": float(uni["chi2_p"][j]),
                   "sbc_hist": uni["hist"][j].tolist(), "posterior_sd_mean": float(sd[j])}
               for j, p in enumerate(self.params)}
        if sbi_checks:
            chk = self._check_sbc(ranks, t, draws[0], draws.shape[0])
            for j, p in enumerate(self.params):
                out[p].update({k: float(v[j]) for k, v in chk.items()})
        return out

    def _check_sbc(self, ranks: np.ndarray, theta: np.ndarray, dap: np.ndarray,
                   n_samples: int) -> dict[str, np.ndarray]:
        """``sbi.diagnostics.check_sbc`` on ranks [N, P], true values and one posterior draw
        per ERP (both [N, P], physical units; scaled to [0, 1] here); [P] arrays."""
        import torch
        from sbi.diagnostics import check_sbc

        lo, hi = self._bounds()
        f32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        prev = torch.get_num_threads()
        torch.set_num_threads(self.config.threads)
        torch.manual_seed(self.config.seed + 2)  # its uniform reference draws
        try:
            chk = check_sbc(f32(ranks), f32((theta - lo) / (hi - lo)),
                            f32((dap - lo) / (hi - lo)), num_posterior_samples=n_samples)
        finally:
            torch.set_num_threads(prev)
        return {"sbc_ks_p_sbi": chk["ks_pvals"].numpy(),
                "sbc_c2st_ranks": chk["c2st_ranks"].numpy(),
                "sbc_c2st_dap": chk["c2st_dap"].numpy()}

    def save(self, path) -> Path:
        """Pickle the sbi posterior with its metadata (torch.save)."""
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": "nmmfit.NPEstimator/1", "meta": json.dumps(self.meta_),
                    "posterior": self.posterior_}, path)
        return path

    @classmethod
    def load(cls, path, n_channels: int | None = None) -> NPEstimator:
        """Read a saved posterior (trusted files only: it is a pickle)."""
        import torch

        blob = torch.load(io.BytesIO(Path(path).read_bytes()), weights_only=False)
        meta = json.loads(blob["meta"])
        if n_channels is not None and int(n_channels) != meta["shape"][0]:
            raise ValueError(f"posterior {path} was trained on {meta['shape'][0]} channels, but "
                             f"the data have {n_channels} channels")
        est = cls(NPEConfig(**meta["config"]), params=meta["params"])
        est.meta_, est.posterior_ = meta, blob["posterior"]
        return est
