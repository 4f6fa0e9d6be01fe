"""The rows of the stance and joint datasets and the features they are saved with.

A stance row is one (sentence, target span, label) item; a joint row is one sentence with its NER
tags and the stance of each of its target spans. `build_rows` puts the joined gold records into the
splits of their sentences; `PlacedRows` is what the stance build writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..labels import STANCE_LABELS
from .stance_layer import StanceRecord

SPLITS = ("train", "validation", "test")


def stance_features():
    from datasets import ClassLabel, Features, List, Value

    return Features(
        {
            "id": Value("string"),
            "sent_id": Value("string"),
            "tokens": List(Value("string")),
            "start": Value("int32"),
            "end": Value("int32"),
            "target": Value("string"),
            "target_type": Value("string"),
            "label": ClassLabel(names=list(STANCE_LABELS)),
            "split": Value("string"),
            "annotator": Value("string"),
        }
    )


def joint_features(ner_label_names: Sequence[str]):
    from datasets import ClassLabel, Features, List, Value

    return Features(
        {
            "sent_id": Value("string"),
            "tokens": List(Value("string")),
            "ner_tags": List(ClassLabel(names=list(ner_label_names))),
            "targets": List(
                {
                    "start": Value("int32"),
                    "end": Value("int32"),
                    "target": Value("string"),
                    "type": Value("string"),
                    "label": ClassLabel(names=list(STANCE_LABELS)),
                }
            ),
            "split": Value("string"),
        }
    )


def build_rows(
    records: Sequence[StanceRecord], sentences: Mapping[str, object], assignment: Mapping[str, str]
) -> tuple[dict[str, list[dict]], dict[str, list[dict]], list[StanceRecord]]:
    """Stance rows and joint rows per split; records whose sentence has no split come back."""
    stance: dict[str, list[dict]] = {s: [] for s in SPLITS}
    by_sentence: dict[str, list[StanceRecord]] = defaultdict(list)
    unassigned: list[StanceRecord] = []
    for rec in sorted(records, key=lambda r: (r.sent_id, r.start, r.end)):
        split = assignment.get(rec.sent_id)
        if split is None:
            unassigned.append(rec)
            continue
        sentence = sentences[rec.sent_id]
        stance[split].append(
            {
                "id": f"{rec.sent_id}:{rec.start}-{rec.end}",
                "sent_id": rec.sent_id,
                "tokens": list(sentence.tokens),
                "start": rec.start,
                "end": rec.end,
                "target": rec.target,
                "target_type": rec.type,
                "label": rec.label,
                "split": split,
                "annotator": rec.annotator or "",
            }
        )
        by_sentence[rec.sent_id].append(rec)
    joint: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for sid, recs in sorted(by_sentence.items()):
        sentence = sentences[sid]
        joint[assignment[sid]].append(
            {
                "sent_id": sid,
                "tokens": list(sentence.tokens),
                "ner_tags": list(sentence.tags),
                "targets": [
                    {"start": r.start, "end": r.end, "target": r.target, "type": r.type, "label": r.label}
                    for r in recs
                ],
                "split": assignment[sid],
            }
        )
    return stance, joint, unassigned


def add_untargeted_sentences(joint: dict[str, list[dict]], ner_dsd) -> int:
    """Add every NER-dataset sentence that has no stance target to the joint rows (with an
    empty `targets` list), so that the joint model's NER head trains on the whole NER train
    split and is scored on the whole dev/test split, not on the ~30% of sentences that hold a
    target. Sentences already present (by sent_id or by tokens) are not repeated. Returns the
    number of sentences added. An empty list is gold, not missing: the stance layer labels every
    entity of a target type, so a sentence without targets has none."""
    added = 0
    for split in SPLITS:
        if split not in ner_dsd:
            continue
        ds = ner_dsd[split]
        seen_ids = {r["sent_id"] for r in joint[split]}
        seen_tokens = {tuple(r["tokens"]) for r in joint[split]}
        feature = ds.features["ner_tags"].feature
        ids = ds["sent_id"] if "sent_id" in ds.column_names else [f"{split}-{i}" for i in range(len(ds))]
        for sid, tokens, tags in zip(ids, ds["tokens"], ds["ner_tags"]):
            if sid in seen_ids or tuple(tokens) in seen_tokens:
                continue
            names = [feature.int2str(int(t)) if not isinstance(t, str) else t for t in tags]
            joint[split].append({"sent_id": str(sid), "tokens": list(tokens), "ner_tags": names, "targets": [],
                                 "split": split})
            seen_tokens.add(tuple(tokens))
            added += 1
        joint[split].sort(key=lambda r: r["sent_id"])
    return added


@dataclass
class PlacedRows:
    """The gold items in the NER dataset's splits, as stance rows and joint rows."""

    stance_rows: dict[str, list[dict]]
    joint_rows: dict[str, list[dict]]
    unassigned: list[StanceRecord]  # items whose sentence is in no NER split (dropped)
    method: str  # how the sentences got their split
    joint_sentences: str  # all | annotated
    untargeted: int  # joint sentences added without a target

    @property
    def items(self) -> list[dict]:
        return [row for s in SPLITS for row in self.stance_rows[s]]
