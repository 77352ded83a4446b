"""Public entry point for data: bundled cohorts and user-data loaders.

>>> import nmmfit.datasets as nd
>>> nd.available()
['gw_aal', 'hcp_aal', 'hcp_schaefer100']
>>> ds = nd.load("hcp_schaefer100")
>>> ds.subjects["100206"].bold[0].shape
(100, 1200)

User data: :func:`load_sc`, :func:`load_bold`, :func:`load_map` read .npy/.npz/.csv/.txt/.mat
files, and :func:`from_arrays` assembles and checks a :class:`Dataset`.
"""

from nmmfit.data.bundled import available, load
from nmmfit.data.dataset import YEO7_NAMES, Dataset, FCDValues, Group, Subject
from nmmfit.data.user import from_arrays, load_bold, load_map, load_sc

__all__ = [
    "load",
    "available",
    "load_sc",
    "load_bold",
    "load_map",
    "from_arrays",
    "Dataset",
    "Subject",
    "Group",
    "FCDValues",
    "YEO7_NAMES",
]
