"""The benchmark scripts run end to end on tiny inputs and write the JSON scripts/benchmarks.py reads."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_predict_smoke(tiny_ner_checkpoint, tmp_path, capsys):
    bench = _load("benchmark_predict")
    out = tmp_path / "bench.json"
    rc = bench.main([f"checkpoint={tiny_ner_checkpoint}", f"file={ROOT / 'tests/fixtures/ner_tiny/IOB2_valid.txt'}",
                     "n=8", "warmup=2", "backends=[torch]", "threads=1", "show=1", f"out={out}"])
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
    """The figures scripts/benchmarks.py reads, with the provenance of the run."""
    bench = _load("benchmark_tokenizer")
    out = tmp_path / "tok.json"
    assert bench.main(["--file", str(ROOT / "tests/fixtures/ner_tiny/IOB2_valid.txt"), "--show", "0",
                       "--json", str(out)]) == 0
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["sentences"] > 0 and 0 <= record["exact"] <= record["sentences"]
    assert record["provenance"]["versions"]["torch"] and record["provenance"]["machine"]["cpu_model"]


def test_benchmark_cpu_kernels_smoke(tmp_path):
    import subprocess
    import sys

    from kazakh_ner_stance.cpu_kernels import onednn_linear_available

    out = tmp_path / "kernels.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark_cpu_kernels.py"), "--repeat", "2",
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
    bench = _load("benchmark_data")
    out = tmp_path / "data.json"
    assert bench.main(["--source-dir", str(ROOT / "tests/fixtures/ner_tiny"), "--no-cli", "--json", str(out)]) == 0
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["identical"] is True and len(record["in_process_s"]) == 2 and record["cli_s"] is None
    assert "commit" in record["provenance"]["git"]  # None outside a git checkout


def test_benchmark_serve_smoke(tiny_ner_checkpoint, tmp_path, capsys):
    """The three servers (in threads: quick) under a tiny bounded load, and the table."""
    import pytest

    pytest.importorskip("fastapi")
    bench = _load("benchmark_serve")
    out = tmp_path / "serve.json"
    rc = bench.main([f"checkpoint={tiny_ner_checkpoint}", f"file={ROOT / 'tests/fixtures/ner_tiny/IOB2_valid.txt'}",
                     "requests=12", "concurrency=4", "warmup=2", "threads=1", "isolate=false", f"out={out}"])
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
    import pytest

    pytest.importorskip("fastapi")
    import httpx

    bench = _load("benchmark_serve")
    cfg = bench.OmegaConf.merge(bench.OmegaConf.create(bench.DEFAULTS),
                                {"checkpoint": str(tiny_ner_checkpoint), "threads": 1, "concurrency": 2})
    with bench.ServerProcess(cfg, ["limits.max_texts=2"], tmp_path / "server.log") as server:
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
