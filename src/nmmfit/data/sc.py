"""SC normalisation: one group SC for the model from one or several subjects' raw SC.

The recipes (:data:`SC_NORMALISATIONS`) are described in :func:`normalise_sc`; a
:class:`~nmmfit.data.target.Target` records the one it was built with
(``sc_normalisation``).
"""

from __future__ import annotations

import numpy as np

from nmmfit._validate import check_region_count, check_sc

__all__ = ["normalise_sc", "SC_NORMALISATIONS", "SC_MAX", "SC_MEAN_STRENGTH",
           "DEFAULT_SC_NORMALISATION", "LEGACY_SC_RECIPE", "fit_sc_recipe"]

#: Accepted values of ``sc_normalisation``.
SC_NORMALISATIONS = ("delssome", "pfic", "max", "none", "strength", "log_strength")

#: The recipe used when none is named: chosen by validation cost in
#: ``benchmarks/fit_quality.py`` (docs/fit_quality.md), on dense and on sparse SC. The shipped
#: surrogates were built for "delssome" (:data:`LEGACY_SC_RECIPE`).
DEFAULT_SC_NORMALISATION = "strength"

#: The recipe the shipped surrogate tables and models were built for (and of any model saved
#: before models recorded their recipe in ``meta["sc_normalisation"]``).
LEGACY_SC_RECIPE = "delssome"

#: Mean node strength (mean row sum) after the "strength" and "log_strength" recipes.
SC_MEAN_STRENGTH = 1.0

#: Largest SC entry after normalisation (DELSSOME / pFIC: SC * 0.02 / max(SC)).
SC_MAX = 0.02


def fit_sc_recipe(evaluator: str = "euler", sc_normalisation: str | None = None) -> str:
    """The SC recipe of a fit's targets: ``sc_normalisation`` when named (checked), else the
    shipped surrogates' recipe (:data:`LEGACY_SC_RECIPE`) for ``evaluator="surrogate"`` and
    the library default (:data:`DEFAULT_SC_NORMALISATION`) for Euler fits."""
    if sc_normalisation is None:
        return LEGACY_SC_RECIPE if evaluator == "surrogate" else DEFAULT_SC_NORMALISATION
    if sc_normalisation not in SC_NORMALISATIONS:
        raise ValueError(f"sc_normalisation must be one of {SC_NORMALISATIONS}, got "
                         f"{sc_normalisation!r}")
    return sc_normalisation


def _sc_stack(sc) -> np.ndarray:
    """SC input (one [N, N] matrix, [S, N, N], or a list of [N, N]) -> checked [S, N, N]."""
    if isinstance(sc, np.ndarray) and sc.ndim == 3:
        mats = list(sc)
        names = [f"sc[{k}]" for k in range(len(mats))]
    elif isinstance(sc, list | tuple):
        if len(sc) == 0:
            raise ValueError("sc is an empty list; give at least one [N, N] matrix")
        mats = list(sc)
        names = [f"sc[{k}]" for k in range(len(mats))]
    else:
        mats, names = [sc], ["sc"]
    out = [check_sc(m, name) for m, name in zip(mats, names, strict=True)]
    n = out[0].shape[0]
    for m, name in zip(out[1:], names[1:], strict=True):
        check_region_count(n, m, name, axis=0, reference=names[0])
    return np.stack(out)


