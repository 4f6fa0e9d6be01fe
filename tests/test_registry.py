"""The task registry: every declared member resolves, and no verb compares task names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.tasks.base import Task
from kazakh_ner_stance.tasks.registry import METRIC_KINDS, TASKS, headline, load_object, metric_kind, metric_parts, task_spec

SRC = Path(__file__).resolve().parent.parent / "src" / "kazakh_ner_stance"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_declared_member_of_a_task_resolves(name):
    spec = task_spec(name)
    cls = spec.load("training_class")
    assert issubclass(cls, Task) and cls.name == name and cls.spec() is spec
    for member in ("checkpoint_loader", "evaluator", "publish_verifier"):
        assert callable(spec.load(member)), member
    if spec.custom_model_type:
        assert callable(load_object(spec.custom_model_type))
    kinds = list(spec.parts.values()) or [spec.metrics]
    assert all(k in METRIC_KINDS for k in kinds)
    assert (spec.metric_kind is None) == bool(spec.parts)
    assert (SRC / "configs" / "task" / f"{name}.yaml").is_file()
    assert (SRC / "configs" / "data" / f"{spec.dataset_config}.yaml").is_file()


@pytest.mark.parametrize("kind", sorted(METRIC_KINDS))
def test_every_metric_kind_renders(kind):
    k = METRIC_KINDS[kind]
    for member in (k.report_blocks, k.summary, k.leaderboard, k.card_tables):
        assert load_object(member) is not None, member


def test_unknown_names_are_clear_errors():
    with pytest.raises(KnsError, match=r"unknown task 'pos'; the registered tasks are \['joint', 'ner', 'stance'\]"):
        task_spec("pos")
    with pytest.raises(KnsError, match="not a known kind of scores"):
        metric_kind({"task": "pos"})
    with pytest.raises(KnsError, match="has parts"):
        metric_kind({"task": "joint", "parts": {"ner": {}}})


def test_headline_is_the_kinds_ranking_metric():
    ner = {"task": "ner", "micro": {"f1": 0.8, "f1_ci": [0.7, 0.9]}, "macro": {"f1": 0.5}}
    stance = {"task": "stance", "micro": {"f1": 0.9}, "macro": {"f1": 0.4, "f1_ci": [0.3, 0.5]}}
    assert headline(ner) == (0.8, [0.7, 0.9])
    assert headline(stance) == (0.4, [0.3, 0.5])
    joint = {"task": "joint", "parts": {"ner": ner, "stance": stance}}
    assert [(p, t) for p, t, _ in metric_parts(joint)] == [("ner", "NER"), ("stance", "stance on the gold targets")]
    assert metric_parts(ner) == [(None, None, ner)]


# A task name compared as a string, or used as a dispatch key, outside the registry.
_TASK_NAME = r"""["'](?:ner|stance|joint)["']"""
_COMPARISON = re.compile(
    rf"""(?:==|!=)\s*{_TASK_NAME}|{_TASK_NAME}\s*(?:==|!=)|\bin\s*[(\[{{][^)\]}}]*{_TASK_NAME}|{_TASK_NAME}\s*:\s*["'(\[{{]"""
)


def test_no_verb_compares_task_names_outside_the_registry():
    hits = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "registry.py":
            continue
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if _COMPARISON.search(code):
                hits.append(f"{path.relative_to(SRC)}:{no}: {line.strip()}")
    assert not hits, "task names compared outside tasks/registry.py:\n" + "\n".join(hits)
