"""Which task a checkpoint folder was trained for (read before anything is loaded)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import KnsError
from ..training.checkpoints import read_training_info


def checkpoint_task(path: Path) -> str:
    """ner | stance | joint: kns_training.json says, else the architecture in config.json."""
    task = read_training_info(path).get("task")
    if task:
        return str(task)
    if (path / "kns_onnx.json").is_file():
        return "ner"
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise KnsError(f"{path} has no config.json: not a checkpoint folder (pass the run's `model/` folder)")
    archs = json.loads(cfg_file.read_text(encoding="utf-8")).get("architectures") or []
    if any(a.endswith("ForTokenClassification") for a in archs):
        return "ner"
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "stance"
    raise KnsError(f"cannot tell which task {path} was trained for (no kns_training.json, architectures={archs})")
