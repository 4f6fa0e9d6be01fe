"""`python scripts/compare.py key=value ...`: see configs/compare.yaml for the options."""

from kazakh_ner_stance.cli import compare_main

if __name__ == "__main__":
    compare_main()
