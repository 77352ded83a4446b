"""The surrogate evaluator: the fit's :class:`~nmmfit.fit.evaluator.Evaluator`, without simulation.

A batch of search vectors is expanded to regional parameters, the validity classifier filters
it (probability >= ``threshold``), and the cost predictor scores the survivors. Candidates the
classifier rejects get the sentinel cost and ``valid = False``, exactly like an invalid Euler
simulation, so the CMA-ES driver needs no change (Zeng et al. 2026; ``docs/surrogate.md``).
The target's
FC and FCD inputs are prepared once, and each call is one batched forward pass per network.

Validation and test of a fit stay Euler (:func:`nmmfit.fit.fit` only swaps the training
evaluator), so every reported cost and E/I ratio comes from a simulation; the surrogate
reports no E/I (NaN).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from nmmfit.data.sc import LEGACY_SC_RECIPE
from nmmfit.fit.evaluator import Evaluation, Evaluator, check_target_regions
from nmmfit.fit.parametrise import Parametrisation
from nmmfit.stats.cost import SENTINEL_COST
from nmmfit.surrogate import shipped
from nmmfit.surrogate.fastpath import TargetPath

__all__ = ["SurrogateEvaluator", "model_sc_recipe", "LEGACY_SC_RECIPE"]



def model_sc_recipe(model) -> str:
    """The SC normalisation recipe a loaded surrogate model was trained for."""
    return str(model.meta.get("sc_normalisation") or LEGACY_SC_RECIPE)


class SurrogateEvaluator(Evaluator):
    """Scores candidates with a trained cost predictor (and optional validity classifier).

    Parameters
    ----------
    target : :class:`~nmmfit.data.target.Target` (its SC, FC and FCD PDF condition the nets).
    parametrisation : maps search vectors to regional parameters (region count = target's).
    predictor : :class:`~nmmfit.surrogate.store.LoadedModel` of kind "cost_predictor".
    classifier : LoadedModel of kind "classifier", or None (every candidate is scored).
    threshold : classifier probability at or above which a candidate counts as valid.
    weights : (w_corr, w_l1, w_ks) of the total.
    threads : torch CPU threads (None: leave torch's setting).
    """

    name = "surrogate"

    def __init__(self, target, parametrisation: Parametrisation, predictor, classifier=None, *,
                 threshold: float = 0.5, weights=(1.0, 1.0, 1.0),
                 threads: int | None = None) -> None:
        check_target_regions(target, parametrisation.n_regions)
        if predictor.kind != "cost_predictor":
            raise ValueError(f"predictor is a {predictor.kind!r} model, not a cost_predictor")
        if classifier is not None and classifier.kind != "classifier":
            raise ValueError(f"classifier is a {classifier.kind!r} model, not a classifier")
        for lm, what in ((predictor, "predictor"), (classifier, "classifier")):
            if lm is None:
                continue
            n_model = int(lm.meta["n_regions"])
            if n_model != target.n_regions:
                raise ValueError(f"the {what} was trained for {n_model} regions, but target "
                                 f"{target.name!r} has {target.n_regions} (SC shape "
                                 f"{target.sc.shape})")
            recipe = model_sc_recipe(lm)
            if recipe != target.sc_normalisation:
                raise ValueError(
                    f"the {what} ({lm.meta.get('name', 'model')}) was trained on targets whose "
                    f"SC was normalised with the {recipe!r} recipe, but target "
                    f"{target.name!r} was built with {target.sc_normalisation!r}; build the "
                    f"target with sc_normalisation={recipe!r}, or train surrogates for "
                    f"{target.sc_normalisation!r} (nmmfit surrogate generate / train)")
            bins = int(lm.meta.get("n_fcd_bins", target.fcd_pdf.shape[0]))
            if bins != target.fcd_pdf.shape[0]:
                raise ValueError(f"the {what} expects {bins} FCD bins, but target "
                                 f"{target.name!r} has an FCD PDF of shape "
                                 f"{target.fcd_pdf.shape}")
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        self.target = target
        self.parametrisation = parametrisation
        self.predictor = predictor
        self.classifier = classifier
        self.threshold = float(threshold)
        self.weights = tuple(float(w) for w in weights)
        self.threads = threads
        # the target-only part of each network, computed once (nmmfit.surrogate.fastpath)
        self._paths = {id(lm): TargetPath(lm, target, parametrisation)
                       for lm in (predictor, classifier) if lm is not None}

    @classmethod
    def from_shipped(cls, target, parametrisation: Parametrisation,
                     parcellation: str | None = None, *, folder=None,
                     threshold: float = 0.5, weights=(1.0, 1.0, 1.0),
                     threads: int | None = None) -> SurrogateEvaluator:
        """The evaluator with the models shipped for the target's parcellation (or those of a
        model folder).

        parcellation : which shipped set (:mod:`nmmfit.surrogate.shipped`): "schaefer100" /
            "schaefer-100" or "aal2" / "aal2-94"; None: the set whose region count is the
            target's. A parcellation without shipped models is a FileNotFoundError naming the
            missing files.
        folder : a folder holding a trained predictor and classifier (``nmmfit surrogate
            train``) to use instead of the shipped models (``parcellation`` is then unused).

        The models must have been trained for the target's region count and SC recipe: a
        target built with another recipe (``target.sc_normalisation``) is refused with the
        recipe to build it with. Other arguments: see the class.
        """
        n = target.n_regions
        if folder is not None:
            pred, clf = shipped.load_models(folder, n_regions=n)
        else:
            parc = shipped.shipped_for_regions(n) if parcellation is None else parcellation
            pred, clf = shipped.load_shipped(parc, n_regions=n)
        return cls(target, parametrisation, pred, clf, threshold=threshold, weights=weights,
                   threads=threads)

    @classmethod
    def for_fit(cls, train, maps, *, preset: str = "quick", wei_rule: str | None = None,
                bounds: dict | None = None, spatial_constraint: dict | None = None,
                folder=None, parcellation: str | None = None,
                threads: int | None = None) -> SurrogateEvaluator:
        """The training evaluator of a surrogate fit (``nmmfit fit --evaluator surrogate``).

        The parametrisation is the one :func:`nmmfit.fit.fit` builds from the same ``maps``,
        ``wei_rule``, ``bounds`` and ``spatial_constraint``
        (:meth:`Parametrisation.from_target`); the models are the shipped ones for the
        target's region count (or ``parcellation``'s), or those of ``folder``
        (:meth:`from_shipped`). A UserWarning says when the models were trained on another
        preset's simulations than ``preset`` (their costs then predict that setting).
        """
        param = Parametrisation.from_target(train, maps, wei_rule=wei_rule, bounds=bounds,
                                            spatial_constraint=spatial_constraint)
        ev = cls.from_shipped(train, param, parcellation, folder=folder, threads=threads)
        trained_for = (ev.predictor.meta.get("sim") or {}).get("preset")
        if trained_for and trained_for != preset:
            warnings.warn(f"the surrogate was trained on {trained_for!r}-preset simulations but "
                          f"the fit uses preset {preset!r}: its costs predict the "
                          f"{trained_for!r} setting", stacklevel=2)
        return ev

    def describe(self) -> dict:
        """Settings that change the scores (incl. the models' training-data hashes)."""
        def _m(lm):
            if lm is None:
                return None
            return {k: lm.meta.get(k) for k in ("name", "parcellation", "n_regions",
                                                "data_hash", "sim", "nmmfit_version")}
        return {"evaluator": self.name, "engine": "surrogate", "target": self.target.name,
                "threshold": self.threshold, "weights": list(self.weights),
                "predictor": _m(self.predictor), "classifier": _m(self.classifier)}

    def _run(self, lm, x, g):
        """Raw network output for search vectors x [P, dim] and their G [P] (float32
        tensors): one forward pass, no grad."""
        return self._paths[id(lm)](x, g)

    def evaluate(self, x: np.ndarray, seed: int) -> Evaluation:
        """Score the candidates ``x`` [P, dim]; ``seed`` is unused (the nets are
        deterministic) but kept for the interface."""
        import torch

        t0 = time.perf_counter()
        prev = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(int(self.threads))
        try:
            g = self.parametrisation.coupling(x)  # also checks x's shape
            p = g.shape[0]
            xt = torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(p, -1))
            gt = torch.from_numpy(g.astype(np.float32))
            if self.classifier is not None:
                proba = 1.0 / (1.0 + np.exp(-self._run(self.classifier, xt, gt).reshape(p)))
                valid = proba >= self.threshold
            else:
                proba = np.ones(p, dtype=np.float32)
                valid = np.ones(p, dtype=bool)
            t1 = time.perf_counter()
            terms = np.full((p, 3), SENTINEL_COST)
            if valid.any():
                keep = torch.from_numpy(valid)
                terms[valid] = self._run(self.predictor, xt[keep], gt[keep])
        finally:
            if self.threads is not None:
                torch.set_num_threads(prev)
        t2 = time.perf_counter()
        total = terms @ np.asarray(self.weights)
        n = self.parametrisation.n_regions
        return Evaluation(terms=terms, total=total, valid=valid,
                          n_valid=valid.astype(np.int64), ei_mean=np.full(p, np.nan),
                          ei_map=np.full((p, n), np.nan), wall_s=time.perf_counter() - t0,
                          meta={"engine": "surrogate", "seed": int(seed),
                                "classifier_s": t1 - t0, "predictor_s": t2 - t1,
                                "p_valid": proba.astype(float)})
