"""The outcome of a fit (:class:`FitResult`), and the choice of one fit among several by
validation (:func:`best_by_validation`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nmmfit.fit.cmaes import SearchHistory
from nmmfit.fit.parametrise import Parametrisation, RegionalParams

__all__ = ["FitResult", "best_by_validation", "regional_dict"]


@dataclass
class FitResult:
    """Outcome of :func:`~nmmfit.fit.protocol.fit`.

    Attributes
    ----------
    run_id, preset, seed, config : identity and settings (the run id hashes config without
        ``n_epochs``, so a run can be extended).
    parametrisation : the map parametrisation; best_x [dim] : the tested best candidate.
    regional : its expanded parameters (wEE, wEI, sigma [N]; G scalar).
    train : search history (best child per epoch).
    val_epochs [E], val_terms [E, 3], val_total [E], val_valid [E], val_x [E, dim].
    test : one dict per tested candidate (terms mean/std over duplicate groups, E/I).
    test_cost : fc_corr, fc_l1, fcd_ks, total of the best candidate (mean over groups).
    ei_map, ei_map_std : [N] regional E/I ratio of the best candidate, mean / std over valid
        test duplicates.
    sim_fc [N, N], sim_fcd_cdf [bins] : test simulation's FC (mean over valid duplicates)
        and FCD CDF; emp_fc, emp_fcd_cdf : the test target's.
    timings : seconds (train, val, test, per epoch); versions : package versions.
    """

    run_id: str
    preset: str
    seed: int
    config: dict
    parametrisation: Parametrisation
    best_x: np.ndarray
    regional: dict
    train: SearchHistory
    val_epochs: np.ndarray
    val_terms: np.ndarray
    val_total: np.ndarray
    val_valid: np.ndarray
    val_x: np.ndarray
    test: list[dict]
    test_cost: dict
    ei_map: np.ndarray
    ei_map_std: np.ndarray
    sim_fc: np.ndarray
    sim_fcd_cdf: np.ndarray
    emp_fc: np.ndarray
    emp_fcd_cdf: np.ndarray
    timings: dict
    versions: dict
    store_path: str = ""

    @property
    def best_val_cost(self) -> float:
        """Lowest validation total over epochs (valid candidates)."""
        ok = self.val_valid
        return float(self.val_total[ok].min()) if ok.any() else float("nan")

    def summary(self) -> dict:
        """JSON-ready summary (no large matrices)."""
        ei = self.ei_map
        return {
            "run_id": self.run_id, "preset": self.preset, "seed": self.seed,
            "store": self.store_path,
            "n_epochs": len(self.train.epochs),
            "n_evaluations": len(self.train.epochs) * int(
                self.config["preset"]["search"]["popsize"]),
            "train_best_total": [float(v) for v in self.train.best_total],
            "val_total": [float(v) for v in self.val_total],
            "best_val_cost": self.best_val_cost,
            "test_cost": self.test_cost,
            "test": [{k: (v.item() if isinstance(v, np.generic) else v)
                      for k, v in t.items() if not isinstance(v, np.ndarray)}
                     for t in self.test],
            "best_x": {n: float(v) for n, v in zip(self.parametrisation.names, self.best_x,
                                                   strict=True)},
            "regional": {k: np.asarray(v).tolist() for k, v in self.regional.items()},
            "ei_ratio": {"mean": float(np.nanmean(ei)) if np.isfinite(ei).any() else None,
                         "per_region": [None if not np.isfinite(v) else float(v) for v in ei],
                         "per_region_std": [None if not np.isfinite(v) else float(v)
                                            for v in self.ei_map_std]},
            "timings": self.timings, "versions": self.versions, "config": self.config,
        }


def best_by_validation(results: Sequence[FitResult]) -> FitResult:
    """The fit with the lowest validation cost among several (seeds, starts or recipes).

    Zhang et al. 2024 ran five CMA-ES seeds and tested the solutions that validated best
    over all of them; their published test cost is that of the best-validated solution. The
    test costs of ``results`` play no part in the choice. Raises ``ValueError`` when
    ``results`` is empty or no fit has a valid validation candidate.
    """
    results = list(results)
    ok = [r for r in results if np.isfinite(r.best_val_cost)]
    if not ok:
        raise ValueError(f"none of the {len(results)} fits has a valid validation candidate")
    return min(ok, key=lambda r: r.best_val_cost)


def regional_dict(reg: RegionalParams) -> dict:
    """:attr:`FitResult.regional` from the expansion of one candidate (``reg`` of length 1):
    wEE, wEI, sigma [N] and G (float)."""
    return {"wEE": reg.wEE[0], "wEI": reg.wEI[0], "G": float(reg.G[0]), "sigma": reg.sigma[0]}
