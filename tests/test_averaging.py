"""Checkpoint weight averaging (issue 25): the primitive and train.py's average_last_checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.training.averaging import average_checkpoints, average_state_dicts
from kazakh_ner_stance.training.train import run_train


def _state(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(4, 3, generator=g), "half": torch.randn(5, generator=g).half(),
            "position_ids": torch.arange(6)}


def test_averaging_identical_checkpoints_is_the_identity(tmp_path):
    sd = _state(0)
    out = average_state_dicts([sd, sd, sd])
    assert all(torch.equal(out[k], sd[k]) and out[k].dtype == sd[k].dtype for k in sd)
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        save_file(sd, str(tmp_path / name / "model.safetensors"))
    from_files = average_checkpoints([tmp_path / n for n in ("a", "b", "c")])
    assert all(torch.equal(from_files[k], sd[k]) for k in sd)


def test_averaging_is_the_element_wise_mean(tmp_path):
    a, b = _state(1), _state(2)
    out = average_state_dicts([a, b])
    assert torch.allclose(out["w"], (a["w"] + b["w"]) / 2)
    assert torch.equal(out["position_ids"], a["position_ids"])  # integer buffers are kept, not averaged
    for name, sd in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        save_file(sd, str(tmp_path / name / "model.safetensors"))
    assert torch.allclose(average_checkpoints([tmp_path / "a", tmp_path / "b"])["w"], out["w"])


def test_averaging_refuses_checkpoints_of_different_models(tmp_path):
    a, b = _state(1), _state(2)
    with pytest.raises(KnsError, match="other weights"):
        average_state_dicts([a, {k: v for k, v in b.items() if k != "w"}])
    with pytest.raises(KnsError, match="shape"):
        average_state_dicts([a, {**b, "w": torch.zeros(3, 4)}])
    with pytest.raises(KnsError, match="not a floating-point"):
        average_state_dicts([a, {**b, "position_ids": torch.arange(6) + 1}])
    (tmp_path / "empty").mkdir()
    with pytest.raises(KnsError, match="no model.safetensors"):
        average_checkpoints([tmp_path / "empty"])


def test_train_averages_the_last_checkpoints_and_keeps_the_better_on_dev(train_overrides, tmp_path):
    """The debug preset saves every 3 steps of 6 with save_total_limit 3: two checkpoints to average.
    The saved model is either their mean or the trained (best) model, as metrics/averaging.json says."""
    cfg = compose("train", train_overrides + [f"run_dir={tmp_path / 'r'}", "trainer.average_last_checkpoints=2"])
    run_train(cfg)
    run = tmp_path / "r"
    record = json.loads((run / "metrics" / "averaging.json").read_text())
    assert record["averaged"] == ["checkpoint-3", "checkpoint-6"]
    assert record["kept"] in ("average", "trained")
    validation = json.loads((run / "metrics" / "validation.json").read_text())
    kept_dev = record["dev_f1_averaged"] if record["kept"] == "average" else record["dev_f1_trained"]
    assert validation["f1"] == pytest.approx(kept_dev)
    saved = load_file(str(run / "model" / "model.safetensors"))
    mean = average_checkpoints([run / "checkpoints" / c for c in record["averaged"]])
    same_as_mean = all(torch.allclose(saved[k].float(), mean[k].float()) for k in saved)
    assert same_as_mean == (record["kept"] == "average")
    assert "averaging_f1" not in json.loads((run / "summary.json").read_text())
