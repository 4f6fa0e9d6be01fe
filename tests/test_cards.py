"""The model and dataset cards ask the task registry about a task: every registered task (and a
task added to the registry only) gets its title, pipeline tag, tags, parts and notes from its
TaskSpec and its metric kinds. No training: synthetic metrics, rendered offline."""

from __future__ import annotations

import dataclasses

import pytest

from kazakh_ner_stance.cards import (DatasetCardInputs, ModelCardInputs, render_dataset_card, render_model_card,
                                     validate_dataset_card, validate_model_card)
from kazakh_ner_stance.cards.model_card import STANCE_NOTE
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.tasks.registry import METRIC_KINDS, TASKS, task_spec

BOOT = {"n": 100, "confidence": 0.95, "seed": 1}
KIND_METRICS = {
    "ner": {"task": "ner", "split": "test", "n_sentences": 12, "bootstrap": BOOT,
            "micro": {"f1": 0.81234, "f1_ci": [0.7, 0.9], "precision": 0.8, "recall": 0.82},
            "macro": {"f1": 0.6, "f1_ci": [0.5, 0.7]}, "token_accuracy": 0.95,
            "per_type": {"PERSON": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "f1_ci": [0.8, 0.9], "support": 10}}},
    "stance": {"task": "stance", "split": "test", "n_sentences": 30, "bootstrap": BOOT,
               "macro": {"f1": 0.45, "f1_ci": [0.3, 0.6]}, "f_avg": {"value": 0.4, "ci": [0.2, 0.5]},
               "accuracy": 0.7, "accuracy_ci": [0.6, 0.8],
               "per_class": {"NONE": {"precision": 0.8, "recall": 0.9, "f1": 0.85, "f1_ci": [0.7, 0.9],
                                      "support": 20}}},
}
assert set(KIND_METRICS) == set(METRIC_KINDS)  # a new metric kind needs its synthetic metrics here


def _metrics(spec) -> dict:
    if spec.parts:
        return {"task": spec.name, "split": "test", "parts": {p: KIND_METRICS[k] for p, k in spec.parts.items()}}
    return KIND_METRICS[spec.metrics]


def _model_inputs(task: str, metrics: dict | None = None, task_cfg: dict | None = None) -> ModelCardInputs:
    return ModelCardInputs(
        repo_id=f"org/kk-{task}", version="1.0.0", task=task, license="apache-2.0",
        base_model="FacebookAI/xlm-roberta-base", datasets=["IS2AI/KazNERD"], dataset_name="KazNERD",
        metrics=metrics or _metrics(task_spec(task)),
        training={"config": {"task": task_cfg or {}}, "data_name": "kaznerd"},
        provenance_sentence="Base from the Hub.", quantized_base=False, labels=["O", "B-PERSON", "I-PERSON"],
        verification={"n_sentences": 7, "split": "test"},
    )


def _dataset_inputs(task: str) -> DatasetCardInputs:
    return DatasetCardInputs(repo_id=f"org/ds-{task}", version="1.0.0", task=task,
                             splits={"train": {"path": "data/train.parquet", "rows": 10, "bytes": 100}},
                             columns=["id", "tokens"], fingerprint="f" * 16)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_model_card_follows_the_task_spec(name):
    spec = task_spec(name)
    text = render_model_card(_model_inputs(name))
    meta = validate_model_card(text)
    assert meta["pipeline_tag"] == spec.pipeline_tag
    assert set(spec.card_tags) <= set(meta["tags"])
    assert f": Kazakh {spec.title}\n" in text
    names = {m["name"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    for part, kind in (spec.parts or {None: spec.metrics}).items():
        title = spec.part_titles.get(part, part) if part else None
        for cm in METRIC_KINDS[kind].card_metrics:
            assert (f"{title}: {cm.label}" if title else cm.label) in names
        if title:
            assert f"### {title[0].upper() + title[1:]} ({KIND_METRICS[kind]['n_sentences']} " \
                   f"{METRIC_KINDS[kind].unit})" in text
    assert (STANCE_NOTE in text) == spec.predicts_stance
    assert ("**Entity types.**" in text) == spec.predicts_entities
    assert ("**Stance.**" in text) == spec.predicts_stance
    # transformers' own pipeline is offered only for a model that tags entities and nothing else.
    assert ('pipeline("token-classification"' in text) == (spec.predicts_entities and not spec.predicts_stance)


def test_custom_model_type_note_comes_from_the_tasks_hook():
    assert "`model_type: kns_joint`" in render_model_card(_model_inputs("joint"))
    assert "`model_type: kns_stance`" in render_model_card(_model_inputs("stance", task_cfg={"head": "markers"}))
    assert "model_type:" not in render_model_card(_model_inputs("stance", task_cfg={"head": "pooler"}))
    assert "model_type:" not in render_model_card(_model_inputs("ner"))


def test_a_task_added_to_the_registry_gets_its_cards_without_card_changes(monkeypatch):
    """A multi-part task declared only in the registry: its title, part titles, tags, pipeline
    tag and dataset categories reach the cards, and its flags (no stance) decide the notes."""
    toy = dataclasses.replace(
        TASKS["joint"], name="toy", title="toy tagging", pipeline_tag="token-classification",
        card_tags=("toy-tag",), part_titles={"ner": "entities", "stance": "attitudes"},
        metrics={"ner": "ner", "stance": "stance"}, custom_model_type=None, predicts_stance=False,
        dataset_categories=("text-classification",), dataset_task_ids=("sentiment-classification",),
    )
    monkeypatch.setitem(TASKS, "toy", toy)
    text = render_model_card(_model_inputs("toy"))
    meta = validate_model_card(text)
    assert "# kk-toy: Kazakh toy tagging\n" in text
    assert "toy-tag" in meta["tags"] and "stance-detection" not in meta["tags"]
    assert "### Entities (12 sentences)" in text and "### Attitudes (30 items)" in text
    names = {m["name"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert "entities: micro F1 (strict IOB2 entities)" in names and "attitudes: macro F1 (FAVOR, AGAINST, NONE)" in names
    assert STANCE_NOTE not in text and "model_type:" not in text

    dmeta = validate_dataset_card(render_dataset_card(_dataset_inputs("toy")))
    assert dmeta["task_categories"] == ["text-classification"] and dmeta["task_ids"] == ["sentiment-classification"]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_dataset_card_follows_the_task_spec(name):
    spec = task_spec(name)
    text = render_dataset_card(_dataset_inputs(name))
    meta = validate_dataset_card(text)
    assert meta["task_categories"] == list(spec.dataset_categories)
    assert meta.get("task_ids", []) == list(spec.dataset_task_ids)
    assert (STANCE_NOTE in text) == spec.predicts_stance


def test_unknown_task_is_refused_with_the_registered_ones():
    with pytest.raises(KnsError, match="registered tasks"):
        render_model_card(dataclasses.replace(_model_inputs("ner"), task="nope"))
    with pytest.raises(KnsError, match="registered tasks"):
        render_dataset_card(dataclasses.replace(_dataset_inputs("ner"), task="nope"))
