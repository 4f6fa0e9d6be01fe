"""backend=onnx: an onnxruntime session in place of the PyTorch token classifier, and where
an exported model.onnx is found (scripts/export_onnx.py writes it)."""

from __future__ import annotations

from pathlib import Path

from ..errors import KnsError
from ..tasks.registry import TASKS

ONNX_FILE = "model.onnx"
# Tasks whose checkpoints export to ONNX (and run with predict's backend=onnx): the plain token
# classifiers, tasks that find entities and nothing else (export_model traces logits of shape
# [batch, sequence, labels]). A declared TaskSpec flag (`onnx_export`) would say this directly.
ONNX_TASKS = frozenset(name for name, spec in TASKS.items() if spec.predicts_entities and not spec.predicts_stance)


class OnnxTokenClassifier:
    """An onnxruntime session that quacks like a transformers token-classification model for
    `tasks.ner.predict_word_logits` (config, parameters(), eval(), __call__ -> .logits)."""

    def __init__(self, onnx_path: str | Path, config, num_threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = int(num_threads)
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = config
        self.training = False
        self.path = Path(onnx_path)

    def parameters(self):
        import torch

        yield torch.zeros(0)  # predict_word_logits asks for the device: CPU

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def __call__(self, input_ids, attention_mask, **_):
        import torch
        from types import SimpleNamespace

        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        logits = self.session.run(["logits"], {k: v for k, v in feeds.items() if k in self.input_names})[0]
        return SimpleNamespace(logits=torch.from_numpy(logits))


def find_onnx_dir(path: Path, onnx_dir: str | Path | None = None) -> Path:
    """The folder holding model.onnx: `onnx_dir`, `path` itself or `path/onnx`."""
    candidates = [Path(onnx_dir)] if onnx_dir else [path, path / "onnx"]
    for c in candidates:
        if (c / ONNX_FILE).is_file():
            return c
    raise KnsError(
        f"no {ONNX_FILE} in {' or '.join(str(c) for c in candidates)}; export one first with "
        f"`python scripts/export_onnx.py checkpoint={path}` (writes {path / 'onnx'})"
    )
