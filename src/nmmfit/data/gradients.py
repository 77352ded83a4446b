"""FC gradients: principal gradients of an FC matrix by diffusion-map embedding, as regional
maps (a Target's default heterogeneity map is the first gradient of its FC).
"""

from __future__ import annotations

import numpy as np

from nmmfit._validate import as_array, check_finite

__all__ = ["fc_gradients", "gradient_maps"]


def fc_gradients(fc, n_components: int = 1, sparsity: float = 0.9,
                 alpha: float = 0.5) -> np.ndarray:
    """Principal FC gradient(s) by diffusion-map embedding (Margulies et al. 2016 recipe).

    Steps: zero the diagonal and negative values; keep in each row only the entries at or
    above the row's ``sparsity`` quantile (top 10%); affinity = cosine similarity between
    rows; diffusion map with anisotropic normalisation ``alpha`` = 0.5 (Coifman & Lafon 2006);
    component k is the (k+1)-th right eigenvector of the Markov matrix (the first is the
    constant one), z-scored across regions (so the usual lambda / (1 - lambda) scaling drops).

    Sign rule (deterministic, anatomy-free): each component is flipped so that its entry of
    largest magnitude is positive.

    Parameters
    ----------
    fc : [N, N] FC matrix (Pearson r).
    n_components : number of gradients to return.

    Returns
    -------
    [n_components, N] float64, each row z-scored (mean 0, std 1).
    """
    f = check_finite(as_array(fc, "fc", ndim=2), "fc").copy()
    n = f.shape[0]
    if f.shape != (n, n):
        raise ValueError(f"fc must be a square [N, N] matrix, got shape {f.shape}")
    if not 1 <= n_components < n - 1:
        raise ValueError(f"n_components must be in [1, {n - 2}] for N={n}, got {n_components}")
    np.fill_diagonal(f, 0.0)
    thr = np.quantile(f, sparsity, axis=1, keepdims=True)
    f = np.where((f >= thr) & (f > 0), f, 0.0)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    rows = np.divide(f, norm, out=np.zeros_like(f), where=norm > 0)
    aff = np.clip(rows @ rows.T, 0.0, None)
    d = aff.sum(axis=1)
    if (d <= 0).any():
        raise ValueError("fc_gradients: a region has no positive affinity after thresholding")
    la = aff / np.outer(d**alpha, d**alpha)
    da = la.sum(axis=1)
    sym = la / np.sqrt(np.outer(da, da))
    lam, vec = np.linalg.eigh(sym)
    order = np.argsort(lam)[::-1]
    lam, vec = lam[order], vec[:, order]
    psi = vec / np.sqrt(da)[:, None]
    # the diffusion-map scaling lambda / (1 - lambda) is positive and removed by z-scoring
    comps = psi[:, 1:n_components + 1].T
    comps = comps - comps.mean(axis=1, keepdims=True)
    sd = comps.std(axis=1, keepdims=True)
    if (sd < 1e-12).any():
        raise ValueError(f"fc_gradients: a gradient of fc (shape {f.shape}) is constant")
    comps /= sd
    flip = np.sign(comps[np.arange(n_components), np.abs(comps).argmax(axis=1)])
    return comps * flip[:, None]


def gradient_maps(fc: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The first ``n`` :func:`fc_gradients` of ``fc`` [N, N] as named regional maps [N]:
    "fc_gradient", "fc_gradient2", ... (the names a Target's ``maps`` use)."""
    g = fc_gradients(fc, n_components=n)
    return {("fc_gradient" if k == 0 else f"fc_gradient{k + 1}"): g[k] for k in range(n)}
