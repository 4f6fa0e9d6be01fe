"""`python scripts/train.py key=value ...`: see configs/train.yaml for the options."""

from kazakh_ner_stance.cli import train_main

if __name__ == "__main__":
    train_main()
