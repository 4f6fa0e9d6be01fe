"""`python scripts/benchmarks.py NAME [--options]`: the same command as `kns-bench` (see `--help`).
`suite` re-measures every generated results row (`make bench`); the other names run one benchmark.
The logic lives in kazakh_ner_stance.benchmarks."""

import sys

from kazakh_ner_stance.benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main())
