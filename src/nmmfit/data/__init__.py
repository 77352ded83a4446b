"""Bundled cohorts, user-data loaders, SC normalisation, FC gradients and the empirical Target."""
