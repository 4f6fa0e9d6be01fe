"""NER metrics: hand-computed values, error analysis, seqeval/evaluate agreement, bootstrap."""

import random
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from seqeval.metrics import accuracy_score, classification_report
from seqeval.scheme import IOB2

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "eval"))
import evalfix  # noqa: E402

from kazakh_ner_stance.evaluation import compute_ner_metrics, extract_spans  # noqa: E402
from kazakh_ner_stance.evaluation.bootstrap import resample_weights  # noqa: E402
from kazakh_ner_stance.evaluation.ner_metrics import align_sentence, count_orphans  # noqa: E402

# seqeval itself warns when averaging over zero entity types
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def hand():
    return evalfix.read_hand_tsv()


def close(a, b):
    return a == pytest.approx(float(b), abs=1e-12)


def test_extract_spans_strict_iob2():
    # spans are (start, end, type), end exclusive (kazakh_ner_stance.labels.iob2_spans)
    assert extract_spans(["B-A", "I-A", "O", "B-B", "B-B", "I-B"]) == [(0, 2, "A"), (3, 4, "B"), (4, 6, "B")]
    # orphan I- starts nothing; I- of another type ends the entity
    assert extract_spans(["I-A", "I-A", "O", "B-A", "I-B", "I-B"]) == [(3, 4, "A")]
    assert extract_spans(["B-NON_HUMAN", "I-NON_HUMAN"]) == [(0, 2, "NON_HUMAN")]
    assert extract_spans([]) == []
    assert count_orphans(["I-A", "B-A", "I-A", "I-B", "O", "I-B"]) == 3
    with pytest.raises(ValueError):
        extract_spans(["E-A"])


def test_hand_computed_metrics(hand):
    tokens, gold, pred = hand
    m = compute_ner_metrics(gold, pred, tokens=tokens)
    # 7 gold and 7 predicted entities, 3 exactly right (2 PERSON, 1 GPE)
    assert m["n_sentences"] == 5 and m["n_tokens"] == 25
    assert close(m["micro"]["precision"], Fraction(3, 7)) and close(m["micro"]["recall"], Fraction(3, 7))
    assert close(m["micro"]["f1"], Fraction(3, 7))
    assert m["micro"]["support"] == 7 and m["micro"]["n_pred"] == 7
    pt = m["per_type"]
    assert sorted(pt) == ["GPE", "ORGANISATION", "PERSON"]
    assert close(pt["PERSON"]["precision"], Fraction(2, 3)) and close(pt["PERSON"]["f1"], Fraction(2, 3))
    assert close(pt["GPE"]["precision"], Fraction(1, 3)) and close(pt["GPE"]["recall"], Fraction(1, 3))
    assert close(pt["GPE"]["f1"], Fraction(1, 3))
    assert pt["ORGANISATION"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "n_pred": 1, "f1_ci": None}
    assert (pt["PERSON"]["support"], pt["GPE"]["support"]) == (3, 3)
    assert close(m["macro"]["f1"], Fraction(1, 3)) and close(m["macro"]["precision"], Fraction(1, 3))
    assert close(m["token_accuracy"], Fraction(18, 25))


def test_hand_error_analysis(hand):
    tokens, gold, pred = hand
    e = compute_ner_metrics(gold, pred, tokens=tokens, sent_ids=[f"S{i + 1}" for i in range(5)])["errors"]
    assert e["counts"] == {"correct": 3, "type_confusion": 1, "boundary": 2, "boundary_and_type": 0,
                           "missed": 1, "spurious": 1}
    assert e["ill_formed_pred_tags"] == 1  # S5's orphan I-ORGANISATION
    assert e["confusion"]["labels"] == ["GPE", "ORGANISATION", "PERSON"]
    assert e["confusion"]["matrix"] == [[1, 0, 0], [1, 0, 0], [0, 0, 2]]  # ORGANISATION read as GPE once
    top = e["top_confusions"]
    assert [(t["gold"], t["pred"], t["count"]) for t in top] == [("ORGANISATION", "GPE", 1)]
    ex = top[0]["examples"][0]
    assert ex["sent_id"] == "S3"
    assert ex["gold"].startswith("[Қазақстан Республикасы Үкіметі]ORGANISATION")
    assert ex["pred"].startswith("[Қазақстан Республикасы Үкіметі]GPE")
    assert [x["sent_id"] for x in e["examples"]["boundary"]] == ["S2", "S5"]
    assert e["examples"]["missed"][0]["gold_span"] == ["GPE", 0, 1]
    assert e["examples"]["spurious"][0]["pred_span"] == ["ORGANISATION", 2, 3]
    assert e["by_type"]["GPE"]["missed"] == 1 and e["by_type"]["ORGANISATION"]["spurious"] == 1


