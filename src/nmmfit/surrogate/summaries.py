"""Simulated summaries of training rows: the extra supervision of the structured predictor.

:class:`~nmmfit.surrogate.networks.StructuredCostPredictor` computes fc_l1 and fcd_ks from two
predicted summaries of a candidate's simulation: the mean of its FC and its FCD CDF. The cost
labels alone pin these down only at the few targets of the training table (a KS label says
how far the CDF is from one target's, not where it is), so with few training targets they are
poorly determined. Re-simulating training rows and recording the summaries themselves fixes
that: :func:`simulate_summaries` re-runs rows of a generation table at the preset's training
setting (fresh noise) and returns, per row, the FC mean and the FCD CDF at the model's
comparison bins (:func:`~nmmfit.surrogate.networks.cdf_points`).

Work is saved after every batch to an ``.npz`` file, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nmmfit.fit import get_preset, sim_config_for
from nmmfit.sim import simulate
from nmmfit.stats.cost import fc_level
from nmmfit.stats.summary import summarise
from nmmfit.surrogate.networks import cdf_points

__all__ = ["simulate_summaries", "load_summaries", "batch_seed"]


def _rows_to_simulate(table: dict, max_rows: int | None, seed: int) -> np.ndarray:
    """Training rows whose stored label is valid, in a seeded random order (a partial run is a
    uniform subsample), at most ``max_rows``."""
    ok = (table["role"] == "train") & table["valid"] & np.isfinite(table["costs"]).all(axis=1)
    rows = np.flatnonzero(ok)
    rows = rows[np.random.default_rng(seed).permutation(rows.size)]
    return rows if max_rows is None else rows[:int(max_rows)]


def _aligned(n_rows: int, rows: np.ndarray, done: int, m_sim: np.ndarray,
             cdf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first ``done`` planned rows' summaries scattered onto the table's ``n_rows`` rows
    (float64; NaN elsewhere)."""
    full_m = np.full(n_rows, np.nan)
    full_cdf = np.full((n_rows, cdf.shape[1]), np.nan)
    full_m[rows[:done]] = m_sim[:done]
    full_cdf[rows[:done]] = cdf[:done]
    return full_m, full_cdf


def batch_seed(seed: int, done: int, target_idx: int) -> int:
    """Noise seed of the batch that starts at planned row ``done``, for one table target."""
    state = np.random.SeedSequence([int(seed), int(done), int(target_idx)]).generate_state(1)
    return int(state[0] >> 1)


