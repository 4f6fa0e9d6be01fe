"""`python scripts/benchmark_stance_data.py [--folds 3] [--recipes ...]`: the issue-22 data-recipe table
(kazakh_ner_stance/benchmarks/stance_data.py)."""

import sys

from kazakh_ner_stance.benchmarks.stance_data import main

if __name__ == "__main__":
    sys.exit(main())
