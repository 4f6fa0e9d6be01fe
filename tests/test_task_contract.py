"""The shared model-kind suite (Flair's pattern): every registered task, one contract.

Parametrised over `sorted(TASKS)` and the model kinds that are a task's option (`ner-linear`:
NER with task.head=linear, no CRF): registering a task in `tasks/registry.py` gives it these
tests. Each kind trains ONE tiny model (trainer=debug, the tiny random encoder, a tiny fixture
dataset of that task) through the `train` verb, then the same checkpoint goes through the other
verbs as a user would run them:

1. train: the checkpoint folder holds config.json with id2label and kns_training.json naming
   the task, and the spec's checkpoint loader loads it;
2. evaluate (`run_evaluate`, the `evaluate` config): metrics.json is read through the registry
   (`metric_kind`, `headline`; every declared part for a multi-part task), and each headline is
   the value the training run itself recorded for the same model on the same split
   (run_dir/metrics/test.json);
3. predict (`Predictor.from_pretrained`): a normal sentence, an empty input and a 300-word input
   give one output each, and every word of the long input is predicted;
4. publish (dry run): the release is staged, verified, and its card names the task.

A task without a recipe below FAILS (test_every_task_has_a_fixture_recipe) and its other tests
error with the same message: add a recipe (a tiny dataset builder, the overrides that keep the
run to seconds, and where its training run records each headline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.tasks.registry import TASKS, headline, metric_kind, task_spec

TASK_NAMES = sorted(TASKS)
STANCE_LABELS = ["NONE", "FAVOR", "AGAINST"]
SENTENCE = "Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады."
LONG_WORDS = ["Тоқаев", "Астанада", "жиналыс", "өткізді", "және", "Алматы"] * 50  # 300 words, no full stop
LONG_TEXT = " ".join(LONG_WORDS)


def _word_span(i: int) -> list[int]:
    """[char_start, char_end) of word i of LONG_TEXT."""
    start = len(" ".join(LONG_WORDS[:i])) + (1 if i else 0)
    return [start, start + len(LONG_WORDS[i])]


# --------------------------------------------------------------------------- recipes


def _ner_data(request, base: Path) -> Path:
    return request.getfixturevalue("tiny_ner_dataset")


def _stance_data(request, base: Path) -> Path:
    from kazakh_ner_stance.testing import save_stance_dataset

    return save_stance_dataset(base / "stance_tiny")


def _joint_data(request, base: Path) -> Path:
    from test_task_joint import save_joint_dataset

    return save_joint_dataset(base / "joint_tiny")


@dataclass(frozen=True)
class Recipe:
    """How a task's tiny run is made: its dataset, the overrides that shrink it, and where its
    run records each headline (metrics/test.json key per part; None: the single-kind task)."""

    dataset: Callable[..., Path]  # (pytest request, a scratch folder) -> built dataset folder
    overrides: tuple[str, ...] = ()
    recorded: dict = field(default_factory=dict)
    task: str | None = None  # the registered task, for a model kind that is a variant of one (None: same name)


RECIPES: dict[str, Recipe] = {
    "ner": Recipe(_ner_data, ("task.max_length=24", "task.window_overlap=6"), {None: "f1"}),
    "stance": Recipe(_stance_data, ("task.max_length=48", "task.bootstrap_n=0"), {None: "macro_f1"}),
    "joint": Recipe(_joint_data, ("task.max_length=24", "task.window_overlap=6", "task.bootstrap_n=0"),
                    {"ner": "ner_f1", "stance": "macro_f1", "stance_end_to_end": "e2e_macro_f1"}),
    # A model kind that is a task's option: NER without the CRF head (`ner` has one by default).
    "ner-linear": Recipe(_ner_data, ("task.max_length=24", "task.window_overlap=6", "task.head=linear"),
                         {None: "f1"}, task="ner"),
}
KINDS = TASK_NAMES + sorted(k for k, r in RECIPES.items() if r.task is not None)


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        pytest.fail(f"task {name!r} is registered in tasks/registry.py but has no fixture recipe: add one to "
                    "RECIPES in tests/test_task_contract.py (a tiny dataset builder, overrides that keep its "
                    "training to seconds, and the metrics/test.json key of each headline)", pytrace=False)
    return RECIPES[name]


# --------------------------------------------------------------------------- one run per task


@dataclass
class Run:
    name: str  # the registered task
    kind: str  # the recipe's key: the task, or a variant of it
    data: Path
    run_dir: Path
    model: Path
    base: Path


@pytest.fixture(scope="module", params=KINDS)
def trained(request, tiny_encoder, tmp_path_factory) -> Run:
    """The task's tiny model, trained once for the module through the `train` verb."""
    from kazakh_ner_stance.training.train import run_train

    recipe = _recipe(request.param)
    name = recipe.task or request.param
    spec = task_spec(name)
    base = tmp_path_factory.mktemp(f"contract_{request.param}")
    data = Path(recipe.dataset(request, base))
    run_dir = base / "run"
    run_train(compose("train", [
        f"task={name}", f"data={spec.dataset_config}", "model=local", f"model.path={tiny_encoder}",
        f"data.dataset_dir={data}", "trainer=debug", f"run_dir={run_dir}",
        f"paths.artifacts_dir={base / 'artifacts'}", *recipe.overrides,
    ]))
    return Run(name, request.param, data, run_dir, run_dir / "model", base)


