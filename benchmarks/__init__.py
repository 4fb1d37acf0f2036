"""Throughput and quantisation benchmarks (run as modules: python -m benchmarks.NAME)."""
