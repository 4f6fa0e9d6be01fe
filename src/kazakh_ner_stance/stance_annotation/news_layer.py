"""The gold stance layer over the extra Kazakh news-like text (issue 22): annotation batches
out, annotators' files in, validated, double-annotated, adjudicated.

    python scripts/news_stance_layer.py export --batches 6        # batches for the annotators
    python scripts/news_stance_layer.py assemble ann/*.jsonl       # -> data/stance/kazakh_news_stance.jsonl
    python scripts/news_stance_layer.py agreement                  # kappa on the double-annotated sample

The annotators mark the targets themselves (span and type) and label each one, under
``docs/stance-guidelines.md``. Akorda sentences come with the CG-3 proper-noun spans as
proposals (``data.kazakh_news.np_spans``). An annotator's file holds one JSON line per
sentence of their batch, sentences without a target included:

    {"id": "ntrex:17", "annotator": "ann3",
     "targets": [{"start": 0, "end": 2, "target": "Дональд Трамп", "type": "PERSON",
                  "label": "AGAINST", "note": "..."}]}

``start``/``end`` are word offsets (end exclusive) over the sentence's tokens, which the
batch lists numbered. A span whose words are not the target's is refused, with the file and
line; a target whose words occur exactly once in the sentence is re-located and counted.

The double-annotated sample (a seeded 20% of the sentences, stratified by source) is
annotated again from scratch by a second annotator who sees neither the first targets nor the
labels. Agreement is reported twice: on the targets (span and type, F1 of one annotator against
the other) and on the labels of the targets both found (Cohen's kappa, overall and per class).
Disagreements are adjudicated, and each decision is stored with its reason.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..errors import DataValidationError, KnsError, Problem
from ..labels import STANCE_LABELS
from ..data.stance_layer import read_jsonl

TARGET_TYPES = ("PERSON", "ORGANISATION", "GPE", "NORP", "EVENT", "PROJECT", "LAW", "FACILITY", "LOCATION", "PRODUCT")
LAYER_FIELDS = ("id", "sent_id", "source", "doc_id", "start", "end", "target", "type", "label", "annotator")


# --------------------------------------------------------------------------- batches out


def deal_documents(sentences: Sequence, n_batches: int, seed: int = 7) -> list[list]:
    """Whole documents to `n_batches` batches of about equal sentence counts (seeded order,
    largest first), so one annotator reads a document's sentences together."""
    docs: dict[str, list] = defaultdict(list)
    for s in sentences:
        docs[s.doc_id].append(s)
    order = sorted(docs)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda d: -len(docs[d]))
    batches: list[list] = [[] for _ in range(n_batches)]
    for d in order:
        j = min(range(n_batches), key=lambda k: (len(batches[k]), k))
        batches[j].extend(docs[d])
    for b in batches:
        b.sort(key=lambda s: (s.source, s.line))
    return batches


def batch_text(sentences: Sequence, proposals: bool = True) -> str:
    """What an annotator reads: each sentence with its English line, numbered tokens and the
    proposed names (Akorda: the CG-3 proper-noun analyses; KazSAnDRA reviews: brands and words the
    corpus capitalises)."""
    from ..data.kazakh_news import np_spans

    out = []
    for s in sentences:
        out.append(f"=== {s.id}  (document {s.doc_id})")
        if s.eng:
            out.append(f"EN: {s.eng}")
        out.append(f"KK: {s.text}")
        out.append("TOKENS: " + " ".join(f"{i}:{t}" for i, t in enumerate(s.tokens)))
        if proposals and s.np_tags:
            spans = np_spans(s.np_tags)
            if spans:
                heading = "CG-3 proper nouns" if s.source == "akorda" else "proposed names"
                out.append(f"{heading}: " + "; ".join(
                    f"{a}-{b} {' '.join(s.tokens[a:b])} ({','.join(t)})" for a, b, t in spans))
        out.append("")
    return "\n".join(out)