def simulate_summaries(table: dict, targets: dict, target_objects: Mapping, out: str | Path, *,
                       n_points: int = 200, preset="quick", max_rows: int | None = None,
                       seed: int = 7001, batch: int = 100, threads: int | None = None,
                       max_minutes: float | None = None, progress: bool = False) -> dict:
    """Re-simulate training rows of ``table`` and record their FC mean and FCD CDF.

    Parameters
    ----------
    table, targets : :func:`~nmmfit.surrogate.table.build_table`'s output for the roles
        ("train", "val"), as :func:`~nmmfit.surrogate.workflow.train_from_store` builds it;
        only "train" rows with a valid stored label are simulated.
    target_objects : name -> :class:`~nmmfit.data.target.Target` for the table's training
        targets (their SC and FCD definition drive the simulation), e.g. from
        :func:`~nmmfit.surrogate.targets.surrogate_targets`.
    out : ``.npz`` file; an existing one for the same table, seed, bins and batch resumes (and
        a larger ``max_rows`` extends it). A file that already holds more rows serves a
        smaller plan of whole batches as it is: rows are planned in one seeded order and
        simulated batch by batch with seeds from ``batch_seed``, so its first ``max_rows``
        rows are exactly those a ``max_rows`` file would hold (nothing is simulated or
        written). A plan that ends inside a batch would simulate that batch differently, so
        such a file is refused.
    n_points : CDF comparison bins (the structured predictor's ``n_cdf_points``).
    preset : simulation settings, a preset or its name (its training setting, one duplicate).
    max_rows : simulate at most this many rows (a seeded uniform subsample).
    seed : row order and noise seed (each batch and target draws its own from it).
    batch : planned rows per simulation batch (recorded in the file; part of the recipe,
        since each batch's noise seed depends on where it starts).
    max_minutes : stop (and save) after this many minutes; call again to resume.

    Returns
    -------
    dict: ``m_sim`` [M] and ``cdf`` [M, n_points] aligned with ``table`` (NaN where a row was
    not simulated or its simulation was invalid), ``rows`` (the planned rows), ``done``
    (how many are finished), ``cdf_index`` [n_points], ``wall_s``.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    m_rows = table["G"].shape[0]
    n_bins = targets["fcd_pdf"].shape[1]
    idx = cdf_points(n_bins, n_points)
    rows = _rows_to_simulate(table, max_rows, seed)
    # per planned row (in ``rows`` order), float32; NaN until simulated or when invalid
    m_sim = np.full(rows.size, np.nan, dtype=np.float32)
    cdf = np.full((rows.size, idx.size), np.nan, dtype=np.float32)
    done, wall = 0, 0.0
    if out.is_file():
        z = np.load(out)
        done = int(z["done"])
        n_same = min(done, rows.size)
        if not (int(z["n_table_rows"]) == m_rows and np.array_equal(z["cdf_index"], idx)
                and np.array_equal(z["rows"][:n_same], rows[:n_same])):
            raise ValueError(f"{out} was made for other rows or CDF bins; delete it or pass "
                             "another file")
        if "batch" in z and int(z["batch"]) != int(batch):
            raise ValueError(f"{out} was simulated in batches of {int(z['batch'])}, not "
                             f"{batch}: the noise seeds would differ; pass batch="
                             f"{int(z['batch'])} or another file")
        if done > rows.size:
            if rows.size % batch:
                raise ValueError(f"{out} already holds {done} simulated rows, more than the "
                                 f"{rows.size} planned now (max_rows={max_rows}), and the plan "
                                 f"ends inside a batch of {batch}; raise max_rows or pass "
                                 "another file")
            done = rows.size  # the plan's rows, exactly as a file of this plan holds them
        m_sim[:done], cdf[:done] = z["m_sim"][:done], z["cdf"][:done]
        wall = float(z["wall_s"])
    pre = get_preset(preset)
    t_start = time.perf_counter()
    bar = tqdm(total=rows.size, initial=done, desc="summaries", disable=not progress)
    while done < rows.size:
        if max_minutes is not None and time.perf_counter() - t_start > 60 * max_minutes:
            break
        t0, start = time.perf_counter(), done
        for ti in np.unique(table["target_idx"][rows[done:done + batch]]):
            name = targets["names"][ti]
            if name not in target_objects:
                raise ValueError(f"table target {name!r} is not among target_objects "
                                 f"({sorted(target_objects)})")
            tgt = target_objects[name]
            if not np.allclose(tgt.sc, targets["sc"][ti]):
                raise ValueError(f"target {name!r} of target_objects has another SC than the "
                                 f"table's (its SC recipe is {tgt.sc_normalisation!r}, the "
                                 f"table's {targets.get('sc_normalisation')!r}); build the "
                                 "targets with the table's recipe")
            pos = done + np.flatnonzero(table["target_idx"][rows[done:done + batch]] == ti)
            sel = rows[pos]
            res = simulate(tgt.sc, table["wEE"][sel], table["wEI"][sel], table["G"][sel],
                           table["sigma"][sel], config=sim_config_for(tgt, pre, "train"),
                           n_dup=1, threads=threads, seed=batch_seed(seed, done, ti))
            ok = np.asarray(res.valid).reshape(sel.size, -1)[:, 0]
            summ = summarise(res.bold[:, 0], tgt.fcd_spec, valid=ok, threads=threads)
            # NaN rows where the simulation (or its FC/FCD) is invalid
            m_sim[pos] = fc_level(summ.fc_upper)
            cdf[pos] = summ.fcd_cdf[:, idx]
        done = min(done + batch, rows.size)
        wall += time.perf_counter() - t0
        tmp = out.with_name(out.name + ".tmp.npz")
        np.savez(tmp, rows=rows, cdf_index=idx, n_table_rows=m_rows, done=done, wall_s=wall,
                 m_sim=m_sim, cdf=cdf, batch=batch)
        tmp.replace(out)
        bar.update(done - start)
    bar.close()
    full_m, full_cdf = _aligned(m_rows, rows, done, m_sim, cdf)
    return {"m_sim": full_m, "cdf": full_cdf, "rows": rows, "done": done, "cdf_index": idx,
            "wall_s": wall}


def load_summaries(path: str | Path, n_rows: int, n_points: int | None = None,
                   max_rows: int | None = None) -> dict:
    """``m_sim`` [n_rows] and ``cdf`` [n_rows, K] of a :func:`simulate_summaries` file,
    aligned with the table (NaN where a row has none), checked against the table's row count
    and, when given, the model's CDF bins ``n_points`` (a clear error names a mismatch).

    ``max_rows`` keeps only the first ``max_rows`` planned rows: a seeded uniform subsample,
    and, when ``max_rows`` is a whole number of the file's batches, exactly the rows a file
    simulated with ``max_rows=max_rows`` holds (see :func:`simulate_summaries`), so one long
    file serves every smaller count; a file with fewer rows done is an error.
    """
    z = np.load(path)
    k = z["cdf_index"].size
    if int(z["n_table_rows"]) != n_rows or (n_points is not None and k != n_points):
        raise ValueError(f"summaries file {path} was made for a table of "
                         f"{int(z['n_table_rows'])} rows and {k} CDF bins, but the table has "
                         f"{n_rows} rows and the model {n_points or k} CDF bins")
    done = int(z["done"])
    if max_rows is not None:
        if int(max_rows) < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        want = min(int(max_rows), int(z["rows"].size))
        if done < want:
            raise ValueError(f"summaries file {path} holds {done} simulated rows, fewer than "
                             f"the {want} asked for; run `nmmfit surrogate summarise` with "
                             f"--max-rows {want} to extend it")
        done = want
    m_sim, cdf = _aligned(n_rows, z["rows"], done, z["m_sim"], z["cdf"])
    return {"m_sim": m_sim, "cdf": cdf, "done": done, "n_planned": int(z["rows"].size)}
