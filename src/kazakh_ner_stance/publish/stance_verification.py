"""Stance releases: a seeded sample of the stance split the evaluation used, re-scored with the
source checkpoint; with the whole split, the scores must equal metrics.json's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .verification import (ReleaseVerifier, require_whole_split_match, sample_indices, sample_rescoring,
                           verification_split)


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
    return sample_rescoring(split, {"kind": "built", "n_items": len(ds)},
                            {"sent_ids": [str(ids_all[i]) for i in idx], "items": items, "gold": gold},
                            {"batch_size": bs}, vcfg, whole, scores, compared)


verify_stance_release = ReleaseVerifier(
    build=lambda ckpt, metrics, metrics_path, info, vcfg: build_stance_verification(ckpt, metrics, info, vcfg),
    predict=lambda folder, v: stance_predict(folder, v["sample"]["items"], v["predict"]["batch_size"]),
    score=lambda s, out: stance_sample_scores(s["gold"], *out),
    headline=lambda got: f"macro F1 {got['macro_f1']:.4f}",
    unit="items",
)
