"""The benchmark suite: the pinned run_ner.py baseline, provenance-checked baseline reuse, and
the results page's table (docs/results.md) regenerated from a results file (all without training anything)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kazakh_ner_stance.benchmarks import cli, results_page, suite, train
from kazakh_ner_stance.benchmarks.baseline import (
    NOT_TRAINING_ARGS,
    NOT_TRAINING_TRAINER_KEYS,
    RUN_NER_LABEL_ALL_TOKENS,
    RUN_NER_PROJECT_SETTINGS,
    RUN_NER_TRAINING_ARGS,
    baseline_overrides,
)
from kazakh_ner_stance.benchmarks.provenance import ReuseRefused, differences
from kazakh_ner_stance.config import compose

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ pinned baseline
@pytest.mark.parametrize("preset", ["cpu", "debug"])
def test_baseline_overrides_equal_run_ner_defaults(preset, tmp_path):
    """Whatever preset it starts from, the baseline trains with TrainingArguments' defaults
    (what run_ner.py gets without tuning flags) and run_ner.py's data/model handling."""
    from transformers import TrainingArguments

    from kazakh_ner_stance.training.train import _training_args

    defaults = TrainingArguments(output_dir=str(tmp_path / "defaults"))
    cfg = compose("train", [f"trainer={preset}", *baseline_overrides()])
    built = _training_args(cfg, tmp_path / "ckpt", "f1")
    for name, pinned in RUN_NER_TRAINING_ARGS.items():
        default = getattr(defaults, name)
        default = getattr(default, "value", default)  # enums (lr_scheduler_type, optim)
        assert pinned == default, f"{name}: pinned {pinned!r}, run_ner.py (TrainingArguments default) {default!r}"
        got = getattr(built, name)
        assert getattr(got, "value", got) == default, name
    assert RUN_NER_LABEL_ALL_TOKENS is False  # run_ner.py: DataTrainingArguments.label_all_tokens=False
    assert cfg.task.label_all_subwords is RUN_NER_LABEL_ALL_TOKENS
    assert cfg.trainer.freeze_word_embeddings is False and cfg.trainer.cpu_linear == "torch"
    for key, value in RUN_NER_PROJECT_SETTINGS.items():
        section, name = key.split(".")
        assert cfg[section][name] == value


@pytest.mark.parametrize("preset", ["cpu", "debug", "gpu"])
def test_every_optimisation_setting_of_a_preset_is_pinned(preset):
    """A setting a preset adds that changes training must be pinned for the baseline, or it
    would leak the project's defaults into the run_ner.py baseline."""
    cfg = compose("train", [f"trainer={preset}"])
    unpinned_args = set(cfg.trainer.args) - set(RUN_NER_TRAINING_ARGS) - NOT_TRAINING_ARGS
    if preset == "gpu":  # GPU-only switches (bf16, tf32, compile, workers): the baseline runs on CPU
        unpinned_args -= {"bf16", "tf32", "torch_compile", "dataloader_pin_memory", "dataloader_persistent_workers",
                          "ddp_find_unused_parameters"}
    assert not unpinned_args, f"trainer={preset} sets {sorted(unpinned_args)}: pin them in benchmarks/baseline.py"
    pinned_trainer = {k.split(".", 1)[1] for k in RUN_NER_PROJECT_SETTINGS if k.startswith("trainer.")}
    assert not set(cfg.trainer) - pinned_trainer - NOT_TRAINING_TRAINER_KEYS
    pinned_task = {k.split(".", 1)[1] for k in RUN_NER_PROJECT_SETTINGS if k.startswith("task.")}
    assert not set(cfg.task) - pinned_task - {"name", "window_overlap"}


# ------------------------------------------------------------------------------ baseline reuse
@pytest.fixture(scope="module")
def bench_train():
    return train


def _previous(bench_train, out: Path, argv: list[str], edit=None) -> dict:
    """An earlier benchmark_train.json whose baseline has this checkout's provenance (edited)."""
    record = bench_train.run_provenance("baseline", cli.parse_args(["train", *argv]))
    if edit:
        edit(record)
    baseline = {"name": "baseline", "final_dev_f1": 0.5, "curve": [[10.0, 0.5]], "provenance": record}
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark_train.json").write_text(json.dumps({"results": [baseline]}), encoding="utf-8")
    return baseline


def test_reuse_accepted_only_when_provenance_identical(bench_train, tmp_path):
    argv = ["--out", str(tmp_path)]
    base = _previous(bench_train, tmp_path, argv)
    assert bench_train.reusable_baseline(tmp_path / "benchmark_train.json", cli.parse_args(["train", *argv])) == base


