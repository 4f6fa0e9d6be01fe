"""`python scripts/prepare_model.py key=value ...`: see configs/prepare_model.yaml for the options."""

from kazakh_ner_stance.cli import prepare_model_main

if __name__ == "__main__":
    prepare_model_main()
