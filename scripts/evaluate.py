"""`python scripts/evaluate.py key=value ...`: see configs/evaluate.yaml for the options."""

import os
import sys

# This file shares its name with the Hugging Face `evaluate` library: keep scripts/ off the
# import path so that `import evaluate` finds the library, not this wrapper.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

from kazakh_ner_stance.cli import evaluate_main  # noqa: E402

if __name__ == "__main__":
    evaluate_main()
