"""Constrained IOB2 decoding: the best valid sequence, checked against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kazakh_ner_stance.labels import count_orphans, iob2_transitions, viterbi_iob2

LABELS = ["O", "B-PERSON", "I-PERSON", "B-GPE", "I-GPE"]


def _brute_force(log_probs, labels):
    best, best_seq = -np.inf, None
    for seq in itertools.product(range(len(labels)), repeat=len(log_probs)):
        if count_orphans([labels[i] for i in seq]):
            continue
        total = sum(log_probs[k, j] for k, j in enumerate(seq))
        if total > best:
            best, best_seq = total, list(seq)
    return best_seq


@pytest.mark.parametrize("seed", range(20))
def test_viterbi_is_the_best_valid_sequence(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    logits = rng.normal(size=(n, len(LABELS))) * 2
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    got = viterbi_iob2(log_probs, LABELS)
    assert got == _brute_force(log_probs, LABELS)
    assert count_orphans([LABELS[i] for i in got]) == 0


def test_viterbi_keeps_a_valid_argmax_and_fixes_a_torn_word():
    probs = np.array([[0.1, 0.8, 0.05, 0.05, 0.0], [0.1, 0.05, 0.8, 0.05, 0.0]]) + 1e-9
    assert viterbi_iob2(np.log(probs), LABELS) == [1, 2]  # B-PERSON I-PERSON, as argmax
    # Word 2 leans I-GPE (orphan after B-PERSON); argmax + repair would make it a new GPE entity.
    probs = np.array([[0.05, 0.9, 0.02, 0.02, 0.01], [0.05, 0.01, 0.44, 0.05, 0.45]])
    assert [LABELS[i] for i in viterbi_iob2(np.log(probs), LABELS)] == ["B-PERSON", "I-PERSON"]


def test_viterbi_edge_cases():
    assert viterbi_iob2(np.zeros((0, len(LABELS))), LABELS) == []
    assert viterbi_iob2(np.log([[0.1, 0.1, 0.6, 0.1, 0.1]]), LABELS) != [2]  # I-X never first
    with pytest.raises(ValueError):
        viterbi_iob2(np.zeros((2, 3)), LABELS)
    allowed, first = iob2_transitions(LABELS)
    assert allowed[1, 2] and allowed[2, 2] and not allowed[3, 2] and not allowed[0, 4] and not first[2]


def test_decoding_benchmark_scores_both_from_the_same_logits(tiny_ner_checkpoint, tiny_ner_dataset, tmp_path):
    import json

    from kazakh_ner_stance.benchmarks.cli import run

    out = tmp_path / "decoding.json"
    assert run(["decoding", "--checkpoint", str(tiny_ner_checkpoint), "--dataset-dir", str(tiny_ner_dataset),
                "--bootstrap", "20", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for split in ("validation", "test"):
        row = result["splits"][split]
        assert set(row) >= {"argmax", "viterbi", "sentences"}
        assert row["viterbi"]["f1_diff"] == row["viterbi"]["f1"] - row["argmax"]["f1"]
        lo, hi = row["viterbi"]["f1_diff_ci"]
        assert lo <= hi


def test_decoding_reaches_every_scorer(tiny_ner_checkpoint, tiny_ner_dataset, tmp_path):
    """decoding=viterbi in evaluate.py and the Predictor; a checkpoint's own decoding by default."""
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.errors import KnsError
    from kazakh_ner_stance.evaluation.run import run_evaluate
    from kazakh_ner_stance.predict import Predictor
    from kazakh_ner_stance.training.checkpoints import trained_inference

    default = str(compose("train", []).task.decoding)
    assert trained_inference(tiny_ner_checkpoint)["decoding"] == default  # the task default, recorded
    for decoding in ("argmax", "viterbi"):
        m = run_evaluate(compose("evaluate", [f"checkpoint={tiny_ner_checkpoint}", f"dataset_dir={tiny_ner_dataset}",
                                              f"out_dir={tmp_path / decoding}", "bootstrap.n=0", f"decoding={decoding}"]))
        assert 0.0 <= m["micro"]["f1"] <= 1.0
    assert Predictor.from_pretrained(tiny_ner_checkpoint).decoding == default
    other = "argmax" if default == "viterbi" else "viterbi"
    predictor = Predictor.from_pretrained(tiny_ner_checkpoint, decoding=other)
    assert predictor.decoding == other and "entities" in predictor("Абай Семейде туған.")
    with pytest.raises(KnsError, match="decoding must be one of"):
        Predictor.from_pretrained(tiny_ner_checkpoint, decoding="beam")("Абай Семейде туған.")


def test_ner_pair_benchmark_scores_models_on_the_same_resamples(tiny_ner_checkpoint, tiny_ner_dataset, tmp_path):
    """A model against itself: the same F1 and a difference of exactly 0 in every resample."""
    import json

    from kazakh_ner_stance.benchmarks.cli import run

    out = tmp_path / "ner_pair.json"
    assert run(["ner_pair", "--base", str(tiny_ner_checkpoint), "--other", str(tiny_ner_checkpoint),
                "--dataset-dir", str(tiny_ner_dataset), "--splits", "validation", "test",
                "--bootstrap", "20", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for split in ("validation", "test"):
        row = result["splits"][split]
        assert row["other"]["f1"] == row["base"]["f1"]
        assert row["other"]["f1_diff"] == 0.0 and row["other"]["f1_diff_ci"] == [0.0, 0.0]
