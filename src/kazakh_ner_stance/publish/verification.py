"""Release verification, whatever the task: a task's `ReleaseVerifier` (named by its TaskSpec's
`publish_verifier`) builds verification.json from the source checkpoint, and
`verify_model_sample` reloads the release and re-scores the stored sample.

The check (`verification.json`): at build time a seeded sample of the evaluated split's
sentences is scored with the *source* checkpoint; the sentences (ids, words, gold tags), the
scores, a digest of the predicted tags and the mean confidence are stored. `verify_model_sample`
reloads the *release* folder with the Hub switched off and recomputes them: a changed weight
changes predictions or confidences, and the release is refused. When the sample is the whole
split, the source checkpoint's scores must also equal metrics.json's (the card's numbers).
The tasks' verifiers: `ner_verification`, `stance_verification`, `joint_verification`."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import KnsError
from ..tasks.registry import TASKS, task_spec
from .common import FORMAT_VERSION, VERIFICATION, ReleaseVerificationError, hub_offline, read_json

log = logging.getLogger(__name__)


def sample_indices(n: int, size, seed: int) -> list[int]:
    if size is None or int(size) >= n:
        return list(range(n))
    return sorted(random.Random(int(seed)).sample(range(n), int(size)))


def compare_scores(expected: dict, got: dict, tol: float, prefix: str = "") -> list[str]:
    """Differences between two score dicts (numbers within `tol`, everything else exactly)."""
    diffs = []
    for key in sorted(set(expected) | set(got)):
        a, b = expected.get(key), got.get(key)
        where = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += compare_scores(a, b, tol, where + ".")
        elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            if not math.isclose(float(a), float(b), rel_tol=0, abs_tol=tol):
                diffs.append(f"{where}: expected {a}, got {b}")
        elif a != b:
            diffs.append(f"{where}: expected {a!r}, got {b!r}")
    return diffs


def verification_split(metrics: dict, info: dict, vcfg, kind: str):
    """(source folder, split name, split) of the built dataset a release is verified on: the
    one its metrics.json was computed on, unless verify_data names another."""
    import datasets

    ev = metrics.get("eval_data") or {}
    source = vcfg.get("verify_data") or ev.get("path") or info.get("data_dir")
    split = str(ev.get("split") or metrics.get("split") or "test")
    if not source or not (Path(str(source)) / "dataset_dict.json").is_file():
        raise KnsError(f"cannot find the built {kind} dataset to verify with ({source}); pass verify_data=DIR")
    dd = datasets.load_from_disk(str(source))
    if split not in dd:
        raise KnsError(f"built dataset {source} has no split {split!r}")
    return source, split, dd[split]


def require_whole_split_match(want: dict, got: dict, vcfg, split: str) -> None:
    """Re-scoring the whole split must give metrics.json's numbers, else the metrics describe
    another checkpoint (ReleaseVerificationError listing the differences)."""
    diffs = compare_scores(want, got, max(float(vcfg.get("tolerance") or 1e-6), 1e-9))
    if diffs:
        raise ReleaseVerificationError(
            f"metrics.json does not describe this checkpoint: re-scoring the whole `{split}` split gives "
            "different numbers:\n- " + "\n- ".join(diffs)
        )


def sample_rescoring(split: str, data: dict, sample: dict, predict: dict, vcfg, whole: bool, expected: dict,
                     compared: str) -> dict:
    """The verification record every task writes into a release: re-score `sample` (its seed and
    whether it is the whole split added here) with `predict`'s settings and expect `expected`
    within the configured tolerance."""
    return {
        "check": "sample re-scoring",
        "split": split,
        "data": data,
        "sample": {"seed": int(vcfg.get("seed", 0)), "whole_split": whole, **sample},
        "predict": predict,
        "tolerance": float(vcfg.get("tolerance") or 1e-6),
        "expected": expected,
        "metrics_json_check": compared,
    }


def build_verification(ckpt: Path, task: str, metrics: dict, metrics_path: Path, info: dict, vcfg) -> dict:
    """verification.json for a model release, scored with the source checkpoint by the task's
    publish verifier (tasks/registry.py)."""
    base = {"format": FORMAT_VERSION, "task": task}
    if task not in TASKS:
        reason = (f"re-scoring {task} checkpoints is not wired into releases yet; this release is checked by its "
                  "manifest (every file's SHA-256) only")
        log.warning("no sample re-scoring: %s", reason)
        return {**base, "check": "manifest only", "reason": reason}
    verifier = task_spec(task).load("publish_verifier")
    return {**base, **verifier(ckpt, metrics, metrics_path, info, vcfg)}


@dataclass(frozen=True)
class ReleaseVerifier:
    """How the releases of one task are checked: a TaskSpec's `publish_verifier`.

    Called at build time as `verifier(ckpt, metrics, metrics_path, info, vcfg)`, it returns
    verification.json's check, scored with the source checkpoint. `verify_model_sample` then
    reloads the release and re-scores the stored sample with `predict` and `score`."""

    build: Callable[..., dict]  # (ckpt, metrics, metrics_path, info, vcfg) -> the check
    predict: Callable[[Path, dict], tuple]  # (release folder, verification.json) -> predictions
    score: Callable[[dict, tuple], dict]  # (the stored sample, predictions) -> scores like `expected`
    headline: Callable[[dict], str]  # scores -> the numbers the verify message quotes
    unit: str  # what the sample counts

    def __call__(self, ckpt: Path, metrics: dict, metrics_path: Path, info: dict, vcfg) -> dict:
        return self.build(ckpt, metrics, metrics_path, info, vcfg)


def verify_model_sample(folder: Path) -> str:
    """Reload the release with the Hub switched off and re-score verification.json's sample
    (its task's publish verifier: how to predict, score and describe it)."""
    v = read_json(Path(folder) / VERIFICATION, "verification file")
    if v.get("check") != "sample re-scoring":
        return f"sample check skipped: {v.get('reason', 'not recorded')}"
    s = v["sample"]
    verifier = task_spec(v.get("task") or "ner").load("publish_verifier")  # the oldest records are NER's
    with hub_offline():
        try:
            out = verifier.predict(Path(folder), v)
        except KnsError:
            raise
        except Exception as err:  # a corrupt weight file, a broken config: refuse, clearly
            raise ReleaseVerificationError(f"the release in {folder} does not reload: {err}") from None
    got = verifier.score(s, out)
    diffs = compare_scores(v["expected"], got, float(v.get("tolerance") or 1e-6))
    n = len(s["gold"])
    if diffs:
        raise ReleaseVerificationError(
            f"the release in {folder} does not reproduce the source checkpoint on its {n} verification "
            f"{verifier.unit} (were the weights changed?); refusing to publish:\n- "
            + "\n- ".join(diffs[:20])
        )
    return (f"reloaded offline; {n} {verifier.unit} of `{v['split']}` re-scored: {verifier.headline(got)}, "
            "predictions identical to the source checkpoint's")
