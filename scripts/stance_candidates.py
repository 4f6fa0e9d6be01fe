"""`python scripts/stance_candidates.py key=value ...`: see configs/stance_candidates.yaml for the options."""

from kazakh_ner_stance.stance_annotation.cli import candidates_main

if __name__ == "__main__":
    candidates_main()
