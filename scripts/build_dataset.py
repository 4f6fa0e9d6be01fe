"""`python scripts/build_dataset.py key=value ...`: see configs/build_dataset.yaml for the options."""

from kazakh_ner_stance.cli import build_dataset_main

if __name__ == "__main__":
    build_dataset_main()
