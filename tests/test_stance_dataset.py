"""Stance dataset: standoff join (with clear errors), split consistency with NER, build + card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kazakh_ner_stance.errors import DataValidationError
from kazakh_ner_stance.stance_annotation import STANCE_LABELS
from kazakh_ner_stance.data.stance_join import join_records
from kazakh_ner_stance.data.stance_layer import read_double, read_standoff

FIX = Path(__file__).parent / "fixtures" / "stance"
SENTID = FIX / "kaznerd" / "IOB2_valid_sentid.txt"


@pytest.fixture(scope="module")
def sentences():
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.data.iob2 import read_iob2

    cfg = compose("build_dataset", ["data=kaznerd_stance"])
    sents, _ = read_iob2(SENTID, list(cfg.data.entity_types), orphan_inside="repair")
    return {s.sent_id: s for s in sents}


def _write(tmp_path, rows, name="items.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_join_ok(sentences):
    records = join_records(read_standoff(FIX / "gold.jsonl"), sentences)
    assert len(records) == 21
    assert {r.label for r in records} <= set(STANCE_LABELS)


def test_join_span_no_longer_matches(tmp_path, sentences):
    good = {"sent_id": "AID1", "start": 0, "end": 1, "target": "Тоқаев", "type": "PERSON", "label": "NONE"}
    rows = [
        good,
        {**good, "start": 1, "end": 2, "target": "Тоқаев"},  # line 2: text differs at 1:2
        {**good, "sent_id": "AID99"},  # line 3: unknown sent_id
        {**good, "start": 3, "end": 9, "target": "x"},  # line 4: out of range
        {**good, "sent_id": "AID1", "start": 3, "end": 4, "target": "қолдады"},  # line 5: not an entity
        {**good, "sent_id": "AID2", "start": 2, "end": 3, "target": "Тоқаевты", "type": "GPE"},  # 6: wrong type
        {"sent_id": "AID2", "start": 1, "end": 2, "target": "Президент", "type": "POSITION", "label": "NONE"},  # 7
    ]
    path = _write(tmp_path, rows)
    with pytest.raises(DataValidationError) as err:
        join_records(read_standoff(path), sentences)
    msg = str(err.value)
    lines = {p.line: p.message for p in err.value.problems}
    assert all(p.path == str(path) for p in err.value.problems)
    assert set(lines) == {2, 3, 4, 5, 6, 7}
    assert f"{path}:2:" in msg and "does not match the sentence" in lines[2] and "'Тоқаев' is at tokens 0:1" in lines[2]
    assert "unknown sent_id 'AID99'" in lines[3]
    assert "out of range" in lines[4]
    assert "not a named entity" in lines[5]
    assert "is a PERSON entity in the sentence, not GPE" in lines[6]
    assert "not a stance target type" in lines[7]


def test_read_standoff_field_errors(tmp_path):
    rows = [
        {"sent_id": "AID1", "start": 0, "end": 1, "target": "Тоқаев", "type": "PERSON", "label": "PRO"},
        {"sent_id": "AID1", "start": "0", "end": 1, "target": "Тоқаев", "type": "PERSON", "label": "NONE"},
        {"sent_id": "AID1", "start": 0, "end": 1, "target": "Тоқаев", "label": "NONE"},
        {"sent_id": "AID3", "start": 0, "end": 1, "target": "Шымкентте", "type": "GPE", "label": "NONE"},
        {"sent_id": "AID3", "start": 0, "end": 1, "target": "Шымкентте", "type": "GPE", "label": "NONE"},
    ]
    path = _write(tmp_path, rows)
    path.write_text(path.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        read_standoff(path)
    lines = {p.line: p.message for p in err.value.problems}
    assert "unknown label 'PRO'" in lines[1]
    assert "integers" in lines[2]
    assert "missing field 'type'" in lines[3]
    assert "duplicate item AID3 tokens 0:1 (first at line 4)" in lines[5]
    assert "not valid JSON" in lines[6]


def test_double_file_type_from_tags(sentences):
    records = join_records(read_double(FIX / "gold_double.jsonl"), sentences)
    assert len(records) == 6 and all(r.type for r in records)
    assert records[1].extra["label_b"] == "NONE" and records[1].label == "FAVOR"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.data.build import run_build_dataset

    root = tmp_path_factory.mktemp("stance_build")
    cfg = compose(
        "build_dataset",
        [
            "data=kaznerd_stance",
            f"data.source_dir={FIX / 'kaznerd'}",
            f"data.stance.gold_file={FIX / 'gold.jsonl'}",
            f"data.stance.double_file={FIX / 'gold_double.jsonl'}",
            f"paths.artifacts_dir={root}",
            "data.download.enabled=false",
            "progress=false",
        ],
    )
    stats = run_build_dataset(cfg)  # dispatches to the stance builder via data.builder
    return root / "datasets", stats


def test_build_splits_follow_ner(built):
    from datasets import load_from_disk

    from kazakh_ner_stance.data.built_dataset import load_built_dataset, load_split_assignment

    root, stats = built
    ner = load_built_dataset(root / "kaznerd")
    ner_split = {sid: split for split in ner for sid in ner[split]["sent_id"]}
    recorded = load_split_assignment(root / "kaznerd")
    stance = load_from_disk(str(root / "kaznerd_stance"))
    joint = load_from_disk(str(root / "kaznerd_joint"))
    assert set(stance) == {"train", "validation", "test"}
    assert stance["train"].features["label"].names == ["NONE", "FAVOR", "AGAINST"]
    n = 0
    for split in stance:
        for row in stance[split]:
            n += 1
            assert row["split"] == split
            # Same split as the sentence in the NER dataset (AID12 is a duplicate the NER
            # builder dropped: it follows its kept twin's recorded split).
            assert ner_split.get(row["sent_id"], recorded[row["sent_id"]]) == split
        for row in joint[split]:
            assert ner_split.get(row["sent_id"], recorded[row["sent_id"]]) == split
    assert n == 21 == stats["items"]
    assert stats["dropped_unassigned"] == 0
    assert stats["total"] == {"NONE": 13, "FAVOR": 4, "AGAINST": 4, "total": 21}


def test_build_joint_and_card(built):
    from datasets import load_from_disk

    root, stats = built
    joint = load_from_disk(str(root / "kaznerd_joint"))
    rows = [r for s in joint for r in joint[s] if r["sent_id"] == "AID1"]
    assert len(rows) == 1
    row = rows[0]
    tag_names = joint["train"].features["ner_tags"].feature.names
    assert [tag_names[t] for t in row["ner_tags"]][:3] == ["B-PERSON", "B-ORGANISATION", "I-ORGANISATION"]
    assert [(t["start"], t["end"], t["label"]) for t in row["targets"]] == [(0, 1, 0), (1, 3, 1)]
    card = (root / "kaznerd_stance" / "README.md").read_text(encoding="utf-8")
    assert "| split | NONE | FAVOR | AGAINST | total |" in card
    assert "| type | NONE | FAVOR | AGAINST | total |" in card
    assert "Weak labels against the gold layer" in card and "majority vote" in card
    assert "Cohen's kappa" in card
    assert "/tmp" not in card and str(FIX) not in card  # no absolute paths
    saved = json.loads((root / "kaznerd_stance" / "stats.json").read_text(encoding="utf-8"))
    assert saved["weak_labels"]["items"] == 21
    assert saved["agreement"]["items"] == 6


@pytest.mark.parametrize("mode", ["all", "annotated"])
def test_joint_sentences_all_or_annotated(tmp_path, mode):
    """joint_sentences=all: every NER sentence once, the untargeted ones with no targets (the
    joint NER head trains on the whole split); annotated: only sentences holding a target."""
    from datasets import load_from_disk

    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.data.build import run_build_dataset

    cfg = compose(
        "build_dataset",
        [
            "data=kaznerd_stance", f"data.source_dir={FIX / 'kaznerd'}", f"data.stance.gold_file={FIX / 'gold.jsonl'}",
            f"data.stance.double_file={FIX / 'gold_double.jsonl'}", f"paths.artifacts_dir={tmp_path}",
            "data.download.enabled=false", "progress=false", f"data.stance.joint_sentences={mode}",
        ],
    )
    stats = run_build_dataset(cfg)
    ner = load_built_dataset(tmp_path / "datasets" / "kaznerd")
    joint = load_from_disk(str(tmp_path / "datasets" / "kaznerd_joint"))
    stance = load_from_disk(str(tmp_path / "datasets" / "kaznerd_stance"))
    targeted = {sid for split in stance for sid in stance[split]["sent_id"]}
    tag_names = joint["train"].features["ner_tags"].feature.names
    for split in ner:
        rows = {r["sent_id"]: r for r in joint[split]}
        assert len(rows) == len(joint[split])  # no sentence twice
        for r in rows.values():
            assert bool(r["targets"]) == (r["sent_id"] in targeted)
        ner_rows = {sid: (toks, tags) for sid, toks, tags in zip(ner[split]["sent_id"], ner[split]["tokens"],
                                                                  ner[split]["ner_tags"])}
        untargeted = {sid for sid in ner_rows if sid not in targeted}
        if mode == "all":
            assert untargeted <= set(rows)
            names = ner[split].features["ner_tags"].feature.names
            for sid in untargeted:  # the NER tags survive the ClassLabel round trip
                toks, tags = ner_rows[sid]
                assert rows[sid]["tokens"] == toks
                assert [tag_names[t] for t in rows[sid]["ner_tags"]] == [names[t] for t in tags]
        else:
            assert not (untargeted & set(rows))
    assert stats["joint_sentences"] == mode
    assert (stats["joint_sentences_without_targets"] > 0) == (mode == "all")


def test_build_reports_bad_item(tmp_path):
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.data.build import run_build_dataset

    bad = tmp_path / "gold.jsonl"
    lines = (FIX / "gold.jsonl").read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[4])
    row["target"] = "Ресейдің"  # the sentence has «Ресейге» there
    lines[4] = json.dumps(row, ensure_ascii=False)
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = compose(
        "build_dataset",
        ["data=kaznerd_stance", f"data.source_dir={FIX / 'kaznerd'}", f"data.stance.gold_file={bad}",
         f"paths.artifacts_dir={tmp_path}", "data.download.enabled=false", "progress=false"],
    )
    with pytest.raises(DataValidationError) as err:
        run_build_dataset(cfg)
    assert f"{bad}:5: AID4 tokens 1:2: target 'Ресейдің' does not match the sentence" in str(err.value)
    assert not (tmp_path / "datasets" / "kaznerd_stance").exists()
