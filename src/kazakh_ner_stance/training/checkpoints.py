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
