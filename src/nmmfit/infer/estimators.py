"""Point estimators of Jansen-Rit parameters from evoked EEG, beside the paper's Bi-LSTM.

All take evoked EEG ``X`` [N, n_ch, n_times] (V, average reference) and parameters
``theta`` [N, P] (physical units, order of ``params``), learn on parameters scaled to
[0, 1] by the spec ranges, and return physical units from ``predict`` (scikit-learn style:
``fit`` returns the estimator, fitted attributes end in ``_``).

- :class:`PCABoosting`: the simple baseline. PCA of the flattened EEG (50 components) and
  one histogram gradient-boosting regressor per parameter (scikit-learn).
- :class:`PCAMLP`: the same PCA, standardised, into a small multilayer perceptron.
- :class:`SourceBoostingEnsemble`: the estimator the benchmark selects (see
  ``docs/jansen_rit.md``). It first reads the source ERP out of the 60 channels with the
  GLS spatial filter of the forward model
  (:meth:`nmmfit.eeg.erp.ERPSimulator.source_filter`: a sufficient statistic for one
  fixed-orientation source, so nothing is lost, and the sensor noise off the source
  direction is removed), then fits gradient boosting on PCA scores of that waveform at
  several truncations (20 to 150 components) and averages their predictions. Few
  components pin down the large features (A_i, b_i); the small-variance components carry
  b_e and A_e; the average of the truncations beats each one.
"""

from __future__ import annotations

import numpy as np

from nmmfit._validate import as_array, check_finite
from nmmfit.models import jansen_rit as jr

__all__ = ["PCABoosting", "PCAMLP", "SourceBoostingEnsemble", "ESTIMATORS"]


class _ScaledRegressor:
    """Shared plumbing: input checks, parameter scaling, physical-unit predictions."""

    def __init__(self, params=jr.INFERRED, seed: int = 0) -> None:
        unknown = [p for p in params if p not in jr.PARAM_BY_NAME]
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; expected names of "
                             f"{jr.PARAM_NAMES}")
        self.params = tuple(params)
        self.seed = int(seed)
        self._lo = np.array([jr.PARAM_BY_NAME[p].lower for p in self.params])
        self._hi = np.array([jr.PARAM_BY_NAME[p].upper for p in self.params])

    def _check(self, X, theta=None) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.asarray(X)
        x = check_finite(as_array(X, "X", ndim=3,
                                  dtype=x.dtype if x.dtype.kind == "f" else float), "X")
        if theta is None:
            if hasattr(self, "n_features_in_") and x.shape[1:] != self.n_features_in_:
                raise ValueError(f"X has shape {x.shape}; the estimator was fitted on "
                                 f"[N, {self.n_features_in_[0]}, {self.n_features_in_[1]}]")
            return x, None
        t = check_finite(as_array(theta, "theta", ndim=2), "theta")
        if t.shape != (x.shape[0], len(self.params)):
            raise ValueError(f"theta has shape {t.shape}; expected ({x.shape[0]}, "
                             f"{len(self.params)}) for X of shape {x.shape} and parameters "
                             f"{self.params}")
        return x, (t - self._lo) / (self._hi - self._lo)

    def predict_scaled(self, X) -> np.ndarray:
        """Parameters [N, P] scaled to [0, 1] by the spec ranges (the space the model learns
        in; predictions may fall slightly outside) for evoked EEG ``X`` [N, n_ch, n_times]."""
        x, _ = self._check(X)
        return self._predict_scaled(x)

    def predict(self, X) -> np.ndarray:
        """Parameters [N, P] in physical units for evoked EEG ``X`` [N, n_ch, n_times]."""
        return self._lo + self.predict_scaled(X) * (self._hi - self._lo)


class _FlatPCA(_ScaledRegressor):
    """Shared input of the baselines: PCA(``n_components``) of the flattened EEG."""

    def __init__(self, n_components: int = 50, params=jr.INFERRED, seed: int = 0) -> None:
        super().__init__(params, seed)
        self.n_components = int(n_components)

    def _fit_pca(self, x: np.ndarray) -> np.ndarray:
        """Fit ``pca_`` on x [N, n_ch, n_times]; its scores [N, n_components]."""
        from sklearn.decomposition import PCA

        flat = x.reshape(x.shape[0], -1)
        self.pca_ = PCA(self.n_components, random_state=self.seed).fit(flat)
        self.n_features_in_ = x.shape[1:]
        return self.pca_.transform(flat)

    def _pca(self, x: np.ndarray) -> np.ndarray:
        return self.pca_.transform(x.reshape(x.shape[0], -1))


