"""The surrogate training table, read from a generation store.

One row per labelled Euler evaluation of a generation run (:mod:`nmmfit.surrogate.generate`),
expanded to regional parameters; the targets come from the runs' stored target artefacts, so
the store alone rebuilds the table (:func:`build_table`). :func:`table_hash` identifies the
training data in a model's metadata.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nmmfit.fit.parametrise import Parametrisation
from nmmfit.fit.store import Store
from nmmfit.surrogate.jobs import GENERATOR, KINDS, store_sc_recipe
from nmmfit.surrogate.targets import ROLES

__all__ = ["build_table", "table_hash"]


def build_table(store: str | Path | Store, roles: Sequence[str] = ROLES,
                kinds: Sequence[str] = KINDS) -> tuple[dict, dict]:
    """The surrogate training table from a generation store.

    Returns ``(table, targets)``:

    - table: ``wEE``, ``wEI``, ``sigma`` [M, N]; ``G`` [M]; ``costs`` [M, 3] (fc_corr, fc_l1,
      fcd_ks; NaN where invalid); ``valid`` [M] bool; ``target_idx`` [M] (row of
      ``targets``); ``role`` [M] (str); ``kind`` [M]; ``epoch`` [M]; ``ei_mean`` [M];
    - targets: ``sc``, ``fc`` [T, N, N]; ``fcd_pdf`` [T, n_bins]; ``names``, ``roles`` [T];
      ``sc_normalisation``: the SC recipe of every target (one per store).

    Rows come from the runs written by :func:`run_jobs` (their stored target artefact). A
    store whose generation runs (of ``roles``) mix SC recipes is refused (ValueError).
    """
    own = not isinstance(store, Store)
    st = Store(store) if own else store
    try:
        recipe = store_sc_recipe(st, roles=roles)
        cols: dict[str, list] = {k: [] for k in ("wEE", "wEI", "sigma", "G", "costs", "valid",
                                                 "target_idx", "role", "kind", "epoch",
                                                 "ei_mean")}
        tg: dict[str, list] = {"sc": [], "fc": [], "fcd_pdf": [], "names": [], "roles": []}
        index: dict[str, int] = {}
        for run_id in st.run_ids():
            cfg = st.run_config(run_id) or {}
            if cfg.get("generator") != GENERATOR:
                continue
            if cfg["role"] not in roles or cfg["kind"] not in kinds:
                continue
            art = st.get_artefact(run_id, "target")
            if art is None:
                continue
            arrs, info = art
            name = info["name"]
            if name not in index:
                index[name] = len(tg["names"])
                for k in ("sc", "fc", "fcd_pdf"):
                    tg[k].append(arrs[k])
                tg["names"].append(name)
                tg["roles"].append(info["role"])
            maps = {m: arrs[f"map_{k}"] for k, m in enumerate(info["maps"])}
            b = cfg["parametrisation"]["bounds"]
            param = Parametrisation(maps, bounds=b, n_regions=arrs["sc"].shape[0])
            ev = st.evaluations(run_id, "train")
            m = ev["params"].shape[0]
            if m == 0:
                continue
            reg = param.expand(ev["params"])
            cols["wEE"].append(reg.wEE)
            cols["wEI"].append(reg.wEI)
            cols["sigma"].append(reg.sigma)
            cols["G"].append(reg.G.reshape(-1))
            costs = np.where(ev["valid"][:, None], ev["terms"], np.nan)
            cols["costs"].append(costs)
            cols["valid"].append(ev["valid"])
            cols["target_idx"].append(np.full(m, index[name]))
            cols["role"].append(np.full(m, info["role"]))
            cols["kind"].append(np.full(m, cfg["kind"]))
            cols["epoch"].append(ev["epoch"])
            cols["ei_mean"].append(ev["ei_mean"])
    finally:
        if own:
            st.close()
    if not tg["names"]:
        raise ValueError(f"no generation runs with roles {list(roles)} in the store {store}")
    table = {k: np.concatenate(v) for k, v in cols.items()}
    targets = {"sc": np.stack(tg["sc"]), "fc": np.stack(tg["fc"]),
               "fcd_pdf": np.stack(tg["fcd_pdf"]), "names": tg["names"],
               "roles": tg["roles"], "sc_normalisation": recipe}
    return table, targets


def table_hash(table: dict) -> str:
    """SHA-256 (16 hex chars) of a table's numeric content: the training-data hash."""
    h = hashlib.sha256()
    for k in ("wEE", "wEI", "sigma", "G", "costs", "valid", "target_idx"):
        h.update(k.encode())
        h.update(np.ascontiguousarray(table[k]).tobytes())
    return h.hexdigest()[:16]

