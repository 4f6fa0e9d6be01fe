"""`python scripts/evaluate.py key=value ...`: see configs/evaluate.yaml for the options."""

from kazakh_ner_stance.cli import evaluate_main

if __name__ == "__main__":
    evaluate_main()
