"""Training: train/save/load/predict on a tiny model, determinism, resume, DDP, configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kazakh_ner_stance.config import CONFIG_DIR, compose
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.training.train import run_train

ROOT = Path(__file__).resolve().parent.parent


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


def test_train_save_load_predict(train_overrides, tiny_ner_dataset, tmp_path):
    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.tasks.ner import load_ner_checkpoint, predict_word_tags

    cfg = compose("train", train_overrides)
    dev_f1 = run_train(cfg)
    # The returned dev F1 is the one written to metrics/validation.json (a wrong key or the
    # 0.0 fallback would differ); it is re-derived from the saved model below.
    validation = json.loads((Path(cfg.run_dir) / "metrics" / "validation.json").read_text())
    assert dev_f1 == validation["f1"]
    run = Path(cfg.run_dir)
    model_dir = run / "model"
    info = json.loads((model_dir / "kns_training.json").read_text())
    assert info["task"] == "ner" and info["data_fingerprint"]
    assert info["config"]["trainer"]["preset"] == "debug"
    assert "commit" in info["git"]
    assert not (model_dir / "training_args.bin").exists()  # nothing to unpickle in a release
    for split in ("train", "validation", "test"):
        assert (run / "metrics" / f"{split}.json").is_file()

    model, tokenizer, id2label = load_ner_checkpoint(model_dir)
    ds = load_built_dataset(tiny_ner_dataset)
    names = ds["train"].features["ner_tags"].feature.names
    assert [id2label[i] for i in range(len(names))] == names  # label map saved in the checkpoint
    tokens = list(ds["test"]["tokens"]) + [[], ["жалғыз"], ["сөз"] * 200]  # empty and very long input
    tags = predict_word_tags(model, tokenizer, tokens, max_length=24, overlap=6)
    assert [len(t) for t in tags] == [len(t) for t in tokens]  # one tag per gold word, always
    assert all(t in names for sent in tags for t in sent)
    # Re-score the saved model on the validation split with seqeval itself: it must give the
    # numbers the run recorded (catches saving a model other than the one scored, or scoring
    # another split; token accuracy is not 0 here even when the 6-step model's F1 is).
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    gold = [[names[i] for i in s] for s in ds["validation"]["ner_tags"]]
    pred = predict_word_tags(model, tokenizer, ds["validation"]["tokens"], max_length=24, overlap=6,
                             decoding=str(cfg.task.decoding))  # as the run scored (a CRF head's scores too)
    assert dev_f1 == pytest.approx(f1_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0), abs=1e-9)
    pairs = [(g, p) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps)]
    assert validation["token_accuracy"] == pytest.approx(sum(g == p for g, p in pairs) / len(pairs), abs=1e-9)


@pytest.mark.slow
def test_tiny_model_memorises_its_train_split(train_overrides, tiny_ner_dataset):
    """A floor a broken training loop would miss: the 6-step debug run scores F1 0.0, so its
    tests cannot tell learning from noise. 80 steps (~2.7 epochs of the 40 train sentences)
    measured train F1 0.789 and token accuracy 0.934 (twice, same values); labels shifted
    against the pieces, a dead optimiser or a lost label map stay near F1 0 / accuracy 0.56."""
    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.tasks.ner import entity_scores, load_ner_checkpoint, predict_word_tags

    cfg = compose("train", train_overrides + [
        "trainer.args.max_steps=80", "trainer.args.learning_rate=5e-3", "trainer.args.eval_steps=80",
        "trainer.args.save_steps=80", "trainer.args.report_to=[]", "evaluate_test=false",
    ])
    run_train(cfg)
    model, tokenizer, id2label = load_ner_checkpoint(Path(cfg.run_dir) / "model")
    train = load_built_dataset(tiny_ner_dataset)["train"]
    gold = [[id2label[i] for i in s] for s in train["ner_tags"]]
    m = entity_scores(gold, predict_word_tags(model, tokenizer, train["tokens"], max_length=24, overlap=6))
    assert m["f1"] >= 0.5 and m["token_accuracy"] >= 0.85, m


def test_same_seed_gives_same_metrics_and_weights(train_overrides, tmp_path):
    a = compose("train", train_overrides + [f"run_dir={tmp_path / 'a'}"])
    b = compose("train", train_overrides + [f"run_dir={tmp_path / 'b'}"])
    run_train(a)
    run_train(b)
    for split in ("validation", "test"):
        ma = json.loads((tmp_path / "a" / "metrics" / f"{split}.json").read_text())
        mb = json.loads((tmp_path / "b" / "metrics" / f"{split}.json").read_text())
        assert ma == mb
    wa, wb = _weights(tmp_path / "a" / "model"), _weights(tmp_path / "b" / "model")
    assert all((wa[k] == wb[k]).all() for k in wa)


def test_resume_after_kill_matches_uninterrupted_run(train_overrides, tmp_path, monkeypatch):
    import transformers

    common = train_overrides
    full = compose("train", common + [f"run_dir={tmp_path / 'full'}"])
    run_train(full)

    killed = compose("train", common + [f"run_dir={tmp_path / 'killed'}"])
    original_step = transformers.Trainer.training_step

    def dying_step(self, *args, **kwargs):
        if self.state.global_step == 4:  # after checkpoint-3 was saved
            raise KeyboardInterrupt("simulated kill")
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "training_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        run_train(killed)
    monkeypatch.setattr(transformers.Trainer, "training_step", original_step)
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert (checkpoints / "checkpoint-3" / "kns_complete.json").is_file()
    assert not (tmp_path / "killed" / "model").exists()  # no final model from a killed run
    # A checkpoint folder half-written when the process died: must be ignored, not resumed.
    partial = checkpoints / "checkpoint-5"
    partial.mkdir()
    (partial / "config.json").write_text("{}")

    with pytest.raises(KnsError, match="already holds a run"):
        run_train(killed)
    resumed = compose("train", common + [f"run_dir={tmp_path / 'killed'}", "trainer.resume=true"])
    run_train(resumed)
    assert not partial.exists()
    wf, wr = _weights(tmp_path / "full" / "model"), _weights(tmp_path / "killed" / "model")
    assert set(wf) == set(wr)
    for k in wf:
        assert (wf[k] - wr[k]).abs().max().item() < 1e-5, k
    mf = json.loads((tmp_path / "full" / "metrics" / "test.json").read_text())
    mr = json.loads((tmp_path / "killed" / "metrics" / "test.json").read_text())
    assert mf["f1"] == pytest.approx(mr["f1"], abs=1e-6)


def test_early_stopping_without_evaluation_is_skipped_with_a_warning(train_overrides, tmp_path, caplog):
    # transformers' EarlyStoppingCallback asserts on eval_strategy=no; we warn and train on.
    cfg = compose("train", train_overrides + [f"run_dir={tmp_path / 'r'}", "trainer.early_stopping_patience=2",
                                              "trainer.args.eval_strategy=no", "trainer.args.save_strategy=no"])
    with caplog.at_level("WARNING"):
        run_train(cfg)
    assert (tmp_path / "r" / "model" / "kns_training.json").is_file()
    assert "early_stopping_patience=2 ignored" in caplog.text


def test_refit_trains_on_train_and_dev_and_keeps_the_last_weights(train_overrides, tiny_ner_dataset, tmp_path):
    """Issue 25's refit: dev joins training, nothing is selected on it (no dev evaluation while
    training, no best-checkpoint reload) and its scores are labelled as seen."""
    from kazakh_ner_stance.data.built_dataset import load_built_dataset

    cfg = compose("train", train_overrides + [f"run_dir={tmp_path / 'r'}", "refit=true",
                                              "trainer.early_stopping_patience=2"])
    run_train(cfg)
    run = tmp_path / "r"
    summary = json.loads((run / "summary.json").read_text())
    ds = load_built_dataset(tiny_ner_dataset)
    assert summary["train_sentences"] == len(ds["train"]) + len(ds["validation"])
    assert summary["dev_curve"] == [] and summary["best_dev"] is None
    validation = json.loads((run / "metrics" / "validation.json").read_text())
    assert validation["seen_in_training"] is True
    assert "seen_in_training" not in json.loads((run / "metrics" / "test.json").read_text())
    # The saved model is the last step's weights: the last checkpoint's.
    last = max((run / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    wm, wc = _weights(run / "model"), _weights(last)
    assert all((wm[k] == wc[k]).all() for k in wc)


def test_missing_prepared_model_names_the_command(train_overrides, tmp_path):
    cfg = compose("train", train_overrides + ["model=e5_small_offline", f"model.path={tmp_path / 'nope'}"])
    with pytest.raises(KnsError, match="prepare_model.py model=e5_small_offline"):
        run_train(cfg)


def test_unknown_trainer_option_is_a_clear_error(train_overrides):
    cfg = compose("train", train_overrides + ["+trainer.learning_rate=0.1"])
    with pytest.raises(KnsError, match="trainer.args"):
        run_train(cfg)


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_composes(experiment):
    cfg = compose("train", [f"experiment={experiment}"])
    assert cfg.run_name and cfg.model.name and cfg.task.name and cfg.trainer.preset


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONFIG_DIR / "trainer").glob("*.yaml")))
def test_every_trainer_preset_composes(preset):
    cfg = compose("train", [f"trainer={preset}"])
    # trainer=auto becomes the preset it picks (tests/test_main_job.py checks both ways).
    assert cfg.trainer.preset == (("gpu" if torch.cuda.is_available() else "cpu") if preset == "auto" else preset)
    if preset in ("cpu", "debug"):  # GPU presets need CUDA to build TrainingArguments
        from kazakh_ner_stance.training.train import _training_args

        _training_args(cfg, Path("/tmp/unused"), "f1")


def test_sweep_config_composes_with_optuna_and_slurm():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose("train", ["hparams_search=kaznerd_optuna", "experiment=kaznerd_ner_e5_small"])
    assert cfg.run_name.startswith("sweep_")
    from hydra import initialize_config_dir
    from hydra import compose as hcompose
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        full = hcompose("train", ["hparams_search=kaznerd_optuna", "hydra/launcher=slurm"], return_hydra_config=True)
    assert "OptunaSweeper" in full.hydra.sweeper._target_
    assert "params" in full.hydra.sweeper and full.hydra.launcher.gpus_per_node == 1


@pytest.mark.slow
def test_ddp_two_cpu_processes(train_overrides, tmp_path):
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561",
           str(ROOT / "scripts" / "train.py"), *[o for o in train_overrides if not o.startswith("run_dir=")],
           f"run_dir={run_dir}", "+trainer.args.ddp_backend=gloo"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = sorted((run_dir / "ranks").glob("rank-*.json"))
    assert [json.loads(p.read_text())["process_index"] for p in ranks] == [0, 1]
    assert all(json.loads(p.read_text())["global_step"] == 6 for p in ranks)
    assert json.loads((run_dir / "summary.json").read_text())["world_size"] == 2
    assert (run_dir / "model" / "kns_complete.json").is_file()
    assert len(list(run_dir.glob("model*"))) == 1  # one final checkpoint, no stray temp folders
