"""The shape of configs/experiment and configs/recipe: experiments are small diffs headed by their
purpose and the command that runs them, they leave the device to trainer=auto, and the stance and
joint experiments each pick one recipe from a family whose files set the same keys."""

from __future__ import annotations

import pytest
import yaml
from omegaconf import OmegaConf

from kazakh_ner_stance.config import CONFIG_DIR, compose

EXPERIMENT_FILES = sorted((CONFIG_DIR / "experiment").glob("*.yaml"))
RECIPE_FILES = sorted((CONFIG_DIR / "recipe").glob("*.yaml"))
ALIASES = {"kaznerd_e5_small_cpu": "kaznerd_ner_e5_small",
           "kaznerd_stance_e5_small_cpu": "kaznerd_stance_e5_small"}


def _recipe_of(path) -> str | None:
    defaults = yaml.safe_load(path.read_text(encoding="utf-8")).get("defaults") or []
    picked = [d["/recipe"] for d in defaults if isinstance(d, dict) and "/recipe" in d]
    assert len(picked) <= 1, f"{path.name} picks {len(picked)} recipes"
    return picked[0] if picked else None


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: p.stem)
def test_an_experiment_is_its_purpose_its_command_and_its_overrides(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# @package _global_"
    assert lines[1].startswith("# ") and len(lines[1]) <= 120
    if path.stem in ALIASES:
        assert lines[2:] == [f"defaults: [{ALIASES[path.stem]}]"]
        return
    assert lines[2] == f"#   python scripts/train.py experiment={path.stem}"
    # Measured figures and history live in docs/recipes.md, not in comments here.
    assert not [line for line in lines[3:] if line.lstrip().startswith("#")]
    assert "/trainer" not in path.read_text(encoding="utf-8")  # the device comes from trainer=auto


@pytest.mark.parametrize("alias, name", sorted(ALIASES.items()))
def test_old_experiment_names_compose_to_the_new_ones(alias, name):
    assert compose("train", [f"experiment={alias}"]) == compose("train", [f"experiment={name}"])


@pytest.mark.parametrize("path", [p for p in EXPERIMENT_FILES if p.stem not in ALIASES], ids=lambda p: p.stem)
def test_stance_and_joint_experiments_pick_a_recipe_of_their_task(path):
    cfg = compose("train", [f"experiment={path.stem}"])
    recipe = _recipe_of(path)
    assert cfg.run_name == path.stem
    if cfg.task.name == "ner":
        assert recipe is None
    else:
        assert recipe is not None and (recipe.startswith("joint_") == (cfg.task.name == "joint"))


def test_every_recipe_is_used_and_every_stance_recipe_sets_the_same_keys():
    used = {_recipe_of(p) for p in EXPERIMENT_FILES}
    assert {p.stem for p in RECIPE_FILES} <= used
    for path in RECIPE_FILES:
        assert path.read_text(encoding="utf-8").startswith("# @package _global_\n")
        task = OmegaConf.load(path).task
        keys = {"extra_train", "sampler", "class_balance"} | ({"train_on_target"} if "joint" not in path.stem else set())
        assert keys <= set(task), f"{path.name} leaves {keys - set(task)} to the task defaults"
        assert "dir" in task.extra_train and "kind" in task.sampler


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: p.stem)
def test_a_recipe_swaps_into_an_experiment_of_its_task(path):
    experiment = "kaznerd_joint_e5_small" if path.stem.startswith("joint_") else "kaznerd_stance_e5_small"
    cfg = compose("train", [f"experiment={experiment}", f"recipe={path.stem}"])
    recipe = OmegaConf.load(path).task
    assert cfg.task.class_balance == recipe.class_balance and cfg.task.sampler.kind == recipe.sampler.kind
    assert OmegaConf.missing_keys(cfg.task) == set()
