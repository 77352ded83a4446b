"""nmmfit: fit biophysical neural mass models to brain recordings.

Subpackages
-----------
data     bundled cohorts, user-data loaders and the empirical ``Target``
models   parameter specs and equations (pFIC, Balloon-Windkessel)
sim      batched integrators (numpy reference, numba CPU, torch)
stats    FC, FCD and the FC+FCD cost
"""

__version__ = "0.1.0"
