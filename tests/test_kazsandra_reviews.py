"""The KazSAnDRA reviews stance layer (issue 22): the review reader (checksums, bad rows named by
file and CSV line), sentence ids that do not depend on the selection, name proposals, the
seeded selection, and the layer's rows in the v2 stance dataset (split by review)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from kazakh_ner_stance.data import kazsandra_reviews as kr
from kazakh_ner_stance.errors import DataValidationError, KnsError

HEADER = ["custom_id", "text", "text_cleaned", "domain", "label"]
ROWS = [
    ("pla1", "Каспиге рахмет! Бәрі тез келді.", "appstore", "1"),
    ("pla2", "Билайн қосымшасы дым дамымаған. Жаман.", "appstore", "0"),
    ("pla3", "Маған ұнады, Алла разы болсын.", "appstore", "1"),
    ("kas4", "Тапсырыс Казпочтамен 11 күн дегенде жетті. Сапасы жақсы.", "market", "0"),
    ("pla5", "Play Market арқылы жүктедім, ойын керемет.", "appstore", "1"),
    ("pla6", "Мен Алматыдан жазамын. Алматыда сеть жоқ.", "appstore", "0"),
]


def _zip(path: Path, rows, header=HEADER) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for rid, text, domain, label in rows:
        w.writerow([rid, text, text.lower(), domain, label])
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(path.stem + ".csv", buf.getvalue())
    return path


def test_reader_reads_every_review_and_pins_the_checksum(tmp_path):
    from kazakh_ner_stance.data.download import sha256_file

    _zip(tmp_path / "a.zip", ROWS)
    reviews = kr.read_reviews(tmp_path, ["a.zip"], {"a.zip": sha256_file(tmp_path / "a.zip")})
    assert [r.id for r in reviews] == [r[0] for r in ROWS]
    assert reviews[3].domain == "market" and reviews[3].line == 5  # the header is CSV line 1
    with pytest.raises(DataValidationError, match="a.zip: sha256 is not the pinned"):
        kr.read_reviews(tmp_path, ["a.zip"], {"a.zip": "0" * 64})
    with pytest.raises(DataValidationError, match="missing.zip: file not found"):
        kr.read_reviews(tmp_path, ["missing.zip"], None)


def test_bad_rows_are_named_by_file_and_line(tmp_path):
    _zip(tmp_path / "a.zip", [*ROWS[:2], ("pla1", "қайта", "appstore", "1"), ("pla9", "  ", "appstore", "0")])
    with pytest.raises(DataValidationError) as err:
        kr.read_reviews(tmp_path, ["a.zip"], None)
    text = str(err.value)
    assert "a.zip:a.csv:4: custom_id 'pla1' repeats the one of" in text
    assert "a.zip:a.csv:5: review 'pla9' has no text" in text
    _zip(tmp_path / "b.zip", ROWS, header=["custom_id", "body", "text_cleaned", "domain", "label"])
    with pytest.raises(DataValidationError, match=r"b.zip:b.csv:1: missing column\(s\) \['text'\]"):
        kr.read_reviews(tmp_path, ["b.zip"], None)


def test_sentence_ids_do_not_depend_on_the_selection(tmp_path):
    reviews = kr.read_reviews(_zip(tmp_path / "a.zip", ROWS).parent, ["a.zip"], None)
    sents = kr.review_sentences(reviews[3])
    assert [s.id for s in sents] == ["kazsandra:kas4:0", "kazsandra:kas4:1"]
    assert sents[0].tokens[:2] == ["Тапсырыс", "Казпочтамен"] and sents[0].doc_id == "kas4"
    got = kr.sentences_by_id(reviews, ["kazsandra:kas4:1", "kazsandra:pla1:0"])
    assert got["kazsandra:kas4:1"].text == "Сапасы жақсы."
    with pytest.raises(KnsError, match="not found in the reviews"):
        kr.sentences_by_id(reviews, ["kazsandra:kas4:7"])
    with pytest.raises(KnsError, match="no KazSAnDRA sentence id"):
        kr.sentences_by_id(reviews, ["ntrex:4"])


def test_names_are_proposed_from_brands_and_capitalisation_never_god():
    capitalised = kr.capitalised_words([["Мен", "Алматыдан", "келдім"], ["Біз", "Алматыдан", "жазамыз"],
                                        ["Сен", "Алматыдан", "ба"], ["Иә", "Алла", "разы"], ["Ал", "Алла", "бар"],
                                        ["Ол", "Алла", "деді"], ["Бұл", "Өте", "жақсы"], ["Бұл", "өте", "жақсы"]])
    assert "алматыдан" in capitalised and "алла" not in capitalised and "өте" not in capitalised
    assert kr.candidate_names(["Рахмет", "каспиге", "!"], capitalised) == [(1, 2, "Kaspi")]
    assert kr.candidate_names(["Play", "Market", "арқылы"], capitalised) == [(0, 2, "Play Market")]
    assert kr.candidate_names(["Мен", "Алматыдан", "жазамын"], capitalised) == [(1, 2, "Алматыдан")]
    assert kr.candidate_names(["Маған", "ұнады", "Алла", "разы"], capitalised) == []


def test_selection_is_seeded_one_sentence_a_review_and_capped_per_name(tmp_path):
    rows = [(f"pla{i}", f"Каспиге рахмет {i} рет! Тағы {i} рет Билайнға алғыс айтамын.", "appstore", "1")
            for i in range(12)]
    reviews = kr.read_reviews(_zip(tmp_path / "a.zip", rows).parent, ["a.zip"], None)
    a = kr.select_sentences(reviews, n=12, seed=3, per_name=4, min_tokens=3)
    b = kr.select_sentences(reviews, n=12, seed=3, per_name=4, min_tokens=3)
    assert [s.id for s in a] == [s.id for s in b]
    assert len({s.doc_id for s in a}) == len(a)
    kaspi = sum(any(n == "Kaspi" for *_, n in kr.candidate_names(s.tokens, set())) for s in a)
    beeline = sum(any(n == "Beeline" for *_, n in kr.candidate_names(s.tokens, set())) for s in a)
    assert kaspi == 4 and beeline == 4 and len(a) == 8


def _layer_row(sid, start, end, target, label, doc):
    return {"id": f"{sid}:{start}-{end}", "sent_id": sid, "source": "kazsandra", "doc_id": doc, "start": start,
            "end": end, "target": target, "type": "ORGANISATION", "label": label, "annotator": "ann15"}


def test_the_layer_joins_the_v2_dataset_split_by_review(tmp_path):
    from omegaconf import OmegaConf

    from kazakh_ner_stance.data.stance_v2 import review_rows

    _zip(tmp_path / "a.zip", ROWS)
    layer = tmp_path / "layer.jsonl"
    rows = [_layer_row("kazsandra:pla1:0", 0, 1, "Каспиге", "FAVOR", "pla1"),
            _layer_row("kazsandra:pla2:0", 0, 1, "Билайн", "AGAINST", "pla2"),
            _layer_row("kazsandra:kas4:0", 1, 2, "Казпочтамен", "AGAINST", "kas4"),
            _layer_row("kazsandra:pla6:1", 0, 1, "Алматыда", "NONE", "pla6")]
    layer.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = OmegaConf.create({"layer": str(layer), "split": {"train": 0.5, "validation": 0.25, "test": 0.25}, "seed": 1,
                            "text": {"source_dir": str(tmp_path), "files": ["a.zip"], "sha256": None}})
    got = review_rows(cfg)
    assert [r["group"] for r in got] == ["review:pla1", "review:pla2", "review:kas4", "review:pla6"]
    assert {r["split"] for r in got} == {"train", "validation", "test"}
    for r in got:
        assert " ".join(r["tokens"][r["start"]:r["end"]]) == r["target"] and r["origin"] == "gold"
    rows[1]["end"] = 2
    layer.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"layer.jsonl:2: kazsandra:pla2:0:0-1: words 0..2 are not the target"):
        review_rows(cfg)


def test_the_data_config_composes_with_the_reviews_layer():
    from kazakh_ner_stance.config import compose

    cfg = compose("build_dataset", ["data=kazakh_stance_reviews"])
    assert cfg.data.reviews.layer.endswith("data/stance/kazsandra_stance.jsonl")
    assert list(cfg.data.reviews.text.files) == ["03_pc_train_rus.zip", "04_pc_valid.zip", "05_pc_test.zip"]
    assert cfg.data.news.layer.endswith("kazakh_news_stance.jsonl")