def test_reuse_refused_when_commit_differs(bench_train, tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--reuse-baseline"]
    _previous(bench_train, tmp_path, argv, edit=lambda r: r["git"].update(commit="0" * 40))
    with pytest.raises(ReuseRefused, match=r"git\.commit: '0000000000"):
        bench_train.reusable_baseline(tmp_path / "benchmark_train.json", cli.parse_args(["train", *argv]))
    # the command stops before training anything, naming the field
    assert cli.main(["train", *argv]) == 2
    assert "git.commit" in capsys.readouterr().err


def test_reuse_refused_when_an_override_differs(bench_train, tmp_path):
    """An earlier baseline run with another learning rate (as the old, project-dependent
    baseline would have been) is refused, naming the override and the resolved setting."""
    old_argv = ["--out", str(tmp_path), "++trainer.args.learning_rate=1e-4"]
    _previous(bench_train, tmp_path, old_argv)
    with pytest.raises(ReuseRefused) as err:
        bench_train.reusable_baseline(tmp_path / "benchmark_train.json", cli.parse_args(["train", "--out", str(tmp_path)]))
    message = str(err.value)
    assert "run.config.trainer.args.learning_rate: 0.0001 (then) vs 5e-05 (now)" in message
    assert "benchmark.override" in message and "run.overrides" in message


def test_reuse_refused_without_provenance(bench_train, tmp_path):
    (tmp_path / "benchmark_train.json").write_text(json.dumps({"results": [{"name": "baseline"}]}), encoding="utf-8")
    with pytest.raises(ReuseRefused, match="no provenance record"):
        bench_train.reusable_baseline(tmp_path / "benchmark_train.json", cli.parse_args(["train", "--out", str(tmp_path)]))


def test_differences_names_nested_fields():
    old = {"git": {"commit": "a", "dirty": False}, "machine": {"threads": 2}, "x": [1]}
    new = {"git": {"commit": "a", "dirty": True}, "machine": {"threads": 2, "cpu_model": "M"}, "x": [1]}
    assert differences(old, new) == ["git.dirty: False (then) vs True (now)",
                                     "machine.cpu_model: absent (then) vs 'M' (now)"]


# ------------------------------------------------------------------------------ results page table
PAGE = """# project

text before

<!-- results:begin -->
| what | command | result |
|---|---|---|
| a long training run | `make run` | dev F1 0.88 |
| dataset build, full shared split | `kns-bench data` | 0.55 s in-process |
| a cell with `a|b` inside code | `x` | y |
<!-- results:end -->

text after
"""


def _entry(bench_id: str, figures: dict, result: str, commit: str = "1234567" + "0" * 33) -> dict:
    return {"title": suite.TITLES[bench_id], "command": f"`kns-bench {bench_id}`", "result": result,
            "figures": figures, "tolerances": {k: ["rel", 0.25] for k in figures}, "measured_at": "2026-11-27T17:00:00+00:00",
            "provenance": {"git": {"commit": commit, "dirty": False},
                           "machine": {"cpu_model": "AMD EPYC", "cpu_count": 2, "threads": 1}}}


def test_table_regenerated_from_small_results_json():
    results = {"benchmarks": {"data": _entry("data", {"build_s": 0.61}, "0.61 s in-process"),
                              "tokenizer": _entry("tokenizer", {"exact": 5}, "5 / 5 recovered", commit="a" * 40)}}
    text = results_page.render(PAGE, results, suite.TITLES, code_changed=lambda git: git["commit"] == "a" * 40)
    assert text.startswith("# project\n\ntext before\n") and text.endswith("\ntext after\n")
    rows = results_page.existing_rows(text)
    assert [r[0] for r in rows] == ["a long training run", "dataset build, full shared split",
                                    "a cell with `a|b` inside code", "raw-text tokenizer round trip"]
    assert all(len(r) == len(results_page.HEADER) for r in rows)
    # a row the command does not produce is kept, marked as not re-measured
    assert rows[0][:3] == ["a long training run", "`make run`", "dev F1 0.88"]
    assert rows[0][3:] == [results_page.NOT_REMEASURED, results_page.NO_TOLERANCE]
    # a produced row is replaced in place and names its machine and commit
    assert rows[1][2] == "0.61 s in-process"
    assert rows[1][3] == "AMD EPYC, 2 cores, 1 thread; commit 1234567, 2026-11-27"
    # ... and the tolerance `--check` allows each of its figures
    assert rows[1][4] == "±25%: build_s"
    # a row measured under code that has changed since says so
    assert rows[3][3].startswith("AMD EPYC, 2 cores, 1 thread; **earlier code**: commit aaaaaaa")
    # regenerating is idempotent
    assert results_page.render(text, results, suite.TITLES, code_changed=lambda git: git["commit"] == "a" * 40) == text


def test_render_refuses_page_without_markers():
    from kazakh_ner_stance.errors import KnsError

    with pytest.raises(KnsError, match="results:begin"):
        results_page.render("# no table\n", {"benchmarks": {}}, suite.TITLES)


def test_suite_writes_results_regenerates_page_and_checks(tmp_path, monkeypatch, capsys):
    """The command end to end with one fast stand-in benchmark: a run writes the results file
    and the results page's row; --check flags a figure outside its tolerance and writes nothing."""
    value_file = tmp_path / "value.txt"
    value_file.write_text("10.0")
    fake = suite.Benchmark(
        "data", suite.TITLES["data"], False,
        lambda ctx, out: [sys.executable, "-c", "import json,sys; json.dump({'speed': float(open(sys.argv[1]).read())}, "
                          "open(sys.argv[2], 'w'))", str(value_file), str(out)],
        lambda raw: {"speed": raw["speed"]}, lambda f, raw: f"{f['speed']:.1f} per second", {"speed": ("rel", 0.25)},
    )
    monkeypatch.setattr(suite, "BENCHMARKS", [fake])
    monkeypatch.setattr(suite, "BY_ID", {"data": fake})
    page, results = tmp_path / "results.md", tmp_path / "results.json"
    page.write_text(PAGE, encoding="utf-8")
    common = ["--page", str(page), "--results", str(results), "--work-dir", str(tmp_path / "work")]
    assert suite.main(common, root=tmp_path) == 0
    record = json.loads(results.read_text())["benchmarks"]["data"]
    assert record["figures"] == {"speed": 10.0} and record["provenance"]["machine"]["cpu_model"]
    assert "| dataset build, full shared split | " in page.read_text() and "10.0 per second" in page.read_text()

    value_file.write_text("11.0")  # within 25%
    assert suite.main([*common, "--check"], root=tmp_path) == 0
    value_file.write_text("20.0")  # twice the recorded figure
    before = page.read_text(), results.read_text()
    assert suite.main([*common, "--check"], root=tmp_path) == 1
    out = capsys.readouterr().out
    assert "| data | speed | 10 | 20 | ±25% | DIFFERS |" in out
    assert (page.read_text(), results.read_text()) == before


def test_within_tolerances():
    assert suite.within(10.0, 12.0, ("rel", 0.25)) and not suite.within(10.0, 13.0, ("rel", 0.25))
    assert suite.within(0.50, 0.509, ("abs", 0.01)) and not suite.within(0.50, 0.52, ("abs", 0.01))
    assert suite.within(True, True, ("exact", 0)) and not suite.within(5, 4, ("exact", 0))
    assert not suite.within(None, 1.0, ("rel", 0.25))


def test_suite_goes_on_after_a_failing_benchmark(tmp_path, monkeypatch, capsys):
    broken = suite.Benchmark("data", suite.TITLES["data"], False,
                             lambda ctx, out: [sys.executable, "-c", "raise SystemExit('boom')"],
                             lambda raw: {}, lambda f, raw: "", {})
    fine = suite.Benchmark("tokenizer", suite.TITLES["tokenizer"], False,
                           lambda ctx, out: [sys.executable, "-c", f"open({str(out)!r}, 'w').write('{{\"n\": 3}}')"],
                           lambda raw: {"n": raw["n"]}, lambda f, raw: f"{f['n']} sentences", {"n": suite.EXACT})
    monkeypatch.setattr(suite, "BENCHMARKS", [broken, fine])
    monkeypatch.setattr(suite, "BY_ID", {"data": broken, "tokenizer": fine})
    page, results = tmp_path / "results.md", tmp_path / "results.json"
    page.write_text(PAGE, encoding="utf-8")
    rc = suite.main(["--page", str(page), "--results", str(results), "--work-dir", str(tmp_path / "w")], root=tmp_path)
    assert rc == 1
    assert "benchmark 'data' failed" in capsys.readouterr().err and "boom" in (tmp_path / "w" / "data.log").read_text()
    assert list(json.loads(results.read_text())["benchmarks"]) == ["tokenizer"]
    assert "| raw-text tokenizer round trip | " in page.read_text()
    assert "0.55 s in-process" in page.read_text()  # the failed row keeps its figure


def test_bad_results_file_and_page_refused_before_running(tmp_path):
    from kazakh_ner_stance.errors import KnsError

    page, results = tmp_path / "results.md", tmp_path / "results.json"
    page.write_text(PAGE, encoding="utf-8")
    results.write_text("{not json", encoding="utf-8")
    with pytest.raises(KnsError, match=r"results\.json: not a results file"):
        suite.main(["--render", "--page", str(page), "--results", str(results)], root=tmp_path)
    results.unlink()
    page.write_text("# no markers\n", encoding="utf-8")
    with pytest.raises(KnsError, match="results:begin"):
        suite.main(["--only", "tokenizer", "--page", str(page), "--results", str(results),
                    "--work-dir", str(tmp_path / "w")], root=tmp_path)
    assert not (tmp_path / "w").exists()
