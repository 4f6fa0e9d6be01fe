"""The CRF head (task.head=crf, tasks/crf.py): its likelihood against brute-force enumeration,
its decoding against the best valid sequence found by enumeration, the word-level gather, and a
tiny training run whose learned scores survive saving, best-model reload and loading."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.labels import count_orphans, iob2_transitions, viterbi_iob2
from kazakh_ner_stance.tasks.crf import (
    CONFIG_KEY, FORBIDDEN, CrfPotentials, attach_crf, crf_potentials, word_level,
)

LABELS = ["O", "B-PERSON", "I-PERSON", "B-GPE", "I-GPE"]


def _random_crf(seed: int):
    torch.manual_seed(seed)
    module = attach_crf(torch.nn.Module(), LABELS)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.02)  # LR_SCALE times this: scores of about ±1
    return module


def _path_score(trans, start, end, emissions, path) -> float:
    total = start[path[0]] + emissions[0, path[0]] + end[path[-1]]
    for i in range(1, len(path)):
        total += trans[path[i - 1], path[i]] + emissions[i, path[i]]
    return float(total)


def test_nll_is_the_brute_force_negative_log_likelihood():
    module = _random_crf(0)
    trans, start, end = (t.detach().double().numpy() for t in module.scores())
    torch.manual_seed(1)
    lengths = [4, 2, 1]
    emissions = torch.randn(len(lengths), 4, len(LABELS))
    gold = [[1, 2, 0, 3], [3, 4, 0, 0], [0, 0, 0, 0]]
    tags = torch.tensor(gold)
    mask = torch.arange(4)[None, :] < torch.tensor(lengths)[:, None]
    nll = module.nll(emissions, tags, mask).detach().double().numpy()
    for row, n in enumerate(lengths):
        e = emissions[row, :n].double().numpy()
        scores = [_path_score(trans, start, end, e, p) for p in itertools.product(range(len(LABELS)), repeat=n)]
        log_z = np.logaddexp.reduce(scores)
        expected = log_z - _path_score(trans, start, end, e, gold[row][:n])
        assert nll[row] == pytest.approx(expected, abs=1e-4)
    # Forbidden moves weigh exp(-1e4): the partition function is over valid sequences only.
    assert trans[0, 2] == FORBIDDEN and trans[3, 2] == FORBIDDEN and trans[1, 2] != FORBIDDEN


def test_an_empty_row_costs_nothing():
    module = _random_crf(0)
    mask = torch.tensor([[True, True], [False, False]])
    nll = module.nll(torch.randn(2, 2, len(LABELS)), torch.tensor([[1, 2], [0, 0]]), mask)
    assert nll[1].item() == 0.0 and nll[0].item() > 0


def test_learned_viterbi_is_the_best_valid_sequence_by_enumeration():
    rng = np.random.default_rng(0)
    allowed, first = iob2_transitions(LABELS)
    for trial in range(30):
        n = int(rng.integers(1, 6))
        potentials = CrfPotentials(tuple(LABELS), rng.normal(size=(5, 5)), rng.normal(size=5), rng.normal(size=5))
        log_probs = np.log(rng.dirichlet(np.ones(5), size=n))
        best = viterbi_iob2(log_probs, LABELS, learned=potentials)
        assert count_orphans([LABELS[i] for i in best]) == 0  # never an invalid IOB2 sequence

        def valid(p):
            return first[p[0]] and all(allowed[a, b] for a, b in zip(p, p[1:]))

        paths = [p for p in itertools.product(range(5), repeat=n) if valid(p)]
        scores = [_path_score(potentials.transitions, potentials.start, potentials.end, log_probs, p) for p in paths]
        assert _path_score(potentials.transitions, potentials.start, potentials.end, log_probs, best) == \
            pytest.approx(max(scores), abs=1e-9)


def test_zero_learned_scores_decode_as_plain_constrained_viterbi():
    rng = np.random.default_rng(3)
    zero = CrfPotentials(tuple(LABELS), np.zeros((5, 5)), np.zeros(5), np.zeros(5))
    for _ in range(20):
        log_probs = np.log(rng.dirichlet(np.ones(5), size=7))
        assert viterbi_iob2(log_probs, LABELS, learned=zero) == viterbi_iob2(log_probs, LABELS)


def test_word_level_takes_each_words_first_piece_in_order():
    logits = torch.arange(2 * 6 * 2, dtype=torch.float).reshape(2, 6, 2)
    labels = torch.tensor([[-100, 1, 2, 0, -100, -100], [-100, 3, -100, -100, -100, -100]])
    starts = torch.tensor([[0, 1, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0]])
    emissions, tags, mask = word_level(logits, labels, starts)
    assert mask.tolist() == [[True, True], [True, False]]
    assert tags[0].tolist() == [1, 0] and tags[1, 0].item() == 3
    assert emissions[0, 1].tolist() == logits[0, 3].tolist()
    with pytest.raises(KnsError, match="no label"):
        word_level(logits, torch.full_like(labels, -100), starts)


def test_scores_from_a_config_are_checked():
    good = CrfPotentials(tuple(LABELS), np.zeros((5, 5)), np.zeros(5), np.ones(5)).to_config()
    assert CrfPotentials.from_config(good).end.tolist() == [1.0] * 5
    with pytest.raises(KnsError, match="5 labels but transitions"):
        CrfPotentials.from_config({**good, "transitions": [[0.0] * 4] * 4})
    with pytest.raises(KnsError, match="not a CRF"):
        CrfPotentials.from_config({"labels": LABELS})
    with pytest.raises(KnsError, match="finite"):
        CrfPotentials.from_config({**good, "start": [float("nan")] * 5})

    class Model:
        config = type("C", (), {CONFIG_KEY: good})()

    with pytest.raises(KnsError, match="does not belong"):
        crf_potentials(Model(), ["O", "B-LOC", "I-LOC", "B-GPE", "I-GPE"])
    assert crf_potentials(Model(), LABELS) is not None
    assert crf_potentials(object(), LABELS) is None


def test_crf_run_saves_loads_and_decodes_with_its_learned_scores(train_overrides, tiny_ner_dataset):
    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.tasks.ner import decode_word_logits, load_ner_checkpoint, predict_word_logits
    from kazakh_ner_stance.training.train import run_train

    cfg = compose("train", train_overrides + ["task.head=crf", "trainer.args.learning_rate=5e-3"])
    dev_f1 = run_train(cfg)
    run = Path(cfg.run_dir)
    model_dir = run / "model"
    config = json.loads((model_dir / "config.json").read_text())
    # The scores moved off zero in training, and sit in config.json, not in the weights file.
    learned = CrfPotentials.from_config(config[CONFIG_KEY])
    assert np.abs(learned.transitions).max() > 1e-3
    from safetensors.torch import load_file

    assert not any(k.startswith("kns_crf") for k in load_file(str(model_dir / "model.safetensors")))
    # The kept model's scores are its best checkpoint's (restored with its weights at the end).
    best = json.loads((run / "checkpoints").joinpath(
        sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("checkpoint-"))[0],
        "trainer_state.json").read_text())["best_model_checkpoint"]
    assert json.loads((Path(best) / "config.json").read_text())[CONFIG_KEY] == config[CONFIG_KEY]

    model, tokenizer, id2label = load_ner_checkpoint(model_dir)
    labels = [id2label[i] for i in range(len(id2label))]
    loaded = crf_potentials(model, labels)
    assert np.allclose(loaded.transitions, learned.transitions)
    ds = load_built_dataset(tiny_ner_dataset)
    logits = predict_word_logits(model, tokenizer, ds["validation"]["tokens"], max_length=24, overlap=6)
    with_crf, _ = decode_word_logits(logits, id2label, "viterbi", loaded)
    validation = json.loads((run / "metrics" / "validation.json").read_text())
    from kazakh_ner_stance.tasks.ner import entity_scores

    gold = [[labels[t] for t in s] for s in ds["validation"]["ner_tags"]]
    # The recorded dev F1 is the CRF decoding's (what evaluate and predict use for this model).
    assert entity_scores(gold, with_crf)["f1"] == pytest.approx(validation["f1"]) == pytest.approx(dev_f1)
    assert all(count_orphans(s) == 0 for s in with_crf)


def test_unknown_head_is_refused(train_overrides):
    from kazakh_ner_stance.training.train import run_train

    with pytest.raises(KnsError, match="task.head must be one of"):
        run_train(compose("train", train_overrides + ["task.head=lstm"]))


def test_decoding_benchmark_adds_the_rules_only_row_for_a_crf(train_overrides, tiny_ner_dataset, tmp_path):
    from kazakh_ner_stance.benchmarks.cli import run
    from kazakh_ner_stance.training.train import run_train

    cfg = compose("train", train_overrides + ["task.head=crf", "trainer.args.learning_rate=5e-3",
                                              "evaluate_test=false"])
    run_train(cfg)
    out = tmp_path / "decoding.json"
    assert run(["decoding", "--checkpoint", str(Path(cfg.run_dir) / "model"), "--dataset-dir",
                str(tiny_ner_dataset), "--splits", "validation", "--bootstrap", "20", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["crf_head"] is True
    row = result["splits"]["validation"]
    assert set(row) >= {"argmax", "viterbi", "iob2-only"}
    validation = json.loads((Path(cfg.run_dir) / "metrics" / "validation.json").read_text())
    assert row["viterbi"]["f1"] == pytest.approx(validation["f1"])  # the checkpoint's own decoding
