"""Hydra/OmegaConf plumbing shared by every verb and by the tests."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from .tasks.options import register_task_schemas

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def project_root() -> Path:
    """The checkout the user works in: $KNS_PROJECT_ROOT, else the nearest parent of the
    working directory that holds this project's pyproject.toml, else the working directory.

    Relative paths in configs (artifacts/, ../shared) hang off this, so a run started from a
    sub-folder of the checkout still finds the shared data and writes where the README says."""
    env = os.environ.get("KNS_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "kazakh-ner-stance"' in pyproject.read_text(encoding="utf-8"):
            return folder
    return here


def device_preset() -> str:
    """What `trainer=auto` resolves to: "gpu" when torch sees a CUDA device, else "cpu".

    A resolver, so the choice is made while the config is composed and every later override
    (an experiment's trainer.args, the command line's) lands on the chosen preset's keys."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("kns.project_root"):
        OmegaConf.register_new_resolver("kns.project_root", lambda: str(project_root()))
    if not OmegaConf.has_resolver("kns.device_preset"):
        # Not cached: tests monkeypatch torch.cuda.is_available between compositions.
        OmegaConf.register_new_resolver("kns.device_preset", device_preset, use_cache=False)


register_resolvers()
# Before any compose: configs/task/*.yaml name their schema (task/<name>_schema) in the defaults.
register_task_schemas()


def compose(config_name: str, overrides: list[str] | None = None):
    """Compose a config the way the command line would (used by tests and notebooks)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []), return_hydra_config=False)
