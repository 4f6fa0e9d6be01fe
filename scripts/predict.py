"""`python scripts/predict.py key=value ...`: see configs/predict.yaml for the options."""

from kazakh_ner_stance.cli import predict_main

if __name__ == "__main__":
    predict_main()
