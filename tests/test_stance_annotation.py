"""Annotation round trip: Label Studio / CSV export and validated import, merge, agreement."""

from __future__ import annotations

import csv
import json

import pytest

from kazakh_ner_stance.errors import DataValidationError
from kazakh_ner_stance.stance_annotation import annotation as ann
from kazakh_ner_stance.stance_annotation.agreement import agreement

ITEMS = [
    {"sent_id": "S1", "tokens": "Тоқаев Бейбітшілік кеңесін қолдады .".split(), "start": 1, "end": 3,
     "target": "Бейбітшілік кеңесін", "type": "ORGANISATION", "weak_label": "FAVOR"},
    {"sent_id": "S1", "tokens": "Тоқаев Бейбітшілік кеңесін қолдады .".split(), "start": 0, "end": 1,
     "target": "Тоқаев", "type": "PERSON"},
    {"sent_id": "S2", "tokens": "Депутаттар Ресейге қарсы шықты .".split(), "start": 1, "end": 2,
     "target": "Ресейге", "type": "GPE"},
]


def _fill_ls(path, labels, who="ann1@example.org"):
    tasks = json.loads(path.read_text(encoding="utf-8"))
    for task, label in zip(tasks, labels):
        result = list(task["predictions"][0]["result"][:1])
        if label is not None:
            result.append({"from_name": "stance", "to_name": "text", "type": "choices", "value": {"choices": [label]}})
        task["annotations"] = [{"id": 1, "completed_by": {"email": who}, "result": result, "was_cancelled": False}]
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return tasks


def _fill_csv(path, labels, who=None):
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row, label in zip(rows, labels):
        row["label"] = label
        if who:
            row["annotator"] = who
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ann.CSV_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return rows


def test_label_studio_round_trip(tmp_path):
    path = ann.export_label_studio(ITEMS, tmp_path / "tasks.json", prefill_label=True)
    tasks = json.loads(path.read_text(encoding="utf-8"))
    first = tasks[0]
    span = first["predictions"][0]["result"][0]["value"]
    assert first["data"]["text"][span["start"] : span["end"]] == "Бейбітшілік кеңесін"
    assert first["predictions"][0]["result"][1]["value"]["choices"] == ["FAVOR"]
    assert "<Choice value=\"AGAINST\"/>" in (tmp_path / "label_config.xml").read_text(encoding="utf-8")
    _fill_ls(path, ["FAVOR", "NONE", "AGAINST"])
    records = ann.import_label_studio(path, reference=ITEMS)
    assert [(r.sent_id, r.start, r.end, r.label, r.annotator) for r in records] == [
        ("S1", 1, 3, "FAVOR", "ann1@example.org"),
        ("S1", 0, 1, "NONE", "ann1@example.org"),
        ("S2", 1, 2, "AGAINST", "ann1@example.org"),
    ]


def test_label_studio_import_errors(tmp_path):
    path = ann.export_label_studio(ITEMS, tmp_path / "tasks.json")
    tasks = _fill_ls(path, ["favour", None, "AGAINST"])
    # record 3: the annotator moved the span off token boundaries
    tasks[2]["annotations"][0]["result"][0]["value"].update({"start": 3, "end": 9})
    tasks.append(json.loads(json.dumps(tasks[1])))  # record 4: a second task for S1 0:1 ...
    tasks[3]["annotations"][0]["result"].append(
        {"type": "choices", "from_name": "stance", "to_name": "text", "value": {"choices": ["NONE"]}})
    tasks.append(json.loads(json.dumps(tasks[3])))  # record 5: ... and the same again: duplicate
    tasks[4]["annotations"][0]["result"][0]["value"]["text"] = "Тоқаевтың"  # and its span text no longer matches
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        ann.import_label_studio(path, reference=ITEMS)
    msgs = [str(p) for p in err.value.problems]
    assert any(m.startswith(f"{path}: record 1 (task id 1): unknown label 'FAVOUR'") for m in msgs), msgs
    assert any("record 2 (task id 2): no stance label chosen" in m for m in msgs), msgs
    assert any("record 3 (task id 3): span 3:9 does not start and end on token boundaries" in m for m in msgs), msgs
    assert any("record 5 (task id 2): S1 tokens 0:1: target 'Тоқаевтың' does not match" in m for m in msgs), msgs
    assert len(msgs) == 4
    # Without the bad target: the fifth record is a duplicate of the fourth.
    tasks[4]["annotations"][0]["result"][0]["value"]["text"] = "Тоқаев"
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        ann.import_label_studio(path, reference=ITEMS)
    assert any("record 5 (task id 2): duplicate annotation of S1 tokens 0:1 by ann1@example.org (first at record 4"
               in str(p) for p in err.value.problems), [str(p) for p in err.value.problems]


