"""Reports built from records: the README's and the docs' result tables rendered from ``results/*.yaml``."""
