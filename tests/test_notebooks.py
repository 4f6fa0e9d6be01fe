"""The notebooks execute top to bottom on tiny fixtures (nbclient), so they never rot."""

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "eval"))
import evalfix  # noqa: E402

from kazakh_ner_stance.evaluation import compute_ner_metrics  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch):
    """Kernel `python3` pinned to this interpreter (whatever `python` is on PATH)."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (project venv)", "language": "python",
    }), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return "python3"


def _execute(name: str, workdir: Path, kernel: str):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert "parameters" in nb.cells[1].metadata.get("tags", [])
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    NotebookClient(nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(workdir)}}).execute()
    assert nb.cells[-1].outputs[0]["text"].strip() == sys.executable  # the project's interpreter ran it
    return nb


def _outputs(nb, kind):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if kind in o.get("data", {})]


def test_dataset_tour_runs_on_a_tiny_built_dataset(tmp_path, monkeypatch, venv_kernel):
    ds = evalfix.build_dataset(tmp_path)
    monkeypatch.setenv("KNS_DATASET_DIR", str(ds))
    nb = _execute("dataset_tour.ipynb", tmp_path, venv_kernel)
    assert len(_outputs(nb, "image/png")) >= 2  # plots were drawn
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "fingerprint:" in text and "TID" in text and "]PERSON" in text


def test_results_notebook_draws_the_comparison(tmp_path, monkeypatch, venv_kernel):
    root = tmp_path / "runs"
    tokens, gold, pred = evalfix.read_hand_tsv()
    real = {"task": "ner", "split": "hand", **compute_ner_metrics(gold, pred, bootstrap_n=100, tokens=tokens),
            "checkpoint": "hand", "model": "hand-model", "data_fingerprint": None, "train_time_s": None,
            "eval_data": {"kind": "file", "fingerprint": "sha256:" + "a" * 64, "split": None}}
    evalfix.write_run(root, "hand", real)
    evalfix.write_run(root, "xlmr", evalfix.fake_metrics("ner", 0.8, (0.78, 0.82), "xlm-roberta-base"))
    evalfix.write_run(root, "stance", evalfix.fake_metrics("stance", 0.6, (0.5, 0.7), "e5-stance"))
    monkeypatch.setenv("KNS_RUNS", f"{root}/*")
    nb = _execute("results.ipynb", tmp_path, venv_kernel)
    assert len(_outputs(nb, "image/png")) >= 3  # NER + stance headline plots, per-type heat map
    html = "".join(o["data"]["text/html"] for o in _outputs(nb, "text/html"))
    assert "xlm-roberta-base" in html and "hand-model" in html and "inside_ci" in html
