"""Console verbs. Each Hydra `main` is a thin wrapper over a plain function that tests call."""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from . import config as _config  # noqa: F401  (registers the OmegaConf resolvers)
from .config import CONFIG_DIR
from .errors import KnsError

# An absolute path: works from a checkout, an editable install and an installed wheel alike.
CONFIG_PATH = str(CONFIG_DIR)

log = logging.getLogger(__name__)


def _run(fn, cfg: DictConfig):
    try:
        return fn(cfg)
    except KnsError as err:
        # A user-fixable problem: say what and where, no library traceback.
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="build_dataset")
def build_dataset_main(cfg: DictConfig) -> None:
    from .data.build import run_build_dataset

    _run(run_build_dataset, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="prepare_model")
def prepare_model_main(cfg: DictConfig) -> None:
    from .models.prepare import run_prepare_model

    _run(run_prepare_model, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def train_main(cfg: DictConfig):
    from .training.train import run_train

    if int(cfg.get("cv", {}).get("folds") or 0):
        from .evaluation.stance_cv import run_stance_cv

        return _run(run_stance_cv, cfg)
    # Returned so that Hydra's Optuna sweeper can optimise the objective.
    return _run(run_train, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def evaluate_main(cfg: DictConfig) -> None:
    from .evaluation.run import run_evaluate

    _run(run_evaluate, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="compare")
def compare_main(cfg: DictConfig) -> None:
    from .evaluation.compare import run_compare

    _run(run_compare, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="predict")
def predict_main(cfg: DictConfig) -> None:
    from .predict.command_line import run_predict

    _run(run_predict, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="export_onnx")
def export_onnx_main(cfg: DictConfig) -> None:
    from .onnx_export import run_export_onnx

    _run(run_export_onnx, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="publish")
def publish_main(cfg: DictConfig) -> None:
    from .publish import run_publish

    _run(run_publish, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="serve")
def serve_main(cfg: DictConfig) -> None:
    try:
        from .serve import run_serve
    except ImportError as err:
        print(f"error: the server needs the `serve` extra ({err.name} is missing): "
              "pip install 'kazakh-ner-stance[serve]'", file=sys.stderr)
        sys.exit(2)

    _run(run_serve, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="main_job")
def main_job_main(cfg: DictConfig) -> None:
    from .pipeline.main_job import run_main_job

    _run(run_main_job, cfg)
