"""Shared fixtures: a tiny built NER dataset and a tiny random encoder, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_ner_dataset(tmp_path_factory) -> Path:
    """The NER builder run on an invented 60-sentence IOB2 file (split 80/10/10)."""
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.data.build import run_build_dataset

    out = tmp_path_factory.mktemp("data") / "ner_tiny"
    cfg = compose("build_dataset", [f"data.source_dir={FIXTURES / 'ner_tiny'}", f"out_dir={out}", "progress=false"])
    run_build_dataset(cfg)
    return out


@pytest.fixture(scope="session")
def rusentne_tiny(tmp_path_factory) -> Path:
    """The RuSentNE builder run on the invented fixture CSVs (a quarter of train carved as dev)."""
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.data.download import sha256_file
    from kazakh_ner_stance.data.rusentne import run_build_rusentne

    source = FIXTURES / "rusentne"
    out = tmp_path_factory.mktemp("data") / "rusentne"
    cfg = compose("build_dataset", ["data=rusentne", f"data.source_dir={source}", f"out_dir={out}", "progress=false",
                                    "data.dev_share=0.25"])
    cfg.data.sha256 = {p.name: sha256_file(p) for p in source.glob("*.csv")}
    run_build_rusentne(cfg)
    return out


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    from kazakh_ner_stance.testing import save_tiny_encoder

    return save_tiny_encoder(tmp_path_factory.mktemp("models") / "tiny_encoder")


@pytest.fixture
def train_overrides(tiny_ner_dataset, tiny_encoder, tmp_path):
    """Overrides that shrink the training config to seconds on one CPU thread."""
    return [
        "model=local", f"model.path={tiny_encoder}", f"data.dataset_dir={tiny_ner_dataset}",
        "trainer=debug", f"run_dir={tmp_path / 'run'}", f"paths.artifacts_dir={tmp_path / 'artifacts'}",
        "task.max_length=24", "task.window_overlap=6",
    ]


@pytest.fixture(scope="session")
def tiny_ner_checkpoint(tiny_ner_dataset, tiny_encoder, tmp_path_factory) -> Path:
    """A tiny NER model trained for a few steps (windows of 24 pieces), shared by the
    predictor and ONNX tests."""
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.training.train import run_train

    run = tmp_path_factory.mktemp("tiny_ner_run") / "run"
    run_train(compose("train", [
        "model=local", f"model.path={tiny_encoder}", f"data.dataset_dir={tiny_ner_dataset}", "trainer=debug",
        f"run_dir={run}", f"paths.artifacts_dir={run.parent / 'artifacts'}", "task.max_length=24",
        "task.window_overlap=6", "evaluate_test=false",
    ]))
    return run / "model"


@pytest.fixture(scope="session")
def tiny_stance_checkpoint(tiny_encoder, tmp_path_factory) -> Path:
    """A tiny stance model (markers over the tiny encoder) trained for a few steps, shared by the
    predictor and server tests."""
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.testing import save_stance_dataset
    from kazakh_ner_stance.training.train import run_train

    base = tmp_path_factory.mktemp("tiny_stance")
    data = save_stance_dataset(base / "stance_tiny")
    run = base / "run"
    run_train(compose("train", [
        "task=stance", "data=kaznerd_stance", "model=local", f"model.path={tiny_encoder}",
        f"data.dataset_dir={data}", "trainer=debug", f"run_dir={run}", f"paths.artifacts_dir={base / 'artifacts'}",
        "task.max_length=48", "task.bootstrap_n=0", "evaluate_test=false",
    ]))
    return run / "model"
