"""Bi-LSTM estimator of Jansen-Rit parameters from evoked EEG (Tilwani & O'Reilly, fixed).

The network of the paper (reference note, section 4), in PyTorch::

    ERP [N, n_ch, n_times] (V)  --standardise per channel-->  sequence [N, T, n_ch * frame]
    -> input dropout 0.1 (one mask per sequence, as Keras LSTM(dropout=...))
    -> one bidirectional LSTM layer, 64 units per direction, last hidden states concatenated
    -> Dense(n_params), linear  ->  targets scaled to [0, 1] by the parameter spec ranges

- Initialisation as Keras: Glorot-uniform input kernels and dense kernel from one generator
  seeded 4287, orthogonal recurrent kernels, bias 0.001 (forget gate 1.0, Keras
  ``unit_forget_bias``).
- Training: Adam (lr 1e-3, Keras eps 1e-7), batch 32, up to 150 epochs, early stopping with
  patience 10 on the validation loss, best weights restored.
- Losses: ``"snr_db"``, the paper's inverse SNR in dB,
  10 log10(mean((y - y_hat)^2) / mean(y^2)) over the batch and all outputs, on the *scaled*
  targets (the paper used raw targets, which weighted parameters by magnitude); or ``"mse"``.
- ``frame``: samples per LSTM step. 1 is the paper (722 steps of 60 channels). frame = k
  reshapes time into ceil(722 / k) steps of k consecutive samples x 60 channels (the end
  zero-padded): lossless (no sample is dropped or averaged), only the recurrence is shorter.
  The benchmark JSON records the measured cost and accuracy of the setting used.

Denormal floats made CPU LSTM back-propagation through 722 steps ~4x slower (measured
0.43 vs 0.125 s per batch); training flushes denormals to zero.

One concept, the paper's estimator; its length is the Keras-faithful initialisation and
training loop that the paper's results depend on.
"""

from __future__ import annotations

import copy
import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import nmmfit
from nmmfit._validate import as_array, check_finite
from nmmfit.models import jansen_rit as jr

LOSSES = ("snr_db", "mse")


@dataclass(frozen=True)
class BiLSTMConfig:
    """Hyper-parameters of :class:`BiLSTMEstimator` (defaults: the paper, fixed).

    hidden : LSTM units per direction. dropout : input dropout fraction.
    lr : Adam learning rate. batch_size : mini-batch size. max_epochs, patience : early
    stopping on the validation loss (min_delta: smallest improvement that counts).
    loss : "snr_db" (paper) or "mse". frame : samples per LSTM step (1 = paper).
    init_seed : Glorot seed (paper 4287). seed : shuffling, dropout and internal split.
    val_fraction : held out of the training data when ``fit`` gets no validation set.
    threads : torch CPU threads.
    """

    hidden: int = 64
    dropout: float = 0.1
    lr: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 150
    patience: int = 10
    min_delta: float = 0.0
    loss: str = "snr_db"
    frame: int = 1
    init_seed: int = 4287
    seed: int = 1234
    val_fraction: float = 1 / 9
    threads: int = 2

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("hidden", "batch_size", "max_epochs", "patience", "frame", "threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"BiLSTMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1 or not 0 < self.val_fraction < 1:
            raise ValueError(f"dropout ({self.dropout}) must be in [0, 1) and val_fraction "
                             f"({self.val_fraction}) in (0, 1)")


def snr_db_loss(y_true, y_pred):
    """Paper loss: 10 log10(mean((y - y_hat)^2) / mean(y^2)) over all elements (torch)."""
    import torch

    return 10.0 * torch.log10(torch.mean((y_true - y_pred) ** 2) / torch.mean(y_true**2))


def mse_loss(y_true, y_pred):
    """Mean squared error over all elements (torch)."""
    import torch

    return torch.mean((y_true - y_pred) ** 2)


def _net(n_in: int, n_out: int, cfg: BiLSTMConfig):
    import torch
    from torch import nn

    class Net(nn.Module):
        """Input dropout -> Bi-LSTM -> last states -> Dense."""

        def __init__(self) -> None:
            super().__init__()
            self.p = cfg.dropout
            self.lstm = nn.LSTM(n_in, cfg.hidden, batch_first=True, bidirectional=True)
            self.dense = nn.Linear(2 * cfg.hidden, n_out)

        def forward(self, x):  # x: [B, T, n_in]
            if self.training and self.p > 0:
                keep = torch.rand(x.shape[0], 1, x.shape[2], dtype=x.dtype) >= self.p
                x = x * keep / (1.0 - self.p)
            _, (h, _) = self.lstm(x)  # h: [2, B, hidden]
            return self.dense(torch.cat([h[0], h[1]], dim=1))

    net = Net()
    g = torch.Generator().manual_seed(cfg.init_seed)
    h = cfg.hidden

    def glorot(w):
        lim = float(np.sqrt(6.0 / (w.shape[0] + w.shape[1])))  # fan_in + fan_out
        with torch.no_grad():
            w.copy_((torch.rand(w.shape, generator=g) * 2 - 1) * lim)

    with torch.no_grad():
        for sfx in ("", "_reverse"):
            glorot(getattr(net.lstm, f"weight_ih_l0{sfx}"))
            w_hh = getattr(net.lstm, f"weight_hh_l0{sfx}")
            for k in range(4):  # Keras: orthogonal recurrent kernel (4 gate blocks of h x h)
                q, r = torch.linalg.qr(torch.randn(h, h, generator=g))
                w_hh[k * h:(k + 1) * h] = q * torch.sign(torch.diagonal(r))
            b = getattr(net.lstm, f"bias_ih_l0{sfx}")
            b.fill_(0.001)
            b[h:2 * h] = 1.0  # gate order i, f, g, o: forget bias 1
            getattr(net.lstm, f"bias_hh_l0{sfx}").zero_()
        glorot(net.dense.weight)
        net.dense.bias.fill_(0.001)
    return net


def _versions() -> dict[str, str]:
    import platform
    import sys

    import torch

    return {"nmmfit": nmmfit.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0], "platform": platform.platform()}


