"""Parameter inference for the Jansen-Rit ERP benchmark: datasets and sensitivity analysis."""