def test_csv_round_trip_and_errors(tmp_path):
    path = ann.export_csv(ITEMS, tmp_path / "items.csv", annotator="ann2")
    rows = _fill_csv(path, ["favor", "NONE", "AGAINST"])
    assert "[[Бейбітшілік кеңесін]]" in rows[0]["marked"]
    records = ann.import_csv(path, reference=ITEMS)
    assert [r.label for r in records] == ["FAVOR", "NONE", "AGAINST"] and records[0].annotator == "ann2"

    rows = _fill_csv(path, ["FAVOR", "MAYBE", "AGAINST"])
    with path.open("a", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ann.CSV_COLUMNS)
        w.writerow({**rows[0], "label": "NONE"})  # line 5: duplicate of line 2
        w.writerow({**rows[2], "start": "2", "end": "3"})  # line 6: span shifted: 'қарсы'
        w.writerow({**rows[2], "sent_id": "S9"})  # line 7: unknown sentence
    with pytest.raises(DataValidationError) as err:
        ann.import_csv(path, reference=ITEMS)
    by_line = {p.line: p.message for p in err.value.problems}
    assert set(by_line) == {3, 5, 6, 7}, by_line
    assert "unknown label 'MAYBE'" in by_line[3]
    assert "duplicate annotation of S1 tokens 1:3 by ann2" in by_line[5]
    assert "target 'Ресейге' does not match the sentence, which has 'қарсы' there" in by_line[6]
    assert "unknown sent_id 'S9'" in by_line[7]
    assert all(p.path == str(path) for p in err.value.problems)


def test_merge_and_agreement(tmp_path):
    def recs(labels, who):
        return [ann.StanceRecord(sent_id=f"S{i}", start=0, end=1, target="X", label=lab, type="PERSON",
                                 annotator=who, path=who, line=i) for i, lab in enumerate(labels, 1)]

    a = ["FAVOR", "NONE", "NONE", "AGAINST", "NONE", "FAVOR"]
    b = ["FAVOR", "NONE", "FAVOR", "AGAINST", "NONE", "NONE"]
    c = ["FAVOR", "NONE", "NONE", "NONE", "NONE", "FAVOR"]
    two = ann.merge([recs(a, "ann1"), recs(b, "ann2")])
    assert [r["label_final"] for r in two] == ["FAVOR", "NONE", None, "AGAINST", "NONE", None]
    assert two[2]["label_a"] == "NONE" and two[2]["label_b"] == "FAVOR" and two[2]["annotator_b"] == "ann2"
    rep = agreement(two)
    from sklearn.metrics import cohen_kappa_score

    assert rep["kappa"] == pytest.approx(cohen_kappa_score(a, b))
    assert rep["kappa_per_class"]["AGAINST"] == pytest.approx(
        cohen_kappa_score([x == "AGAINST" for x in a], [x == "AGAINST" for x in b]))
    three = ann.merge([recs(a, "ann1"), recs(b, "ann2"), recs(c, "ann3")])
    rep3 = agreement(three)
    assert len(rep3["pairs"]) == 3 and rep3["fleiss"]["items"] == 6
    # Fleiss by hand: category proportions and per-item agreement.
    counts = [[3, 0, 0], [0, 3, 0], [1, 2, 0], [0, 1, 2], [0, 3, 0], [2, 1, 0]]
    p_i = [(sum(x * x for x in r) - 3) / 6 for r in counts]
    p_j = [sum(r[j] for r in counts) / 18 for j in range(3)]
    pe = sum(p * p for p in p_j)
    assert rep3["fleiss"]["kappa"] == pytest.approx((sum(p_i) / 6 - pe) / (1 - pe))
    # Double-annotation rows (the curator's format) work directly.
    double = [{"label_a": x, "label_b": y} for x, y in zip(a, b)]
    assert agreement(double)["kappa"] == pytest.approx(rep["kappa"])
    # The same annotator giving two labels to one item is an error.
    with pytest.raises(DataValidationError, match="ann1 labelled S1 tokens 0:1 NONE here but FAVOR"):
        ann.merge([recs(a, "ann1"), recs(["NONE"], "ann1")])


def test_annotation_verbs(tmp_path):
    """export -> fill -> import -> merge -> agreement through the Hydra configs."""
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.stance_annotation.cli import run_stance_annotation

    items = tmp_path / "items.jsonl"
    ann.write_jsonl(ITEMS, items)
    out = tmp_path / "ann"
    base = [f"out_dir={out}", f"paths.artifacts_dir={tmp_path}"]
    run_stance_annotation(compose("stance_annotation", ["action=export", f"items_file={items}", "format=both", *base]))
    _fill_ls(out / "items.label_studio.json", ["FAVOR", "NONE", "AGAINST"])
    _fill_csv(out / "items.csv", ["FAVOR", "NONE", "NONE"], who="ann2")
    for name, who in (("items.label_studio.json", "ann1"), ("items.csv", "ann2")):
        run_stance_annotation(compose("stance_annotation", [
            "action=import", f"files=[{out / name}]", f"reference={items}", f"annotator={who}",
            f"out={out / (who + '.jsonl')}", *base]))
    merged = run_stance_annotation(compose("stance_annotation", [
        "action=merge", f"files=[{out / 'ann1.jsonl'},{out / 'ann2.jsonl'}]", f"out={out / 'merged.jsonl'}", *base]))
    assert [r["agreed"] for r in merged] == [True, True, False]
    rep = run_stance_annotation(compose("stance_annotation", ["action=agreement", f"files=[{out / 'merged.jsonl'}]", *base]))
    assert rep["n"] == 3 and rep["observed"] == pytest.approx(2 / 3)
    assert json.loads((out / "agreement.json").read_text(encoding="utf-8"))["items"] == 3
