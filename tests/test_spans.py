"""The one IOB2 span decoder (labels.iob2_spans, strict and lenient), the one orphan repair,
the label vocabularies, the one training-record reader, and that every old call site agrees."""

import json
import random

import pytest
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Entities

from kazakh_ner_stance import labels
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.labels import (
    STANCE_LABELS,
    TARGET_TYPES,
    count_orphans,
    entity_types_of,
    iob2_spans,
    is_orphan,
    ner_label_names,
    repair_iob2,
    repair_orphan,
    tag_set,
)

# (tags, strict spans, lenient spans); spans are (start, end, type), end exclusive
CASES = [
    ([], [], []),
    (["O", "O", "O"], [], []),
    (["B-PER"], [(0, 1, "PER")], [(0, 1, "PER")]),
    # an entity that runs to the end of the sentence
    (["O", "B-PER", "I-PER"], [(1, 3, "PER")], [(1, 3, "PER")]),
    (["O", "I-PER"], [], [(1, 2, "PER")]),
    # stray I- at the start, after O, and a run of them
    (["I-PER", "I-PER", "O"], [], [(0, 2, "PER")]),
    (["B-PER", "O", "I-PER", "I-PER"], [(0, 1, "PER")], [(0, 1, "PER"), (2, 4, "PER")]),
    # B- after B-: two entities, also of the same type
    (["B-PER", "B-PER", "I-PER"], [(0, 1, "PER"), (1, 3, "PER")], [(0, 1, "PER"), (1, 3, "PER")]),
    (["B-PER", "B-GPE"], [(0, 1, "PER"), (1, 2, "GPE")], [(0, 1, "PER"), (1, 2, "GPE")]),
    # type change inside an I- run: ends the entity; strict drops the orphan, lenient starts one
    (["B-PER", "I-PER", "I-GPE", "I-GPE"], [(0, 2, "PER")], [(0, 2, "PER"), (2, 4, "GPE")]),
    (["B-PER", "I-GPE", "I-PER"], [(0, 1, "PER")], [(0, 1, "PER"), (1, 2, "GPE"), (2, 3, "PER")]),
    (["B-A", "I-A", "O", "B-B", "B-B", "I-B"], [(0, 2, "A"), (3, 4, "B"), (4, 6, "B")],
     [(0, 2, "A"), (3, 4, "B"), (4, 6, "B")]),
    (["I-A", "I-A", "O", "B-A", "I-B", "I-B"], [(3, 4, "A")], [(0, 2, "A"), (3, 4, "A"), (4, 6, "B")]),
    (["B-NON_HUMAN", "I-NON_HUMAN"], [(0, 2, "NON_HUMAN")], [(0, 2, "NON_HUMAN")]),
]


@pytest.mark.parametrize("tags,strict,lenient", CASES)
def test_both_modes_on_edge_cases(tags, strict, lenient):
    assert iob2_spans(tags, "strict") == strict
    assert iob2_spans(tags) == strict  # strict is the default
    assert iob2_spans(tags, "lenient") == lenient
    # lenient decoding is strict decoding of the repaired sequence
    assert iob2_spans(repair_iob2(tags), "strict") == lenient
    # strict is seqeval's strict IOB2 (Entity.to_tuple(): sentence, type, start, end exclusive)
    want = sorted((t, s, e) for s, e, t in strict)
    assert sorted(e.to_tuple()[1:] for e in Entities([list(tags)], IOB2).entities[0]) == want


def test_strict_rejects_non_iob2_tags_lenient_reads_them_as_outside():
    for bad in ("E-A", "B-", "I-", "X", "", "BI-A"):
        with pytest.raises(ValueError, match="not an IOB2 tag"):
            iob2_spans(["O", bad], "strict")
        with pytest.raises(ValueError, match="not an IOB2 tag"):
            count_orphans(["O", bad])
    assert iob2_spans(["E-A", "B-A", "X", "I-A"], "lenient") == [(1, 2, "A"), (3, 4, "A")]
    with pytest.raises(ValueError, match="mode"):
        iob2_spans(["O"], "loose")


