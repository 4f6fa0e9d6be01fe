"""The contract every trainable task implements (Flair's `Model` pattern).

`training/train.py` drives any subclass the same way: build the model from a pretrained encoder
folder, encode the training split, collate batches, score a split with the task's own predictor
(the number that selects checkpoints is `metric_name`, higher is better), and write the task's
own files beside each checkpoint. The optional hooks have defaults that do nothing, so the
trainer never has to ask whether a task has them.

What the other verbs need (checkpoint loader, evaluator, publish verifier, card and report
descriptions) is declared in the task's `TaskSpec` (tasks/registry.py); `spec` links the two.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from .registry import TaskSpec, task_spec


class Task(ABC):
    """One trainable task. Subclasses set `name` (their registry key) and `metric_name`."""

    name: str
    # The key of `evaluate`'s result that selects checkpoints and early stopping (higher is better).
    metric_name: str
    greater_is_better: bool = True

    def __init__(self, cfg, dataset, tokenizer):
        self.cfg = cfg
        self.dataset = dataset
        self.tokenizer = tokenizer

    @classmethod
    def spec(cls) -> TaskSpec:
        return task_spec(cls.name)

    # ---- required

    @abstractmethod
    def build_model(self, model_dir):
        """A freshly initialised model over the pretrained encoder in `model_dir` (float32)."""

    @abstractmethod
    def encode_train(self, split):
        """The training split as model features (input_ids, attention_mask, labels, length, ...)."""

    @abstractmethod
    def data_collator(self, pad_to_multiple_of=None):
        """A callable that pads a list of encoded features into a batch."""

    @abstractmethod
    def evaluate(self, model, split, batch_size: int = 64) -> dict:
        """Scores of `model` on a raw split (every gold word / item, in dataset order); holds
        `metric_name`."""

    # ---- optional hooks (defaults: nothing task-specific)

    def train_sampler(self, batch_size: int):
        """A sampler for the training features, or None for the Trainer's own."""
        return None

    def compute_loss(self, model, inputs, return_outputs: bool = False):
        """The training loss, or None to use the model's own (outputs.loss)."""
        return None

    def training_data_info(self) -> dict:
        """What the model was trained on beyond the dataset (recorded in the checkpoint)."""
        return {}

    def save_extra(self, folder: Path) -> None:
        """Write the task's own files into a checkpoint or release folder."""

    def load_extra(self, folder: Path) -> None:
        """Read back what save_extra wrote into the model being trained, when the Trainer reloads
        a checkpoint's weights (the best model at the end, a resumed run)."""

    def feature_columns(self) -> tuple[str, ...]:
        """Training feature columns that the task's loss reads (in compute_loss, or a hook on
        the model's forward such as the CRF's word starts) but the model's forward signature does
        not name (the Trainer would drop them otherwise)."""
        return ()
