"""Shared matplotlib set-up for the figure modules (headless Agg backend, PNG output)."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, dpi: int = 110, **kwargs) -> Path:
    """Write ``fig`` to ``path`` (folders created), close it, and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, **kwargs)
    pyplot().close(fig)
    return path
