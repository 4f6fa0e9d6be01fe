"""`python scripts/stance_annotation.py key=value ...`: see configs/stance_annotation.yaml for the options."""

from kazakh_ner_stance.stance_annotation.cli import annotation_main

if __name__ == "__main__":
    annotation_main()
