"""The task registry: ner, stance and joint, each declared once.

Every verb (train, evaluate, predict, publish, compare, the cards and reports) asks this module
about a task instead of comparing task names: `task_spec(name)` gives its `TaskSpec`, and
`metric_kind(metrics)` tells how a metrics.json (or one part of it) is read. Import-light on
purpose (no torch, no transformers): the leaderboard, the card validator and the report read
it; the heavy pieces a spec names (training class, checkpoint loader, evaluator, publish
verifier) are "module:attribute" strings imported only when `load` is called.

Two levels, because three tasks produce two kinds of scores:

- a **metric kind** is one way of scoring: `ner` (strict IOB2 entities over sentences; micro
  F1 ranks) or `stance` (NONE/FAVOR/AGAINST over target items; macro-F1 ranks). A metrics.json
  records its kind in its `task` field;
- a **task** is what is trained and released. Its evaluation is one metric kind (ner, stance)
  or several named parts (joint: `ner`, `stance` on the gold targets, `stance_end_to_end`).

Adding a task: write its class in `tasks/` (subclass `tasks.base.Task`), its checkpoint loader,
evaluator and publish verifier, a `configs/task/NAME.yaml` and a data config, then one
`TaskSpec` entry in `TASKS` below. The shared suite in tests/test_task_contract.py then trains,
saves, loads, evaluates, predicts and dry-run publishes it (README: "Adding a task").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import KnsError


@dataclass(frozen=True)
class CardMetric:
    """One headline number of a metric kind, for the model card's model-index and tables."""

    metric_type: str  # model-index metric type (f1, precision, recall, accuracy)
    label: str  # what the card calls it
    path: tuple[str, ...]  # where it sits in metrics.json


@dataclass(frozen=True)
class MetricKind:
    """How one kind of metrics.json is read, ranked, summarised and rendered."""

    name: str
    unit: str  # what `n_sentences` counts in this kind's metrics.json
    headline: tuple[str, ...]  # path of the ranking metric (its CI sits beside it as `<key>_ci`)
    headline_label: str
    card_metrics: tuple[CardMetric, ...]
    # Rendering, as "module:function" (evaluation/report.py, evaluation/compare.py).
    report_blocks: str  # (metrics, plots_dir, plots_subdir) -> report blocks
    report_title: str
    summary: str  # (metrics) -> the short text printed after an evaluation
    leaderboard: str  # "module:attribute" of a LeaderboardColumns
    card_tables: str  # (metrics, heading level) -> the model card's tables for this kind
    plot_color: str = "#5b7db8"


@dataclass(frozen=True)
class TaskSpec:
    """Everything a verb needs to know about one task."""

    name: str
    title: str  # "named-entity recognition"
    training_class: str  # "module:Class", a tasks.base.Task
    checkpoint_loader: str  # "module:function": (path, device=None, cpu_linear="torch") -> (model, tokenizer, extra)
    # "module:function": (cfg, checkpoint dir, training info) -> (metrics.json dict, extra files
    # {name: text} written beside it such as predictions.tsv, default output folder name).
    evaluator: str
    publish_verifier: str  # "module:attribute" of a publish.verification.ReleaseVerifier: re-scores a release
    # Metric kind of the evaluation: one name, or {part name: kind} for a multi-part task.
    metrics: str | Mapping[str, str]
    part_titles: Mapping[str, str] = field(default_factory=dict)  # part -> title in cards and reports
    dataset_config: str = ""  # the `data=` config that builds what it trains on
    pipeline_tag: str = "token-classification"  # model card / hub pipeline
    card_tags: tuple[str, ...] = ()
    dataset_categories: tuple[str, ...] = ()  # dataset card task_categories
    dataset_task_ids: tuple[str, ...] = ()  # dataset card task_ids
    # The checkpoint's model_type when it is defined by this package (the card says to install it);
    # a function "module:function" (training info's task config) -> model_type or None.
    custom_model_type: str | None = None
    # What a single evaluation file of this task's data holds (report tables), per unit.
    predicts_entities: bool = False  # finds entities itself (its output has NER tags)
    predicts_stance: bool = False  # gives stance toward targets

    @property
    def parts(self) -> dict[str, str]:
        """{part: metric kind}; empty for a single-kind task."""
        return dict(self.metrics) if isinstance(self.metrics, Mapping) else {}

    @property
    def metric_kind(self) -> MetricKind | None:
        """The metric kind of a single-kind task (None for a multi-part one)."""
        return None if self.parts else METRIC_KINDS[str(self.metrics)]

    def load(self, attribute: str) -> Any:
        """Import one of this spec's "module:attribute" members (`training_class`, ...)."""
        return load_object(getattr(self, attribute))


