"""Model definitions: parameter specs (as data) and pure equations."""
