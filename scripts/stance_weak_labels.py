"""`python scripts/stance_weak_labels.py key=value ...`: see configs/stance_weak_labels.yaml for the options."""

from kazakh_ner_stance.stance_annotation.cli import weak_labels_main

if __name__ == "__main__":
    weak_labels_main()