def load_object(dotted: str) -> Any:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


_REPORT = "kazakh_ner_stance.evaluation.report"
_COMPARE = "kazakh_ner_stance.evaluation.compare"
_CARD = "kazakh_ner_stance.cards.model_card_results"

METRIC_KINDS: dict[str, MetricKind] = {
    kind.name: kind
    for kind in (
        MetricKind(
            name="ner", unit="sentences", headline=("micro", "f1"), headline_label="micro F1",
            card_metrics=(
                CardMetric("f1", "micro F1 (strict IOB2 entities)", ("micro", "f1")),
                CardMetric("precision", "micro precision (strict IOB2 entities)", ("micro", "precision")),
                CardMetric("recall", "micro recall (strict IOB2 entities)", ("micro", "recall")),
                CardMetric("f1", "macro F1 over entity types", ("macro", "f1")),
                CardMetric("accuracy", "token accuracy", ("token_accuracy",)),
            ),
            report_blocks=f"{_REPORT}:ner_blocks", report_title="NER evaluation report",
            summary=f"{_REPORT}:ner_summary_text", leaderboard=f"{_COMPARE}:NER_COLUMNS",
            card_tables=f"{_CARD}:ner_tables",
            plot_color="#5b7db8",
        ),
        MetricKind(
            name="stance", unit="items", headline=("macro", "f1"), headline_label="macro-F1",
            card_metrics=(
                CardMetric("f1", "macro F1 (FAVOR, AGAINST, NONE)", ("macro", "f1")),
                CardMetric("f1", "F_avg (mean F1 of FAVOR and AGAINST)", ("f_avg", "value")),
                CardMetric("accuracy", "accuracy", ("accuracy",)),
            ),
            report_blocks=f"{_REPORT}:stance_blocks", report_title="Stance evaluation report",
            summary=f"{_REPORT}:stance_summary_text", leaderboard=f"{_COMPARE}:STANCE_COLUMNS",
            card_tables=f"{_CARD}:stance_tables",
            plot_color="#c0504d",
        ),
    )
}

