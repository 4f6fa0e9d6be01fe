"""`kns-bench NAME`: one command, one argument style; each benchmark runs end to end on tiny inputs
and writes the JSON the suite (`kns-bench suite`) reads."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kazakh_ner_stance.benchmarks import cli, suite

ROOT = Path(__file__).resolve().parents[1]
TINY_IOB2 = ROOT / "tests/fixtures/ner_tiny/IOB2_valid.txt"


def test_every_benchmark_has_help_and_dashed_options(capsys):
    """Each sub-command answers --help with its description; every option is `--dashed`."""
    for name, module in {"suite": suite, **cli.BENCHMARKS}.items():
        with pytest.raises(SystemExit) as done:
            cli.run([name, "--help"])
        assert done.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: kns-bench {name} ")
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        for action in parser._actions:
            dashed = all(o.startswith("-") and "_" not in o for o in action.option_strings)
            assert dashed, (name, action.option_strings)


def test_the_suite_runs_commands_the_cli_accepts(tmp_path):
    """Every benchmark the suite starts as `kns-bench NAME ...` parses with the command's own options,
    and the results page shows it as `kns-bench NAME ...` without the output plumbing."""
    ctx = suite.Context(root=ROOT, python=sys.executable, work=tmp_path, checkpoint=ROOT / "artifacts/runs/x/model",
                        train_args=["--max-train-samples", "1500"])
    started = [b for b in suite.BENCHMARKS if b.argv(ctx, tmp_path / "o.json")[1:3] == suite.BENCH_MODULE]
    assert {b.id for b in started} == {"train", "predict", "cpu_kernels", "data", "tokenizer"}
    for bench in started:
        argv = bench.argv(ctx, tmp_path / f"{bench.id}.json")
        args = cli.parse_args(argv[3:])
        assert args.command == bench.id
    predict = suite.BY_ID["predict"].argv(ctx, tmp_path / "predict.json")
    assert suite.shown_command(predict, ROOT) == \
        "`kns-bench predict --checkpoint artifacts/runs/x/model --threads 1 --export-onnx --show 0`"
    train = suite.BY_ID["train"].argv(ctx, tmp_path / "train.json")
    assert suite.shown_command(train, ROOT) == "`kns-bench train --max-train-samples 1500`"


def test_a_user_error_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert cli.main(["stance_recipes", "--recipes", "kazakh,nonsense", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown recipe(s) ['nonsense']")


def test_benchmark_predict_smoke(tiny_ner_checkpoint, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = cli.run(["predict", "--checkpoint", str(tiny_ner_checkpoint), "--file", str(TINY_IOB2), "--n", "8",
                  "--warmup", "2", "--backends", "torch", "--threads", "1", "--show", "1", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| system | sentences/s |" in text
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    names = [r["system"] for r in rows]
    assert names[0] == "pipeline (bs=1)"
    assert any("cpu_linear=auto" in n for n in names) and any("cpu_linear=torch" in n for n in names)
    # Agreement is sentences with identical entity sets out of n=8: the reference against itself
    # is 1, every row's share matches its count of differing sentences, and the two cpu_linear
    # kernels give the same entities (so the same share).
    assert rows[0]["agreement"] == 1.0 and rows[0]["differing"] == 0
    for r in rows:
        assert r["agreement"] == (8 - r["differing"]) / 8 and r["sentences_per_s"] > 0
    assert len({r["agreement"] for r in rows[1:]}) == 1
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["provenance"]["machine"]["threads"] == 1 and "git" in record["provenance"]


def test_benchmark_tokenizer_json(tmp_path, capsys):
    """The figures the suite reads, with the provenance of the run."""
    out = tmp_path / "tok.json"
    assert cli.run(["tokenizer", "--file", str(TINY_IOB2), "--show", "0", "--json", str(out)]) == 0
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["sentences"] > 0 and 0 <= record["exact"] <= record["sentences"]
    assert record["provenance"]["versions"]["torch"] and record["provenance"]["machine"]["cpu_model"]


def test_benchmark_cpu_kernels_smoke(tmp_path):
    """In its own process, as the suite starts it (`python -m kazakh_ner_stance.benchmarks`)."""
    from kazakh_ner_stance.cpu_kernels import onednn_linear_available

    out = tmp_path / "kernels.json"
    proc = subprocess.run([sys.executable, *suite.BENCH_MODULE, "cpu_kernels", "--repeat", "2",
                           "--model-dir", str(tmp_path / "no_model"), "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    if not onednn_linear_available():
        assert proc.returncode == 1 and "not usable" in proc.stdout
        return
    assert proc.returncode == 0, proc.stderr
    assert "| linear 1280x384 @ 384x1536, forward |" in proc.stdout
    assert "| linear, forward + backward |" in proc.stdout
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    assert [r["what"] for r in rows] == ["linear 1280x384 @ 384x1536, forward", "linear, forward + backward"]
    assert all(r["speedup"] > 0 for r in rows)


def test_benchmark_data_json(tmp_path):
    out = tmp_path / "data.json"
    assert cli.run(["data", "--source-dir", str(ROOT / "tests/fixtures/ner_tiny"), "--no-cli", "--json", str(out)]) == 0
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["identical"] is True and len(record["in_process_s"]) == 2 and record["cli_s"] is None
    assert "commit" in record["provenance"]["git"]  # None outside a git checkout


def test_benchmark_serve_smoke(tiny_ner_checkpoint, tmp_path, capsys):
    """The three servers (in threads: quick) under a tiny bounded load, and the table."""
    pytest.importorskip("fastapi")
    out = tmp_path / "serve.json"
    rc = cli.run(["serve", "--checkpoint", str(tiny_ner_checkpoint), "--file", str(TINY_IOB2), "--requests", "12",
                  "--concurrency", "4", "--warmup", "2", "--threads", "1", "--in-process", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "| system | requests | errors | requests/s | sentences/s | p50 ms |" in text
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    assert [r["errors"] for r in rows] == [0, 0, 0, 0]
    assert rows[1]["requests_per_pass"] == 1.0  # micro-batching off: one request per pass
    assert rows[0]["requests"] == 12 and rows[-1]["sentences"] == 12
    for r in rows:
        assert r["sentences_per_s"] > 0


def test_serve_script_answers_over_http(tiny_ner_checkpoint, tmp_path):
    """scripts/serve.py as users start it: a process on a loopback port, /health and /predict."""
    pytest.importorskip("fastapi")
    import httpx

    from kazakh_ner_stance.benchmarks.serve import ServerProcess

    args = cli.parse_args(["serve", "--checkpoint", str(tiny_ner_checkpoint), "--threads", "1", "--concurrency", "2"])
    with ServerProcess(args, ["limits.max_texts=2"], tmp_path / "server.log") as server:
        assert server.url.startswith("http://127.0.0.1:")
        health = server.health()
        assert health["task"] == "ner" and health["limits"]["max_texts"] == 2
        resp = httpx.post(server.url + "/predict", json=["Тоқаев келді.", "Астана."], timeout=60)
        assert resp.status_code == 200 and [r["text"] for r in resp.json()] == ["Тоқаев келді.", "Астана."]
        too_many = httpx.post(server.url + "/predict", json=["a", "b", "c"], timeout=60)
        assert too_many.status_code == 413 and too_many.json()["field"] == "body"
        bad = httpx.post(server.url + "/predict", content=b"\xff", timeout=60)
        assert bad.status_code == 400 and bad.json()["error"] == "bad_encoding"
    assert server.proc.returncode is not None  # stopped