#: Largest factor by which the ERPs' amplitude may differ from the training data's in
#: :meth:`BiLSTMEstimator.predict` (noise levels move it by well under 10; a unit error by
#: 1e3 or 1e6).
MAX_SCALE_RATIO = 100.0


@dataclass
class _Meta:
    n_channels: int
    n_times: int
    param_names: list[str]
    param_lower: list[float]
    param_upper: list[float]
    param_units: list[str]
    x_mean: list[float]
    x_std: list[float]
    channel_names: list[str] | None = None
    config: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)


class BiLSTMEstimator:
    """Scikit-learn-like Bi-LSTM regressor: ERP [N, n_ch, n_times] -> parameters [N, P].

    >>> est = BiLSTMEstimator().fit(X_train, theta_train, X_val, theta_val)  # doctest: +SKIP
    >>> theta_hat = est.predict(X_test)          # physical units, [N, P]
    >>> est.save("model.pt"); est2 = BiLSTMEstimator.load("model.pt", n_channels=60)

    Fitted attributes: ``meta_`` (shapes, parameter names and ranges, normalisation,
    config, history, versions) and ``net_`` (the torch module).
    """

    def __init__(self, config: BiLSTMConfig | None = None, params=jr.INFERRED):
        self.config = config or BiLSTMConfig()
        self.params = tuple(params)
        for p in self.params:
            if p not in jr.PARAM_BY_NAME:
                raise ValueError(f"unknown parameter {p!r}; expected names from "
                                 f"{jr.PARAM_NAMES}")
        self.meta_: _Meta | None = None
        self.net_ = None

    # --- checks and transforms -------------------------------------------------------------

    def _check_x(self, x, name: str = "X") -> np.ndarray:
        arr = as_array(x, name, ndim=3, dtype=np.float32)
        if self.meta_ is not None:
            want = (self.meta_.n_channels, self.meta_.n_times)
            if arr.shape[1:] != want:
                raise ValueError(f"{name} has shape {arr.shape}; this model was fitted on ERPs "
                                 f"of shape (N, {want[0]} channels, {want[1]} samples)")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} has shape {arr.shape}: no ERPs")
        return check_finite(arr, name)

    def _check_y(self, y, n: int, name: str = "theta") -> np.ndarray:
        arr = as_array(y, name, ndim=2)
        if arr.shape != (n, len(self.params)):
            raise ValueError(f"{name} has shape {arr.shape}; expected ({n}, {len(self.params)}) "
                             f"for {n} ERPs and parameters {list(self.params)}")
        return check_finite(arr, name)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return jr.bounds(self.params)

    def scale_targets(self, theta: np.ndarray) -> np.ndarray:
        """Physical parameters [N, P] -> [0, 1] by the spec ranges."""
        lo, hi = self._bounds()
        return (theta - lo) / (hi - lo)

    def unscale_targets(self, z: np.ndarray) -> np.ndarray:
        """Scaled [N, P] -> physical units."""
        lo, hi = self._bounds()
        return lo + z * (hi - lo)

    def _to_seq(self, x: np.ndarray):
        """[N, C, T] (V) -> standardised torch [N, T / frame, C * frame] float32."""
        import torch

        m = np.asarray(self.meta_.x_mean, dtype=np.float32)[None, :, None]
        s = np.asarray(self.meta_.x_std, dtype=np.float32)[None, :, None]
        z = ((x - m) / s).astype(np.float32)
        n, c, t = z.shape
        f = self.config.frame
        steps = -(-t // f)
        if steps * f != t:  # zero-pad the end (0 = the channel mean after standardising)
            z = np.concatenate([z, np.zeros((n, c, steps * f - t), np.float32)], axis=2)
        z = z.transpose(0, 2, 1).reshape(n, steps, f * c)
        return torch.from_numpy(np.ascontiguousarray(z))

    # --- fit / predict ----------------------------------------------------------------------

    def fit(self, X, theta, X_val=None, theta_val=None, channel_names=None,
            verbose: bool = False) -> BiLSTMEstimator:
        """Train on ERPs ``X`` [N, n_ch, n_times] (V) and parameters ``theta`` [N, P].

        Early stopping watches (``X_val``, ``theta_val``); without them a random
        ``config.val_fraction`` of the training data is held out (seed ``config.seed``).
        """
        import torch

        cfg = self.config
        self.meta_ = None
        x = self._check_x(X)
        y = self._check_y(theta, x.shape[0])
        if X_val is None:
            rng = np.random.default_rng(cfg.seed)
            perm = rng.permutation(x.shape[0])
            n_val = max(1, int(round(cfg.val_fraction * x.shape[0])))
            if n_val >= x.shape[0]:
                raise ValueError(f"X has shape {x.shape}: too few ERPs to hold out validation")
            xv, yv = x[perm[:n_val]], y[perm[:n_val]]
            x, y = x[perm[n_val:]], y[perm[n_val:]]
        else:
            xv = as_array(X_val, "X_val", ndim=3, dtype=np.float32)
            if xv.shape[1:] != x.shape[1:]:
                raise ValueError(f"X_val has shape {xv.shape}; expected (N, {x.shape[1]}, "
                                 f"{x.shape[2]}) like X")
            check_finite(xv, "X_val")
            yv = self._check_y(theta_val, xv.shape[0], "theta_val")
        if channel_names is not None and len(channel_names) != x.shape[1]:
            raise ValueError(f"channel_names has {len(channel_names)} names; X has shape "
                             f"{x.shape} ({x.shape[1]} channels)")
        lo, hi = self._bounds()
        mean = x.mean(axis=(0, 2), dtype=np.float64)
        std = x.std(axis=(0, 2), dtype=np.float64)
        std = np.where(std > 0, std, 1.0)
        self.meta_ = _Meta(
            n_channels=int(x.shape[1]), n_times=int(x.shape[2]), param_names=list(self.params),
            param_lower=lo.tolist(), param_upper=hi.tolist(),
            param_units=[jr.PARAM_BY_NAME[p].unit for p in self.params],
            x_mean=mean.tolist(), x_std=std.tolist(),
            channel_names=list(channel_names) if channel_names is not None else None,
            config=asdict(cfg), versions=_versions())

        prev_threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        torch.set_flush_denormal(True)
        try:
            self._train(x, y, xv, yv, verbose)
        finally:
            torch.set_flush_denormal(False)
            torch.set_num_threads(prev_threads)
        return self

    def _train(self, x, y, xv, yv, verbose: bool) -> None:
        import torch

        cfg = self.config
        torch.manual_seed(cfg.seed)
        net = _net(x.shape[1] * cfg.frame, len(self.params), cfg)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=1e-7)
        loss_fn = snr_db_loss if cfg.loss == "snr_db" else mse_loss
        xt, yt = self._to_seq(x), torch.from_numpy(self.scale_targets(y).astype(np.float32))
        xvt = self._to_seq(xv)
        yvt = torch.from_numpy(self.scale_targets(yv).astype(np.float32))
        rng = np.random.default_rng(cfg.seed)
        hist: dict[str, list[float]] = {"loss": [], "val_loss": [], "val_mse": []}
        best, best_state, best_epoch, wait = np.inf, None, 0, 0
        t0, c0 = time.perf_counter(), time.process_time()
        for epoch in range(cfg.max_epochs):
            net.train()
            perm = torch.from_numpy(rng.permutation(xt.shape[0]))
            tot = 0.0
            for s in range(0, xt.shape[0], cfg.batch_size):
                idx = perm[s:s + cfg.batch_size]
                loss = loss_fn(yt[idx], net(xt[idx]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * len(idx)
            net.eval()
            with torch.no_grad():
                pv = torch.cat([net(xvt[s:s + 256]) for s in range(0, xvt.shape[0], 256)])
                vl = float(loss_fn(yvt, pv))
                hist["val_mse"].append(float(mse_loss(yvt, pv)))
            hist["loss"].append(tot / xt.shape[0])
            hist["val_loss"].append(vl)
            if verbose:
                print(f"epoch {epoch + 1}: loss {hist['loss'][-1]:.4f} val {vl:.4f}")
            if vl < best - cfg.min_delta:
                best, best_state, best_epoch, wait = vl, copy.deepcopy(net.state_dict()), epoch, 0
            else:
                wait += 1
                if wait >= cfg.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.net_ = net
        self.meta_.history = {**hist, "best_epoch": best_epoch + 1,
                              "epochs_run": len(hist["loss"]), "best_val_loss": best,
                              "n_train": int(x.shape[0]), "n_val": int(xv.shape[0]),
                              "wall_s": time.perf_counter() - t0,
                              "cpu_s": time.process_time() - c0}

    def _require_fitted(self) -> None:
        if self.meta_ is None or self.net_ is None:
            raise RuntimeError("this BiLSTMEstimator is not fitted; call fit() or load()")

    def predict_scaled(self, X, batch: int = 256) -> np.ndarray:
        """Predictions in the scaled [0, 1] target space, [N, P]."""
        import torch

        self._require_fitted()
        x = self._check_x(X)
        prev = torch.get_num_threads()
        torch.set_num_threads(self.config.threads)
        try:
            with torch.no_grad():
                xt = self._to_seq(x)
                out = torch.cat([self.net_(xt[s:s + batch]) for s in range(0, len(xt), batch)])
        finally:
            torch.set_num_threads(prev)
        return out.numpy().astype(np.float64)

    def predict(self, X, channel_names=None) -> np.ndarray:
        """Parameters [N, P] in physical units for ERPs ``X`` [N, n_ch, n_times] (V).

        ``channel_names`` [n_ch], if given, are matched by name to the channels the model was
        trained on and ``X`` is reordered to them (``ValueError`` naming the channels that
        differ). ``ValueError`` too when the ERPs' amplitude is far from the training data's
        (:data:`MAX_SCALE_RATIO`), e.g. EEG in microvolts given to a model trained in volts.
        """
        self._require_fitted()
        x = self._check_x(X)
        if channel_names is not None:
            x = self.align_channels(x, channel_names)
        self.check_scale(x)
        return self.unscale_targets(self.predict_scaled(x))

    def align_channels(self, X, channel_names) -> np.ndarray:
        """``X`` [N, n_ch, T] with channels ``channel_names`` reordered to the training order."""
        self._require_fitted()
        names = [str(c) for c in channel_names]
        if len(names) != X.shape[1]:
            raise ValueError(f"{len(names)} channel names for X of shape {X.shape} "
                             f"({X.shape[1]} channels on axis 1)")
        trained = self.meta_.channel_names
        if trained is None:
            return X  # a model saved without channel names: the order cannot be checked
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise ValueError(f"channel names repeat: {dup[:10]}")
        missing = [c for c in trained if c not in names]
        extra = [c for c in names if c not in trained]
        if missing or extra:
            raise ValueError(f"the data's channels differ from the model's: missing "
                             f"{missing[:10]}{' ...' if len(missing) > 10 else ''} "
                             f"({len(missing)}), not in the model {extra[:10]}"
                             f"{' ...' if len(extra) > 10 else ''} ({len(extra)})")
        order = [names.index(c) for c in trained]
        return X[:, order, :]

    def amplitude_ratio(self, X) -> float:
        """Median over channels of the ERPs' standard deviation (over ERPs and samples) divided
        by the training data's, for ``X`` [N, n_ch, T] in the training channel order."""
        self._require_fitted()
        sd = np.asarray(X, dtype=np.float64).std(axis=(0, 2))
        ref = np.asarray(self.meta_.x_std, dtype=np.float64)
        ok = (sd > 0) & (ref > 0)
        return float(np.median(sd[ok] / ref[ok])) if ok.any() else float("nan")

    def check_scale(self, X) -> None:
        """``ValueError`` if :meth:`amplitude_ratio` is outside [1 / MAX_SCALE_RATIO,
        MAX_SCALE_RATIO] (the data are then in another unit than the training data)."""
        ratio = self.amplitude_ratio(X)
        if not np.isfinite(ratio):
            raise ValueError("the ERPs are constant on every channel; nothing to infer from")
        if not 1.0 / MAX_SCALE_RATIO <= ratio <= MAX_SCALE_RATIO:
            ref = float(np.median(self.meta_.x_std))
            raise ValueError(f"the ERPs' amplitude is {ratio:.3g} times the training data's "
                             f"(median channel std {ref:.3g} V in training, "
                             f"{ratio * ref:.3g} here); the model expects EEG in volts "
                             f"(microvolts would be 1e6 times too large)")

    # --- persistence ------------------------------------------------------------------------

    def save(self, path) -> Path:
        """Write weights and metadata (JSON) to one torch file."""
        import torch

        self._require_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": "nmmfit.BiLSTMEstimator/1", "meta": json.dumps(asdict(self.meta_)),
                    "state_dict": self.net_.state_dict()}, path)
        return path

    @classmethod
    def load(cls, path, n_channels: int | None = None,
             channel_names=None) -> BiLSTMEstimator:
        """Read a saved estimator; ``ValueError`` if ``n_channels`` / ``channel_names`` (the
        data it will be applied to) disagree with the channels it was trained on."""
        import torch

        blob = torch.load(io.BytesIO(Path(path).read_bytes()), weights_only=True)
        if blob.get("format") != "nmmfit.BiLSTMEstimator/1":
            raise ValueError(f"{path} is not a saved nmmfit BiLSTMEstimator")
        meta = _Meta(**json.loads(blob["meta"]))
        if n_channels is not None and int(n_channels) != meta.n_channels:
            raise ValueError(f"model {path} was trained on {meta.n_channels} channels, but the "
                             f"data to predict have {n_channels} channels")
        if channel_names is not None:
            names = list(channel_names)
            if len(names) != meta.n_channels or (meta.channel_names is not None
                                                 and names != meta.channel_names):
                raise ValueError(f"model {path} was trained on channels {meta.channel_names} "
                                 f"({meta.n_channels}); got {len(names)} channels {names[:5]}...")
        est = cls(BiLSTMConfig(**meta.config), params=meta.param_names)
        est.meta_ = meta
        net = _net(meta.n_channels * est.config.frame, len(meta.param_names), est.config)
        net.load_state_dict(blob["state_dict"])
        net.eval()
        est.net_ = net
        return est
