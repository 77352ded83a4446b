"""Statistics of BOLD runs: static FC, FCD (sliding-window FC dynamics), their summary and the
FC+FCD cost.

All functions take batches (leading axes) and are vectorised; see :mod:`nmmfit.stats.fcd` for
how the FCD is computed fast.
"""

from nmmfit.stats.cost import (
    SENTINEL_COST,
    TERM_NAMES,
    CostTerms,
    FrameCountWarning,
    distance,
    fc_fcd_cost,
)
from nmmfit.stats.fc import fc_matrix, fisher_mean, triu_indices, upper_tri
from nmmfit.stats.fcd import (
    FCDMatrix,
    FCDSpec,
    cdf_from_counts,
    fcd_histogram,
    fcd_matrix,
    sampled_fcd_matrix,
    values_to_cdf,
    values_to_counts,
    window_fc,
)
from nmmfit.stats.summary import Summary, summarise

__all__ = [
    "CostTerms",
    "FCDMatrix",
    "FCDSpec",
    "FrameCountWarning",
    "SENTINEL_COST",
    "Summary",
    "TERM_NAMES",
    "cdf_from_counts",
    "distance",
    "fc_fcd_cost",
    "fc_matrix",
    "fcd_histogram",
    "fcd_matrix",
    "fisher_mean",
    "sampled_fcd_matrix",
    "summarise",
    "triu_indices",
    "upper_tri",
    "values_to_cdf",
    "values_to_counts",
    "window_fc",
]
