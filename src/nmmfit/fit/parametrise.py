"""Parametrisation of the pFIC model by regional heterogeneity maps (Zhang et al. 2024, pFIC).

With K maps m_1..m_K (each [N]) the regional parameters are linear in the maps::

    wEE_i   = a_0 + sum_k a_k m_k,i
    wEI_i   = b_0 + sum_k b_k m_k,i
    sigma_i = c_0 + sum_k c_k m_k,i          (nA)
    G       = global scalar

so a search vector has 3 (K + 1) + 1 entries, laid out as in DELSSOME / Zhang 2024::

    [a_0 .. a_K, b_0 .. b_K, G, c_0 .. c_K]

With the paper's two maps (myelin, FC gradient) that is 10 variables.

Bounds apply to the *expanded* regional values (DELSSOME group level: wEE in [1, 10], wEI in
[0, 5], G in [0, 3], sigma in [0.0005, 0.01] nA; they come from :data:`nmmfit.models.fic.PARAMS`).
A vector whose expansion leaves the box is out of bounds; the CMA-ES driver redraws it.
Optional extras: the FC-dependent wEI range (:func:`wei_bounds_from_fc`) and the spatial
constraint sign(corr(wEI, map_k)).

Initialisation (DELSSOME ``_init_CMA_ES_pFIC``): draw N regional values of wEE, wEI and sigma
uniformly inside their bounds, fit each profile by least squares on the design matrix
[1, m_1 .. m_K] (pseudo-inverse; Zhang's halving of the myelin coefficients is *not* done),
and draw G uniformly. :meth:`Parametrisation.initial_stds` gives DELSSOME's per-coordinate
scales Lambda (every wEE coefficient: the wEE intercept; every wEI coefficient: the wEI
intercept; G: 0.4; every sigma coefficient: 0.0005).

All the maths here are pure functions of arrays; nothing is simulated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nmmfit._validate import as_array, check_finite
from nmmfit.models import fic

__all__ = [
    "Parametrisation",
    "RegionalParams",
    "default_bounds",
    "check_bounds",
    "wei_bounds_from_fc",
    "WEI_RULES",
]

#: Regional parameter groups, in vector order.
_REGIONAL = ("wEE", "wEI", "sigma")

#: Names of the FC-dependent wEI rules of :func:`wei_bounds_from_fc`.
WEI_RULES = ("zhang", "delssome_indiv")


def default_bounds() -> dict[str, tuple[float, float]]:
    """name -> (lower, upper) from the model's parameter spec (DELSSOME group-level box)."""
    return {p.name: (float(p.lower), float(p.upper)) for p in fic.PARAMS}


def check_bounds(bounds: Mapping[str, Sequence[float]] | None) -> dict[str, tuple[float, float]]:
    """Complete ``bounds`` with the defaults and check each (lower, upper) pair.

    Raises ``ValueError`` for an unknown name, a non-finite value, or lower > upper.
    """
    out = default_bounds()
    for name, pair in (bounds or {}).items():
        if name not in out:
            raise ValueError(f"bounds has unknown parameter {name!r}; known: {list(out)}")
        arr = as_array(pair, f"bounds[{name!r}]", ndim=1)
        if arr.shape != (2,):
            raise ValueError(f"bounds[{name!r}] must be (lower, upper), got shape {arr.shape}")
        check_finite(arr, f"bounds[{name!r}]")
        lo, hi = float(arr[0]), float(arr[1])
        if lo > hi:
            raise ValueError(f"bounds[{name!r}] = ({lo}, {hi}): min > max")
        out[name] = (lo, hi)
    return out


