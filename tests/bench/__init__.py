"""Benchmarks, run on demand: `make bench` (all) or `python -m tests.bench NAME`."""