class PCABoosting(_FlatPCA):
    """Baseline: PCA(``n_components``) of the flattened EEG + gradient boosting per parameter.

    Fitted: ``pca_`` (sklearn PCA), ``models_`` (one HistGradientBoostingRegressor per
    parameter), ``n_features_in_`` (n_ch, n_times).
    """

    name = "pca_boosting"

    def fit(self, X, theta) -> PCABoosting:
        from sklearn.ensemble import HistGradientBoostingRegressor

        x, u = self._check(X, theta)
        f = self._fit_pca(x)
        self.models_ = [HistGradientBoostingRegressor(random_state=self.seed).fit(f, u[:, j])
                        for j in range(u.shape[1])]
        return self

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        f = self._pca(x)
        return np.column_stack([m.predict(f) for m in self.models_])


class PCAMLP(_FlatPCA):
    """Baseline: PCA(``n_components``) of the flattened EEG, standardised, into an MLP
    (``hidden`` units, ReLU, Adam, early stopping on 10 % of the training data).

    Fitted: ``pca_``, ``scaler_``, ``model_`` (sklearn MLPRegressor), ``n_features_in_``.
    """

    name = "pca_mlp"

    def __init__(self, n_components: int = 50, hidden=(128, 128), params=jr.INFERRED,
                 seed: int = 0) -> None:
        super().__init__(n_components, params, seed)
        self.hidden = tuple(hidden)

    def fit(self, X, theta) -> PCAMLP:
        from sklearn.neural_network import MLPRegressor
        from sklearn.preprocessing import StandardScaler

        x, u = self._check(X, theta)
        f = self._fit_pca(x)
        self.scaler_ = StandardScaler().fit(f)
        self.model_ = MLPRegressor(hidden_layer_sizes=self.hidden, alpha=1e-3, max_iter=2000,
                                   early_stopping=True, random_state=self.seed)
        self.model_.fit(self.scaler_.transform(f), u)
        return self

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        f = self.scaler_.transform(self._pca(x))
        return self.model_.predict(f).reshape(x.shape[0], -1)


class SourceBoostingEnsemble(_ScaledRegressor):
    """GLS source ERP -> PCA at each of ``sizes`` -> gradient boosting per parameter and
    size -> mean over sizes (module docstring).

    spatial_filter : [n_ch] (mV per V) the filter that reads the source ERP out of the EEG;
        default :meth:`nmmfit.eeg.erp.ERPSimulator.source_filter` of the default simulator
        (the lead field and noise model the data were simulated with).
    Fitted: ``filter_`` [n_ch], ``pcas_`` (one PCA per size), ``models_`` [size][parameter]
    (HistGradientBoostingRegressor), ``n_features_in_``.
    """

    name = "source_boosting_ensemble"

    def __init__(self, sizes=(20, 35, 50, 75, 100, 150), spatial_filter=None,
                 params=jr.INFERRED, seed: int = 0, chunk: int = 2000) -> None:
        super().__init__(params, seed)
        self.sizes = tuple(int(s) for s in sizes)
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError(f"sizes must be positive numbers of components, got {sizes}")
        self.spatial_filter = spatial_filter
        self.chunk = int(chunk)

    def source(self, x: np.ndarray) -> np.ndarray:
        """The source ERP estimate ``filter_ @ X`` [N, n_times] (mV), in chunks."""
        w = self.filter_
        if x.shape[1] != w.shape[0]:
            raise ValueError(f"X has {x.shape[1]} channels; the spatial filter has "
                             f"{w.shape[0]}")
        out = np.empty((x.shape[0], x.shape[2]))
        for s in range(0, x.shape[0], self.chunk):
            out[s:s + self.chunk] = np.einsum("c,nct->nt", w, x[s:s + self.chunk],
                                              dtype=np.float64)
        return out

    def fit(self, X, theta) -> SourceBoostingEnsemble:
        from sklearn.decomposition import PCA
        from sklearn.ensemble import HistGradientBoostingRegressor

        x, u = self._check(X, theta)
        if self.spatial_filter is None:
            from nmmfit.eeg.erp import ERPSimulator  # the default forward model, built once

            self.filter_ = ERPSimulator().source_filter()
        else:
            self.filter_ = check_finite(as_array(self.spatial_filter, "spatial_filter",
                                                 ndim=1), "spatial_filter")
        z = self.source(x)
        k_max = min(z.shape[0], z.shape[1])
        if max(self.sizes) > k_max:
            raise ValueError(f"sizes {self.sizes} exceed min(N, n_times) = {k_max}")
        self.pcas_, self.models_ = [], []
        for k in self.sizes:
            pca = PCA(k, random_state=self.seed).fit(z)
            f = pca.transform(z)
            self.pcas_.append(pca)
            self.models_.append([HistGradientBoostingRegressor(random_state=self.seed)
                                 .fit(f, u[:, j]) for j in range(u.shape[1])])
        self.n_features_in_ = x.shape[1:]
        return self

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        z = self.source(x)
        preds = []
        for pca, models in zip(self.pcas_, self.models_, strict=True):
            f = pca.transform(z)
            preds.append(np.column_stack([m.predict(f) for m in models]))
        return np.mean(preds, axis=0)


#: Name -> class of the estimators the benchmark compares.
ESTIMATORS = {c.name: c for c in (PCABoosting, PCAMLP, SourceBoostingEnsemble)}