def normalise_sc(sc, method: str = DEFAULT_SC_NORMALISATION, consensus: float = 0.5,
                 scale_max: float = SC_MAX) -> tuple[np.ndarray, dict]:
    """Group SC from one or several subjects' SC, normalised for the model.

    Parameters
    ----------
    sc : one [N, N] matrix or several ([S, N, N] array or list): non-negative, finite.
    method :
        ``"delssome"``, the DELSSOME group recipe (group-level README, 4.2):
        (1) zero an entry that is non-zero in fewer than ``consensus`` (50%) of the subjects
        (de Reus & van den Heuvel 2013; kept when non-zero in >= 50%, i.e. zero in <= 50% as in
        the pFIC MATLAB code); (2) average the non-zero values over subjects; (3) log-transform
        with ``log1p`` (ln(1 + x)); (4) zero the diagonal; (5) scale to max ``scale_max``.
        The README only says "log-transform"; the one public implementation
        (``Zhang2024_pFIC/util/general/CBIG_pFIC_generate_group_level_SC_Desikan.m``) takes
        ln of each subject's entry before averaging (that is ``"pfic"``). ``log1p`` is used
        here because it maps 0 to 0 and stays non-negative for weights below 1 (SIFT2
        weights, densities); for streamline counts in the hundreds or more it differs from ln
        by < 1% after scaling.

        ``"pfic"``: the pFIC MATLAB recipe: same consensus mask, then the mean over subjects
        of ln(SC) over the subjects where SC > 0 (so a count of exactly 1, ln 1 = 0, drops out
        as in MATLAB's ``nonzeros``), negative logs (weights < 1) clipped to 0, diagonal
        zeroed, scaled to max ``scale_max``.

        ``"max"``: plain mean over subjects, times ``scale_max / max`` (diagonal kept).

        ``"none"``: plain mean over subjects, unchanged.

        ``"strength"`` (the default, :data:`DEFAULT_SC_NORMALISATION`): linear weights
        scaled to a mean node strength (mean row sum of the
        zero-diagonal matrix) of ``SC_MEAN_STRENGTH`` = 1: the same consensus mask and mean
        of non-zero values as ``"delssome"``, no log, zero diagonal. Scaling by the mean
        strength rather than by the largest entry keeps the coupling at which the FIC fixed
        point loses stability near G = 1-2 for dense and for sparse SC alike (the largest
        entry of a dense streamline-count matrix can be 1000 times its median, which puts
        that coupling at G of about 30-45 after ``"max"``; see ``docs/fit_quality.md``).
        It had the lowest validation cost of the recipes tried, on the bundled dense
        Schaefer-100 SC and on a sparse (strongest 15 % of edges) version of it, so it is
        the default for dense and sparse SC alike; ``log1p`` recipes flatten a dense
        streamline matrix (its weak, noisy edges gain a large share of the coupling).

        ``"log_strength"``: as ``"strength"`` but with ``log1p`` of the mean (the DELSSOME
        transform) before scaling.

        An asymmetric result is symmetrised, (A + A^T) / 2, and recorded in the returned info.
    consensus : fraction of subjects in which an entry must be non-zero (delssome/pfic).
    scale_max : largest entry after scaling.

    Returns
    -------
    (sc [N, N] float64, info dict) where info records the method and what was done.
    """
    if method not in SC_NORMALISATIONS:
        raise ValueError(f"sc_normalisation must be one of {SC_NORMALISATIONS}, got {method!r}")
    if not 0.0 < consensus <= 1.0:
        raise ValueError(f"consensus must be in (0, 1], got {consensus}")
    stack = _sc_stack(sc)
    n_sub = stack.shape[0]
    info: dict = {"method": method, "n_subjects": int(n_sub)}
    nonzero = stack > 0
    if method in ("delssome", "pfic", "strength", "log_strength"):
        keep = nonzero.sum(axis=0) >= consensus * n_sub
        info.update(consensus=float(consensus), n_entries_masked=int(
            (nonzero.any(axis=0) & ~keep).sum()))
        if method != "pfic":
            total = np.where(nonzero, stack, 0.0).sum(axis=0)
            mean = np.divide(total, nonzero.sum(axis=0), out=np.zeros_like(total),
                             where=nonzero.any(axis=0))
            out = np.where(keep, mean, 0.0)
            if method in ("delssome", "log_strength"):
                out = np.log1p(out)
                info["log"] = "log1p of the mean of non-zero values"
            else:
                info["log"] = "none (linear mean of non-zero values)"
        else:
            logs = np.where(nonzero, np.log(np.where(nonzero, stack, 1.0)), 0.0)
            cnt = (logs != 0).sum(axis=0)
            out = np.divide(logs.sum(axis=0), cnt, out=np.zeros(stack.shape[1:]),
                            where=cnt > 0)
            out = np.where(keep, out, 0.0)
            info["n_negative_clipped"] = int((out < 0).sum())
            out = np.clip(out, 0.0, None)
            info["log"] = "mean of ln over non-zero subjects (pFIC MATLAB)"
        np.fill_diagonal(out, 0.0)
    else:
        out = stack.mean(axis=0)
    asym = float(np.abs(out - out.T).max())
    scale = float(np.abs(out).max())
    info["max_rel_asymmetry"] = asym / scale if scale > 0 else 0.0
    info["symmetrised"] = bool(asym > 1e-12 * max(scale, 1e-300))
    if info["symmetrised"]:
        out = (out + out.T) / 2.0
    if method in ("strength", "log_strength"):
        strength = float(out.sum(axis=1).mean())
        if not strength > 0:
            raise ValueError(f"SC (shape {stack.shape}) has no positive off-diagonal entry "
                             f"after the {method!r} normalisation; cannot scale its mean "
                             "node strength")
        out = out * (SC_MEAN_STRENGTH / strength)
        info["mean_strength"] = float(SC_MEAN_STRENGTH)
    elif method != "none":
        top = out.max()
        if not top > 0:
            raise ValueError(f"SC (shape {stack.shape}) has no positive entry after the "
                             f"{method!r} normalisation; cannot scale to max {scale_max}")
        out = out * (scale_max / top)
        info["scale_max"] = float(scale_max)
    return out, info
