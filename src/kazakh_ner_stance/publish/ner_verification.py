"""NER releases: a seeded sample of the sentences the evaluation scored, re-scored with the
source checkpoint and checked against metrics.json (its numbers, or its predictions.tsv)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import KnsError
from ..training.checkpoints import trained_inference
from .common import ReleaseVerificationError
from .verification import ReleaseVerifier, compare_scores, sample_indices, sample_rescoring

log = logging.getLogger(__name__)


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
    from ..data.built_dataset import dataset_fingerprint, load_built_dataset
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


def ner_predict(folder: Path, tokens: list[list[str]], batch_size: int, max_length) -> tuple[list, list]:
    from ..tasks.ner import load_ner_checkpoint, predict_word_tags

    model, tokenizer, _ = load_ner_checkpoint(folder)
    # The run's own windows (as evaluate.py scores it), unless the verification sets a length.
    trained = trained_inference(folder)
    kwargs = {"batch_size": int(batch_size), "return_scores": True}
    if max_length or trained["max_length"]:
        kwargs["max_length"] = int(max_length or trained["max_length"])
    if trained["overlap"] is not None:
        kwargs["overlap"] = trained["overlap"]
    return predict_word_tags(model, tokenizer, tokens, decoding=trained["decoding"], **kwargs)


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
    return sample_rescoring(
        data.split, {"kind": data.kind, "fingerprint": data.fingerprint, "n_sentences": len(data.tokens)},
        {"sent_ids": sample.sent_ids, "tokens": sample.tokens, "gold": sample.tags},
        {"batch_size": bs, "max_length": ml}, vcfg, whole, scores, compared)


verify_ner_release = ReleaseVerifier(
    build=build_ner_verification,
    predict=lambda folder, v: ner_predict(folder, v["sample"]["tokens"], v["predict"]["batch_size"],
                                          v["predict"]["max_length"]),
    score=lambda s, out: ner_scores(s["gold"], *out),
    headline=lambda got: f"micro F1 {got['micro']['f1']:.4f}",
    unit="sentences",
)