@pytest.fixture(scope="module")
def evaluated(trained) -> dict:
    """`run_evaluate` on the test split of the data it was trained on: metrics.json's path and content."""
    from kazakh_ner_stance.evaluation.run import run_evaluate

    spec = task_spec(trained.name)
    out = trained.base / "eval_test"
    run_evaluate(compose("evaluate", [
        f"checkpoint={trained.model}", f"data={spec.dataset_config}", f"dataset_dir={trained.data}",
        "split=test", f"out_dir={out}", "bootstrap.n=50", f"paths.artifacts_dir={trained.base / 'artifacts'}",
    ]))
    path = out / "metrics.json"
    return {"path": path, "metrics": json.loads(path.read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def predictor(trained):
    from kazakh_ner_stance.predict import Predictor

    return Predictor.from_pretrained(trained.model)


# --------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_has_a_fixture_recipe(name):
    _recipe(name)
    assert task_spec(name).dataset_config, f"task {name!r} declares no dataset_config"


def test_a_task_without_a_recipe_fails_saying_what_to_add():
    with pytest.raises(pytest.fail.Exception, match="has no fixture recipe: add one to RECIPES"):
        _recipe("pos")


def test_checkpoint_records_task_and_labels_and_loads(trained):
    from datasets import load_from_disk

    spec = task_spec(trained.name)
    config = json.loads((trained.model / "config.json").read_text(encoding="utf-8"))
    id2label = {int(k): v for k, v in (config.get("id2label") or {}).items()}
    assert id2label and sorted(id2label) == list(range(len(id2label))), config.get("id2label")
    info = json.loads((trained.model / "kns_training.json").read_text(encoding="utf-8"))
    assert info["task"] == trained.name

    split = load_from_disk(str(trained.data))["train"]
    if spec.predicts_entities:  # the tags it finds are the dataset's NER tags
        assert list(id2label.values()) == split.features["ner_tags"].feature.names
    else:  # stance only: the stance labels
        assert list(id2label.values()) == STANCE_LABELS

    model, tokenizer, extra = spec.load("checkpoint_loader")(trained.model)
    assert not model.training  # ready for inference
    assert {int(k): v for k, v in model.config.id2label.items()} == id2label
    assert tokenizer(["Астана"], is_split_into_words=True)["input_ids"]


def test_evaluation_reads_through_the_registry_and_matches_the_run(trained, evaluated):
    spec = task_spec(trained.name)
    m = evaluated["metrics"]
    recorded = json.loads((trained.run_dir / "metrics" / "test.json").read_text(encoding="utf-8"))
    recipe = _recipe(trained.kind)
    if spec.parts:
        assert m["task"] == trained.name
        assert set(m.get("parts") or {}) == set(spec.parts), "every declared part is evaluated"
        assert set(recipe.recorded) == set(spec.parts), "the recipe says where the run records each part"
        scored = {part: m["parts"][part] for part in spec.parts}
        for part, kind in spec.parts.items():
            assert metric_kind(scored[part]).name == kind, part
    else:
        assert metric_kind(m) is spec.metric_kind
        scored = {None: m}
    for part, pm in scored.items():
        value, ci = headline(pm)
        assert isinstance(value, float), (part, value)
        assert ci is not None and len(ci) == 2 and ci[0] <= ci[1], (part, ci)  # bootstrap.n=50
        # The same model on the same split: evaluate.py must report what the run recorded.
        want = recorded[recipe.recorded[part]]
        assert value == pytest.approx(want, abs=1e-9), (
            f"{trained.name} {part or ''}: evaluate.py headline {value} != the run's metrics/test.json "
            f"{recipe.recorded[part]}={want}")


def test_predictor_normal_empty_and_long_inputs(trained, predictor):
    spec = task_spec(trained.name)
    desc = predictor.describe()
    if spec.predicts_entities:
        inputs = [SENTENCE, "", LONG_TEXT]
    else:  # stance only: the targets are given (start, middle and last word of the long input)
        inputs = [{"text": SENTENCE, "targets": [[34, 40]]}, {"text": "", "targets": []},
                  {"text": LONG_TEXT, "targets": [_word_span(i) for i in (0, 150, 299)]}]
    recs = predictor(inputs)
    assert len(recs) == len(inputs), "one output per input"
    normal, empty, long = recs
    assert normal["tokens"] and empty["tokens"] == [] and empty["entities"] == [] and empty["targets"] == []
    assert [t["text"] for t in long["tokens"]] == LONG_WORDS and len(long["sentences"]) == 1

    if spec.predicts_entities:
        # The public record holds entity spans only; the per-word tags come from the Predictor's
        # own tagging step (the one __call__ runs): a tag for every word, past any window.
        tags, _, _ = predictor._predict_tags([LONG_WORDS], 8)
        assert len(tags[0]) == len(LONG_WORDS), "one NER tag per word of the long input"
        assert set(tags[0]) <= set(desc["ner_tags"])
        for rec in recs:
            for e in rec["entities"]:
                assert 0 <= e["token_start"] < e["token_end"] <= len(rec["tokens"])
                assert "B-" + e["type"] in desc["ner_tags"]
    else:
        assert [t["token_start"] for t in long["targets"]] == [0, 150, 299], "every given target is classified"
        assert [t["token_start"] for t in normal["targets"]] == [3]
    if spec.predicts_stance:
        for rec in recs:
            for t in rec["targets"]:
                assert t["label"] in desc["stance_labels"]
                assert sum(t["probs"].values()) == pytest.approx(1.0, abs=1e-4)
                assert 0 <= t["token_start"] < t["token_end"] <= len(rec["tokens"])


def test_publish_dry_run_writes_a_card_naming_the_task(trained, evaluated, tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    from kazakh_ner_stance.cards import validate_card_file
    from kazakh_ner_stance.publish import run_publish, targets, verify_release

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))

    def no_hub(*a, **k):
        raise AssertionError("a dry run built an HfApi")

    monkeypatch.setattr(targets, "HfApi", no_hub)
    spec = task_spec(trained.name)
    result = run_publish(compose("publish", [
        f"repo_id=kns-test/{trained.kind}-tiny", f"paths.artifacts_dir={tmp_path / 'artifacts'}",
        f"out_dir={tmp_path / 'release'}", "base_model=intfloat/multilingual-e5-small",
        f"checkpoint={trained.model}", f"metrics={evaluated['path']}", "dry_run=true",
    ]))
    assert result["dry_run"] is True
    folder = Path(result["folder"])
    meta = validate_card_file(folder / "README.md", "model")
    assert meta["pipeline_tag"] == spec.pipeline_tag
    assert set(spec.card_tags) <= set(meta.get("tags") or [])
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert f"Kazakh {spec.title}" in card, "the card names the task"
    assert ("This model has a CRF head" in card) == (trained.kind == "ner")  # the NER default
    assert json.loads((folder / "kns_training.json").read_text(encoding="utf-8"))["task"] == trained.name
    assert verify_release(folder)["kind"] == "model"
