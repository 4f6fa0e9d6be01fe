"""The silver Kazakh stance layer translated from RuSentNE (issue 12): marked-target parsing,
assembling translators' lines with every bad line reported, the layer's validation, the
one-split (training only) dataset with the second translator's rates, and training on it
next to RuSentNE through a list of extra_train folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.errors import DataValidationError
from kazakh_ner_stance.stance_annotation.silver import (
    assemble_layer,
    check_rates,
    check_sample,
    parse_marked,
    read_check,
    read_layer,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "silver"


def test_parse_marked_gives_the_unmarked_text_and_the_target_characters():
    text, s, e = parse_marked("Сарапшылар ⟦Германияның⟧ саясатын бағалады.")
    assert text == "Сарапшылар Германияның саясатын бағалады." and text[s:e] == "Германияның"
    assert parse_marked("⟦Ресей⟧-Қытай жобасы")[1:] == (0, 5)  # a hyphen after the target is a word edge


@pytest.mark.parametrize("marked, problem", [
    ("Ресей үкіметі мақұлдады.", "exactly one"),
    ("⟦Ресей⟧ және ⟦Қытай⟧", "exactly one"),
    ("⟧Ресей⟦ үкіметі", "before"),
    ("⟦⟧ үкіметі", "empty"),
    ("⟦ Ресей⟧ үкіметі", "spaces"),
    ("Ұлы⟦британия⟧ үкіметі", "starts inside a word"),
    ("⟦Путин⟧ді сынады", "ends inside a word"),
])
def test_parse_marked_names_the_problem(marked, problem):
    with pytest.raises(ValueError, match=problem):
        parse_marked(marked)


def test_assemble_takes_label_and_type_from_the_source_and_reports_every_bad_line(tmp_path):
    sources = {"rusentne/train_data:5": {"source_row": 5, "target_type": "PERSON", "label": "AGAINST"},
               "rusentne/train_data:7": {"source_row": 7, "target_type": "GPE", "label": "FAVOR"}}
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps({"id": "rusentne/train_data:7", "kk": "⟦Қазақстан⟧ жоғары бағаланды.",
                                "translator": "t1", "label": "NONE"}, ensure_ascii=False) + "\n", encoding="utf-8")
    bad = tmp_path / "b.jsonl"
    bad.write_bytes("\n".join([
        json.dumps({"id": "rusentne/train_data:5", "kk": "Путинді сынады.", "translator": "t2"}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": "rusentne/train_data:99", "kk": "⟦X⟧", "translator": "t2"}),
        json.dumps({"id": "rusentne/train_data:7", "kk": "⟦Қазақстан⟧ бағаланды.", "translator": "t2"},
                   ensure_ascii=False),
    ]).encode("utf-8") + b"\n\xff\n")
    records, problems = assemble_layer([good, bad], sources)
    assert [(r["source_row"], r["label"], r["target_type"], r["target"]) for r in records] == [
        (7, "FAVOR", "GPE", "Қазақстан")]  # the translator's own "label" is ignored
    msgs = [str(p) for p in problems]
    assert len(msgs) == 5
    assert msgs[0].startswith(f"{bad}:1: rusentne/train_data:5: needs exactly one")
    assert msgs[1].startswith(f"{bad}:2: not valid JSON")
    assert msgs[2] == f"{bad}:3: unknown source id 'rusentne/train_data:99'"
    assert msgs[3].startswith(f"{bad}:4: rusentne/train_data:7 translated twice (also {good}:1)")
    assert msgs[4] == f"{bad}:5: invalid UTF-8 (byte 0xff at column 1)"


def test_read_layer_validates_spans_labels_and_ids(tmp_path):
    rows = read_layer(FIXTURE / "rusentne_kk_silver.jsonl")
    assert len(rows) == 6 and all(r["text"][r["start_char"]:r["end_char"]] == r["target"] for r in rows)
    lines = (FIXTURE / "rusentne_kk_silver.jsonl").read_text(encoding="utf-8").splitlines()
    broken = [json.loads(x) for x in lines]
    broken[1]["end_char"] += 1          # span no longer the target
    broken[2]["label"] = "POSITIVE"     # not a stance label
    broken[4] = dict(broken[3])         # duplicate id
    path = tmp_path / "layer.jsonl"
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in broken), encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        read_layer(path)
    text = str(err.value)
    assert f"{path}:2: rusentne-kk/train_data:12: text[" in text and f"{path}:3:" in text and "POSITIVE" in text
    assert f"{path}:5: duplicate id" in text


def test_check_rates_and_sample():
    layer_ids = {r["id"] for r in read_layer(FIXTURE / "rusentne_kk_silver.jsonl")}
    check = read_check(FIXTURE / "rusentne_kk_silver_check.jsonl", layer_ids)
    rates = check_rates(check)
    assert rates["n"] == 4 and rates["adequate"] == 0.75 and rates["span_correct"] == 0.75
    assert rates["stance_kept"] == 0.75 and rates["adequacy"] == {"good": 2, "minor": 1, "wrong": 1}
    ids = [f"x{i}" for i in range(300)]
    assert check_sample(ids, 100, 1) == check_sample(list(reversed(ids)), 100, 1)  # seeded, order-free
    assert len(set(check_sample(ids, 100, 1))) == 100 and check_sample(ids, 100, 1) != check_sample(ids, 100, 2)
    with pytest.raises(DataValidationError, match="is not in the layer"):
        read_check(FIXTURE / "rusentne_kk_silver_check.jsonl", layer_ids - {"rusentne-kk/train_data:9"})


@pytest.fixture(scope="module")
def silver_dataset(tmp_path_factory) -> Path:
    from kazakh_ner_stance.stance_annotation.silver import run_build_silver

    out = tmp_path_factory.mktemp("data") / "rusentne_kk_silver"
    run_build_silver(compose("build_dataset", [
        "data=rusentne_kk_silver", f"data.layer={FIXTURE / 'rusentne_kk_silver.jsonl'}",
        f"data.check={FIXTURE / 'rusentne_kk_silver_check.jsonl'}", f"out_dir={out}", "progress=false"]))
    return out


def test_built_silver_dataset_is_training_only_with_its_rates_in_the_card(silver_dataset):
    from datasets import load_from_disk

    dsd = load_from_disk(str(silver_dataset))
    assert list(dsd) == ["train"]  # never an evaluation split
    rows = dsd["train"]
    assert len(rows) == 6 and set(rows["lang"]) == {"kk-silver"}
    assert set(rows["annotator"]) == {"silver:fixture-a", "silver:fixture-b"}
    first = rows[0]
    assert first["tokens"][first["start"]:first["end"]] == ["Мадуро"]
    assert rows.features["label"].names == ["NONE", "FAVOR", "AGAINST"]
    card = (silver_dataset / "README.md").read_text(encoding="utf-8")
    assert "training only" in card.lower() and "adequate translation 75%" in card and "span correct 75%" in card


def test_extra_train_takes_a_list_of_folders(silver_dataset, rusentne_tiny):
    from kazakh_ner_stance.tasks.stance_mix import load_extra_train

    ru = rusentne_tiny
    train = compose("train", ["experiment=kaznerd_stance_e5_small_silver",
                              f"task.extra_train.dir=[{ru},{silver_dataset}]"])
    items = load_extra_train(train.task.extra_train)
    langs = items["lang"]
    assert langs.count("kk-silver") == 6 and langs.count("ru") == len(items) - 6 > 0
    assert dict(train.task.sampler.lang_weights) == {"kk": 0.5, "ru": 0.25, "kk-silver": 0.25}
