"""Benchmarks: `make bench` (python -m bench.run). Numbers are printed and written to
docs/benchmarks.md; they are never asserted in tests."""
