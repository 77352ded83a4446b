"""Optional extras: the check that turns a missing optional library into one clear line.

The core install (``pip install nmmfit``) simulates, scores, fits and runs the surrogates.
Two extras add the rest (``pyproject.toml``)::

    eeg         mne, sbi                                 nmmfit.eeg, nmmfit.infer, `nmmfit jr`
    population  distributed, statsmodels, pandas, pyarrow  nmmfit.population, `nmmfit population`
    all         both

:func:`require` is called where those parts are entered (the packages' ``__init__`` and the
CLI commands); it only looks the modules up (:func:`importlib.util.find_spec`), it does not
import them, so the check costs nothing.
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "MissingExtraError", "missing_modules", "require"]

#: extra -> the top-level modules it installs (pip names: mne, sbi, distributed, statsmodels,
#: pandas, pyarrow)
EXTRAS: dict[str, tuple[str, ...]] = {
    "eeg": ("mne", "sbi"),
    "population": ("distributed", "statsmodels", "pandas", "pyarrow"),
}


class MissingExtraError(ImportError):
    """An optional extra is not installed; the message names it and the pip command."""


def _installed(module: str) -> bool:
    try:
        # None also where sys.modules[module] is None (an import of it would fail)
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_modules(extra: str, *modules: str) -> list[str]:
    """Those of ``modules`` (default: all of the extra's) that cannot be imported."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; extras: {sorted(EXTRAS)}")
    return [m for m in (modules or EXTRAS[extra]) if not _installed(m)]


def require(extra: str, *modules: str, feature: str | None = None) -> None:
    """Raise :class:`MissingExtraError` (an ImportError) when one of ``modules`` (default: all
    of the extra's) is missing, with one line such as::

        nmmfit jr needs the 'eeg' extra: pip install 'nmmfit[eeg]' (missing: mne)

    ``feature`` names what needs it (default ``nmmfit.<extra>``).
    """
    gone = missing_modules(extra, *modules)
    if gone:
        raise MissingExtraError(
            f"{feature or f'nmmfit.{extra}'} needs the {extra!r} extra: pip install "
            f"'nmmfit[{extra}]' (missing: {', '.join(gone)})", name=gone[0])
