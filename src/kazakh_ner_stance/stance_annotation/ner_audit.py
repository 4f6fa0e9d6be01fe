"""The project's NER model against the targets of the news stance layer (issue 22).

The news layer's annotators marked targets themselves (CG-3 proposals on Akorda). This module
measures how the trained NER model's proposals of the ten target types compare with them, and
turns the proposals that no annotator marked into an annotation round, so the layer's targets
are also those the NER model proposes:

* ``proposals``: the NER model's entities of the target types per sentence (lenient IOB2 spans).
* ``compare``: exact-span and type agreement with the layer, per source and per type.
* ``candidates``: proposals that overlap no target of the layer, for annotators to decide:
  ``is_target`` (a named entity of a target type, as the guidelines define it), its ``type``, and
  its stance ``label``. A seeded share is decided again, blind, by a second annotator.
* ``read_decisions`` / ``agreement`` / ``accepted_items``: the annotators' files in (every bad
  line reported as FILE:LINE), Cohen's kappa on is_target and on the labels both accepted, and
  the accepted items as layer rows (``proposed_by: "ner"``).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..data.stance_layer import read_jsonl
from ..errors import Problem
from ..labels import STANCE_LABELS, iob2_spans, spans_overlap
from .agreement import cohen_kappa
from .news_layer import LAYER_FIELDS, TARGET_TYPES

DECISION_FIELDS = ("id", "annotator", "is_target")


def proposals(tags_by_sentence: Mapping[str, Sequence[str]]) -> dict[str, list[tuple[int, int, str]]]:
    """sentence id -> the NER model's entities of the target types, as (start, end, type)."""
    return {sid: [s for s in iob2_spans(tags, mode="lenient") if s[2] in TARGET_TYPES]
            for sid, tags in tags_by_sentence.items()}


def compare(proposed: Mapping[str, list[tuple[int, int, str]]], layer: Sequence[Mapping]) -> dict:
    """How the proposals match the layer's targets over the sentences both cover: exact span,
    span and type, and overlap only; recall of the layer's targets and precision of the
    proposals, overall and per source."""
    by_sentence: dict[str, list[Mapping]] = defaultdict(list)
    for row in layer:
        by_sentence[row["sent_id"]].append(row)

    def tally(sids: Iterable[str]) -> dict:
        c = Counter()
        for sid in sids:
            gold = {(r["start"], r["end"]): r["type"] for r in by_sentence.get(sid, [])}
            pred = {(s, e): t for s, e, t in proposed.get(sid, [])}
            c["layer_targets"] += len(gold)
            c["proposals"] += len(pred)
            exact = set(gold) & set(pred)
            c["exact_span"] += len(exact)
            c["exact_span_and_type"] += sum(gold[k] == pred[k] for k in exact)
            c["proposals_overlapping_only"] += sum(1 for k in pred if k not in gold and any(spans_overlap(k, g) for g in gold))
            c["proposals_unmarked"] += sum(1 for k in pred if not any(spans_overlap(k, g) for g in gold))
        n_gold, n_pred = c["layer_targets"], c["proposals"]
        return {**c, "recall_span": round(c["exact_span"] / n_gold, 4) if n_gold else None,
                "precision_span": round(c["exact_span"] / n_pred, 4) if n_pred else None,
                "f1_span_and_type": round(2 * c["exact_span_and_type"] / (n_gold + n_pred), 4) if n_gold + n_pred else None}

    sids = sorted(proposed)
    sources = sorted({sid.split(":", 1)[0] for sid in sids})
    report = {"sentences": len(sids), "overall": tally(sids),
              "per_source": {src: tally(s for s in sids if s.startswith(src + ":")) for src in sources}}
    missed = Counter(r["type"] for r in layer if r["sent_id"] in proposed and
                     (r["start"], r["end"]) not in {(s, e) for s, e, _ in proposed[r["sent_id"]]})
    report["layer_targets_not_proposed_by_type"] = dict(missed.most_common())
    return report


def candidates(proposed: Mapping[str, list[tuple[int, int, str]]], layer: Sequence[Mapping],
               sentences: Mapping[str, object]) -> list[dict]:
    """The proposals that overlap no target of the layer, as annotation items (file order)."""
    marked: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for row in layer:
        marked[row["sent_id"]].append((row["start"], row["end"]))
    out = []
    for sid, spans in proposed.items():
        s = sentences[sid]
        for start, end, etype in spans:
            if any(spans_overlap((start, end), m) for m in marked.get(sid, [])):
                continue
            out.append({"id": f"{sid}:{start}-{end}", "sent_id": sid, "source": s.source, "doc_id": s.doc_id,
                        "start": start, "end": end, "target": " ".join(s.tokens[start:end]), "proposed_type": etype})
    return out


def candidate_text(items: Sequence[Mapping], sentences: Mapping[str, object]) -> str:
    """An annotation batch: each candidate's sentence with the proposal in ⟦ ⟧, its proposed type,
    and the English original where there is one."""
    blocks = []
    for it in items:
        s = sentences[it["sent_id"]]
        words = list(s.tokens)
        words[it["start"]] = "⟦" + words[it["start"]]
        words[it["end"] - 1] = words[it["end"] - 1] + "⟧"
        block = [f"{it['id']}  proposed: {it['proposed_type']}  target: {it['target']}", "  " + " ".join(words)]
        if getattr(s, "eng", ""):
            block.append("  en: " + s.eng)
        blocks.append("\n".join(block))
    return "\n\n".join(blocks) + "\n"


