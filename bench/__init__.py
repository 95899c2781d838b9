"""Benchmarks for `python -m studio bench`; each reports ratios measured side by side in one run."""
