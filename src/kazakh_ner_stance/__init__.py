"""kazakh-ner-stance: Kazakh NER and stance datasets, models, evaluation and releases."""

__version__ = "0.1.0"

__all__ = ["__version__", "Predictor"]


def __getattr__(name):
    # Imported lazily: `import kazakh_ner_stance` must stay cheap (no torch) for the CLI.
    if name == "Predictor":
        from .predict import Predictor

        return Predictor
    raise AttributeError(name)
