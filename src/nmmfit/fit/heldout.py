"""The test phase on held-out data: which validated candidates are tested, and how one is
scored.

- :func:`distinct_top` picks the ``test_top`` best validated candidates with Zhang's rule: a
  candidate whose wEE, wEI and sigma profiles all correlate > 0.98 with an already chosen one
  is skipped.
- :func:`score_candidate` simulates one candidate ``n_dup_test`` times at ``test_dt`` against
  the test Target. The duplicates are scored in groups of ``test_group`` (their FC and FCD
  averaged, as in training), which gives a mean and a spread of each cost term; the regional
  E/I ratio (time-averaged S_E / S_I) is reported per region as mean and standard deviation
  over the valid duplicates. On request (the tested best candidate) it also keeps the FCD
  matrix of the first valid duplicate (:func:`~nmmfit.stats.fcd.sampled_fcd_matrix`).
"""

from __future__ import annotations

import time

import numpy as np

from nmmfit.fit.parametrise import Parametrisation
from nmmfit.fit.presets import Preset
from nmmfit.sim import SimConfig, simulate
from nmmfit.stats.cost import TERM_NAMES, distance
from nmmfit.stats.fcd import cdf_from_counts, sampled_fcd_matrix
from nmmfit.stats.summary import summarise

__all__ = ["distinct_top", "score_candidate"]


def distinct_top(order: np.ndarray, xs: np.ndarray, param: Parametrisation, k: int,
                 thr: float = 0.98) -> list[int]:
    """Zhang's test selection: walk ``order``; skip a candidate whose wEE, wEI and sigma
    profiles all correlate above ``thr`` with an already chosen one (and exact repeats).

    ``order`` [M] (int) ranks the rows of ``xs`` [M, dim] (search vectors of ``param``),
    best first; returns at most ``k`` row indices, in that order."""
    chosen: list[int] = []
    reg = param.expand(xs)
    for i in order:
        dup = False
        for j in chosen:
            if np.array_equal(xs[i], xs[j]):
                dup = True
                break
            rs = []
            for a in (reg.wEE, reg.wEI, reg.sigma):
                u, v = a[i] - a[i].mean(), a[j] - a[j].mean()
                den = np.linalg.norm(u) * np.linalg.norm(v)
                rs.append(float(u @ v / den) if den > 0 else 1.0)
            if min(rs) > thr:
                dup = True
                break
        if not dup:
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return chosen