def test_orphan_repair():
    assert repair_iob2(["I-PER", "I-PER", "O", "I-GPE", "B-GPE", "I-PER"]) == [
        "B-PER", "I-PER", "O", "B-GPE", "B-GPE", "B-PER"]
    assert repair_iob2([]) == []
    assert repair_iob2(("O", "B-A", "I-A")) == ["O", "B-A", "I-A"]
    assert is_orphan("O", "I-A") and is_orphan("B-B", "I-A") and is_orphan("I-B", "I-A")
    assert not is_orphan("B-A", "I-A") and not is_orphan("I-A", "I-A") and not is_orphan("O", "B-A")
    assert repair_orphan("O", "I-A") == "B-A" and repair_orphan("B-A", "I-A") == "I-A"
    assert count_orphans(["I-A", "B-A", "I-A", "I-B", "O", "I-B"]) == 3
    assert count_orphans(["I-A", "I-A"]) == 1  # judged against the tag as written


def test_random_sequences_strict_matches_seqeval_and_lenient_matches_repair():
    rng = random.Random(11)
    tags_pool = ["O", "O", "B-A", "I-A", "B-B", "I-B", "B-C_D", "I-C_D"]
    for _ in range(2000):
        tags = [rng.choice(tags_pool) for _ in range(rng.randint(0, 12))]
        strict = iob2_spans(tags, "strict")
        assert sorted((t, s, e) for s, e, t in strict) == sorted(
            e.to_tuple()[1:] for e in Entities([tags], IOB2).entities[0])
        lenient = iob2_spans(tags, "lenient")
        assert lenient == iob2_spans(repair_iob2(tags), "strict")
        # seqeval's default (conlleval) decoding also lets an orphan I- start an entity
        # (get_entities gives (type, start, end inclusive))
        assert sorted((t, s, e - 1) for s, e, t in lenient) == sorted(get_entities(tags))
        assert len(repair_iob2(tags)) == len(tags) and count_orphans(repair_iob2(tags)) == 0


def test_old_call_sites_use_the_one_decoder():
    from kazakh_ner_stance.data import build, iob2
    from kazakh_ner_stance.evaluation import extract_spans
    from kazakh_ner_stance.evaluation import ner_metrics
    from kazakh_ner_stance.predict import tags_to_spans
    from kazakh_ner_stance.data.stance_dataset import ner_label_names as stance_ner_label_names
    from kazakh_ner_stance.data.stance_join import entity_spans
    from kazakh_ner_stance.tasks import ner

    for tags, strict, lenient in CASES:
        assert extract_spans(tags) == strict
        assert tags_to_spans(tags) == lenient
        assert entity_spans(tags) == lenient
        assert ner.repair_iob2(list(tags)) == repair_iob2(tags)
        assert ner_metrics.count_orphans(tags) == count_orphans(tags)
    assert ner.repair_iob2 is repair_iob2 and ner_metrics.count_orphans is count_orphans
    assert iob2.tag_set is tag_set and build.label_names is ner_label_names
    assert stance_ner_label_names is ner_label_names


def test_reader_repair_is_the_shared_repair(tmp_path):
    from kazakh_ner_stance.data.iob2 import read_iob2
    from kazakh_ner_stance.errors import DataValidationError

    f = tmp_path / "x.txt"
    tags = ["I-A", "I-A", "O", "B-B", "I-A", "I-B"]
    f.write_text("".join(f"w{i} {t}\n" for i, t in enumerate(tags)), encoding="utf-8")
    sents, stats = read_iob2(f, ["A", "B"], orphan_inside="repair")
    assert sents[0].tags == repair_iob2(tags) and stats.orphans_repaired == 3
    with pytest.raises(DataValidationError, match="orphan I- tag"):
        read_iob2(f, ["A", "B"], orphan_inside="error")