def double_sample(sentences: Sequence, share: float = 0.2, seed: int = 22) -> list[str]:
    """A seeded `share` of the sentence ids of each source (the double-annotated sample)."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for s in sentences:
        by_source[s.source].append(s.id)
    picked = []
    rng = random.Random(seed)
    for src in sorted(by_source):
        ids = sorted(by_source[src])
        picked += rng.sample(ids, round(len(ids) * share))
    return sorted(picked)


# --------------------------------------------------------------------------- annotators' files in


def _relocate(tokens: Sequence[str], target: str) -> tuple[int, int] | None:
    words = target.split()
    n = len(words)
    hits = [i for i in range(len(tokens) - n + 1) if list(tokens[i:i + n]) == words] if n else []
    return (hits[0], hits[0] + n) if len(hits) == 1 else None


def read_annotations(paths: Iterable[Path], sentences: Mapping[str, object]) -> tuple[dict[str, dict], list[Problem], dict]:
    """Annotators' files -> {sentence id: {"annotator", "targets": [...]}}. Every bad line or
    target is a Problem (file, line, what); a sentence answered twice is one too."""
    problems: list[Problem] = []
    out: dict[str, dict] = {}
    where: dict[str, str] = {}
    counts = Counter()
    for path in map(Path, paths):
        for lineno, obj in read_jsonl(path, problems):
            sid = obj.get("id")
            if sid not in sentences:
                problems.append(Problem(str(path), lineno, f"unknown sentence id {sid!r}"))
                continue
            if sid in out:
                problems.append(Problem(str(path), lineno, f"{sid} annotated twice (also {where[sid]})"))
                continue
            ann = str(obj.get("annotator") or "").strip()
            if not ann:
                problems.append(Problem(str(path), lineno, f"{sid}: no annotator named"))
                continue
            tokens = sentences[sid].tokens
            targets, bad = [], False
            spans_seen = set()
            for k, t in enumerate(obj.get("targets") or []):
                what = f"{sid} target {k + 1}"
                if not isinstance(t, dict):
                    problems.append(Problem(str(path), lineno, f"{what}: not an object"))
                    bad = True
                    continue
                s, e, text = t.get("start"), t.get("end"), str(t.get("target") or "")
                ok = isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(tokens)
                if not ok or " ".join(tokens[s:e]) != text:
                    moved = _relocate(tokens, text)
                    if moved is None:
                        got = " ".join(tokens[s:e]) if ok else f"offsets {s}..{e}"
                        problems.append(Problem(str(path), lineno, f"{what}: words {got!r} are not the target "
                                                                   f"{text!r}, and it is not found once in the sentence"))
                        bad = True
                        continue
                    s, e = moved
                    counts["relocated"] += 1
                if t.get("type") not in TARGET_TYPES:
                    problems.append(Problem(str(path), lineno, f"{what}: type {t.get('type')!r} is not one of "
                                                               f"{list(TARGET_TYPES)}"))
                    bad = True
                    continue
                if t.get("label") not in STANCE_LABELS:
                    problems.append(Problem(str(path), lineno, f"{what}: label {t.get('label')!r} is not one of "
                                                               f"{list(STANCE_LABELS)}"))
                    bad = True
                    continue
                if (s, e) in spans_seen:
                    problems.append(Problem(str(path), lineno, f"{what}: span {s}-{e} given twice"))
                    bad = True
                    continue
                spans_seen.add((s, e))
                item = {"start": s, "end": e, "target": " ".join(tokens[s:e]), "type": t["type"], "label": t["label"]}
                if str(t.get("note") or "").strip():
                    item["note"] = str(t["note"]).strip()
                targets.append(item)
            if bad:
                continue
            out[sid] = {"annotator": ann, "targets": sorted(targets, key=lambda x: (x["start"], x["end"])),
                        "where": f"{path}:{lineno}"}
            where[sid] = f"{path}:{lineno}"
    return out, problems, dict(counts)


def layer_records(annotations: Mapping[str, dict], sentences: Mapping[str, object]) -> list[dict]:
    rows = []
    for sid, ann in annotations.items():
        s = sentences[sid]
        for t in ann["targets"]:
            row = {"id": f"{sid}:{t['start']}-{t['end']}", "sent_id": sid, "source": s.source, "doc_id": s.doc_id,
                   "start": t["start"], "end": t["end"], "target": t["target"], "type": t["type"],
                   "label": t["label"], "annotator": t.get("annotator", ann["annotator"])}
            for key in ("note", "adjudication"):
                if t.get(key):
                    row[key] = t[key]
            rows.append(row)
    order = {sid: i for i, sid in enumerate(sentences)}
    rows.sort(key=lambda r: (order[r["sent_id"]], r["start"], r["end"]))
    return rows


# --------------------------------------------------------------------------- the committed layer


def read_layer(path: Path, sentences: Mapping[str, object] | None = None) -> list[dict]:
    """The committed layer, validated line by line; with `sentences`, every span must slice
    back to its target. DataValidationError lists every problem."""
    path = Path(path)
    problems: list[Problem] = []
    rows: list[dict] = []
    seen: set[str] = set()
    for lineno, obj in read_jsonl(path, problems):
        missing = [f for f in LAYER_FIELDS if f not in obj]
        if missing:
            problems.append(Problem(str(path), lineno, f"missing field(s) {missing}"))
            continue
        if obj["label"] not in STANCE_LABELS:
            problems.append(Problem(str(path), lineno, f"{obj['id']}: label {obj['label']!r} is not one of "
                                                        f"{list(STANCE_LABELS)}"))
            continue
        if obj["type"] not in TARGET_TYPES:
            problems.append(Problem(str(path), lineno, f"{obj['id']}: type {obj['type']!r} is not a target type"))
            continue
        if obj["id"] in seen:
            problems.append(Problem(str(path), lineno, f"duplicate id {obj['id']}"))
            continue
        if sentences is not None:
            s = sentences.get(obj["sent_id"])
            if s is None:
                problems.append(Problem(str(path), lineno, f"{obj['id']}: sentence {obj['sent_id']!r} is not in the "
                                                            "built text"))
                continue
            st, en = obj["start"], obj["end"]
            if not (isinstance(st, int) and isinstance(en, int) and 0 <= st < en <= len(s.tokens)) \
                    or " ".join(s.tokens[st:en]) != obj["target"]:
                problems.append(Problem(str(path), lineno, f"{obj['id']}: words {st}..{en} are not the target "
                                                            f"{obj['target']!r}"))
                continue
        seen.add(obj["id"])
        rows.append({**obj, "line": lineno})
    if problems:
        raise DataValidationError(problems)
    if not rows:
        raise KnsError(f"{path} holds no stance items")
    return rows


# --------------------------------------------------------------------------- agreement


def span_agreement(first: Mapping[str, dict], second: Mapping[str, dict]) -> dict:
    """Target agreement on the sentences both annotated: exact span + type, F1 of one against
    the other (symmetric), and the label pairs of the targets both marked with the same span."""
    both = sorted(set(first) & set(second))
    a_spans = {(sid, t["start"], t["end"], t["type"]) for sid in both for t in first[sid]["targets"]}
    b_spans = {(sid, t["start"], t["end"], t["type"]) for sid in both for t in second[sid]["targets"]}
    a_span_only = {(sid, t["start"], t["end"]) for sid in both for t in first[sid]["targets"]}
    b_span_only = {(sid, t["start"], t["end"]) for sid in both for t in second[sid]["targets"]}
    common = a_spans & b_spans
    f1 = 2 * len(common) / (len(a_spans) + len(b_spans)) if (a_spans or b_spans) else 1.0
    f1_span = (2 * len(a_span_only & b_span_only) / (len(a_span_only) + len(b_span_only))
               if (a_span_only or b_span_only) else 1.0)
    pairs = []
    b_label = {(sid, t["start"], t["end"]): t["label"] for sid in both for t in second[sid]["targets"]}
    for sid in both:
        for t in first[sid]["targets"]:
            key = (sid, t["start"], t["end"])
            if key in b_label:
                pairs.append((key, t["label"], b_label[key]))
    return {"sentences": len(both), "targets_first": len(a_spans), "targets_second": len(b_spans),
            "matched_span_and_type": len(common), "f1_span_and_type": round(f1, 4), "f1_span": round(f1_span, 4),
            "label_pairs": pairs}


def label_agreement(pairs: Sequence[tuple]) -> dict:
    from .agreement import cohen_kappa

    a = [p[1] for p in pairs]
    b = [p[2] for p in pairs]
    n = len(pairs)
    per_class = {}
    for lab in STANCE_LABELS:
        per_class[lab] = cohen_kappa([x == lab for x in a], [y == lab for y in b], labels=[True, False])
    confusion = {x: {y: sum(1 for p, q in zip(a, b) if p == x and q == y) for y in STANCE_LABELS} for x in STANCE_LABELS}
    return {"n": n, "kappa": cohen_kappa(a, b, labels=list(STANCE_LABELS)),
            "raw_agreement": (sum(p == q for p, q in zip(a, b)) / n) if n else None,
            "per_class_kappa": per_class, "confusion_first_rows_second_cols": confusion,
            "labels_first": dict(Counter(a)), "labels_second": dict(Counter(b))}


# --------------------------------------------------------------------------- adjudication


def disagreements(first: Mapping[str, dict], second: Mapping[str, dict], sentences: Mapping[str, object]) -> list[dict]:
    """Every difference between the two annotations of the double sample, one line each: a
    target only one annotator marked (span, or type), or one span labelled differently."""
    out = []
    for sid in sorted(set(first) & set(second)):
        a = {(t["start"], t["end"]): t for t in first[sid]["targets"]}
        b = {(t["start"], t["end"]): t for t in second[sid]["targets"]}
        s = sentences[sid]
        for span in sorted(set(a) | set(b)):
            ta, tb = a.get(span), b.get(span)
            if ta and tb and ta["label"] == tb["label"] and ta["type"] == tb["type"]:
                continue
            kind = "label" if (ta and tb and ta["label"] != tb["label"]) else "type" if (ta and tb) else \
                "only_first" if ta else "only_second"
            out.append({"key": f"{sid}:{span[0]}-{span[1]}", "sent_id": sid, "start": span[0], "end": span[1],
                        "target": " ".join(s.tokens[span[0]:span[1]]), "kind": kind, "text": s.text, "eng": s.eng,
                        "first": ({"type": ta["type"], "label": ta["label"], "note": ta.get("note", "")} if ta else None),
                        "second": ({"type": tb["type"], "label": tb["label"], "note": tb.get("note", "")} if tb else None),
                        "annotators": [first[sid]["annotator"], second[sid]["annotator"]]})
    return out


ADJUDICATION_DECISIONS = ("keep", "drop")


def read_adjudication(path: Path, open_items: Mapping[str, dict]) -> tuple[dict[str, dict], list[Problem]]:
    """The adjudicator's lines ``{"key", "decision": "keep" | "drop", "type", "label",
    "adjudicator", "reason"}``: keep the target (with this type and label) or leave it out."""
    problems: list[Problem] = []
    out: dict[str, dict] = {}
    for lineno, obj in read_jsonl(Path(path), problems):
        key = obj.get("key")
        bad = []
        if key not in open_items:
            bad.append(f"unknown disagreement {key!r}")
        elif key in out:
            bad.append(f"{key} decided twice")
        if obj.get("decision") not in ADJUDICATION_DECISIONS:
            bad.append(f"decision must be one of {list(ADJUDICATION_DECISIONS)}")
        elif obj["decision"] == "keep":
            if obj.get("label") not in STANCE_LABELS:
                bad.append(f"label {obj.get('label')!r} is not one of {list(STANCE_LABELS)}")
            if obj.get("type") not in TARGET_TYPES:
                bad.append(f"type {obj.get('type')!r} is not a target type")
        if not str(obj.get("adjudicator") or "").strip() or not str(obj.get("reason") or "").strip():
            bad.append("adjudicator and reason are required")
        elif key in open_items and str(obj["adjudicator"]).strip() in open_items[key]["annotators"]:
            bad.append(f"{key}: the adjudicator annotated this sentence")
        if bad:
            problems.append(Problem(str(path), lineno, "; ".join(bad)))
            continue
        out[key] = {k: obj.get(k) for k in ("decision", "type", "label", "adjudicator", "reason")}
    for key in open_items:
        if key not in out and not problems:
            problems.append(Problem(str(path), None, f"disagreement {key} has no decision"))
    return out, problems


def apply_adjudication(first: Mapping[str, dict], second: Mapping[str, dict], decisions: Mapping[str, dict],
                       open_items: Mapping[str, dict]) -> tuple[dict[str, dict], list[dict]]:
    """The final annotation of every sentence (the first annotator's, with the decisions
    applied on the double sample) and the double file's rows (one per target either marked)."""
    final = {sid: {"annotator": a["annotator"], "targets": [dict(t) for t in a["targets"]]} for sid, a in first.items()}
    double_rows = []
    for sid in sorted(set(first) & set(second)):
        a = {(t["start"], t["end"]): t for t in first[sid]["targets"]}
        b = {(t["start"], t["end"]): t for t in second[sid]["targets"]}
        ann_a, ann_b = first[sid]["annotator"], second[sid]["annotator"]
        kept = []
        for span in sorted(set(a) | set(b)):
            key = f"{sid}:{span[0]}-{span[1]}"
            ta, tb = a.get(span), b.get(span)
            dec = decisions.get(key) if key in open_items else None
            if dec is None:  # both agree on span, type and label
                t = dict(ta)
                t["annotator"] = f"{ann_a}+{ann_b}"
                kept.append(t)
                final_label = t["label"]
            elif dec["decision"] == "keep":
                src = ta or tb
                t = {"start": span[0], "end": span[1], "target": src["target"], "type": dec["type"],
                     "label": dec["label"], "annotator": f"{ann_a}+{ann_b}/adj",
                     "adjudication": f"{dec['adjudicator']}: {dec['reason']}"}
                if src.get("note"):
                    t["note"] = src["note"]
                kept.append(t)
                final_label = dec["label"]
            else:
                final_label = None
            double_rows.append({"sent_id": sid, "start": span[0], "end": span[1],
                                "target": (ta or tb)["target"],
                                "label_a": ta["label"] if ta else None, "type_a": ta["type"] if ta else None,
                                "annotator_a": ann_a,
                                "label_b": tb["label"] if tb else None, "type_b": tb["type"] if tb else None,
                                "annotator_b": ann_b, "label_final": final_label,
                                "adjudicated": dec is not None,
                                "adjudication": (f"{dec['adjudicator']}: {dec['decision']}; {dec['reason']}" if dec else "")})
        final[sid] = {"annotator": ann_a, "targets": kept}
    return final, double_rows


