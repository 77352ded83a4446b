"""Bundled cohorts, user-data loaders and the empirical Target."""
