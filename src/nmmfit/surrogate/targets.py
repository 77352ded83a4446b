"""The surrogate's training targets: the train / val / test split of a bundled data set.

Targets are split **by subject**: no subject of a test target is in a training target
(:func:`surrogate_targets`). Every target is built with one SC recipe, by default
:data:`GENERATION_SC_RECIPE`, the recipe the shipped tables and models were made for
(``nmmfit surrogate generate --sc-normalisation`` names another).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from nmmfit import datasets
from nmmfit.data.sc import LEGACY_SC_RECIPE, SC_NORMALISATIONS
from nmmfit.data.target import Target

__all__ = ["GENERATION_SC_RECIPE", "ROLES", "surrogate_targets", "training_targets"]

#: Target roles of the surrogate's own split.
ROLES = ("train", "val", "test")

#: Maps of each data set's targets (default: the FC gradient only).
_MAPS = {"hcp_schaefer100": ("myelin", "fc_gradient")}

#: Default SC recipe (:func:`nmmfit.data.target.normalise_sc`) of the generation targets: the
#: recipe the shipped surrogate tables and models were built for. The models record it
#: (``meta["sc_normalisation"]``) and the surrogate evaluator refuses a target built with
#: another one.
GENERATION_SC_RECIPE = LEGACY_SC_RECIPE


def _single_run(ds, sid: str, run: int, maps, name: str, recipe: str):
    """Target of one BOLD run of one subject."""
    sub = ds.subjects[sid]
    one = replace(ds, subjects={sid: replace(sub, bold=[sub.bold[run]])})
    tgt = Target.from_dataset(one, subjects=[sid], maps=maps, sc_normalisation=recipe,
                              name=name)
    tgt.meta["runs"] = [int(run)]
    return tgt


def surrogate_targets(dataset: str, n_boot: int | None = 6,
                      sc_normalisation: str = GENERATION_SC_RECIPE) -> dict[str, list]:
    """Targets of the surrogate's train / val / test split for a bundled dataset, every one
    built with the SC recipe ``sc_normalisation`` (default: the shipped tables' recipe).

    - ``hcp_schaefer100`` (the paper's group-level setting): train = group train706, subject
      100206 (each run and both runs); val = subject 100307 (each run and both); test = group
      test303. The cubnm bundle does not list the groups' participants, so whether 100206 and
      100307 belong to train706 or test303 cannot be checked (documented limitation).
    - ``hcp_aal`` (7 individuals, AAL2): subjects sorted by id; test = the last 2, val = the
      one before, train = the first 4: each subject (both runs), each single run (when a
      subject has several), and ``n_boot`` distinct bootstrap groups of 2-3 training
      subjects (default 6, the shipped table's; None: every distinct group, 10 for 4 training
      subjects). The groups are drawn in one seeded order, so a larger ``n_boot`` keeps the
      first groups and their names and adds new ones.
    - ``gw_aal`` (transfer cohort): every subject, role "test" only.

    Returns role -> list of :class:`~nmmfit.data.target.Target` (names are unique; they do not
    name the recipe, which each target records as ``sc_normalisation``).
    """
    if sc_normalisation not in SC_NORMALISATIONS:
        raise ValueError(f"sc_normalisation must be one of {SC_NORMALISATIONS}, got "
                         f"{sc_normalisation!r}")
    recipe = sc_normalisation
    ds = datasets.load(dataset)
    maps = _MAPS.get(dataset, ("fc_gradient",))
    out: dict[str, list] = {r: [] for r in ROLES}
    if dataset == "hcp_schaefer100":
        out["train"].append(Target.from_dataset(ds, group="train706", maps=maps,
                                                  sc_normalisation=recipe))
        out["test"].append(Target.from_dataset(ds, group="test303", maps=maps,
                                                 sc_normalisation=recipe))
        for sid, role in (("100206", "train"), ("100307", "val")):
            out[role].append(Target.from_dataset(ds, subjects=[sid], maps=maps,
                                                 sc_normalisation=recipe,
                                                 name=f"{dataset}:{sid}"))
            for r in range(len(ds.subjects[sid].bold)):
                out[role].append(_single_run(ds, sid, r, maps, f"{dataset}:{sid}:run{r}",
                                               recipe))
        return out
    ids = sorted(ds.subjects)
    if dataset == "gw_aal":
        out["test"] = [Target.from_dataset(ds, subjects=[s], maps=maps,
                                           sc_normalisation=recipe,
                                           name=f"{dataset}:{s}")
                       for s in ids]
        return out
    if len(ids) < 4:
        raise ValueError(f"dataset {dataset!r} has {len(ids)} subjects; the surrogate split "
                         "needs at least 4")
    n_test, n_val = 2, 1
    train_ids, val_ids, test_ids = (ids[:len(ids) - n_test - n_val],
                                    ids[len(ids) - n_test - n_val:len(ids) - n_test],
                                    ids[len(ids) - n_test:])
    for role, group in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
        for s in group:
            out[role].append(Target.from_dataset(ds, subjects=[s], maps=maps,
                                                 sc_normalisation=recipe,
                                                 name=f"{dataset}:{s}"))
    for s in train_ids:
        n_runs = len(ds.subjects[s].bold)
        for r in range(n_runs if n_runs > 1 else 0):  # one run: the subject target itself
            out["train"].append(_single_run(ds, s, r, maps, f"{dataset}:{s}:run{r}",
                                          recipe))
    sizes = range(2, min(3, len(train_ids)) + 1)
    n_groups = sum(math.comb(len(train_ids), k) for k in sizes)
    n_boot = n_groups if n_boot is None else n_boot
    if not isinstance(n_boot, int | np.integer) or not 0 <= n_boot <= n_groups:
        raise ValueError(f"n_boot must be an int in [0, {n_groups}] (distinct groups of 2-3 of "
                         f"the {len(train_ids)} training subjects), got {n_boot!r}")
    rng = np.random.default_rng(20261201)
    seen: set[tuple[str, ...]] = set()
    while len(seen) < n_boot:  # distinct bootstrap groups of 2-3 training subjects
        size = int(rng.integers(2, min(3, len(train_ids)) + 1))
        subs = tuple(sorted(rng.choice(train_ids, size=size, replace=False).tolist()))
        if subs in seen:
            continue
        seen.add(subs)
        out["train"].append(Target.from_dataset(
            ds, subjects=list(subs), maps=maps, sc_normalisation=recipe,
            name=f"{dataset}:boot{len(seen) - 1}:" + "+".join(subs)))
    return out


def training_targets(dataset: str, sc_normalisation: str = GENERATION_SC_RECIPE) -> dict:
    """Every training target of a data set by name, all bootstrap groups included, built with
    the SC recipe ``sc_normalisation``: the lookup for re-simulating rows of a table, whichever
    groups it was generated with."""
    return {t.name: t for t in surrogate_targets(dataset, n_boot=None,
                                                 sc_normalisation=sc_normalisation)["train"]}

