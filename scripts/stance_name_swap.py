"""`python scripts/stance_name_swap.py --checkpoint RUN/model [--split test]`: how often a stance model's label
changes when the target is replaced by another name of its type (evaluation/name_swap.py)."""

import sys

from kazakh_ner_stance.evaluation.name_swap import main

if __name__ == "__main__":
    sys.exit(main())
