"""Benchmarks for Mluv.Me: one command each, `python -m bench.<name>` (see bench/README.md)."""