def test_alignment_categories_and_totals():
    g = [(0, 2, "PER"), (3, 5, "LOC"), (6, 7, "ORG"), (9, 10, "LOC")]
    p = [(0, 1, "PER"), (3, 4, "ORG"), (6, 7, "ORG"), (11, 12, "LOC"), (0, 2, "PER")]
    cats = [(c, gg, pp) for c, gg, pp in align_sentence(g, p)]
    assert ("correct", (0, 2, "PER"), (0, 2, "PER")) in cats  # exact match wins over the overlap
    assert ("boundary_and_type", (3, 5, "LOC"), (3, 4, "ORG")) in cats
    assert ("correct", (6, 7, "ORG"), (6, 7, "ORG")) in cats
    assert ("missed", (9, 10, "LOC"), None) in cats
    assert sorted(pp for c, _, pp in cats if c == "spurious") == [(0, 1, "PER"), (11, 12, "LOC")]
    # every gold and every predicted entity is accounted for exactly once
    assert sorted(gg for _, gg, _ in cats if gg) == sorted(g)
    assert sorted(pp for _, _, pp in cats if pp) == sorted(p)


def _random_batch(rng, n_sent, tags):
    gold = [[rng.choice(tags) for _ in range(rng.randint(0, 12))] for _ in range(n_sent)]
    pred = [[rng.choice(tags) if rng.random() < 0.5 else t for t in g] for g in gold]
    return gold, pred


TAGS = ["O", "O", "O", "B-A", "I-A", "B-B", "I-B", "B-C_D", "I-C_D"]


def _assert_same_as_seqeval(m, gold, pred):
    r = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    types = set(r) - {"micro avg", "macro avg", "weighted avg"}
    assert set(m["per_type"]) == types
    for key, skey in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
        assert m["micro"][key] == pytest.approx(r["micro avg"][skey], abs=1e-12)
        if types:
            assert m["macro"][key] == pytest.approx(r["macro avg"][skey], abs=1e-12)
        for t in types:
            assert m["per_type"][t][key] == pytest.approx(r[t][skey], abs=1e-12)
    for t in types:
        assert m["per_type"][t]["support"] == r[t]["support"]
    if gold and any(gold):
        assert m["token_accuracy"] == pytest.approx(accuracy_score(gold, pred), abs=1e-12)


def test_pure_metrics_agree_with_seqeval_on_random_sequences():
    rng = random.Random(7)
    for _ in range(200):
        gold, pred = _random_batch(rng, rng.randint(1, 6), TAGS)
        _assert_same_as_seqeval(compute_ner_metrics(gold, pred, errors=False), gold, pred)