def wei_bounds_from_fc(fc, rule: str | Sequence[float] = "zhang") -> tuple[float, float]:
    """FC-dependent range of wEI (Zhang et al. 2024; Zeng et al. 2026).

    Parameters
    ----------
    fc : [N, N] empirical FC.
    rule :
        ``"zhang"``: m = mean of the upper-triangle FC; max = clip(11 m, 3.2, 5),
        min = clip(22 m - 6, 0, 3.5) (Zhang 2024 pFIC).
        ``"delssome_indiv"``: max = clip(11 m, 3.2, 5), min = clip(2 max - 6, 0, 3.5).
        ``(a, b, c, d)``: DELSSOME group level, with M = mean of the full FC (diagonal
        included): max = clip(a M + b, 3.2, 5), min = clip(c M + d, 0, 3.5).

    Returns
    -------
    (wEI_min, wEI_max).
    """
    f = check_finite(as_array(fc, "fc", ndim=2), "fc")
    if f.shape[0] != f.shape[1]:
        raise ValueError(f"fc must be a square [N, N] matrix, got shape {f.shape}")
    iu = np.triu_indices(f.shape[0], 1)
    m = float(f[iu].mean())
    if isinstance(rule, str):
        if rule == "zhang":
            hi = float(np.clip(11 * m, 3.2, 5.0))
            lo = float(np.clip(22 * m - 6, 0.0, 3.5))
        elif rule == "delssome_indiv":
            hi = float(np.clip(11 * m, 3.2, 5.0))
            lo = float(np.clip(2 * hi - 6, 0.0, 3.5))
        else:
            raise ValueError(f"wei_rule must be one of {WEI_RULES} or (a, b, c, d), got {rule!r}")
    else:
        coef = as_array(rule, "wei_rule", ndim=1)
        if coef.shape != (4,):
            raise ValueError(f"wei_rule (a, b, c, d) must hold 4 numbers, got shape {coef.shape}")
        a, b, c, d = (float(v) for v in coef)
        mf = float(f.mean())
        hi = float(np.clip(a * mf + b, 3.2, 5.0))
        lo = float(np.clip(c * mf + d, 0.0, 3.5))
    return lo, hi


@dataclass
class RegionalParams:
    """Expanded parameters of P candidates.

    Attributes
    ----------
    wEE, wEI : [P, N] dimensionless weights.
    G : [P] global coupling.
    sigma : [P, N] noise amplitude (nA).
    """

    wEE: np.ndarray
    wEI: np.ndarray
    G: np.ndarray
    sigma: np.ndarray

    def __len__(self) -> int:
        return int(self.G.shape[0])

    def take(self, idx) -> RegionalParams:
        """Subset of candidates ``idx``."""
        return RegionalParams(self.wEE[idx], self.wEI[idx], self.G[idx], self.sigma[idx])

    def as_dict(self) -> dict[str, np.ndarray]:
        """name -> array."""
        return {"wEE": self.wEE, "wEI": self.wEI, "G": self.G, "sigma": self.sigma}