def test_label_vocabularies_have_one_home():
    from kazakh_ner_stance import evaluation
    from kazakh_ner_stance import stance_annotation as stance
    from kazakh_ner_stance.evaluation import stance_metrics
    from kazakh_ner_stance.evaluation.metrics import load_metric
    from kazakh_ner_stance.tasks import stance as stance_task

    assert STANCE_LABELS == ("NONE", "FAVOR", "AGAINST")
    for mod in (stance, evaluation, stance_metrics, stance_task):
        assert mod.STANCE_LABELS is STANCE_LABELS
    assert stance.TARGET_TYPES is TARGET_TYPES and "PERSON" in TARGET_TYPES and len(set(TARGET_TYPES)) == 10
    # the offline `evaluate` module reports the same classes
    out = load_metric("kns_stance").compute(predictions=["NONE", "FAVOR"], references=["NONE", "AGAINST"])
    assert all(lab in out for lab in STANCE_LABELS)
    assert ner_label_names(["PER", "GPE"]) == ["O", "B-PER", "I-PER", "B-GPE", "I-GPE"]
    assert tag_set(["PER"]) == {"O", "B-PER", "I-PER"}
    assert entity_types_of(["O", "B-PER", "I-PER", "B-GPE", "I-GPE", "I-LOC"]) == ["PER", "GPE", "LOC"]
    assert labels.__all__ and all(hasattr(labels, n) for n in labels.__all__)


def test_one_checkpoint_check(tmp_path):
    """training/checkpoints.check_checkpoint: what the loaders, evaluate and publish all say."""
    from kazakh_ner_stance.training.checkpoints import TRAINING_INFO, check_checkpoint

    with pytest.raises(KnsError, match="no checkpoint given"):
        check_checkpoint("???")
    with pytest.raises(KnsError, match="checkpoint folder not found"):
        check_checkpoint(tmp_path / "nope")
    with pytest.raises(KnsError, match=r"missing model\.safetensors, config\.json, tokenizer_config\.json\)"):
        check_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    assert check_checkpoint(tmp_path, complete=False) == (tmp_path.resolve(), {})  # evaluate's: config.json only
    for name in ("tokenizer_config.json", "model.safetensors"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    assert check_checkpoint(tmp_path) == (tmp_path.resolve(), {})
    with pytest.raises(KnsError, match=r"missing kns_training\.json"):
        check_checkpoint(tmp_path, training_record=True)
    (tmp_path / TRAINING_INFO).write_text(json.dumps({"task": "stance"}), encoding="utf-8")
    assert check_checkpoint(tmp_path, "stance", training_record=True)[1] == {"task": "stance"}
    with pytest.raises(KnsError, match="is a 'stance' checkpoint, not a ner one"):
        check_checkpoint(tmp_path, "ner")


def test_training_record_has_one_reader(tmp_path):
    from kazakh_ner_stance.evaluation import run
    from kazakh_ner_stance.publish import model as publish_model
    from kazakh_ner_stance.tasks import ner
    from kazakh_ner_stance.training import checkpoints
    from kazakh_ner_stance.training.checkpoints import TRAINING_INFO, read_training_info

    assert TRAINING_INFO == "kns_training.json"
    assert publish_model.TRAINING_INFO is TRAINING_INFO and ner.check_checkpoint is checkpoints.check_checkpoint
    assert checkpoints.read_training_info is read_training_info
    assert read_training_info(tmp_path) == {} and run.training_info(tmp_path) == {}
    (tmp_path / TRAINING_INFO).write_text(json.dumps({"task": "stance", "train_time_s": 3.5}), encoding="utf-8")
    assert read_training_info(tmp_path) == {"task": "stance", "train_time_s": 3.5}
    assert run.training_info(tmp_path)["task"] == "stance"
    for bad in ("{not json", "[1, 2]"):
        (tmp_path / TRAINING_INFO).write_text(bad, encoding="utf-8")
        with pytest.raises(KnsError, match=TRAINING_INFO):
            read_training_info(tmp_path)
