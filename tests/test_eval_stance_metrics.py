"""Stance metrics: hand-computed values, scikit-learn / evaluate agreement, ECE, bootstrap."""

import random
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "eval"))
import evalfix  # noqa: E402

from kazakh_ner_stance.evaluation import STANCE_LABELS, compute_stance_metrics  # noqa: E402
from kazakh_ner_stance.evaluation.stance_metrics import calibration  # noqa: E402


@pytest.fixture(scope="module")
def hand():
    return evalfix.read_stance_hand()


def test_hand_computed_stance_metrics(hand):
    gold, pred, probs, types = hand
    m = compute_stance_metrics(gold, pred, probs, types)
    pc = m["per_class"]
    assert pc["FAVOR"]["precision"] == pytest.approx(2 / 3) and pc["FAVOR"]["recall"] == pytest.approx(2 / 3)
    assert pc["AGAINST"]["f1"] == pytest.approx(2 / 3)
    assert pc["NONE"]["precision"] == pytest.approx(3 / 4) and pc["NONE"]["f1"] == pytest.approx(3 / 4)
    assert [pc[x]["support"] for x in ("FAVOR", "AGAINST", "NONE")] == [3, 3, 4]
    assert m["macro"]["f1"] == pytest.approx(25 / 36)
    assert m["f_avg"]["value"] == pytest.approx(2 / 3)  # SemEval-2016: mean of FAVOR and AGAINST F1
    assert m["accuracy"] == pytest.approx(0.7)
    # rows gold, columns predicted, in the project's label order NONE, FAVOR, AGAINST
    assert m["confusion"] == {"labels": ["NONE", "FAVOR", "AGAINST"], "matrix": [[3, 1, 0], [0, 2, 1], [1, 0, 2]]}
    person, gpe = m["per_target_type"]["PERSON"], m["per_target_type"]["GPE"]
    assert person["n"] == 5 and person["f_avg"] == pytest.approx(0.8)
    assert person["macro_f1"] == pytest.approx(1.6 / 3) and person["accuracy"] == pytest.approx(0.8)
    assert gpe["macro_f1"] == pytest.approx(0.25) and gpe["f_avg"] == 0.0 and gpe["accuracy"] == pytest.approx(0.6)
    cal = m["calibration"]
    assert cal["ece"] == pytest.approx(0.29)
    counts = {(round(b["lo"], 1), round(b["hi"], 1)): b["count"] for b in cal["bins"] if b["count"]}
    assert counts == {(0.4, 0.5): 1, (0.5, 0.6): 2, (0.6, 0.7): 2, (0.7, 0.8): 1, (0.8, 0.9): 2, (0.9, 1.0): 2}
    assert m["macro"]["f1_ci"] is None
    # probabilities given as {label: p} mappings (tasks.stance.predict_stance) give the same
    as_maps = [dict(zip(STANCE_LABELS, row)) for row in probs]
    assert compute_stance_metrics(gold, pred, as_maps, types)["calibration"] == cal


def test_label_order_is_the_projects_classlabel_order():
    assert STANCE_LABELS == ("NONE", "FAVOR", "AGAINST")
    from kazakh_ner_stance.tasks import stance

    assert tuple(stance.STANCE_LABELS) == STANCE_LABELS


def test_agrees_with_sklearn_and_the_evaluate_module():
    from kazakh_ner_stance.evaluation.metrics import load_metric

    metric = load_metric("kns_stance")
    rng = random.Random(2)
    labels = list(STANCE_LABELS)
    for _ in range(40):
        n = rng.randint(1, 30)
        gold = [rng.choice(labels) for _ in range(n)]
        pred = [rng.choice(labels) for _ in range(n)]
        m = compute_stance_metrics(gold, pred)
        p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
        for j, lab in enumerate(labels):
            assert m["per_class"][lab]["f1"] == pytest.approx(f[j], abs=1e-12)
            assert m["per_class"][lab]["precision"] == pytest.approx(p[j], abs=1e-12)
        assert m["macro"]["f1"] == pytest.approx(
            f1_score(gold, pred, labels=labels, average="macro", zero_division=0), abs=1e-12
        )
        ev = metric.compute(predictions=pred, references=gold)
        assert ev["macro_f1"] == pytest.approx(m["macro"]["f1"], abs=1e-12)
        assert ev["f_avg"] == pytest.approx(m["f_avg"]["value"], abs=1e-12)
        assert ev["accuracy"] == pytest.approx(m["accuracy"], abs=1e-12)


def test_stance_bootstrap_deterministic_and_sane():
    rng = np.random.default_rng(0)
    gold = list(rng.choice(STANCE_LABELS, size=300))
    pred = [g if rng.random() < 0.7 else rng.choice(STANCE_LABELS) for g in gold]
    types = list(rng.choice(["PERSON", "GPE"], size=300))
    a = compute_stance_metrics(gold, pred, target_types=types, bootstrap_n=500, seed=1)
    b = compute_stance_metrics(gold, pred, target_types=types, bootstrap_n=500, seed=1)
    assert a == b
    for ci, v in ((a["macro"]["f1_ci"], a["macro"]["f1"]), (a["f_avg"]["ci"], a["f_avg"]["value"]),
                  (a["accuracy_ci"], a["accuracy"])):
        assert ci[0] < v < ci[1]
    for lab in STANCE_LABELS:
        assert a["per_class"][lab]["f1_ci"][0] <= a["per_class"][lab]["f1"] <= a["per_class"][lab]["f1_ci"][1]
    assert a["per_target_type"]["GPE"]["macro_f1_ci"] is not None


def test_calibration_perfect_and_bad_inputs():
    conf = np.array([0.05, 0.95, 0.95])
    assert calibration(conf, np.array([0, 1, 1]), n_bins=10)["ece"] == pytest.approx((0.05 + 2 * 0.05) / 3)
    with pytest.raises(ValueError, match="unknown gold"):
        compute_stance_metrics(["FAVOUR"], ["FAVOR"])
    with pytest.raises(ValueError, match="shape"):
        compute_stance_metrics(["FAVOR"], ["FAVOR"], probs=[[1.0, 0.0]])
