"""Benchmarks of the Recordings service against side-by-side baselines (see README.md)."""
