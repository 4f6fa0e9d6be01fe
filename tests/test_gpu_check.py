"""tools/gpu_check.py on CPU: the bundle is packed (no wheels: no network in tests) with a
trimmed half-precision encoder and both datasets, its size is checked against the limit, and
`run --cpu-smoke` trains, evaluates and reports both experiments through the same code path
the GPU run takes (trainer=debug instead of trainer=gpu)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle(tiny_ner_dataset, tiny_encoder, tmp_path_factory):
    from kazakh_ner_stance.testing import save_stance_dataset

    root = tmp_path_factory.mktemp("gpu_check")
    stance = save_stance_dataset(root / "stance")
    gc = _gpu_check()
    args = ["pack", "--out", str(root / "bundle"), "--base", str(tiny_encoder), "--ner-dataset",
            str(tiny_ner_dataset), "--stance-dataset", str(stance), "--no-wheels", "--no-rusentne", "--no-silver"]
    assert gc.main(args) == 0
    return root / "bundle", args


def test_pack_writes_a_trimmed_half_precision_bundle_within_the_limit(bundle, capsys):
    folder, args = bundle
    manifest = json.loads((folder / "bundle.json").read_text())
    assert set(manifest["sizes"]) == {"model", "datasets"} and manifest["model_dtype"] == "float16"
    prov = json.loads((folder / "model" / "kns_provenance.json").read_text())
    assert prov["source"] == "trim" and prov["verification"]["corpus_tokenization"]["different"] == 0
    assert len(prov["corpora"]) == 2  # the NER and the stance dataset
    # Datasets travel xz-compressed; nothing unpacked inside the bundle.
    assert sorted(p.name for p in (folder / "datasets").iterdir()) == ["kaznerd.tar.xz", "kaznerd_stance.tar.xz"]
    # Over the limit: a clear failure, with the sizes printed.
    gc = _gpu_check()
    over = [a if a != str(folder) else str(folder.parent / "bundle_small") for a in args] + ["--limit-mib", "0.01"]
    assert gc.main(over) == 1
    err = capsys.readouterr()
    assert "total" in err.out and "over the 0.01 MiB limit" in err.err


def test_cpu_smoke_run_trains_evaluates_and_reports_both_tasks(bundle, tmp_path, capsys):
    folder, _ = bundle
    gc = _gpu_check()
    assert gc.main(["run", "--bundle", str(folder), "--cpu-smoke", "--out", str(tmp_path / "res")]) == 0
    out = capsys.readouterr().out
    assert "| ner | kaznerd_ner_e5_small |" in out and "| stance | kaznerd_stance_e5_small_kazakh |" in out
    report = json.loads((tmp_path / "res" / "gpu_check.json").read_text())
    assert [r["task"] for r in report["results"]] == ["ner", "stance"]
    for r in report["results"]:
        assert r["sentences_per_s"] > 0 and r["tokens_per_s"] > 0 and r["steps"] > 0
        assert r["test"] is not None and r["peak_gpu_mib"] is None


def test_recipes_need_rusentne_in_the_bundle(bundle, tmp_path, capsys):
    folder, _ = bundle
    rc = _gpu_check().main(["run", "--bundle", str(folder), "--cpu-smoke", "--tasks", "--recipes", "mixed",
                            "--out", str(tmp_path / "res")])
    assert rc == 2 and "--recipes needs RuSentNE in the bundle" in capsys.readouterr().err
    # The datasets were unpacked beside the results, not into the bundle.
    assert (tmp_path / "res" / "datasets" / "kaznerd" / "dataset_dict.json").is_file()
    assert not (folder / "datasets" / "kaznerd").exists()


def test_the_silver_recipe_needs_the_silver_dataset_in_the_bundle(bundle, tmp_path, capsys):
    import shutil
    import tarfile

    folder, _ = bundle
    # A bundle that holds RuSentNE (any stance dataset under that name) but not the silver layer.
    copy = tmp_path / "bundle"
    shutil.copytree(folder / "datasets", copy / "datasets")
    unpacked = tmp_path / "unpacked"
    with tarfile.open(copy / "datasets" / "kaznerd_stance.tar.xz", "r:xz") as tar:
        tar.extractall(unpacked, filter="data")
    with tarfile.open(copy / "datasets" / "rusentne.tar.xz", "w:xz") as tar:
        tar.add(unpacked / "kaznerd_stance", arcname="rusentne")
    rc = _gpu_check().main(["run", "--bundle", str(copy), "--cpu-smoke", "--tasks", "--recipes", "mixed,silver",
                            "--out", str(tmp_path / "res")])
    assert rc == 2 and "the silver recipe needs rusentne_kk_silver" in capsys.readouterr().err


def test_run_without_cuda_refuses_unless_smoke(bundle, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert _gpu_check().main(["run", "--bundle", str(bundle[0])]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_shell_wrapper_needs_a_bundle(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh")], capture_output=True, text=True,
                          env={"KNS_GPU_BUNDLE": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "no bundle" in proc.stderr


def test_a_half_precision_encoder_trains_with_float32_weights(tiny_encoder, tmp_path):
    """transformers 5 loads a checkpoint in its stored dtype; the bundled encoder is float16, and
    fine-tuning it must still start from float32 master weights (the stance head is float32)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from kazakh_ner_stance.tasks.encoder_heads import load_pretrained_encoder
    from kazakh_ner_stance.tasks.stance_model import KnsStanceModel

    half = tmp_path / "half"
    AutoModel.from_pretrained(tiny_encoder).to(torch.float16).save_pretrained(half)
    AutoTokenizer.from_pretrained(tiny_encoder).save_pretrained(half)
    assert AutoModel.from_pretrained(half).dtype == torch.float16  # the behaviour guarded against
    encoder = load_pretrained_encoder(half)
    assert {p.dtype for p in encoder.parameters()} == {torch.float32}
    model = KnsStanceModel.from_encoder(encoder, marker_ids=[5, 6], num_labels=3)
    ids = torch.tensor([[0, 5, 9, 6, 2]])
    assert model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.dtype == torch.float32
