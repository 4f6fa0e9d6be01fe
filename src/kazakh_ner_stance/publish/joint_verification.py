"""Joint releases: NER tags and the stance of the gold targets on a seeded sample of the joint
split, scored like the NER and stance releases."""

from __future__ import annotations

from pathlib import Path

from .ner_verification import ner_scores
from .stance_verification import stance_sample_scores
from .verification import (ReleaseVerifier, require_whole_split_match, sample_indices, sample_rescoring,
                           verification_split)


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
    return sample_rescoring(split, {"kind": "built", "n_sentences": len(ds)},
                            {"sent_ids": [str(ids_all[i]) for i in idx], "tokens": tokens, "gold": gold_tags,
                             "spans": spans, "gold_stance": gold_stance},
                            {"batch_size": bs}, vcfg, whole, scores, compared)


verify_joint_release = ReleaseVerifier(
    build=lambda ckpt, metrics, metrics_path, info, vcfg: build_joint_verification(ckpt, metrics, info, vcfg),
    predict=lambda folder, v: joint_predict(folder, v["sample"]["tokens"], v["sample"]["spans"],
                                            v["predict"]["batch_size"]),
    score=lambda s, out: joint_sample_scores(s["gold"], out[0], out[1], s["gold_stance"], out[2], out[3]),
    headline=lambda got: (f"NER micro F1 {got['ner']['micro']['f1']:.4f}, "
                          f"stance macro F1 {got['stance']['macro_f1']:.4f}"),
    unit="sentences",
)
