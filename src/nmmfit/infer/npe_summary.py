"""NPE on learned summary statistics: the posterior of the parameters given a point
estimator's estimates, calibrated by sbi.

The point estimator (:class:`~nmmfit.infer.estimators.SourceBoostingEnsemble`) approximates
the posterior mean E[theta | ERP], the summary statistic that semi-automatic ABC uses
(Fearnhead & Prangle 2012, JRSS-B 74, 419). A flow (sbi NPE, :class:`~nmmfit.infer.npe.
NPEstimator` with a small dense embedding) then learns q(theta | s), so the posterior is as
sharp as the estimator allows and its calibration is learned from the simulations::

    ERP [N, 60, 722] --K-fold estimators--> s [N, P] (scaled to [0, 1]) --NPE--> q(u | s)

The summaries of the training simulations are out-of-fold (each from the fold model that
did not see it); new data get the estimate of one fold model (the first). Each is then a
model trained on (K - 1)/K of the data applied to a simulation it did not see, so the flow
is trained and used on summaries of the same distribution. (The mean of the K fold models
would be less noisy than what the flow learned from, and its posteriors too narrow.)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nmmfit._validate import as_array, check_finite
from nmmfit.infer.estimators import SourceBoostingEnsemble
from nmmfit.infer.npe import NPEConfig, NPEstimator
from nmmfit.models import jansen_rit as jr

__all__ = ["SummaryNPE"]


class SummaryNPE:
    """NPE on cross-fitted point estimates (module docstring).

    config : the NPE settings (its embedding is replaced by "mlp"). n_folds : K.
    sizes : the estimators' PCA truncations (default: SourceBoostingEnsemble's).
    Fitted: ``estimator_`` (the first fold's SourceBoostingEnsemble, which reads new data;
    the other K - 1 are used for the training summaries only), ``npe_`` (the NPEstimator on
    summaries).
    ``sample``, ``evaluate``, ``leakage_`` and ``meta_`` behave as NPEstimator's, on ERPs.

    >>> npe = SummaryNPE().fit(X_train, theta_train)      # doctest: +SKIP
    >>> draws = npe.sample(X_test, 1000)                   # [1000, N, P] physical units
    """

    def __init__(self, config: NPEConfig | None = None, params=jr.INFERRED, n_folds: int = 5,
                 sizes=None):
        if int(n_folds) < 2:
            raise ValueError(f"n_folds must be >= 2, got {n_folds}")
        self.config = replace(config or NPEConfig(), embedding="mlp")
        self.params = tuple(params)
        self.n_folds = int(n_folds)
        self.sizes = sizes

    def fit(self, X, theta) -> SummaryNPE:
        """Train on ERPs ``X`` [N, n_ch, n_times] (V) and parameters ``theta`` [N, P]."""
        from sklearn.model_selection import KFold

        t = check_finite(as_array(theta, "theta", ndim=2), "theta")
        if t.shape[0] != np.shape(X)[0]:
            raise ValueError(f"theta has {t.shape[0]} rows but X has {np.shape(X)[0]} ERPs")
        s = np.empty(t.shape)
        kw = {} if self.sizes is None else {"sizes": self.sizes}
        split = KFold(self.n_folds, shuffle=True, random_state=self.config.seed)
        for k, (tr, te) in enumerate(split.split(t)):
            est = SourceBoostingEnsemble(params=self.params, seed=self.config.seed, **kw)
            s[te] = est.fit(X[tr], t[tr]).predict_scaled(X[te])
            if k == 0:  # the one fold model that reads new data; the others are not kept
                self.estimator_ = est
        self.npe_ = NPEstimator(self.config, self.params).fit(s[:, None, :], t)
        return self

    def summaries(self, X) -> np.ndarray:
        """The first fold estimator's scaled estimates, [N, 1, P] (the flow's input; module
        docstring says why one fold and not their mean)."""
        return self.estimator_.predict_scaled(X)[:, None, :]

    def sample(self, X, n_samples: int | None = None) -> np.ndarray:
        """Posterior draws in physical units, [S, N, P], for ERPs ``X``."""
        return self.npe_.sample(self.summaries(X), n_samples)

    def evaluate(self, X, theta, levels=(0.5, 0.9), sbi_checks: bool = True) -> dict:
        """Posterior-mean r, coverage and SBC per parameter (as NPEstimator.evaluate)."""
        return self.npe_.evaluate(self.summaries(X), theta, levels, sbi_checks=sbi_checks)

    @property
    def leakage_(self) -> dict:
        return self.npe_.leakage_

    @property
    def meta_(self) -> dict:
        return {**self.npe_.meta_, "summary": {"estimator": SourceBoostingEnsemble.name,
                                               "n_folds": self.n_folds}}