def score_candidate(x: np.ndarray, target, param: Parametrisation, config: SimConfig,
                    preset: Preset, seed: int, engine: str, threads: int | None, *,
                    progress: str | None = None, keep_fcd: bool = False) -> dict:
    """Simulate one candidate n_dup_test times; score groups of test_group duplicates.

    ``x`` [dim] is a search vector of ``param``; ``target`` the test Target; ``config`` the
    test SimConfig. Returns a JSON-ready dict (arrays aside): n_dup, group, n_groups,
    n_valid_groups, n_valid_dups, sim_s (seconds simulating); each cost term and "total": mean
    and ``<term>_std`` over the valid groups (over all groups when none is valid);
    fc_corr_intra (None if unknown); ei_map, ei_map_std [N] and ei_mean, ei_mean_std (mean and
    std over valid duplicates); sim_fc [N, N] and sim_fcd_cdf [n_bins] (over valid
    duplicates; NaN when none); valid (bool: at least one valid group). ``progress``: a label
    to show a progress bar (in Euler steps of each batch of duplicates) under; None: none.
    ``keep_fcd``: also return "sim_fcd", the :class:`~nmmfit.stats.fcd.FCDMatrix` of the
    first valid duplicate (lowest index among those that enter sim_fc; the target's
    ``fcd_spec``, window times at ``config.tr``), or None when no duplicate is valid."""
    reg = param.expand(x[None])
    g = preset.test_group
    n_groups = preset.n_dup_test // g
    per_call = max(1, 100 // g) * g  # duplicates per simulate call (memory bound)
    terms, valid_groups, n_valid, intra = [], [], [], []
    ei_rows, fc_sum, hist_sum = [], None, None
    sim_fcd = None
    n_ok_total = 0
    sim_s = 0.0
    for c, start in enumerate(range(0, preset.n_dup_test, per_call)):
        d = min(per_call, preset.n_dup_test - start)
        t0 = time.perf_counter()
        res = simulate(target.sc, reg.wEE, reg.wEI, reg.G, reg.sigma, config=config, n_dup=d,
                       seed=int(seed) + c, engine=engine, threads=threads,
                       progress=False if progress is None else f"{progress} x{d}")
        sim_s += time.perf_counter() - t0
        ok = res.valid[0].reshape(d // g, g)
        # each duplicate summarised once; its groups are scored, all of them summed below
        dups = summarise(res.bold[0], target.fcd_spec, valid=res.valid[0], threads=threads)
        ct = distance(dups.pool(g), target, warn_frames=False)
        terms.append(np.stack([ct.fc_corr, ct.fc_l1, ct.fcd_ks, ct.total], axis=1))
        intra.append(ct.fc_corr_intra if ct.fc_corr_intra is not None
                     else np.full(len(ct), np.nan))
        valid_groups.append(ct.valid)
        n_valid.append(ok.sum(axis=1))
        v = res.valid[0]
        if v.any():
            ei_rows.append(res.ei_ratio[0][v])
        if dups.valid.any():
            fcs = dups.fc_sum.sum(axis=0)
            hist = dups.fcd_counts.sum(axis=0)
            fc_sum = fcs if fc_sum is None else fc_sum + fcs
            hist_sum = hist if hist_sum is None else hist_sum + hist
            n_ok_total += int(dups.valid.sum())
            if keep_fcd and sim_fcd is None:
                k = int(np.flatnonzero(dups.valid[:, 0])[0])
                sim_fcd = sampled_fcd_matrix(
                    res.bold[0, k], target.fcd_spec, config.tr, threads=threads,
                    label=f"test duplicate {start + k + 1} of {preset.n_dup_test} (the first "
                          "valid one)")
    t = np.concatenate(terms)
    vg = np.concatenate(valid_groups)
    n = param.n_regions
    out = {"n_dup": preset.n_dup_test, "group": g, "n_groups": n_groups,
           "n_valid_groups": int(vg.sum()), "n_valid_dups": n_ok_total, "sim_s": sim_s}
    for k, name in enumerate((*TERM_NAMES, "total")):
        col = t[vg, k] if vg.any() else t[:, k]
        out[name] = float(col.mean())
        out[f"{name}_std"] = float(col.std(ddof=1)) if col.size > 1 else 0.0
    ia = np.concatenate(intra)[vg]
    # 1 - r over intra-hemispheric edges (cuBNM's FC score), beside the cost; None if unknown
    out["fc_corr_intra"] = float(ia.mean()) if ia.size and np.isfinite(ia).all() else None
    if ei_rows:
        ei = np.concatenate(ei_rows)
        out["ei_map"] = ei.mean(axis=0)
        out["ei_map_std"] = ei.std(axis=0, ddof=1) if ei.shape[0] > 1 else np.zeros(n)
        out["ei_mean"] = float(ei.mean())
        out["ei_mean_std"] = float(ei.mean(axis=1).std(ddof=1)) if ei.shape[0] > 1 else 0.0
    else:
        out["ei_map"] = out["ei_map_std"] = np.full(n, np.nan)
        out["ei_mean"] = out["ei_mean_std"] = float("nan")
    if n_ok_total:
        out["sim_fc"] = fc_sum / n_ok_total
        out["sim_fcd_cdf"] = cdf_from_counts(hist_sum)
    else:
        out["sim_fc"] = np.full((n, n), np.nan)
        out["sim_fcd_cdf"] = np.full(target.fcd_spec.n_bins, np.nan)
    out["valid"] = bool(vg.any())
    if keep_fcd:
        out["sim_fcd"] = sim_fcd
    return out
