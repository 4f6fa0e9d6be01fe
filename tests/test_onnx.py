"""ONNX export of a NER checkpoint and the onnxruntime backend: logits within 1e-4 of
PyTorch, identical tags and entities, dynamic batch/sequence axes, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from kazakh_ner_stance.config import compose  # noqa: E402
from kazakh_ner_stance.errors import KnsError  # noqa: E402
from kazakh_ner_stance.predict import OnnxTokenClassifier, Predictor  # noqa: E402

TEXTS = [
    "Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады.",
    "",
    "Астана",
    "2023 жылғы 15 наурызда Алматы қаласында «Қазақтелеком» АҚ-ның жиналысы өтті. Ол бүгін басталды!",
    " ".join(["Тоқаев", "Астанада", "жиналыс", "өткізді"] * 60),  # many windows at max_length=24
]


@pytest.fixture(scope="module")
def ner_checkpoint(tiny_ner_checkpoint) -> Path:
    return tiny_ner_checkpoint


@pytest.fixture(scope="module")
def exported(ner_checkpoint) -> Path:
    from kazakh_ner_stance.onnx_export import run_export_onnx

    info = run_export_onnx(compose("export_onnx", [f"checkpoint={ner_checkpoint}", "exporter=legacy"]))
    assert info["exporter"] == "legacy" and info["opset"] >= 17
    return Path(info["out_dir"])


def test_export_writes_a_verified_folder(exported, ner_checkpoint):
    assert exported == ner_checkpoint / "onnx"
    for name in ("model.onnx", "config.json", "tokenizer_config.json", "kns_training.json", "kns_onnx.json"):
        assert (exported / name).is_file(), name
    info = json.loads((exported / "kns_onnx.json").read_text())
    assert info["parity"]["max_abs_diff"] < 1e-4 and info["parity"]["tags_identical"]
    assert not list(ner_checkpoint.glob(".onnx.*"))  # no staging or old folder left
    import onnx

    graph = onnx.load(str(exported / "model.onnx")).graph
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        assert not dims[0].HasField("dim_value") and not dims[1].HasField("dim_value")  # dynamic batch, sequence


def test_onnx_logits_match_torch_on_padded_batches(exported, ner_checkpoint):
    import torch

    from kazakh_ner_stance.tasks.ner import load_ner_checkpoint

    model, tokenizer, _ = load_ner_checkpoint(ner_checkpoint)
    session = OnnxTokenClassifier(exported / "model.onnx", model.config)
    rng = np.random.default_rng(0)
    for batch, seq in ((1, 1), (1, 5), (3, 17), (8, 64), (2, 128)):
        ids = torch.from_numpy(rng.integers(5, len(tokenizer), size=(batch, seq)))
        mask = torch.ones_like(ids)
        for r in range(1, batch):
            mask[r, max(1, seq - 3 * r):] = 0  # right padding of different lengths
        with torch.inference_mode():
            ref = model(input_ids=ids, attention_mask=mask).logits.numpy()
        got = session(input_ids=ids, attention_mask=mask).logits.numpy()
        valid = mask.numpy().astype(bool)
        assert np.abs(ref - got)[valid].max() < 1e-4, (batch, seq)
        assert (ref.argmax(-1)[valid] == got.argmax(-1)[valid]).all()


def test_onnx_predictor_matches_torch(exported, ner_checkpoint):
    from kazakh_ner_stance.tasks.ner import predict_word_logits

    torch_p = Predictor.from_pretrained(ner_checkpoint)
    onnx_p = Predictor.from_pretrained(ner_checkpoint, backend="onnx", num_threads=1)
    assert onnx_p.backend == "onnx" and isinstance(onnx_p.ner[0], OnnxTokenClassifier)
    a, b = torch_p(TEXTS), onnx_p(TEXTS)
    assert [r["entities"] for r in a] == [
        [{**e, "score": pytest.approx(e["score"], abs=1e-5)} for e in r["entities"]] for r in b
    ]
    assert [[(e["char_start"], e["char_end"], e["type"]) for e in r["entities"]] for r in a] == [
        [(e["char_start"], e["char_end"], e["type"]) for e in r["entities"]] for r in b]
    words = [[t["text"] for t in r["tokens"]] for r in a]
    la = predict_word_logits(torch_p.ner[0], torch_p.ner[1], words, max_length=24, overlap=6)
    lb = predict_word_logits(onnx_p.ner[0], onnx_p.ner[1], words, max_length=24, overlap=6)
    assert max(float(np.abs(x - y).max()) for x, y in zip(la, lb) if len(x)) < 1e-4
    # the export folder itself also loads
    direct = Predictor.from_pretrained(exported, backend="onnx")
    assert [r["entities"] for r in direct(TEXTS[:1])] == [r["entities"] for r in b[:1]]


def test_run_predict_with_onnx_backend(exported, ner_checkpoint, tmp_path):
    from kazakh_ner_stance.predict import run_predict

    src = tmp_path / "in.txt"
    src.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    outs = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.jsonl"
        run_predict(compose("predict", [f"checkpoint={ner_checkpoint}", f"input={src}", f"output={out}",
                                        f"backend={backend}"]))
        outs[backend] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    strip = lambda recs: [[(e["char_start"], e["char_end"], e["type"]) for e in r["entities"]] for r in recs]  # noqa: E731
    assert strip(outs["torch"]) == strip(outs["onnx"]) and len(outs["onnx"]) == len(TEXTS)


def test_dynamo_exporter_when_onnxscript_is_installed(ner_checkpoint, tmp_path):
    pytest.importorskip("onnxscript")
    from kazakh_ner_stance.onnx_export import export_onnx

    info = export_onnx(ner_checkpoint, tmp_path / "dyn", exporter="dynamo")
    assert info["exporter"] == "dynamo" and info["parity"]["max_abs_diff"] < 1e-4


def test_onnx_errors(ner_checkpoint, tmp_path):
    from kazakh_ner_stance.onnx_export import export_onnx

    with pytest.raises(KnsError, match="export_onnx.py"):
        Predictor.from_pretrained(ner_checkpoint, backend="onnx", onnx_dir=tmp_path / "missing")
    with pytest.raises(KnsError, match="backend must be"):
        Predictor.from_pretrained(ner_checkpoint, backend="tensorrt")
    with pytest.raises(KnsError, match="opset"):
        export_onnx(ner_checkpoint, tmp_path / "o", opset=13)
    stance_like = tmp_path / "stance"
    stance_like.mkdir()
    (stance_like / "kns_training.json").write_text(json.dumps({"task": "stance"}))
    with pytest.raises(KnsError, match="NER checkpoints"):
        export_onnx(stance_like, tmp_path / "o2")
    with pytest.raises(KnsError, match="backend=onnx runs NER"):
        Predictor.from_pretrained(stance_like, backend="onnx")


def test_onnx_tasks_are_the_plain_token_classifiers():
    from kazakh_ner_stance.predict.onnx_runtime import ONNX_TASKS

    assert ONNX_TASKS == {"ner"}
