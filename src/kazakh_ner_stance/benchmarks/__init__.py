"""What the benchmark scripts share: the pinned run_ner.py baseline, provenance records that
decide when an earlier measurement may be reused, and the README results table generated from
one results file (`scripts/benchmarks.py`)."""
