"""The news gold stance layer (issue 22): annotators' files validated (span slices back to the
target, every problem with file and line), blind double annotation scored on targets and
labels, disagreements adjudicated into the final layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kazakh_ner_stance.data.kazakh_news import NewsSentence
from kazakh_ner_stance.errors import DataValidationError
from kazakh_ner_stance.stance_annotation.news_layer import (agreement_report, apply_adjudication, deal_documents,
                                                            disagreements, double_sample, layer_records,
                                                            read_adjudication, read_annotations, read_layer)


def _sent(sid, text, doc):
    return NewsSentence(id=sid, source=sid.split(":")[0], doc_id=doc, line=int(sid.split(":")[1]), text=text,
                        tokens=text.split())


SENTS = {s.id: s for s in [
    _sent("ntrex:1", "Депутаттар Дональд Трампты сынады .", "ntrex-doc001"),
    _sent("ntrex:2", "Лондон мен Париж келіссөз жүргізді .", "ntrex-doc001"),
    _sent("flores:1", "Мадрид әкімдігі жаңа саябақ ашты .", "flores-doc001"),
]}


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _t(s, e, target, typ, label, **kw):
    return {"start": s, "end": e, "target": target, "type": typ, "label": label, **kw}


FIRST = [
    {"id": "ntrex:1", "annotator": "ann1", "targets": [_t(1, 3, "Дональд Трампты", "PERSON", "AGAINST")]},
    {"id": "ntrex:2", "annotator": "ann1", "targets": [_t(0, 1, "Лондон", "GPE", "NONE"),
                                                       _t(2, 3, "Париж", "GPE", "NONE")]},
    {"id": "flores:1", "annotator": "ann2", "targets": [_t(0, 2, "Мадрид әкімдігі", "ORGANISATION", "NONE")]},
]
SECOND = [
    {"id": "ntrex:1", "annotator": "ann7", "targets": [_t(1, 3, "Дональд Трампты", "PERSON", "AGAINST")]},
    {"id": "ntrex:2", "annotator": "ann7", "targets": [_t(0, 1, "Лондон", "GPE", "FAVOR")]},
]


def test_annotations_are_validated_with_file_and_line(tmp_path):
    bad = _write(tmp_path / "ann.jsonl", [
        {"id": "ntrex:1", "annotator": "ann1", "targets": [_t(0, 1, "Дональд Трампты", "PERSON", "AGAINST")]},
        {"id": "ntrex:2", "annotator": "ann1", "targets": [_t(0, 1, "Лондон", "CITY", "NONE")]},
        {"id": "flores:1", "annotator": "ann1", "targets": [_t(0, 2, "Мадрид әкімдігі", "ORGANISATION", "MAYBE")]},
        {"id": "ntrex:9", "annotator": "ann1", "targets": []},
        {"id": "ntrex:1", "annotator": "ann1", "targets": []},
    ])
    got, problems, counts = read_annotations([bad], SENTS)
    text = [str(p) for p in problems]
    assert f"{bad}:2: ntrex:2 target 1: type 'CITY' is not one of" in text[0]
    assert any(t.startswith(f"{bad}:3:") and "label 'MAYBE'" in t for t in text)
    assert any(t.startswith(f"{bad}:4:") and "unknown sentence id 'ntrex:9'" in t for t in text)
    assert any(t.startswith(f"{bad}:5:") and "annotated twice" in t for t in text)
    # A target whose offsets are off but whose words occur once in the sentence is re-located.
    assert got["ntrex:1"]["targets"][0]["start"] == 1 and counts == {"relocated": 1}
    wrong = _write(tmp_path / "wrong.jsonl", [
        {"id": "ntrex:2", "annotator": "ann1", "targets": [_t(0, 1, "Берлин", "GPE", "NONE")]}])
    _, problems, _ = read_annotations([wrong], SENTS)
    assert "words 'Лондон' are not the target 'Берлин'" in str(problems[0])


def test_agreement_disagreements_and_adjudication(tmp_path):
    first, _, _ = read_annotations([_write(tmp_path / "a.jsonl", FIRST)], SENTS)
    second, _, _ = read_annotations([_write(tmp_path / "b.jsonl", SECOND)], SENTS)
    dis = disagreements(first, second, SENTS)
    assert [(d["key"], d["kind"]) for d in dis] == [("ntrex:2:0-1", "label"), ("ntrex:2:2-3", "only_first")]
    open_items = {d["key"]: d for d in dis}
    adj = _write(tmp_path / "adj.jsonl", [
        {"key": "ntrex:2:0-1", "decision": "keep", "type": "GPE", "label": "NONE", "adjudicator": "adj1",
         "reason": "negotiations are neutral"},
        {"key": "ntrex:2:2-3", "decision": "keep", "type": "GPE", "label": "NONE", "adjudicator": "adj1",
         "reason": "a GPE the second annotator missed"},
    ])
    decisions, problems = read_adjudication(adj, open_items)
    assert problems == []
    final, double_rows = apply_adjudication(first, second, decisions, open_items)
    layer = layer_records(final, SENTS)
    assert [(r["id"], r["label"], r["annotator"]) for r in layer] == [
        ("ntrex:1:1-3", "AGAINST", "ann1+ann7"), ("ntrex:2:0-1", "NONE", "ann1+ann7/adj"),
        ("ntrex:2:2-3", "NONE", "ann1+ann7/adj"), ("flores:1:0-2", "NONE", "ann2")]
    assert layer[1]["adjudication"].startswith("adj1: negotiations")
    report = agreement_report(first, second, double_rows)
    assert report["targets"]["matched_span_and_type"] == 2 and report["targets"]["f1_span_and_type"] == 0.8
    assert report["labels"]["n"] == 2 and report["labels"]["raw_agreement"] == 0.5
    assert report["adjudication"] == {"disagreements": 2, "by_kind": {"label": 1, "span": 1}, "kept": 2, "dropped": 0}
    # The written layer reads back, each span slicing to its target.
    path = _write(tmp_path / "layer.jsonl", layer)
    assert len(read_layer(path, SENTS)) == 4


def test_adjudication_must_be_complete_and_independent(tmp_path):
    first, _, _ = read_annotations([_write(tmp_path / "a.jsonl", FIRST)], SENTS)
    second, _, _ = read_annotations([_write(tmp_path / "b.jsonl", SECOND)], SENTS)
    open_items = {d["key"]: d for d in disagreements(first, second, SENTS)}
    adj = _write(tmp_path / "adj.jsonl", [
        {"key": "ntrex:2:0-1", "decision": "keep", "type": "GPE", "label": "NONE", "adjudicator": "ann7",
         "reason": "mine"}])
    _, problems = read_adjudication(adj, open_items)
    assert "the adjudicator annotated this sentence" in str(problems[0])


def test_layer_reader_refuses_a_span_that_is_not_its_target(tmp_path):
    path = _write(tmp_path / "layer.jsonl", [
        {"id": "ntrex:1:1-3", "sent_id": "ntrex:1", "source": "ntrex", "doc_id": "ntrex-doc001", "start": 0, "end": 1,
         "target": "Дональд Трампты", "type": "PERSON", "label": "AGAINST", "annotator": "ann1"}])
    with pytest.raises(DataValidationError, match=r"layer.jsonl:1: ntrex:1:1-3: words 0..1 are not the target"):
        read_layer(path, SENTS)


def test_batches_keep_documents_whole_and_the_double_sample_is_seeded():
    sents = [_sent(f"ntrex:{i}", "а б .", f"ntrex-doc{i // 4:03d}") for i in range(1, 41)]
    batches = deal_documents(sents, 3)
    docs = [{s.doc_id for s in b} for b in batches]
    assert not (docs[0] & docs[1]) and not (docs[1] & docs[2]) and sum(map(len, batches)) == 40
    assert double_sample(sents, 0.2, 22) == double_sample(sents, 0.2, 22) and len(double_sample(sents, 0.2, 22)) == 8