def _corr_rows(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Pearson r of each row of x [P, N] with m [N]; 0 where a row is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    mc = m - m.mean()
    den = np.linalg.norm(xc, axis=1) * np.linalg.norm(mc)
    return np.divide(xc @ mc, den, out=np.zeros(x.shape[0]), where=den > 1e-300)


class Parametrisation:
    """Map-based parametrisation of the pFIC model: search vectors <-> regional parameters.

    Parameters
    ----------
    maps : name -> [N] map (or a [K, N] array, named ``map1..mapK``). K may be 0 (homogeneous
        wEE, wEI, sigma). Maps are used as given (the bundled ones are z-scored).
    bounds : name -> (lower, upper) for "wEE", "wEI", "G", "sigma"; missing names take the
        model's defaults (:func:`default_bounds`).
    spatial_constraint : map name -> +1 (require corr(wEI, map) >= 0) or -1 (<= 0). DELSSOME
        group level uses {"myelin": -1, "fc_gradient": +1}. None: off (Zhang's default).
    n_regions : expected N; a map of another length raises ``ValueError``.
    """

    def __init__(self, maps: Mapping[str, np.ndarray] | np.ndarray, *,
                 bounds: Mapping[str, Sequence[float]] | None = None,
                 spatial_constraint: Mapping[str, int] | None = None,
                 n_regions: int | None = None) -> None:
        if isinstance(maps, Mapping):
            names = [str(k) for k in maps]
            arrs = [as_array(v, f"maps[{k!r}]") for k, v in maps.items()]
        else:
            a = as_array(maps, "maps", ndim=2)
            names = [f"map{k + 1}" for k in range(a.shape[0])]
            arrs = list(a)
        for name, arr in zip(names, arrs, strict=True):
            if arr.ndim != 1:
                raise ValueError(f"maps[{name!r}] must be a [N] vector, got shape {arr.shape}")
            check_finite(arr, f"maps[{name!r}]")
        if n_regions is None:
            if not arrs:
                raise ValueError("n_regions is required when no map is given")
            n_regions = arrs[0].shape[0]
        for name, arr in zip(names, arrs, strict=True):
            if arr.shape[0] != n_regions:
                raise ValueError(f"maps[{name!r}] has shape {arr.shape}, but the model has "
                                 f"{n_regions} regions (SC is {n_regions} x {n_regions})")
        self.n_regions = int(n_regions)
        self.map_names: tuple[str, ...] = tuple(names)
        self.maps = np.stack(arrs) if arrs else np.zeros((0, self.n_regions))  # [K, N]
        self.design = np.column_stack([np.ones(self.n_regions), self.maps.T])  # [N, K+1]
        if np.linalg.matrix_rank(self.design) < self.design.shape[1]:
            raise ValueError(f"the design matrix [1, maps] (shape {self.design.shape}) is rank "
                             "deficient: a map is constant or a combination of the others")
        self.bounds = check_bounds(bounds)
        sc: dict[str, int] = {}
        for name, sign in (spatial_constraint or {}).items():
            if name not in self.map_names:
                raise ValueError(f"spatial_constraint names map {name!r}, not among the maps "
                                 f"{list(self.map_names)}")
            if sign not in (-1, 1):
                raise ValueError(f"spatial_constraint[{name!r}] must be +1 or -1, got {sign!r}")
            sc[name] = int(sign)
        self.spatial_constraint = sc

    # ---- layout

    @property
    def n_maps(self) -> int:
        """K, the number of maps."""
        return int(self.maps.shape[0])

    @property
    def dim(self) -> int:
        """Length of a search vector, 3 (K + 1) + 1."""
        return 3 * (self.n_maps + 1) + 1

    def _slices(self) -> dict[str, slice | int]:
        k1 = self.n_maps + 1
        return {"wEE": slice(0, k1), "wEI": slice(k1, 2 * k1), "G": 2 * k1,
                "sigma": slice(2 * k1 + 1, 3 * k1 + 1)}

    @property
    def names(self) -> list[str]:
        """One label per vector entry, e.g. ``wEE:1``, ``wEE:myelin``, ``G``."""
        coef = ["1", *self.map_names]
        return ([f"wEE:{c}" for c in coef] + [f"wEI:{c}" for c in coef] + ["G"]
                + [f"sigma:{c}" for c in coef])

    def _as_batch(self, x) -> np.ndarray:
        arr = as_array(x, "x", ndim=(1, 2))
        arr2 = np.atleast_2d(arr)
        if arr2.shape[1] != self.dim:
            raise ValueError(f"x has shape {arr.shape}; vectors of length {self.dim} expected "
                             f"({self.n_maps} maps: {self.names})")
        return arr2

    # ---- maths

    def expand(self, x) -> RegionalParams:
        """Search vectors x [P, dim] (or [dim]) -> regional parameters (P candidates)."""
        xb = self._as_batch(x)
        s = self._slices()
        return RegionalParams(
            wEE=xb[:, s["wEE"]] @ self.design.T,
            wEI=xb[:, s["wEI"]] @ self.design.T,
            G=self.coupling(xb),
            sigma=xb[:, s["sigma"]] @ self.design.T,
        )

    def coupling(self, x) -> np.ndarray:
        """The global coupling G [P] of search vectors x [P, dim] (or [dim]): ``expand(x).G``
        without expanding the regional profiles."""
        return self._as_batch(x)[:, self._slices()["G"]].copy()

    def violations(self, x) -> dict[str, np.ndarray]:
        """Per-candidate bool [P] for each kind of violation ("wEE", "wEI", "G", "sigma",
        "spatial:<map>", "finite")."""
        xb = self._as_batch(x)
        reg = self.expand(xb)
        out: dict[str, np.ndarray] = {"finite": ~np.isfinite(xb).all(axis=1)}
        for name, arr in reg.as_dict().items():
            lo, hi = self.bounds[name]
            a = arr if arr.ndim == 2 else arr[:, None]
            with np.errstate(invalid="ignore"):
                out[name] = ((a < lo) | (a > hi)).any(axis=1)
        for name, sign in self.spatial_constraint.items():
            k = self.map_names.index(name)
            r = _corr_rows(reg.wEI, self.maps[k])
            out[f"spatial:{name}"] = sign * r < 0
        return out

    def in_bounds(self, x) -> np.ndarray:
        """[P] bool: the expanded values lie in the box and satisfy the spatial constraint."""
        bad = np.zeros(self._as_batch(x).shape[0], dtype=bool)
        for v in self.violations(x).values():
            bad |= v
        return ~bad

    def least_squares(self, regional: np.ndarray) -> np.ndarray:
        """Coefficients [..., K+1] that best fit regional profiles [..., N] (pseudo-inverse)."""
        return np.asarray(regional) @ np.linalg.pinv(self.design).T

    def random_vectors(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n vectors by the paper's initialisation: uniform regional draws, least squares on
        [1, maps], uniform G. Returns [n, dim] (not necessarily in bounds)."""
        out = np.empty((n, self.dim))
        s = self._slices()
        for name in _REGIONAL:
            lo, hi = self.bounds[name]
            draws = rng.uniform(lo, hi, size=(n, self.n_regions))
            out[:, s[name]] = self.least_squares(draws)
        lo, hi = self.bounds["G"]
        out[:, s["G"]] = rng.uniform(lo, hi, size=n)
        return out

    def uniform_vectors(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n vectors uniform over a bounding box of the feasible coefficient set, [n, dim].

        Per regional parameter with bounds [lo, hi]: each map slope a_k is uniform on
        +-(hi - lo) / range(m_k) (a larger slope cannot fit in the box), the regional mean
        uniform on [lo, hi] (the intercept follows); G is uniform on its bounds. Rejecting the
        vectors that are not :meth:`in_bounds` leaves draws uniform over the feasible set.
        """
        out = np.empty((n, self.dim))
        s = self._slices()
        span = np.ptp(self.maps, axis=1) if self.n_maps else np.zeros(0)
        mmean = self.maps.mean(axis=1) if self.n_maps else np.zeros(0)
        for name in _REGIONAL:
            lo, hi = self.bounds[name]
            lim = (hi - lo) / np.maximum(span, 1e-12)
            slopes = rng.uniform(-1.0, 1.0, size=(n, self.n_maps)) * lim
            mean = rng.uniform(lo, hi, size=n)
            coef = np.column_stack([mean - slopes @ mmean, slopes])
            out[:, s[name]] = coef
        lo, hi = self.bounds["G"]
        out[:, s["G"]] = rng.uniform(lo, hi, size=n)
        return out

    def initial_vector(self, rng: np.random.Generator, max_tries: int = 1000) -> np.ndarray:
        """The CMA-ES starting mean: the first in-bounds vector of :meth:`random_vectors`."""
        for _ in range(max_tries):
            x = self.random_vectors(rng, 1)
            if self.in_bounds(x)[0]:
                return x[0]
        raise RuntimeError(f"no in-bounds initial vector in {max_tries} draws; bounds "
                           f"{self.bounds}, spatial constraint {self.spatial_constraint}")

    def initial_stds(self, x0) -> np.ndarray:
        """DELSSOME's per-coordinate scales Lambda [dim] for the starting mean ``x0``."""
        x0 = self._as_batch(x0)[0]
        s = self._slices()
        lam = np.empty(self.dim)
        lam[s["wEE"]] = abs(x0[0])
        lam[s["wEI"]] = abs(x0[self.n_maps + 1])
        lam[s["G"]] = 0.4
        lam[s["sigma"]] = 0.0005
        return np.maximum(lam, 1e-12)

    # ---- constructors and records

    @classmethod
    def from_target(cls, target, maps: Sequence[str] | None = ("myelin", "fc_gradient"), *,
                    bounds: Mapping[str, Sequence[float]] | None = None,
                    wei_rule: str | Sequence[float] | None = None,
                    spatial_constraint: Mapping[str, int] | None = None) -> Parametrisation:
        """Parametrisation from a :class:`~nmmfit.data.target.Target`'s maps.

        ``maps`` names the target maps to use (None: all of them, in order). ``wei_rule``
        (see :func:`wei_bounds_from_fc`) replaces the wEI bounds with the FC-dependent range
        of the target's FC.
        """
        names = list(target.maps) if maps is None else [str(m) for m in maps]
        missing = [m for m in names if m not in target.maps]
        if missing:
            raise ValueError(f"maps {missing} are not in target {target.name!r} "
                             f"(has {list(target.maps)})")
        b = dict(bounds or {})
        if wei_rule is not None:
            b["wEI"] = wei_bounds_from_fc(target.fc, wei_rule)
        return cls({m: target.maps[m] for m in names}, bounds=b,
                   spatial_constraint=spatial_constraint, n_regions=target.n_regions)

    def describe(self) -> dict:
        """JSON-ready description (maps by name and content hash)."""
        h = hashlib.sha256(np.ascontiguousarray(self.maps, dtype=np.float64).tobytes())
        return {"n_regions": self.n_regions, "maps": list(self.map_names),
                "maps_sha256": h.hexdigest()[:16], "bounds": {k: list(v) for k, v in
                                                              self.bounds.items()},
                "spatial_constraint": dict(self.spatial_constraint), "layout": self.names}

    def __repr__(self) -> str:
        return (f"Parametrisation(N={self.n_regions}, maps={list(self.map_names)}, "
                f"dim={self.dim}, bounds={self.bounds})")
