"""Benchmarks users run themselves: `edgewatch bench models` (and later pipeline, offload)."""
