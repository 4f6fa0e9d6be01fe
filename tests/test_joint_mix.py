"""The joint task's extra stance data (task.extra_train) and balanced sampler (task.sampler):
extra rows train the stance head only, the Kazakh features are unchanged without them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.tasks import stance_mix


@pytest.fixture(scope="module")
def joint_tiny(tmp_path_factory) -> Path:
    from test_task_joint import save_joint_dataset

    return save_joint_dataset(tmp_path_factory.mktemp("data") / "joint_tiny")


@pytest.fixture
def overrides(joint_tiny, tiny_encoder, tmp_path):
    return [
        "task=joint", "data=kaznerd_joint", "model=local", f"model.path={tiny_encoder}",
        f"data.dataset_dir={joint_tiny}", "trainer=debug", f"run_dir={tmp_path / 'run'}",
        f"paths.artifacts_dir={tmp_path / 'artifacts'}", "task.max_length=24", "task.window_overlap=6",
        "task.bootstrap_n=20",
    ]


def _task(overrides, *extra):
    from transformers import AutoTokenizer

    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.tasks.joint import JointTask

    cfg = compose("train", [*overrides, *extra])
    ds = load_built_dataset(cfg.data.dataset_dir)
    return JointTask(cfg, ds, AutoTokenizer.from_pretrained(cfg.model.path)), ds


def _russian_train(rusentne_tiny):
    from datasets import load_from_disk

    return load_from_disk(str(rusentne_tiny))["train"]


def _old_encoding(task, split):
    """What JointTask.encode_train returned before task.extra_train existed."""
    from kazakh_ner_stance.tasks.joint_encoding import encode_joint

    keep = ("input_ids", "attention_mask", "labels", "length", "span_starts", "span_ends", "stance_labels")

    def encode(batch):
        enc = encode_joint(task.tokenizer, batch["tokens"], task.max_length, task.overlap, ner_tags=batch["ner_tags"],
                           targets=batch["targets"], id2label=task.id2label,
                           label_all_subwords=bool(task.cfg.task.label_all_subwords))
        return {k: enc[k] for k in keep}

    return split.map(encode, batched=True, batch_size=1000, remove_columns=split.column_names)


def test_without_extra_train_the_kazakh_features_are_unchanged(overrides, rusentne_tiny):
    task, ds = _task(overrides)
    assert task.cfg.task.extra_train.dir is None and task.cfg.task.sampler.kind == "none"
    before = _old_encoding(task, ds["train"])
    feats = task.encode_train(ds["train"])
    assert feats.features == before.features and feats.to_dict() == before.to_dict()
    assert task.train_sampler(4) is None
    assert task.training_data_info()["extra_train"] is None and task.training_data_info()["sampler"] is None
    counts = [0, 0, 0]
    for ts in ds["train"]["targets"]:
        for x in ts:
            counts[int(x["label"])] += 1
    assert task.train_counts == counts
    # With extra data the Kazakh windows come first, exactly as before.
    mixed, _ = _task(overrides, f"task.extra_train.dir={rusentne_tiny}")
    mixed_feats = mixed.encode_train(ds["train"])
    assert len(mixed_feats) > len(before)
    assert mixed_feats.select(range(len(before))).to_dict() == before.to_dict()


def test_extra_rows_keep_their_spans_and_labels_and_have_no_ner_labels(overrides, rusentne_tiny):
    from kazakh_ner_stance.tasks.joint_mix import encode_extra_joint

    ru = _russian_train(rusentne_tiny)
    task, ds = _task(overrides, f"task.extra_train.dir={rusentne_tiny}")
    ex = task.mix.examples
    # Rows with identical tokens are one sentence: the fixture repeats sentences with other targets.
    sentences = {tuple(t) for t in ru["tokens"]}
    assert len(ex["tokens"]) == len(sentences) < len(ru)
    assert set(ex["lang"]) == {"ru"} and sum(len(ts) for ts in ex["targets"]) == len(ru)
    rows = sorted((tuple(t), s, e, lab) for t, s, e, lab in zip(ru["tokens"], ru["start"], ru["end"], ru["label"]))
    got = sorted((tuple(t), x["start"], x["end"], x["label"]) for t, ts in zip(ex["tokens"], ex["targets"]) for x in ts)
    assert got == rows
    # Class counts (and the stance class weights) count the Russian targets too.
    kk = Counter(int(x["label"]) for ts in ds["train"]["targets"] for x in ts)
    assert task.train_counts == [kk[c] + Counter(ru["label"])[c] for c in range(3)]

    before = _old_encoding(task, ds["train"])
    feats = task.encode_train(ds["train"])
    extra = feats.select(range(len(before), len(feats)))
    assert all(lab == -100 for row in extra["labels"] for lab in row)  # no NER supervision
    assert any(lab != -100 for row in before["labels"] for lab in row)  # (Kazakh windows have some)
    # Each target is read once, from pieces of exactly its words, with its label.
    enc = encode_extra_joint(task.tokenizer, ex["tokens"], ex["targets"], task.max_length, task.overlap)
    assert enc["input_ids"] == extra["input_ids"] and enc["stance_labels"] == extra["stance_labels"]
    seen = []
    for k in range(len(extra)):
        sent = enc["example"][k]
        for j, ps, pe, lab in zip(enc["span_index"][k], extra["span_starts"][k], extra["span_ends"][k],
                                  extra["stance_labels"][k]):
            target = ex["targets"][sent][j]
            assert lab == target["label"]
            words = set(enc["word_ids"][k][ps:pe])
            assert words == set(range(target["start"], target["end"]))
            seen.append((sent, j))
    assert sorted(seen) == sorted({(i, j) for i, ts in enumerate(ex["targets"]) for j in range(len(ts))})


def test_window_class_is_the_rarest_target_class():
    from kazakh_ner_stance.tasks.joint_mix import window_class

    counts = [100, 10, 3]
    assert window_class([], counts) == 0  # no target: NONE
    assert window_class([0, 0], counts) == 0
    assert window_class([0, 1, 0], counts) == 1
    assert window_class([1, 2, -100], counts) == 2
    assert window_class([0, 1], [5, 50, 3]) == 0  # rarest by the counts, not by the label order
    assert window_class([1, 2], [9, 4, 4]) == 2  # a tie: the later label


def test_balanced_sampler_draws_both_languages(overrides, rusentne_tiny):
    task, ds = _task(overrides, f"task.extra_train.dir={rusentne_tiny}", "task.sampler.kind=balanced")
    n_kk = len(_old_encoding(task, ds["train"]))
    feats = task.encode_train(ds["train"])
    sampler = task.train_sampler(4)
    assert len(sampler) == n_kk  # epoch_size null: as many draws as Kazakh windows
    draws = list(sampler)
    ru = sum(1 for i in draws if i >= n_kk)
    assert 0 < ru < len(draws) and max(draws) < len(feats)
    assert 0.25 < ru / len(draws) < 0.75  # equal language weights: about half
    # Weights: a language, then a class within it (window classes by the rarest-target rule).
    langs, classes, _ = task.mix._index
    assert langs[:n_kk] == ["kk"] * n_kk and set(langs[n_kk:]) == {"ru"}
    assert {c for lg, c in zip(langs, classes) if lg == "kk"} == {0, 1, 2}
    w = stance_mix.balanced_item_weights(langs, classes, None, 0.5)
    assert sum(x for x, lg in zip(w, langs) if lg == "ru") == pytest.approx(0.5)
    assert task.training_data_info()["sampler"]["kind"] == "balanced"


def test_mixed_joint_run_trains_and_records_the_extra_data(overrides, rusentne_tiny, tmp_path, monkeypatch):
    draws = []
    original = stance_mix.BalancedSampler.__iter__

    def spy(self):
        out = list(original(self))
        draws.append(out)
        return iter(out)

    monkeypatch.setattr(stance_mix.BalancedSampler, "__iter__", spy)
    from kazakh_ner_stance.training.train import run_train

    cfg = compose("train", [*overrides, "experiment=kaznerd_joint_e5_small_mixed", "trainer=debug",
                            f"task.extra_train.dir={rusentne_tiny}", "trainer.args.per_device_train_batch_size=4",
                            "trainer.early_stopping_patience=null"])
    assert cfg.task.sampler.kind == "balanced" and cfg.task.class_balance == "none"
    assert cfg.run_name == "kaznerd_joint_e5_small_mixed"
    run_train(cfg)
    model_dir = Path(cfg.run_dir) / "model"
    meta = json.loads((model_dir / "kns_joint.json").read_text())
    ru = _russian_train(rusentne_tiny)
    info = meta["training_data"]
    assert info["extra_train"] == str(rusentne_tiny) and info["extra_train_split"] == "train"
    assert info["extra_train_rows"] == len(ru) and info["extra_ner_supervision"] is False
    assert info["sampler"]["kind"] == "balanced" and meta["class_weights"] is None
    n_kk_targets = sum(len(ts) for ts in _task(overrides)[1]["train"]["targets"])
    assert sum(meta["train_counts"]) == n_kk_targets + len(ru)
    training = json.loads((model_dir / "kns_training.json").read_text())
    assert training["task"] == "joint"
    assert training["config"]["task"]["extra_train"]["dir"] == str(rusentne_tiny)
    assert draws  # the Trainer drew through the balanced sampler
    validation = json.loads((Path(cfg.run_dir) / "metrics" / "validation.json").read_text())
    assert "ner_f1" in validation and "macro_f1" in validation  # selected on the Kazakh dev split


def test_mixed_joint_experiment_composes():
    cfg = compose("train", ["experiment=kaznerd_joint_e5_small_mixed"])
    base = compose("train", ["experiment=kaznerd_joint_e5_small"])
    assert cfg.task.name == "joint" and cfg.data.name == "kaznerd_joint"
    assert cfg.task.extra_train.dir.endswith("/rusentne") and cfg.task.sampler.kind == "balanced"
    assert base.task.extra_train.dir is None and base.task.sampler.kind == "none"
    assert cfg.trainer.args == base.trainer.args and cfg.task.max_length == base.task.max_length
