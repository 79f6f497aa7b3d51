"""The benchmarks, a package run from the repository root: `python -m benchmarks.run`."""
