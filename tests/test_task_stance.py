"""Stance task: train/save/load/predict through run_train, markers, class weights, windows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.training.train import run_train

from kazakh_ner_stance.testing import CUES, NAMES, TYPES, make_items, save_stance_dataset  # noqa: F401


@pytest.fixture(scope="session")
def tiny_stance_dataset(tmp_path_factory) -> Path:
    return save_stance_dataset(tmp_path_factory.mktemp("data") / "stance_tiny")


@pytest.fixture
def stance_overrides(tiny_stance_dataset, tiny_encoder, tmp_path):
    return [
        "task=stance", "data=kaznerd_stance", "model=local", f"model.path={tiny_encoder}",
        f"data.dataset_dir={tiny_stance_dataset}", "trainer=debug", f"run_dir={tmp_path / 'run'}",
        f"paths.artifacts_dir={tmp_path / 'artifacts'}", "task.max_length=48", "task.bootstrap_n=50",
    ]


@pytest.mark.parametrize("head", ["pooler", "markers"])
def test_stance_train_save_load_predict(stance_overrides, tiny_stance_dataset, head):
    from datasets import load_from_disk

    from kazakh_ner_stance.tasks.stance import load_stance_checkpoint, predict_stance
    from kazakh_ner_stance.tasks.stance_markers import MARKERS

    cfg = compose("train", stance_overrides + [f"task.head={head}"])
    dev = run_train(cfg)
    run = Path(cfg.run_dir)
    # The returned dev score is metrics/validation.json's macro-F1 (not f_avg, not the 0.0
    # fallback); it is re-derived from the saved model with scikit-learn below.
    validation = json.loads((run / "metrics" / "validation.json").read_text())
    assert dev == validation["macro_f1"]
    model_dir = run / "model"
    info = json.loads((model_dir / "kns_training.json").read_text())
    assert info["task"] == "stance"
    test = json.loads((run / "metrics" / "test.json").read_text())
    for key in ("macro_f1", "f_avg", "macro_f1_ci", "f_avg_ci", "f1_FAVOR", "f1_AGAINST"):
        assert key in test
    assert len(test["macro_f1_ci"]) == 2 and test["report"]["per_target_type"]

    model, tokenizer, id2label = load_stance_checkpoint(model_dir)
    assert id2label == {0: "NONE", 1: "FAVOR", 2: "AGAINST"}
    assert model.config.model_type == ("kns_stance" if head == "markers" else "bert")
    vocab = tokenizer.get_vocab()
    assert all(m in vocab for m in MARKERS)  # markers saved with the tokenizer
    ids = tokenizer(["[TGT]", "Астана", "[/TGT]"], is_split_into_words=True, add_special_tokens=False)["input_ids"]
    assert ids[0] == vocab["[TGT]"] and ids[-1] == vocab["[/TGT]"]  # never split
    assert model.get_input_embeddings().weight.shape[0] > max(vocab[m] for m in MARKERS)

    # The saved model, re-run on the 12 dev items, gives the recorded macro-F1 and accuracy
    # (catches a saved model other than the scored one, or a metric over the wrong labels).
    from sklearn.metrics import accuracy_score, f1_score

    dev_ds = load_from_disk(str(tiny_stance_dataset))["validation"]
    dev_items = [{"tokens": t, "start": s, "end": e}
                 for t, s, e in zip(dev_ds["tokens"], dev_ds["start"], dev_ds["end"])]
    dev_pred = [o["label"] for o in predict_stance(model, tokenizer, dev_items, batch_size=16, max_length=48)]
    dev_gold = [id2label[i] for i in dev_ds["label"]]
    assert dev == pytest.approx(f1_score(dev_gold, dev_pred, labels=["NONE", "FAVOR", "AGAINST"], average="macro",
                                         zero_division=0), abs=1e-9)
    assert validation["accuracy"] == pytest.approx(accuracy_score(dev_gold, dev_pred), abs=1e-9)

    ds = load_from_disk(str(tiny_stance_dataset))["test"]
    items = [{"tokens": t, "start": s, "end": e} for t, s, e in zip(ds["tokens"], ds["start"], ds["end"])]
    items.append({"tokens": ["сөз"] * 300 + ["Астана"] + ["сөз"] * 50, "start": 300, "end": 301})  # long
    out = predict_stance(model, tokenizer, items, batch_size=4, max_length=48)
    assert len(out) == len(items)
    for o in out:
        assert o["label"] in ("NONE", "FAVOR", "AGAINST")
        assert abs(sum(o["probs"].values()) - 1.0) < 1e-4
        assert o["label"] == max(o["probs"], key=o["probs"].get)
    # Input order is kept whatever the batching: one item alone gives the same answer.
    alone = predict_stance(model, tokenizer, [items[3]], max_length=48)[0]
    assert alone["label"] == out[3]["label"]
    assert alone["probs"]["FAVOR"] == pytest.approx(out[3]["probs"]["FAVOR"], abs=1e-5)


@pytest.mark.parametrize("head", ["pooler", "markers"])
def test_marker_rows_trained_with_frozen_embeddings(stance_overrides, tmp_path, head):
    """CPU preset: the embedding matrix is frozen but the marker rows still train (folded in)."""
    from safetensors.torch import load_file

    from kazakh_ner_stance.tasks.stance_markers import DELTA_KEY

    cfg = compose("train", stance_overrides + ["trainer.freeze_word_embeddings=true", f"task.head={head}"])
    run_train(cfg)
    run = Path(cfg.run_dir)
    final = load_file(str(run / "model" / "model.safetensors"))
    assert DELTA_KEY not in final  # folded into the release weights
    tok = json.loads((run / "model" / "kns_stance.json").read_text())
    ids = tok["marker_ids"]
    ckpt = sorted((run / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    raw = load_file(str(ckpt / "model.safetensors"))
    assert DELTA_KEY in raw and raw[DELTA_KEY].abs().sum() > 0  # the offsets moved
    key = next(k for k in final if k.endswith("word_embeddings.weight"))
    other = [i for i in range(5, 50)]
    assert (final[key][other] == raw[key][other]).all()  # the frozen rows did not move
    assert not (final[key][ids] == raw[key][ids]).all()


def test_class_weights_applied(stance_overrides, tiny_stance_dataset, tiny_encoder):
    import torch
    from transformers import AutoTokenizer

    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.tasks.stance import StanceTask, class_balance_weights

    assert class_balance_weights([3701, 281, 32], 0.5) == pytest.approx([1.0, 3.629, 10.755], abs=1e-3)
    cfg = compose("train", stance_overrides)
    ds = load_built_dataset(tiny_stance_dataset)
    task = StanceTask(cfg, ds, AutoTokenizer.from_pretrained(tiny_encoder))
    assert task.train_counts == [24, 12, 4]
    power = float(cfg.task.balance_power)
    assert task.class_weights == pytest.approx(class_balance_weights([24, 12, 4], power))
    model = task.build_model(tiny_encoder)
    assert model.config.kns_stance["class_weights"] == task.class_weights
    feats = task.encode_train(ds["train"])
    batch = task.data_collator()([feats[i] for i in range(8)])
    model.eval()  # no dropout: both forwards below must see the same logits
    with torch.no_grad():  # a fresh head is near-uniform, where weighting cannot show: spread it
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        torch.nn.init.normal_(last.weight, std=1.0, generator=torch.Generator().manual_seed(0))
    loss = task.compute_loss(model, batch)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    w = torch.tensor(task.class_weights)
    expected = torch.nn.functional.cross_entropy(logits, batch["labels"], weight=w)
    plain = torch.nn.functional.cross_entropy(logits, batch["labels"])
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-4)
    assert float(loss.detach()) != pytest.approx(float(plain), rel=1e-4)

    none = compose("train", stance_overrides + ["task.class_balance=none"])
    assert StanceTask(none, ds, AutoTokenizer.from_pretrained(tiny_encoder)).class_weights is None
    over = compose("train", stance_overrides + ["task.class_balance=oversample", "task.balance_power=1.0"])
    otask = StanceTask(over, ds, AutoTokenizer.from_pretrained(tiny_encoder))
    assert otask.class_weights is None
    otask.build_model(tiny_encoder)
    labels = otask.encode_train(ds["train"])["labels"]
    assert [labels.count(c) for c in range(3)] == [24, 24, 24]  # factors 1, 2, 6


def test_encoding_marks_span_and_keeps_it_in_long_sentences(tiny_encoder):
    from transformers import AutoTokenizer

    from kazakh_ner_stance.tasks.stance import encode_stance
    from kazakh_ner_stance.tasks.stance_markers import MARKERS, add_marker_tokens

    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    open_id, close_id = add_marker_tokens(tok)
    words = ["сөз"] * 100 + ["Астана", "қаласы"] + ["сөз"] * 100
    enc = encode_stance(tok, [words, ["Астана", "бар"]], [100, 0], [102, 1], max_length=40)
    for ids in enc["input_ids"]:
        assert len(ids) <= 40
        assert ids.count(open_id) == 1 and ids.count(close_id) == 1
        assert ids.index(open_id) < ids.index(close_id)
    pieces = tok.convert_ids_to_tokens(enc["input_ids"][0])
    inner = pieces[pieces.index(MARKERS[0]) + 1 : pieces.index(MARKERS[1])]
    assert "".join(p.replace("##", "") for p in inner) == "Астанақаласы"
    with pytest.raises(Exception, match="not inside"):
        encode_stance(tok, [["a"]], [0], [2])


@pytest.mark.parametrize("experiment, data", [("kaznerd_stance_e5_small", "kazakh_stance"),
                                              ("kaznerd_stance_e5_small_mixed", "kaznerd_stance"),
                                              ("kaznerd_stance_e5_small_counterfactual", "kazakh_stance_cf"),
                                              ("kaznerd_stance_e5_small_cf_capped", "kazakh_stance_cf"),
                                              ("kaznerd_stance_xlmr_base", "kaznerd_stance")])
def test_stance_experiments_compose(experiment, data):
    cfg = compose("train", [f"experiment={experiment}"])
    assert cfg.task.name == "stance" and cfg.data.name == data


def test_kazsandra_warm_start(tmp_path, tiny_stance_dataset, tiny_encoder, stance_overrides):
    import csv
    import io
    import zipfile

    from transformers import AutoTokenizer

    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.tasks.kazsandra import read_kazsandra, subsample
    from kazakh_ner_stance.tasks.stance import StanceTask

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["custom_id", "text", "text_cleaned", "label", "domain"])
    for i in range(30):
        pos = i % 3 != 0
        w.writerow([f"r{i}", "өте жақсы рахмет" if pos else "нашар жаман", "", int(pos), "market"])
    w.writerow(["bad", "", "", "1", "market"])  # empty text: skipped
    with zipfile.ZipFile(tmp_path / "train.zip", "w") as zf:
        zf.writestr("train.csv", buf.getvalue())
    rows = read_kazsandra([tmp_path / "train.zip"])
    assert len(rows) == 30
    sample = subsample(rows, 12, seed=0, balanced=True)
    assert sum(r["label"] for r in sample) == 6  # as many negative as positive

    cfg = compose("train", stance_overrides + [
        "task.warm_start.enabled=true", f"task.warm_start.data_dir={tmp_path}",
        "task.warm_start.train_files=[train.zip]", "task.warm_start.eval_files=[train.zip]",
        "task.warm_start.n_rows=16", "task.warm_start.eval_rows=8", "task.warm_start.batch_size=8",
        "task.warm_start.learning_rate=1e-3",
    ])
    ds = load_built_dataset(tiny_stance_dataset)
    task = StanceTask(cfg, ds, AutoTokenizer.from_pretrained(tiny_encoder))
    task.build_model(tiny_encoder)
    info = task.warm_start_info
    assert info["rows"] == 16 and info["steps"] == 2 and info["heldout_rows"] == 8
    # The held-out rows are 4 positive + 4 negative copies of two texts; after 2 steps the tiny
    # model gives both the same polarity (measured at learning rates 1e-3..3e-2, up to 20 steps),
    # so exactly half are right. An unbalanced eval subsample, a wrong denominator or an empty
    # eval set (nan) gives anything else.
    assert info["heldout_polarity_accuracy"] == 0.5