def test_evaluate_module_loads_offline_and_matches_seqeval(hand, monkeypatch):
    from kazakh_ner_stance.evaluation.metrics import load_metric, metric_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (metric_path("kns_seqeval") / "kns_seqeval.py").is_file()
    metric = load_metric("kns_seqeval")
    rng = random.Random(3)
    cases = [hand[1:]] + [_random_batch(rng, rng.randint(1, 8), TAGS) for _ in range(30)]
    for gold, pred in cases:
        ev = metric.compute(predictions=pred, references=gold)
        r = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
        m = compute_ner_metrics(gold, pred, errors=False)
        assert ev["overall_f1"] == r["micro avg"]["f1-score"] == pytest.approx(m["micro"]["f1"], abs=1e-12)
        assert ev["overall_precision"] == r["micro avg"]["precision"]
        assert ev["overall_recall"] == r["micro avg"]["recall"]
        if set(r) - {"micro avg", "macro avg", "weighted avg"}:
            assert ev["macro_f1"] == r["macro avg"]["f1-score"] == pytest.approx(m["macro"]["f1"], abs=1e-12)
        for t in m["per_type"]:
            assert ev[t]["f1"] == r[t]["f1-score"] and ev[t]["number"] == r[t]["support"]
    # hand fixture through the module: the hand-computed numbers again
    ev = metric.compute(predictions=hand[2], references=hand[1])
    assert ev["overall_f1"] == pytest.approx(3 / 7) and ev["macro_f1"] == pytest.approx(1 / 3)
    assert ev["overall_accuracy"] == pytest.approx(18 / 25)


def test_no_entities_at_all_gives_zeros():
    m = compute_ner_metrics([["O", "O"]], [["O", "I-A"]], bootstrap_n=50)
    assert m["micro"]["f1"] == 0.0 and m["macro"]["f1"] == 0.0 and m["per_type"] == {}
    assert m["token_accuracy"] == 0.5


def test_bootstrap_is_deterministic_and_brackets_the_estimate(hand):
    rng = random.Random(11)
    gold, pred = _random_batch(rng, 120, TAGS)
    a = compute_ner_metrics(gold, pred, bootstrap_n=300, seed=5)
    b = compute_ner_metrics(gold, pred, bootstrap_n=300, seed=5)
    c = compute_ner_metrics(gold, pred, bootstrap_n=300, seed=6)
    assert a == b
    assert a["micro"]["f1_ci"] != c["micro"]["f1_ci"]
    lo, hi = a["micro"]["f1_ci"]
    assert lo < a["micro"]["f1"] < hi
    for t, row in a["per_type"].items():
        assert row["f1_ci"][0] <= row["f1"] <= row["f1_ci"][1]
    assert a["bootstrap"] == {"n": 300, "seed": 5, "confidence": 0.95}
    wide = compute_ner_metrics(gold, pred, bootstrap_n=300, seed=5, confidence=0.99)["micro"]["f1_ci"]
    assert wide[0] <= lo and wide[1] >= hi


def test_vectorised_bootstrap_equals_naive_resampling(hand):
    """Each resample's micro F1 from the count matrix equals seqeval on the resampled sentences."""
    from kazakh_ner_stance.evaluation.bootstrap import percentile_ci

    _, gold, pred = hand
    n_boot, seed = 40, 3
    naive = []
    for w in resample_weights(len(gold), n_boot, seed):
        for row in w:
            idx = [i for i, k in enumerate(row.astype(int)) for _ in range(k)]
            g, p = [gold[i] for i in idx], [pred[i] for i in idx]
            r = classification_report(g, p, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
            naive.append(r["micro avg"]["f1-score"])
    m = compute_ner_metrics(gold, pred, bootstrap_n=n_boot, seed=seed)
    expected = percentile_ci(np.array(naive), 0.95)
    assert m["micro"]["f1_ci"] == pytest.approx(list(expected), abs=1e-6)


def test_bootstrap_1000_resamples_1100_sentences_gives_every_type_a_ci():
    # Speed is a benchmark's business (guide: no timings asserted in tests); this checks the
    # full-size bootstrap gives every type an interval around its point estimate.
    rng = random.Random(0)
    gold, pred = _random_batch(rng, 1100, ["O"] * 4 + [f"{p}-T{i}" for i in range(25) for p in "BI"])
    m = compute_ner_metrics(gold, pred, bootstrap_n=1000, seed=0)
    assert len(m["per_type"]) == 25
    for row in m["per_type"].values():
        lo, hi = row["f1_ci"]
        assert lo <= row["f1"] <= hi and hi - lo > 0


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="sentence 0"):
        compute_ner_metrics([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="gold sentences"):
        compute_ner_metrics([["O"]], [])
