"""`python scripts/stance_diagnostics.py --checkpoint RUN/model [--roles FILE]`: a stance model's errors by the
target's role, the name-swap check and the README example (evaluation/stance_diagnostics.py)."""

import sys

from kazakh_ner_stance.evaluation.stance_diagnostics import main

if __name__ == "__main__":
    sys.exit(main())
