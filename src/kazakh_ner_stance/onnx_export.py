"""`scripts/export_onnx.py`: export a NER checkpoint to ONNX and prove it matches PyTorch.

    python scripts/export_onnx.py checkpoint=DIR [out_dir=DIR] [opset=17] [exporter=auto]

Writes into out_dir (default ``<checkpoint>/onnx``): ``model.onnx`` (inputs ``input_ids`` and
``attention_mask``, int64 [batch, sequence]; output ``logits`` float32 [batch, sequence,
labels]; batch and sequence are dynamic axes), ``config.json`` (id2label), the tokenizer,
``kns_training.json`` (copied) and ``kns_onnx.json`` (exporter, opset, versions, parity).
The folder is staged and moved into place only after the parity check passed: the ONNX model
and PyTorch must agree on word logits within ``tolerance`` (max abs diff, default 1e-4) and
give identical tags on every verification sentence (padded batches of mixed lengths and a
sentence longer than one window). ``Predictor.from_pretrained(checkpoint, backend="onnx")``
then finds it.

Exporters (torch 2.13): the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, the
default since torch 2.9) needs the ``onnxscript`` package; the TorchScript ("legacy") one
needs nothing more and is deprecated but works. Both were checked to match PyTorch on padded
batches of other shapes than the export sample. ``exporter=auto`` takes dynamo when onnxscript
is installed, else legacy. The export always runs the model in eval mode (the legacy exporter
otherwise bakes dropout into the graph).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from pathlib import Path

from .atomic import replace_dir
from .errors import KnsError
from .predict.checkpoints import checkpoint_task
from .predict.onnx_runtime import ONNX_FILE, ONNX_TASKS, OnnxTokenClassifier
from .tasks.registry import task_spec
from .training.checkpoints import TRAINING_INFO

log = logging.getLogger(__name__)

EXPORTERS = ("auto", "dynamo", "legacy")
MIN_OPSET = 17

# Verification sentences: real Kazakh, mixed lengths (padding inside every batch).
VERIFY_SENTENCES = [
    "Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады .",
    "Астана",
    "2023 жылғы 15 наурызда Алматы қаласында « Қазақтелеком » АҚ-ның жиналысы өтті .",
    "ҚР Парламенті Мәжілісі Ұлттық банктің 1,5 млрд теңгелік жобасын мақұлдады .",
    "Ол бүгін .",
]


def onnxscript_available() -> bool:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def _wrapper(model):
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    return LogitsOnly(model).eval()


def _sample_inputs(tokenizer):
    """A padded batch of two: the exported graph must not assume an all-ones mask."""
    import torch

    enc = tokenizer(["Қазақстан Президенті Тоқаев Астанада сөйледі .", "Алматы ."], padding=True,
                    return_tensors="pt")
    return enc["input_ids"].to(torch.long), enc["attention_mask"].to(torch.long)


def export_model(model, tokenizer, path: Path, opset: int = MIN_OPSET, exporter: str = "auto") -> str:
    """Write `path` (model.onnx); returns the exporter used (dynamo | legacy)."""
    import torch

    if exporter not in EXPORTERS:
        raise KnsError(f"exporter must be one of {EXPORTERS}, not {exporter!r}")
    if int(opset) < MIN_OPSET:
        raise KnsError(f"opset must be >= {MIN_OPSET}, got {opset}")
    if exporter == "auto":
        exporter = "dynamo" if onnxscript_available() else "legacy"
    if exporter == "dynamo" and not onnxscript_available():
        raise KnsError("exporter=dynamo needs the onnxscript package (pip install onnxscript), or use exporter=legacy")
    model.eval()
    wrapped = _wrapper(model)
    ids, mask = _sample_inputs(tokenizer)
    kwargs = dict(input_names=["input_ids", "attention_mask"], output_names=["logits"],
                  opset_version=int(opset), dynamo=exporter == "dynamo")
    if exporter == "dynamo":
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
        kwargs["dynamic_shapes"] = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
        kwargs["external_data"] = False
        kwargs["verbose"] = False
    else:
        kwargs["dynamic_axes"] = {name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", "logits")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(wrapped, (ids, mask), str(path), **kwargs)
    return exporter


def verify_parity(model, tokenizer, onnx_path: Path, sentences=None, max_length: int | None = None,
                  overlap: int = 32, batch_size: int = 4) -> dict:
    """Word logits and tags of PyTorch vs the ONNX model on the same windows and batches."""
    import numpy as np

    from .tasks.ner import predict_word_logits

    words = [s.split() for s in (sentences or VERIFY_SENTENCES)]
    # One sentence longer than a window, so that windowing is checked too.
    limit = int(max_length or min(getattr(tokenizer, "model_max_length", 512), 512))
    long = (" ".join(VERIFY_SENTENCES) + " ").split() * max(1, (limit // 8) + 1)
    words = words + [long]
    onnx_model = OnnxTokenClassifier(onnx_path, model.config)
    ref = predict_word_logits(model, tokenizer, words, batch_size=batch_size, max_length=max_length, overlap=overlap)
    got = predict_word_logits(onnx_model, tokenizer, words, batch_size=batch_size, max_length=max_length,
                              overlap=overlap)
    diff = max((float(np.abs(a - b).max()) for a, b in zip(ref, got) if len(a)), default=0.0)
    same = all(np.array_equal(a.argmax(-1), b.argmax(-1)) for a, b in zip(ref, got))
    return {"max_abs_diff": diff, "tags_identical": bool(same), "n_sentences": len(words),
            "n_words": int(sum(len(w) for w in words))}


def export_onnx(checkpoint, out_dir=None, opset: int = MIN_OPSET, exporter: str = "auto",
                tolerance: float = 1e-4, overwrite: bool = True) -> dict:
    """Export, verify and move into place; returns what kns_onnx.json records."""
    import onnx
    import onnxruntime
    import torch
    import transformers

    src = Path(str(checkpoint)).expanduser()
    if not src.is_dir():
        raise KnsError(f"checkpoint folder not found: {src}")
    task = checkpoint_task(src)
    if task not in ONNX_TASKS:
        raise KnsError(f"ONNX export covers NER checkpoints; {src} is a {task!r} checkpoint")
    out = Path(str(out_dir)).expanduser() if out_dir else src / "onnx"
    if out.exists() and not overwrite:
        raise KnsError(f"{out} exists; pass overwrite=true to replace it")
    model, tokenizer, id2label = task_spec(task).load("checkpoint_loader")(src)
    from .training.checkpoints import trained_inference

    max_length = trained_inference(src)["max_length"]
    with replace_dir(out) as stage:  # the previous export survives a failed export or rename
        started = time.perf_counter()
        used = export_model(model, tokenizer, stage / ONNX_FILE, opset=opset, exporter=exporter)
        export_s = time.perf_counter() - started
        onnx.checker.check_model(str(stage / ONNX_FILE))
        parity = verify_parity(model, tokenizer, stage / ONNX_FILE, max_length=max_length)
        ok = parity["max_abs_diff"] < tolerance and parity["tags_identical"]
        if not ok:
            raise KnsError(
                f"the ONNX model does not match PyTorch (max abs diff {parity['max_abs_diff']:.2e}, tolerance "
                f"{tolerance:g}; tags identical: {parity['tags_identical']}); nothing written to {out}"
            )
        model.config.save_pretrained(stage)
        tokenizer.save_pretrained(stage)
        for name in (TRAINING_INFO,):
            if (src / name).is_file():
                shutil.copy2(src / name, stage / name)
        info = {
            "source_checkpoint": str(src.resolve()),
            "task": task,
            "exporter": used,
            "opset": int(opset),
            "inputs": {"input_ids": "int64 [batch, sequence]", "attention_mask": "int64 [batch, sequence]"},
            "outputs": {"logits": f"float32 [batch, sequence, {len(id2label)}]"},
            "id2label": {str(k): v for k, v in sorted(id2label.items())},
            "max_length": max_length,
            "parity": {**parity, "tolerance": tolerance},
            "export_seconds": round(export_s, 2),
            "onnx_bytes": (stage / ONNX_FILE).stat().st_size,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        }
        (stage / "kns_onnx.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    info["out_dir"] = str(out)
    return info


def run_export_onnx(cfg) -> dict:
    checkpoint = cfg.get("checkpoint")
    if checkpoint is None or str(checkpoint) in ("", "???"):
        raise KnsError("no checkpoint given: pass checkpoint=DIR (a NER run's model/ folder)")
    info = export_onnx(checkpoint, cfg.get("out_dir"), opset=int(cfg.get("opset", MIN_OPSET)),
                       exporter=str(cfg.get("exporter", "auto")), tolerance=float(cfg.get("tolerance", 1e-4)),
                       overwrite=bool(cfg.get("overwrite", True)))
    p = info["parity"]
    print(f"exported {info['out_dir']}/model.onnx ({info['exporter']} exporter, opset {info['opset']}, "
          f"{info['onnx_bytes'] / 1e6:.1f} MB, {info['export_seconds']}s); parity on {p['n_sentences']} sentences / "
          f"{p['n_words']} words: max abs logit diff {p['max_abs_diff']:.2e}, tags identical: {p['tags_identical']}")
    return info