def split_batches(items: Sequence[Mapping], n: int, seed: int = 7) -> list[list[Mapping]]:
    """Whole documents dealt round-robin to `n` batches after a seeded shuffle of the documents."""
    docs: dict[str, list[Mapping]] = defaultdict(list)
    for it in items:
        docs[it["doc_id"]].append(it)
    order = sorted(docs)
    random.Random(seed).shuffle(order)
    batches: list[list[Mapping]] = [[] for _ in range(n)]
    for k, doc in enumerate(order):
        batches[k % n].extend(docs[doc])
    return batches


def double_sample(items: Sequence[Mapping], share: float, seed: int = 23) -> list[str]:
    ids = sorted(it["id"] for it in items)
    random.Random(seed).shuffle(ids)
    return sorted(ids[: round(len(ids) * share)])


def read_decisions(paths: Iterable[Path], items: Mapping[str, Mapping]) -> tuple[dict[str, dict], list[Problem]]:
    """candidate id -> decision, from annotators' JSON lines {"id", "annotator", "is_target", and when
    is_target: "type" (a target type) and "label" (FAVOR/AGAINST/NONE)}; problems as FILE:LINE."""
    decisions: dict[str, dict] = {}
    problems: list[Problem] = []
    for path in paths:
        for lineno, obj in read_jsonl(Path(path), problems):
            where = (str(path), lineno)
            missing = [f for f in DECISION_FIELDS if f not in obj]
            if missing:
                problems.append(Problem(*where, f"missing field(s) {missing}"))
                continue
            if obj["id"] not in items:
                problems.append(Problem(*where, f"{obj['id']!r} is not a candidate of this round"))
                continue
            if not isinstance(obj["is_target"], bool):
                problems.append(Problem(*where, f"{obj['id']}: is_target must be true or false"))
                continue
            if obj["is_target"]:
                if obj.get("type") not in TARGET_TYPES:
                    problems.append(Problem(*where, f"{obj['id']}: type {obj.get('type')!r} is not a target type"))
                    continue
                if obj.get("label") not in STANCE_LABELS:
                    problems.append(Problem(*where, f"{obj['id']}: label {obj.get('label')!r} is not one of "
                                                    f"{list(STANCE_LABELS)}"))
                    continue
            if obj["id"] in decisions:
                problems.append(Problem(*where, f"{obj['id']}: decided twice"))
                continue
            decisions[obj["id"]] = {k: obj.get(k) for k in ("annotator", "is_target", "type", "label", "note")}
    missing_ids = sorted(set(items) - set(decisions))
    if missing_ids:
        problems.append(Problem(str(next(iter(paths), "decisions")), 0,
                                f"{len(missing_ids)} candidate(s) undecided, e.g. {missing_ids[:3]}"))
    return decisions, problems


def agreement(first: Mapping[str, dict], second: Mapping[str, dict]) -> dict:
    """Cohen's kappa of two blind rounds over the items both decided: on is_target, and on the
    label of the items both accepted."""
    shared = sorted(set(first) & set(second))
    a = ["yes" if first[i]["is_target"] else "no" for i in shared]
    b = ["yes" if second[i]["is_target"] else "no" for i in shared]
    both = [i for i in shared if first[i]["is_target"] and second[i]["is_target"]]
    la, lb = [first[i]["label"] for i in both], [second[i]["label"] for i in both]
    return {
        "items": len(shared),
        "is_target": {"agree": sum(x == y for x, y in zip(a, b)), "kappa": _kappa(a, b)},
        "labels": {"items": len(both), "agree": sum(x == y for x, y in zip(la, lb)), "kappa": _kappa(la, lb)},
    }


def _kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa, None where it is undefined: no items, or both annotators used one category
    only (chance agreement is then 1, and raw agreement is all there is to report)."""
    if not a or len(set(a) | set(b)) < 2:
        return None
    k = cohen_kappa(a, b)
    return None if k is None else round(float(k), 4)


def accepted_items(items: Mapping[str, Mapping], first: Mapping[str, dict], second: Mapping[str, dict],
                   adjudicated: Mapping[str, dict] | None = None) -> list[dict]:
    """Layer rows of the accepted candidates: the first round's decision; where a second round
    disagrees, the adjudicated one (an item the two disagree on and nobody adjudicated is left out)."""
    adjudicated = adjudicated or {}
    rows = []
    for cid, it in items.items():
        d = first[cid]
        annotator = d["annotator"]
        if cid in second:
            s = second[cid]
            same = d["is_target"] == s["is_target"] and (not d["is_target"] or (d["type"], d["label"]) == (s["type"], s["label"]))
            if not same:
                if cid not in adjudicated:
                    continue
                d = adjudicated[cid]
                annotator = f"{first[cid]['annotator']}+{s['annotator']}/adj"
            else:
                annotator = f"{first[cid]['annotator']}+{s['annotator']}"
        if not d["is_target"]:
            continue
        row = {"id": cid, "sent_id": it["sent_id"], "source": it["source"], "doc_id": it["doc_id"],
               "start": it["start"], "end": it["end"], "target": it["target"], "type": d["type"],
               "label": d["label"], "annotator": annotator, "proposed_by": "ner"}
        if d.get("note"):
            row["note"] = d["note"]
        assert all(f in row for f in LAYER_FIELDS)
        rows.append(row)
    return rows
