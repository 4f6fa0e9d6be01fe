"""`python scripts/stance_layers.py COMMAND ...`: the issue-22 stance layers (news gold, counterfactual); see --help."""

import sys

from kazakh_ner_stance.stance_annotation.layers_cli import main

if __name__ == "__main__":
    sys.exit(main())
