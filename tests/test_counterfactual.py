"""Counterfactual stance pairs (issue 22): editors' lines validated, only edits whose blind
checker recovers the intended label (in acceptable Kazakh) kept, the layer's spans slice back
to the target and its labels differ from the source item's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kazakh_ner_stance.errors import DataValidationError
from kazakh_ner_stance.stance_annotation.counterfactual import (assemble, control_items, mixed_check_batches,
                                                                read_checks, read_edits, read_layer, select_sources)


def _row(i, label, sent=None, typ="PERSON"):
    toks = ["Депутаттар", "Асқар", "Ахметовты", "бүгін", "тыңдады", "."]
    sent_id = sent or f"AID{i}"
    return {"id": f"{sent_id}:1-3", "sent_id": sent_id, "tokens": toks, "start": 1, "end": 3,
            "target": "Асқар Ахметовты", "target_type": typ, "label": label}


TASKS = {
    "cf0001": {"task_id": "cf0001", "source_id": "AID1:1-3", "source_sent_id": "AID1", "tokens": _row(1, "NONE")["tokens"],
               "start": 1, "end": 3, "target": "Асқар Ахметовты", "type": "PERSON", "source_label": "NONE",
               "intended": "AGAINST", "hint": ""},
    "cf0002": {"task_id": "cf0002", "source_id": "AID2:1-3", "source_sent_id": "AID2", "tokens": _row(2, "NONE")["tokens"],
               "start": 1, "end": 3, "target": "Асқар Ахметовты", "type": "PERSON", "source_label": "NONE",
               "intended": "FAVOR", "hint": ""},
}


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_sources_are_seeded_training_items_one_task_per_sentence():
    rows = [_row(i, "NONE") for i in range(30)] + [_row(100 + i, "FAVOR") for i in range(5)]
    rows += [_row(7, "NONE", sent="BID7")]  # a variant of AID7's sentence
    plan = (("NONE", "AGAINST", 10, "h"), ("NONE", "FAVOR", 40, "h"), ("FAVOR", "AGAINST", 3, "h"))
    tasks = select_sources(rows, plan=plan, seed=1)
    assert tasks == select_sources(rows, plan=plan, seed=1)
    nones = [t for t in tasks if t["source_label"] == "NONE"]
    # every NONE sentence (variants counted once) gives at most one task, so 30 in all
    assert len(nones) == 30 and len({t["source_sent_id"][1:] for t in nones}) == 30
    assert sum(t["intended"] == "AGAINST" and t["source_label"] == "FAVOR" for t in tasks) == 3
    later = select_sources(rows, plan=(("FAVOR", "AGAINST", 5, "h"),), seed=2,
                           exclude=[t["source_id"] for t in tasks], first_number=len(tasks) + 1)
    assert {t["source_id"] for t in later}.isdisjoint(t["source_id"] for t in tasks)
    assert later[0]["task_id"] == f"cf{len(tasks) + 1:04d}"


def test_edit_lines_are_validated(tmp_path):
    path = _write(tmp_path / "ed.jsonl", [
        {"task_id": "cf0001", "edited": "Депутаттар ⟦Асқар Ахметовты⟧ қатты сынады .", "kind": "verb_change",
         "editor": "ed1"},
        {"task_id": "cf0002", "edited": "Депутаттар Асқар Ахметовты бүгін тыңдады .", "kind": "other", "editor": "ed1"},
        {"task_id": "cf0002", "edited": "Депутаттар ⟦Асқар Ахметовты⟧ бүгін тыңдады .", "kind": "other", "editor": "ed1"},
        {"task_id": "cf0009", "edited": "x ⟦y⟧", "kind": "other", "editor": "ed1"},
        {"task_id": "cf0002", "edited": "Депутаттар ⟦Асқар Ахметов⟧ты мақтады .", "kind": "shape", "editor": "ed1"},
    ])
    edits, problems = read_edits([path], TASKS)
    text = [str(p) for p in problems]
    assert list(edits) == ["cf0001"] and edits["cf0001"]["target"] == "Асқар Ахметовты"
    assert text[0].startswith(f"{path}:2: cf0002: needs exactly one") and "unchanged" in text[1]
    assert text[1].startswith(f"{path}:3:")
    assert text[2].startswith(f"{path}:4: unknown task id 'cf0009'")
    assert text[3].startswith(f"{path}:5: cf0002: kind 'shape'")


def test_only_agreed_natural_edits_are_kept(tmp_path):
    edits, _ = read_edits([_write(tmp_path / "ed.jsonl", [
        {"task_id": "cf0001", "edited": "Депутаттар ⟦Асқар Ахметовты⟧ жемқорлыққа айыптады .", "kind": "verb_change",
         "editor": "ed1"},
        {"task_id": "cf0002", "edited": "Депутаттар ⟦Асқар Ахметовты⟧ бүгін мақтады .", "kind": "verb_change",
         "editor": "ed1"},
    ])], TASKS)
    controls = control_items(list(TASKS.values()), share=1.0, seed=0)
    given = {**edits, **{c["task_id"]: c for c in controls}}
    checks, problems = read_checks([_write(tmp_path / "chk.jsonl", [
        {"task_id": "cf0001", "label": "AGAINST", "fluency": "natural", "checker": "chk1"},
        {"task_id": "cf0002", "label": "NONE", "fluency": "natural", "checker": "chk1"},
        {"task_id": "ctl0001", "label": "NONE", "fluency": "natural", "checker": "chk1"},
        {"task_id": "cf0001", "label": "AGAINST", "fluency": "natural", "checker": "ed1"},
    ])], given)
    assert "checked twice" in str(problems[0])
    layer, report = assemble(TASKS, edits, checks)
    assert [r["id"] for r in layer] == ["cf:cf0001"]  # cf0002's checker did not recover FAVOR
    assert layer[0]["label"] == "AGAINST" and layer[0]["source_label"] == "NONE" and layer[0]["origin"] == "counterfactual"
    assert report["by_intended"]["FAVOR"] == {"edited": 1, "checked": 1, "recovered": 0}
    assert report["controls"]["n"] == 1 and report["controls"]["checker_agrees_with_gold"] == 1
    # a checker's batch mixes edits and controls; nothing is lost
    batches = mixed_check_batches(list(edits.values()), controls, 2, seed=0)
    assert sorted(e["task_id"] for b in batches for e in b) == ["cf0001", "cf0002", "ctl0001", "ctl0002"]
    path = _write(tmp_path / "layer.jsonl", layer)
    assert len(read_layer(path)) == 1


def test_layer_reader_checks_span_label_and_checker(tmp_path):
    good = {"id": "cf:cf0001", "source_id": "AID1:1-3", "source_sent_id": "AID1", "source_label": "NONE",
            "origin": "counterfactual", "kind": "verb_change", "text": "Депутаттар Асқар Ахметовты сынады .",
            "start_char": 11, "end_char": 26, "target": "Асқар Ахметовты", "type": "PERSON", "label": "AGAINST",
            "editor": "ed1", "checker": "chk1", "checker_label": "AGAINST", "fluency": "natural"}
    assert good["text"][11:26] == "Асқар Ахметовты"
    rows = [good, {**good, "id": "cf:2", "start_char": 10}, {**good, "id": "cf:3", "label": "NONE", "checker_label": "NONE"},
            {**good, "id": "cf:4", "checker_label": "FAVOR"}]
    with pytest.raises(DataValidationError) as err:
        read_layer(_write(tmp_path / "layer.jsonl", rows))
    msg = str(err.value)
    assert "layer.jsonl:2: cf:2: text[10:26]" in msg
    assert "layer.jsonl:3: cf:3: label NONE is the source item's" in msg
    assert "layer.jsonl:4: cf:4: not agreed by an independent checker" in msg