_EVAL = "kazakh_ner_stance.evaluation.run"
_PUBLISH = "kazakh_ner_stance.publish"

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="ner", title="named-entity recognition",
            training_class="kazakh_ner_stance.tasks.ner:NerTask",
            checkpoint_loader="kazakh_ner_stance.tasks.ner:load_ner_checkpoint",
            evaluator=f"{_EVAL}:evaluate_ner_run", publish_verifier=f"{_PUBLISH}.ner_verification:verify_ner_release",
            metrics="ner", dataset_config="kaznerd", pipeline_tag="token-classification",
            card_tags=("ner", "named-entity-recognition"),
            dataset_categories=("token-classification",), dataset_task_ids=("named-entity-recognition",),
            predicts_entities=True,
        ),
        TaskSpec(
            name="stance", title="stance detection",
            training_class="kazakh_ner_stance.tasks.stance:StanceTask",
            checkpoint_loader="kazakh_ner_stance.tasks.stance:load_stance_checkpoint",
            evaluator=f"{_EVAL}:evaluate_stance_run", publish_verifier=f"{_PUBLISH}.stance_verification:verify_stance_release",
            metrics="stance", dataset_config="kaznerd_stance", pipeline_tag="text-classification",
            card_tags=("stance-detection",), dataset_categories=("text-classification",),
            custom_model_type="kazakh_ner_stance.tasks.stance:custom_model_type",
            predicts_stance=True,
        ),
        TaskSpec(
            name="joint", title="joint NER and stance",
            training_class="kazakh_ner_stance.tasks.joint:JointTask",
            checkpoint_loader="kazakh_ner_stance.tasks.joint:load_joint_checkpoint",
            evaluator=f"{_EVAL}:evaluate_joint_run", publish_verifier=f"{_PUBLISH}.joint_verification:verify_joint_release",
            metrics={"ner": "ner", "stance": "stance", "stance_end_to_end": "stance"},
            part_titles={"ner": "NER", "stance": "stance on the gold targets",
                         "stance_end_to_end": "stance end to end (targets found by its own NER)"},
            dataset_config="kaznerd_joint", pipeline_tag="token-classification",
            card_tags=("ner", "stance-detection"),
            dataset_categories=("token-classification", "text-classification"),
            dataset_task_ids=("named-entity-recognition",),
            custom_model_type="kazakh_ner_stance.tasks.joint:custom_model_type",
            predicts_entities=True, predicts_stance=True,
        ),
    )
}


def task_spec(name) -> TaskSpec:
    """The spec of task `name`, or a KnsError listing the registered ones."""
    try:
        return TASKS[str(name)]
    except KeyError:
        raise KnsError(f"unknown task {name!r}; the registered tasks are {sorted(TASKS)}") from None


def task_with(entities: bool, stance: bool) -> TaskSpec | None:
    """The registered task whose model finds entities and/or gives stance (both: one model that
    does both), by its `predicts_entities` / `predicts_stance` flags; None when none does."""
    return next((s for s in TASKS.values() if (s.predicts_entities, s.predicts_stance) == (entities, stance)), None)


def metric_kind(metrics: Mapping) -> MetricKind:
    """The metric kind of a single-kind metrics.json (or of one part of a multi-part one)."""
    name = metrics.get("task")
    if name in METRIC_KINDS:
        return METRIC_KINDS[name]
    if metrics.get("parts"):
        raise KnsError(f"a {name!r} evaluation has parts {sorted(metrics['parts'])}; read each part "
                       "(metric_parts) rather than the whole")
    raise KnsError(f"metrics with task {name!r}: not a known kind of scores ({sorted(METRIC_KINDS)})")


def _at(m: Mapping, path: tuple[str, ...]):
    for key in path:
        if not isinstance(m, Mapping):
            return None
        m = m.get(key)
    return m


def metric_value(m: Mapping, path: tuple[str, ...]):
    """The number at `path` in a metrics dict (None when absent)."""
    return _at(m, path)


def headline(metrics: Mapping) -> tuple[float | None, list | None]:
    """(value, bootstrap CI) of the metric that ranks a single-kind metrics.json: NER micro F1,
    stance macro-F1. The one place that knows which number is the headline."""
    kind = metric_kind(metrics)
    *head, key = kind.headline
    group = _at(metrics, tuple(head)) if head else metrics
    if not isinstance(group, Mapping):
        return None, None
    return group.get(key), group.get(f"{key}_ci")


def metric_parts(metrics: Mapping, task: str | None = None) -> list[tuple[str | None, str | None, Mapping]]:
    """(part name, title, metrics) per evaluated head: one untitled part for a single-kind
    evaluation, one per part of a multi-part one (metrics.json's `parts`), titled by the task."""
    parts = metrics.get("parts")
    if not parts:
        return [(None, None, metrics)]
    spec = TASKS.get(str(task or metrics.get("task")))
    titles = spec.part_titles if spec else {}
    return [(name, titles.get(name, name), part) for name, part in parts.items()]
