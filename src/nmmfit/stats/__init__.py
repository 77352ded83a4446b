"""Statistics of BOLD runs: static FC, FCD (sliding-window FC dynamics) and the FC+FCD cost.

All functions take batches (leading axes) and are vectorised; see :mod:`nmmfit.stats.fcd` for
how the FCD is computed fast.
"""

from nmmfit.stats.cost import SENTINEL_COST, TERM_NAMES, CostTerms, fc_fcd_cost
from nmmfit.stats.fc import fc_matrix, fisher_mean, triu_indices, upper_tri
from nmmfit.stats.fcd import (
    FCDSpec,
    cdf_from_counts,
    fcd_histogram,
    fcd_matrix,
    values_to_cdf,
    values_to_counts,
    window_fc,
)

__all__ = [
    "CostTerms",
    "FCDSpec",
    "SENTINEL_COST",
    "TERM_NAMES",
    "cdf_from_counts",
    "fc_fcd_cost",
    "fc_matrix",
    "fcd_histogram",
    "fcd_matrix",
    "fisher_mean",
    "triu_indices",
    "upper_tri",
    "values_to_cdf",
    "values_to_counts",
    "window_fc",
]
