"""The typed schema of the `task` config group (tasks/options.py): every option's value lives in
its YAML, the keys and types in the dataclass, and a misspelt key or a wrong type is a
composition error."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import MISSING, OmegaConf

from kazakh_ner_stance.config import CONFIG_DIR, compose
from kazakh_ner_stance.tasks.options import (
    TASK_SCHEMAS,
    JointTaskOptions,
    NerTaskOptions,
    SamplerOptions,
    StanceTaskOptions,
    register_task_schemas,
)
from kazakh_ner_stance.tasks.registry import TASKS

SCHEMA_OF = {"ner": NerTaskOptions, "stance": StanceTaskOptions, "joint": JointTaskOptions}
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def _schema_keys(schema) -> dict:
    """{field: nested keys or None} of a (nested) options dataclass."""
    out = {}
    for f in dataclasses.fields(schema):
        nested = _nested(schema, f.name)
        out[f.name] = _schema_keys(nested) if nested is not None else None
    return out


def _nested(schema, name):
    hint = typing.get_type_hints(schema)[name]
    return hint if dataclasses.is_dataclass(hint) else None


def _yaml_keys(node) -> dict:
    # Maps that are values (id2label, lang_weights), not option groups, are leaves.
    return {k: (_yaml_keys(v) if isinstance(v, dict) and k not in ("id2label", "lang_weights") else None)
            for k, v in node.items()}


def test_every_registered_task_has_a_schema():
    assert set(SCHEMA_OF) == set(TASKS)
    assert set(TASK_SCHEMAS) == {f"{name}_schema" for name in TASKS}


@pytest.mark.parametrize("name", sorted(SCHEMA_OF))
def test_the_schema_holds_no_values(name):
    """The value of an option lives only in configs/task/NAME.yaml: no dataclass default."""

    def check(schema):
        for f in dataclasses.fields(schema):
            assert f.default is MISSING and f.default_factory is dataclasses.MISSING, (schema.__name__, f.name)
            nested = _nested(schema, f.name)
            if nested is not None:
                check(nested)

    check(SCHEMA_OF[name])


@pytest.mark.parametrize("name", sorted(SCHEMA_OF))
def test_the_yaml_sets_every_field_of_its_schema(name):
    raw = OmegaConf.to_container(OmegaConf.load(Path(CONFIG_DIR) / "task" / f"{name}.yaml"), resolve=False)
    assert raw.pop("defaults") == [f"{name}_schema", "_self_"]
    assert _yaml_keys(raw) == _schema_keys(SCHEMA_OF[name])
    cfg = compose("train", [f"task={name}"])
    assert OmegaConf.missing_keys(cfg.task) == set()
    assert OmegaConf.get_type(cfg.task) is SCHEMA_OF[name]
    assert cfg.task.name == name


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_with_the_schema(experiment):
    cfg = compose("train", [f"experiment={experiment}"])
    assert OmegaConf.missing_keys(cfg.task) == set()
    assert OmegaConf.get_type(cfg.task) is SCHEMA_OF[str(cfg.task.name)]
    OmegaConf.to_container(cfg.task, resolve=True)  # every interpolation resolves


def test_overrides_of_every_shape_compose():
    cfg = compose("train", [
        "task=stance", "task.extra_train.dir=[a,b]", "task.sampler.lang_weights={kk:1,ru:1}",
        "task.class_weights=[1,2,3]", "task.warm_start.enabled=true", "task.extra_train.exclude_types=[PROFESSION]",
        "task.head_hidden=12", "task.init_from=/tmp/zero/model",
    ])
    t = cfg.task
    assert list(t.extra_train.dir) == ["a", "b"]
    assert dict(t.sampler.lang_weights) == {"kk": 1, "ru": 1}
    assert list(t.class_weights) == [1.0, 2.0, 3.0]
    assert t.warm_start.enabled is True and t.head_hidden == 12
    assert compose("train", ["task=stance", "task.extra_train.dir=/one/folder"]).task.extra_train.dir == "/one/folder"
    assert compose("train", ["task=stance", "task.class_weights=null"]).task.class_weights is None
    assert compose("train", ["task.max_length=64"]).task.max_length == 64


@pytest.mark.parametrize("override, message", [
    ("task.max_length=abc", "max_length"),                  # wrong type
    ("task.maxlength=3", "maxlength"),                      # unknown key
    ("task.label_all_subwords=maybe", "label_all_subwords"),
])
def test_a_wrong_type_or_an_unknown_key_is_a_composition_error(override, message):
    with pytest.raises(ConfigCompositionException, match=message):
        compose("train", [override])


@pytest.mark.parametrize("override", [
    "task.warm_start.learning_rate=fast", "task.sampler.epochsize=10", "task.bootstrap_n=1.5", "task.extra_train.seed=x",
])
def test_nested_stance_options_are_checked_too(override):
    with pytest.raises(ConfigCompositionException):
        compose("train", ["task=stance", override])


def test_registering_twice_changes_nothing():
    register_task_schemas()
    register_task_schemas()
    assert compose("train", ["task=ner"]).task.window_overlap == 32


def test_an_options_object_built_from_the_schema():
    """Code that takes a sub-config (make_sampler, load_extra_train) gets a full options object."""
    node = OmegaConf.structured(SamplerOptions(kind="balanced", lang_weights=None, class_power=0.5, epoch_size=None,
                                              augmented_share=None, contrast_share=None))
    assert OmegaConf.missing_keys(node) == set() and node.kind == "balanced"
    with pytest.raises(Exception):
        node.class_powr = 1.0
