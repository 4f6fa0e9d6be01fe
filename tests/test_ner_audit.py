"""NER-proposed targets for the news stance layer: comparison, candidates, decisions, agreement."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from kazakh_ner_stance.errors import DataValidationError
from kazakh_ner_stance.stance_annotation.ner_audit import (accepted_items, agreement, candidate_text, candidates,
                                                          compare, double_sample, proposals, read_decisions,
                                                          split_batches)


@dataclass
class Sentence:
    id: str
    source: str
    doc_id: str
    tokens: list[str]
    eng: str = ""
    np_tags: list = field(default_factory=list)


SENTENCES = {
    "ntrex:1": Sentence("ntrex:1", "ntrex", "d1", "Тоқаев Астанада Ресей елшісін қабылдады .".split(), "Tokayev ..."),
    "ntrex:2": Sentence("ntrex:2", "ntrex", "d1", "Парламент заңды қабылдады .".split()),
    "flores:1": Sentence("flores:1", "flores", "d2", "Біріккен Ұлттар Ұйымы мәлімдеме жасады .".split()),
}
TAGS = {
    "ntrex:1": ["B-PERSON", "B-GPE", "B-GPE", "O", "O", "O"],       # Тоқаев, Астанада, Ресей
    "ntrex:2": ["B-ORGANISATION", "O", "O", "O"],
    "flores:1": ["B-ORGANISATION", "I-ORGANISATION", "O", "O", "O", "O"],  # a shorter span than the layer's
}
LAYER = [
    {"id": "ntrex:1:0-1", "sent_id": "ntrex:1", "source": "ntrex", "doc_id": "d1", "start": 0, "end": 1,
     "target": "Тоқаев", "type": "PERSON", "label": "NONE", "annotator": "ann1"},
    {"id": "ntrex:1:2-3", "sent_id": "ntrex:1", "source": "ntrex", "doc_id": "d1", "start": 2, "end": 3,
     "target": "Ресей", "type": "ORGANISATION", "label": "NONE", "annotator": "ann1"},
    {"id": "flores:1:0-3", "sent_id": "flores:1", "source": "flores", "doc_id": "d2", "start": 0, "end": 3,
     "target": "Біріккен Ұлттар Ұйымы", "type": "ORGANISATION", "label": "NONE", "annotator": "ann2"},
]


def test_compare_counts_exact_typed_and_overlapping_proposals():
    report = compare(proposals(TAGS), LAYER)
    o = report["overall"]
    assert (o["layer_targets"], o["proposals"]) == (3, 5)
    assert o["exact_span"] == 2 and o["exact_span_and_type"] == 1  # Ресей: GPE vs ORGANISATION
    assert o["proposals_overlapping_only"] == 1 and o["proposals_unmarked"] == 2  # Астанада, Парламент
    assert o["recall_span"] == round(2 / 3, 4) and o["precision_span"] == 0.4
    assert report["per_source"]["flores"]["exact_span"] == 0
    assert report["layer_targets_not_proposed_by_type"] == {"ORGANISATION": 1}


def test_candidates_are_the_unmarked_proposals_and_read_back(tmp_path):
    cands = candidates(proposals(TAGS), LAYER, SENTENCES)
    assert [c["id"] for c in cands] == ["ntrex:1:1-2", "ntrex:2:0-1"]
    text = candidate_text(cands, SENTENCES)
    assert "⟦Астанада⟧" in text and "proposed: GPE" in text and "en: Tokayev" in text
    batches = split_batches(cands, 2)
    assert sorted(c["id"] for b in batches for c in b) == sorted(c["id"] for c in cands)
    assert all(len({c["doc_id"] for c in b}) <= 1 for b in batches)  # whole documents
    assert double_sample(cands, 0.5) == double_sample(cands, 0.5)


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_decisions_are_validated_with_file_and_line(tmp_path):
    items = {c["id"]: c for c in candidates(proposals(TAGS), LAYER, SENTENCES)}
    bad = _write(tmp_path / "bad.jsonl", [
        {"id": "ntrex:1:1-2", "annotator": "ann3", "is_target": True, "type": "CITY", "label": "NONE"},
        {"id": "nope", "annotator": "ann3", "is_target": False},
    ])
    _, problems = read_decisions([bad], items)
    text = "\n".join(str(p) for p in problems)
    assert "bad.jsonl:1" in text and "CITY" in text and "bad.jsonl:2" in text and "undecided" in text


def test_agreement_and_accepted_items():
    items = {c["id"]: c for c in candidates(proposals(TAGS), LAYER, SENTENCES)}
    first = {"ntrex:1:1-2": {"annotator": "ann3", "is_target": True, "type": "GPE", "label": "NONE"},
             "ntrex:2:0-1": {"annotator": "ann3", "is_target": True, "type": "ORGANISATION", "label": "FAVOR"}}
    second = {"ntrex:2:0-1": {"annotator": "ann4", "is_target": True, "type": "ORGANISATION", "label": "NONE"}}
    report = agreement(first, second)
    assert report["items"] == 1 and report["labels"]["agree"] == 0
    assert report["is_target"]["kappa"] is None  # one category only: kappa is undefined, not 1
    rows = accepted_items(items, first, second)
    assert [r["id"] for r in rows] == ["ntrex:1:1-2"]  # the disagreement waits for adjudication
    adjudicated = {"ntrex:2:0-1": {"annotator": "ann5", "is_target": True, "type": "ORGANISATION", "label": "FAVOR"}}
    rows = accepted_items(items, first, second, adjudicated)
    assert rows[1]["label"] == "FAVOR" and rows[1]["annotator"] == "ann3+ann4/adj"
    assert all(r["proposed_by"] == "ner" for r in rows)


def test_decisions_must_cover_every_candidate(tmp_path):
    items = {c["id"]: c for c in candidates(proposals(TAGS), LAYER, SENTENCES)}
    part = _write(tmp_path / "part.jsonl", [{"id": "ntrex:1:1-2", "annotator": "ann3", "is_target": False}])
    with pytest.raises(DataValidationError):
        problems = read_decisions([part], items)[1]
        raise DataValidationError(problems)
