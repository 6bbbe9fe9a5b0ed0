"""The benchmark harness: `python -m bench` measures ingest, search latency, throughput, RSS and
index size at several corpus sizes and writes docs/BENCHMARKS.md (see bench/__main__.py)."""
