"""The main job (`make run`): trainer=auto, resumable steps, and a shrunk end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import open_dict

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.pipeline.steps import ProgressLine, Step, StepRunner, path_signature

FIXTURES = Path(__file__).parent / "fixtures"


# ---------------------------------------------------------------- trainer=auto


@pytest.mark.parametrize("cuda, preset", [(False, "cpu"), (True, "gpu")])
def test_trainer_auto_follows_cuda(monkeypatch, cuda, preset):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    cfg = compose("train", [])
    assert cfg.trainer.preset == preset
    assert bool(cfg.trainer.args.get("use_cpu", False)) is (not cuda)
    assert bool(cfg.trainer.args.get("bf16", False)) is cuda
    # An override lands on the chosen preset's keys, as with trainer=cpu|gpu.
    cfg = compose("train", ["trainer.args.learning_rate=3e-4"])
    assert cfg.trainer.args.learning_rate == 3e-4 and cfg.trainer.preset == preset


@pytest.mark.parametrize("forced", ["cpu", "gpu", "debug"])
def test_trainer_forced_preset_ignores_cuda(monkeypatch, forced):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: forced != "gpu")
    assert compose("train", [f"trainer={forced}"]).trainer.preset == forced


def test_trainer_auto_equals_the_preset_it_picks(monkeypatch):
    import torch
    from omegaconf import OmegaConf

    for cuda, name in ((False, "cpu"), (True, "gpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        auto = OmegaConf.to_container(compose("train", ["task=stance"]).trainer)
        forced = OmegaConf.to_container(compose("train", ["task=stance", f"trainer={name}"]).trainer)
        assert auto == forced


# ---------------------------------------------------------------- resumable steps


def _writer_step(tmp_path: Path, calls: list, config=1, fail: bool = False) -> Step:
    out = tmp_path / "out" / "result.txt"

    def run(ctx):
        calls.append(ctx.resume)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"config {config}\n")
        if fail:
            raise KeyboardInterrupt  # killed after writing half its output

    return Step(key="write", title="write", run=run, config={"value": config}, inputs=[tmp_path / "in.txt"],
                outputs=[out])


def _runner(tmp_path, fresh=False, lines=None):
    return StepRunner(tmp_path / "state", total=1, fresh=fresh, out=(lines.append if lines is not None else lambda s: None))


def test_a_complete_step_is_skipped(tmp_path):
    (tmp_path / "in.txt").write_text("a")
    calls, lines = [], []
    assert _runner(tmp_path).run(_writer_step(tmp_path, calls)).status == "ran"
    record = _runner(tmp_path, lines=lines).run(_writer_step(tmp_path, calls))
    assert record.status == "skipped" and calls == [False]
    assert "skipped" in lines[0] and lines[0].startswith("[1/1] write")


@pytest.mark.parametrize("change", ["config", "input", "output", "output_deleted", "fresh"])
def test_a_stale_step_is_redone(tmp_path, change):
    (tmp_path / "in.txt").write_text("a")
    calls = []
    _runner(tmp_path).run(_writer_step(tmp_path, calls))
    config, fresh = 1, False
    if change == "config":
        config = 2
    elif change == "input":
        (tmp_path / "in.txt").write_text("b")
    elif change == "output":
        (tmp_path / "out" / "result.txt").write_text("edited by hand, longer\n")
    elif change == "output_deleted":
        (tmp_path / "out" / "result.txt").unlink()
    else:
        fresh = True
    record = _runner(tmp_path, fresh=fresh).run(_writer_step(tmp_path, calls, config=config))
    assert record.status == "ran" and calls == [False, False]


def test_a_half_written_step_is_redone_and_told_to_resume(tmp_path):
    (tmp_path / "in.txt").write_text("a")
    calls = []
    with pytest.raises(KeyboardInterrupt):
        _runner(tmp_path).run(_writer_step(tmp_path, calls, fail=True))
    assert (tmp_path / "out" / "result.txt").exists()  # written, but never recorded as done
    state = json.loads((tmp_path / "state" / "write.json").read_text())
    assert state["status"] == "started"
    record = _runner(tmp_path).run(_writer_step(tmp_path, calls))
    assert record.status == "ran" and record.resumed and calls == [False, True]
    # An interrupted attempt with other inputs is not resumed: it starts over.
    (tmp_path / "in.txt").write_text("changed")
    with pytest.raises(KeyboardInterrupt):
        _runner(tmp_path).run(_writer_step(tmp_path, calls, fail=True))
    _runner(tmp_path).run(_writer_step(tmp_path, calls, config=3))
    assert calls[-1] is False


def test_a_step_that_writes_nothing_fails_clearly(tmp_path):
    from kazakh_ner_stance.errors import KnsError

    step = Step(key="lazy", title="lazy", run=lambda ctx: None, config={}, outputs=[tmp_path / "never"])
    with pytest.raises(KnsError, match="finished without writing"):
        _runner(tmp_path).run(step)
    assert json.loads((tmp_path / "state" / "lazy.json").read_text())["status"] == "started"


def test_path_signature_sees_rewrites(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a").write_text("1")
    first = path_signature(folder)
    (folder / "b").write_text("2")
    assert path_signature(folder) != first and path_signature(tmp_path / "absent") is None


def test_progress_line_eta_from_own_rate():
    now = [0.0]
    lines = []
    line = ProgressLine("[3/9] train", every=10, clock=lambda: now[0], out=lines.append)
    line(0.5)                # resumed half-way: no rate yet
    now[0] = 5.0
    line(0.55)               # within `every`: not printed
    now[0] = 20.0
    line(0.6)                # 0.1 done in 20 s -> 0.4 left in 80 s
    now[0] = 30.0
    line(1.0)
    assert lines[0].endswith("ETA unknown")
    assert "ETA 1:20" in lines[1] and "0:20 elapsed" in lines[1]
    assert lines[2].startswith("[3/9] train: 100%") and "done" in lines[2]


# ---------------------------------------------------------------- the whole job, shrunk


def _tiny_job(tmp_path: Path, tiny_encoder: Path, stance_data: Path):
    ner_data = tmp_path / "datasets" / "ner_tiny"
    common = ["model=local", f"model.path={tiny_encoder}", "trainer=debug", f"paths.artifacts_dir={tmp_path / 'artifacts'}"]
    job = compose("main_job", [f"out_dir={tmp_path / 'main_job'}", "quick=true", "progress_every=0"])
    with open_dict(job):
        job.datasets = [[f"data.source_dir={FIXTURES / 'ner_tiny'}", f"out_dir={ner_data}"]]
        job.models = {
            "ner": ["task=ner", "data=kaznerd", f"data.dataset_dir={ner_data}", *common,
                    f"run_dir={tmp_path / 'runs' / 'ner'}", "task.max_length=24", "task.window_overlap=6"],
            "stance": ["task=stance", "data=kaznerd_stance", f"data.dataset_dir={stance_data}", *common,
                       f"run_dir={tmp_path / 'runs' / 'stance'}", "task.max_length=48", "task.bootstrap_n=0"],
        }
        job.publish_overrides = ["base_model=test/tiny-encoder"]
        job.examples = ["Қасым-Жомарт Тоқаев Астанада сөз сөйледі.", "Алматы әкімдігі жаңа саябақ ашты. Тұрғындар риза."]
    return job


def test_the_job_is_planned_before_anything_exists(tmp_path):
    """A fresh clone: no encoder, no datasets yet; planning must not insist on them."""
    from kazakh_ner_stance.pipeline.main_job import build_steps, plan_models

    job = compose("main_job", [f"out_dir={tmp_path / 'main_job'}", f"paths.artifacts_dir={tmp_path / 'artifacts'}"])
    with open_dict(job):
        job.overrides = [f"paths.artifacts_dir={tmp_path / 'artifacts'}"]
        job.datasets = [[*o, f"paths.artifacts_dir={tmp_path / 'artifacts'}"] for o in job.datasets]
    # Side outputs of an earlier run of the v2 builder (it makes the KazNERD stance layer first):
    # written by that step, so never its inputs, or a second run would rebuild and retrain.
    for side in ("kaznerd_stance", "kaznerd_joint"):
        (tmp_path / "artifacts" / "datasets" / side).mkdir(parents=True)
    plans = plan_models(job)
    steps = build_steps(job, plans)
    build_v2 = next(s for s in steps if s.key == "build_kazakh_stance")
    datasets = tmp_path / "artifacts" / "datasets"
    assert datasets / "kaznerd" in build_v2.inputs
    assert not {datasets / "kaznerd_stance", datasets / "kaznerd_joint"} & set(build_v2.inputs)
    titles = [s.title for s in steps]
    assert titles[0] == "prepare the encoder (e5_small_offline)" and not steps[0].outputs[0].exists()
    assert [t for t in titles if t.startswith("build")] == [
        "build the dataset kaznerd", "build the dataset rusentne", "build the dataset kazakh_stance"]
    train_ner = next(s for s in steps if s.key == "train_ner")
    # The datasets it trains on are inputs although they do not exist yet.
    assert tmp_path / "artifacts" / "datasets" / "kaznerd" in train_ner.inputs
    assert steps[0].outputs[0] in train_ner.inputs


@pytest.mark.slow
def test_shrunk_main_job_end_to_end_then_skips(tmp_path, tiny_encoder, monkeypatch):
    from kazakh_ner_stance.pipeline.main_job import run_main_job
    from kazakh_ner_stance.testing import save_stance_dataset

    monkeypatch.setenv("KNS_PROJECT_ROOT", str(Path(__file__).resolve().parent.parent))
    job = _tiny_job(tmp_path, tiny_encoder, save_stance_dataset(tmp_path / "stance_tiny"))
    lines: list[str] = []
    summary = run_main_job(job, out=lines.append)
    text = "\n".join(lines)
    # Both evaluations, both releases and the printed example.
    for role in ("ner", "stance"):
        assert (tmp_path / "runs" / role / "eval_test" / "metrics.json").is_file()
        assert (tmp_path / "runs" / role / "eval_test" / "report.html").is_file()
        releases = [Path(p) for k, v in summary["outputs"].items() if k == f"{role} staged release" for p in v]
        assert releases and (releases[0] / "README.md").is_file()
    assert "text: Қасым-Жомарт Тоқаев Астанада сөз сөйледі." in text and "entities:" in text
    assert "test entity micro-F1" in text and "test macro-F1" in text
    assert [s["status"] for s in summary["steps"]] == ["ran"] * len(summary["steps"])
    assert summary["steps"][0]["step"].startswith("prepare the encoder")
    assert lines[0].startswith(f"[1/{len(summary['steps'])}]")
    predictions = json.loads(Path(summary["examples"]).read_text(encoding="utf-8"))
    assert len(predictions) == 2 and all("targets" in p for p in predictions)

    # Run again: every step is done with the same inputs and configuration.
    again_lines: list[str] = []
    again = run_main_job(job, out=again_lines.append)
    print("\n".join(again_lines))
    assert [s["status"] for s in again["steps"][:-1]] == ["skipped"] * (len(again["steps"]) - 1)
    assert again["headline"] == summary["headline"]


@pytest.mark.slow
def test_interrupted_training_resumes_to_the_same_scores(tmp_path, tiny_encoder, monkeypatch):
    """Kill the NER training after its first checkpoint; the re-run resumes it (not from scratch)
    and ends with the scores of an uninterrupted run."""
    import kazakh_ner_stance.training.train as train_module
    from transformers import TrainerCallback

    from kazakh_ner_stance.pipeline.main_job import run_main_job
    from kazakh_ner_stance.testing import save_stance_dataset

    monkeypatch.setenv("KNS_PROJECT_ROOT", str(Path(__file__).resolve().parent.parent))
    stance_data = save_stance_dataset(tmp_path / "stance_tiny")
    clean = run_main_job(_tiny_job(tmp_path / "clean", tiny_encoder, stance_data), out=lambda s: None)

    class KillAfterCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step >= 3:
                raise KeyboardInterrupt

    real_run_train = train_module.run_train
    calls = []

    def interrupted_run_train(cfg, callbacks=None):
        calls.append(bool(cfg.trainer.resume))
        if len(calls) == 1:
            callbacks = [*(callbacks or []), KillAfterCheckpoint()]
        return real_run_train(cfg, callbacks=callbacks)

    monkeypatch.setattr(train_module, "run_train", interrupted_run_train)
    job = _tiny_job(tmp_path / "killed", tiny_encoder, stance_data)
    with pytest.raises(KeyboardInterrupt):
        run_main_job(job, out=lambda s: None)
    resumed = run_main_job(job, out=lambda s: None)
    assert calls[:2] == [False, True]  # the second attempt resumed from checkpoint-3
    train_ner = next(s for s in resumed["steps"] if s["step"].startswith("train the ner"))
    assert train_ner["resumed"] is True
    assert resumed["headline"] == [{**row, "run": row["run"]} for row in clean["headline"]]
