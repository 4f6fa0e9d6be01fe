"""`python scripts/publish.py key=value ...`: see configs/publish.yaml for the options."""

from kazakh_ner_stance.cli import publish_main

if __name__ == "__main__":
    publish_main()
