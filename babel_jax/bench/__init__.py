"""Benchmark commands: throughput and utilisation figures, never part of the test suite."""
