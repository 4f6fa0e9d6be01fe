"""Release cards: model and dataset card templates and their offline validation."""

from .dataset_card import DatasetCardInputs, render_dataset_card
from .model_card import ModelCardInputs, render_model_card
from .validate import CardValidationError, validate_card_file, validate_dataset_card, validate_model_card

__all__ = [
    "CardValidationError",
    "DatasetCardInputs",
    "ModelCardInputs",
    "render_dataset_card",
    "render_model_card",
    "validate_card_file",
    "validate_dataset_card",
    "validate_model_card",
]
