"""Checkpoints that are complete or clearly not, and provenance written into each.

The provenance is `TRAINING_INFO` (kns_training.json: task, resolved config, data
fingerprint, git commit, train time), written by train.py and read back by every other
part of the package through `read_training_info` (import-light: no torch).

Trainer writes `checkpoint-N/` file by file; a run killed mid-save leaves a folder that
*looks* like a checkpoint. We add a marker file last (written to a temp name, then
renamed) and only ever resume from folders that carry it. Final models are saved into a
temporary sibling folder and renamed into place (`atomic.replace_dir`), which is atomic on one
filesystem."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from ..atomic import replace_file
from ..errors import KnsError

COMPLETE_MARKER = "kns_complete.json"
TRAINING_INFO = "kns_training.json"


def read_training_info(path) -> dict:
    """The training record (`TRAINING_INFO`) of checkpoint folder `path`, as written; {} when
    the folder has none. KnsError when the file cannot be read or is not a JSON object."""
    f = Path(path) / TRAINING_INFO
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise KnsError(f"checkpoint {path}: cannot read {TRAINING_INFO}: {err}") from err
    if not isinstance(data, dict):
        raise KnsError(f"checkpoint {path}: {TRAINING_INFO} is not a JSON object")
    return data


def missing_checkpoint_files(path, training_record: bool = False, complete: bool = True) -> list[str]:
    """What a saved model folder lacks of config.json, the safetensors weights (one file or an
    index of shards) and the tokenizer (only config.json unless `complete`), and of the training
    record when `training_record`."""
    path = Path(path)
    needed = ("config.json", "tokenizer_config.json") if complete else ("config.json",)
    missing = [n for n in needed if not (path / n).is_file()]
    if training_record and not (path / TRAINING_INFO).is_file():
        missing.append(TRAINING_INFO)
    if complete and not ((path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()):
        missing.insert(0, "model.safetensors")
    return missing


def is_complete_checkpoint(path) -> bool:
    return Path(path).is_dir() and not missing_checkpoint_files(path)


def check_checkpoint(path, task: str | None = None, *, training_record: bool = False,
                     complete: bool = True) -> tuple[Path, dict]:
    """(resolved folder, training record) of a complete saved model, or a KnsError saying what is
    wrong. The one check behind every verb that opens a checkpoint (the task loaders, evaluate,
    publish): `task` also refuses a checkpoint whose record names another task,
    `training_record` requires kns_training.json (a release is described from it), and
    complete=False asks for config.json only (evaluate: its task's loader checks the rest)."""
    if path is None or str(path) in ("", "???"):
        raise KnsError(
            "no checkpoint given: pass checkpoint=DIR (a trained model folder, e.g. artifacts/runs/RUN/model)"
        )
    folder = Path(str(path)).expanduser()
    if not folder.is_dir():
        raise KnsError(f"checkpoint folder not found: {folder}")
    missing = missing_checkpoint_files(folder, training_record, complete)
    if missing:
        raise KnsError(
            f"{folder} is not a complete checkpoint (missing {', '.join(missing)}); a run killed mid-save never "
            "renames its temporary folder into place, so point at the run's `model/` folder (written by "
            "scripts/train.py) or a `checkpoint-N` folder that holds these files"
        )
    info = read_training_info(folder)
    if task is not None and info.get("task") not in (None, task):
        raise KnsError(f"{folder} is a {info.get('task')!r} checkpoint, not a {task} one")
    return folder.resolve(), info


def trained_inference(path) -> dict:
    """How checkpoint `path`'s run scored NER: {"max_length", "overlap"} (its sub-word windows,
    each None when not recorded) and "decoding" ("argmax" when not recorded: what runs before
    task.decoding existed did), from its training record's task config. Every re-scoring of the
    checkpoint (evaluate.py, publish's check, the Predictor) uses them, so they reproduce the
    run's own scores."""
    task = (read_training_info(path).get("config") or {}).get("task") or {}

    def _int(key):
        try:
            return int(task[key]) if task.get(key) is not None else None
        except (TypeError, ValueError):
            return None

    return {"max_length": _int("max_length"), "overlap": _int("window_overlap"),
            "decoding": str(task.get("decoding") or "argmax")}


def write_json_atomic(path: Path, data) -> None:
    with replace_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def mark_complete(folder: Path, step: int | None = None) -> None:
    write_json_atomic(Path(folder) / COMPLETE_MARKER, {"complete": True, "global_step": step})


def is_marked_complete(folder: Path) -> bool:
    return (Path(folder) / COMPLETE_MARKER).is_file()


def complete_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """`checkpoint-N` folders that finished saving, oldest first."""
    checkpoints_dir = Path(checkpoints_dir)
    if not checkpoints_dir.is_dir():
        return []
    found = []
    for child in checkpoints_dir.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", child.name)
        if m and child.is_dir() and is_marked_complete(child):
            found.append((int(m.group(1)), child))
    return [p for _, p in sorted(found)]


def incomplete_checkpoints(checkpoints_dir: Path) -> list[Path]:
    checkpoints_dir = Path(checkpoints_dir)
    if not checkpoints_dir.is_dir():
        return []
    return sorted(
        c for c in checkpoints_dir.iterdir()
        if re.fullmatch(r"checkpoint-\d+", c.name) and c.is_dir() and not is_marked_complete(c)
    )


def git_commit(root: Path) -> dict:
    """The commit the code ran from (and whether the tree had local changes)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
            text=True, timeout=10, check=True,
        ).stdout.strip()
        return {"commit": sha, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
