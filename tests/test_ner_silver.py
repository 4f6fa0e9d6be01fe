"""Self-training data for NER (issue 25): the confidence filter, the gold-copy guard and the builder,
which appends silver to train and never touches validation or test."""

from __future__ import annotations

import json

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.data import ner_silver
from kazakh_ner_stance.data.built_dataset import load_built_dataset
from kazakh_ner_stance.data.ner_silver import (
    SILVER_PREFIX,
    Candidate,
    Silver,
    drop_gold_copies,
    select_confident,
    sentence_confidence,
    with_silver,
)
from kazakh_ner_stance.errors import KnsError


def _silver(i: int, conf: float, tags=("B-PERSON", "O")) -> Silver:
    return Silver(f"news:{i}", "news", ["Абай", "келді"][: len(tags)], list(tags), conf)


def test_sentence_confidence_is_the_weakest_word():
    assert sentence_confidence([0.99, 0.42, 0.97]) == pytest.approx(0.42)
    assert sentence_confidence([]) == 0.0


def test_the_filter_keeps_only_sentences_at_or_above_the_threshold():
    labelled = [_silver(0, 0.95), _silver(1, 0.89999), _silver(2, 0.9), _silver(3, 1.0),
                Silver("news:4", "news", [], [], 1.0)]  # an empty sentence teaches nothing
    kept = select_confident(labelled, 0.9)
    assert [s.id for s in kept] == ["news:0", "news:2", "news:3"]
    assert all(s.confidence >= 0.9 for s in kept)
    assert select_confident(labelled, 1.0)[0].id == "news:3"
    with pytest.raises(KnsError, match="threshold"):
        select_confident(labelled, 1.5)


def test_candidates_equal_to_a_gold_sentence_are_dropped_and_counted():
    gold = {"train": [["a", "b"]], "validation": [["c"]], "test": [["d", "e"], ["f"]]}
    cands = [Candidate("x:1", "x", ["d", "e"]), Candidate("x:2", "x", ["new"]), Candidate("x:3", "x", ["c"]),
             Candidate("x:4", "x", ["new"]), Candidate("x:5", "x", ["a", "b"])]
    kept, dropped = drop_gold_copies(cands, gold)
    assert [c.id for c in kept] == ["x:2"]  # its repeat x:4 is dropped too
    assert dropped == {"train": 1, "validation": 1, "test": 1}


def test_silver_joins_train_only(tiny_ner_dataset):
    gold = load_built_dataset(tiny_ner_dataset)
    out = with_silver(gold, [_silver(0, 0.99), _silver(1, 0.95, ("B-GPE",))])
    assert len(out["train"]) == len(gold["train"]) + 2
    assert out["train"]["sent_id"][-2:] == [SILVER_PREFIX + "news:0", SILVER_PREFIX + "news:1"]
    for split in ("validation", "test"):
        assert out[split].to_list() == gold[split].to_list()
    with pytest.raises(KnsError, match="label list"):
        with_silver(gold, [_silver(2, 0.99, ("B-NOT_A_TYPE", "O"))])


def test_builder_pseudo_labels_filters_and_never_trains_on_a_test_sentence(
        tiny_ner_dataset, tiny_ner_checkpoint, tmp_path, monkeypatch):
    gold = load_built_dataset(tiny_ner_dataset)
    test_copy = list(gold["test"]["tokens"][0])
    pool = [Candidate("news:1", "ntrex", ["Астанада", "жиын", "өтті", "."]),
            Candidate("news:2", "ntrex", test_copy),
            Candidate("rev:1", "kazsandra", ["Kaspi", "қосымшасы", "жақсы", "."]),
            Candidate("rev:2", "kazsandra", ["Абай", "туралы", "кітап", "оқыдым"])]
    monkeypatch.setattr(ner_silver, "unlabelled_pool", lambda pool_cfg: list(pool))

    def build(threshold: float, name: str):
        out = tmp_path / name
        cfg = compose("build_dataset", ["data=kaznerd_selftrain", f"data.gold_dir={tiny_ner_dataset}",
                                        f"data.teacher={tiny_ner_checkpoint}", f"data.threshold={threshold}",
                                        f"out_dir={out}", "progress=false"])
        return ner_silver.run_build_ner_silver(cfg), out

    stats, out = build(0.0, "all")
    built = load_built_dataset(out)
    assert stats["dropped_as_gold_copies"]["test"] == 1 and stats["candidates"] == 3
    silver_ids = [s for s in built["train"]["sent_id"] if s.startswith(SILVER_PREFIX)]
    assert silver_ids == [SILVER_PREFIX + i for i in ("news:1", "rev:1", "rev:2")]
    assert test_copy not in [list(t) for t in built["train"]["tokens"]]
    for split in ("validation", "test"):
        assert built[split].to_list() == gold[split].to_list()
    assert built["train"].to_list()[: len(gold["train"])] == gold["train"].to_list()
    # A threshold between the confidences keeps exactly those at or above it.
    confidences = sorted(json.loads(line)["confidence"] for line in (out / "silver.jsonl").read_text().splitlines())
    middle = confidences[1]
    stats, out = build(middle, "some")
    kept = [json.loads(line) for line in (out / "silver.jsonl").read_text().splitlines()]
    assert len(kept) == sum(c >= middle for c in confidences) and all(k["confidence"] >= middle for k in kept)
    assert stats["dev_filter_quality"]["sentences"] == len(gold["validation"])
    assert "| ntrex |" in (out / "README.md").read_text()


def test_builder_without_a_teacher_names_the_command(tiny_ner_dataset, tmp_path):
    cfg = compose("build_dataset", ["data=kaznerd_selftrain", f"data.gold_dir={tiny_ner_dataset}",
                                    f"data.teacher={tmp_path / 'nope'}", f"out_dir={tmp_path / 'o'}"])
    with pytest.raises(KnsError, match="experiment=kaznerd_ner_e5_small"):
        ner_silver.run_build_ner_silver(cfg)