def _disagreement_kind(row: Mapping) -> str:
    if row["label_a"] is None or row["label_b"] is None:
        return "span"
    return "label" if row["label_a"] != row["label_b"] else "type"


def agreement_report(first: Mapping[str, dict], second: Mapping[str, dict], double_rows: Sequence[Mapping]) -> dict:
    spans = span_agreement(first, second)
    pairs = spans.pop("label_pairs")
    labels = label_agreement(pairs)
    adjudicated = [r for r in double_rows if r["adjudicated"]]
    return {
        "description": "Blind double annotation of a seeded share of the sentences (stratified by source): the "
                       "second annotator marked targets and labels from scratch. Target agreement is exact span "
                       "(and type) F1; label agreement is Cohen's kappa over the targets both marked with the same "
                       "span (per class: one-vs-rest). Rows of the confusion = first annotator.",
        "targets": spans, "labels": labels,
        "adjudication": {"disagreements": len(adjudicated),
                         "by_kind": dict(Counter(_disagreement_kind(r) for r in adjudicated)),
                         "kept": sum(r["label_final"] is not None for r in adjudicated),
                         "dropped": sum(r["label_final"] is None for r in adjudicated)},
        "annotators": {"first": sorted({a["annotator"] for a in first.values()}),
                       "second": sorted({a["annotator"] for a in second.values()})},
    }
