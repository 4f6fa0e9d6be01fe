"""Releases: staging + dry run, card validation (offline), reload-and-verify (tampering refused),
the token never written anywhere, the local registry, Hub calls against a recording fake HfApi,
dataset releases. Nothing here reaches a hub: HfApi is replaced by a fake for every test."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.errors import KnsError

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hf_TESTSECRETdoNotLeak0123456789abcdefXYZ"
REPO = "kns-test/ner-tiny"


# --------------------------------------------------------------------------- fakes and fixtures


class FakeHfApi:
    """Records every call; answers like the Hub would. `fail` maps a method name to an error."""

    instances: list["FakeHfApi"] = []

    def __init__(self, token=None, tags=(), fail=None):
        self.token = token
        self.calls: list[tuple[str, dict]] = []
        self.tags = list(tags)
        self.fail = fail or {}
        self.uploaded: dict[str, bytes] = {}
        FakeHfApi.instances.append(self)

    def _record(self, name, **kwargs):
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise self.fail[name]

    def create_repo(self, repo_id, **kwargs):
        self._record("create_repo", repo_id=repo_id, **kwargs)
        return f"https://huggingface.co/{repo_id}"

    def list_repo_refs(self, repo_id, **kwargs):
        self._record("list_repo_refs", repo_id=repo_id, **kwargs)
        return SimpleNamespace(tags=[SimpleNamespace(name=t) for t in self.tags], branches=[])

    def upload_folder(self, **kwargs):
        self._record("upload_folder", **kwargs)
        folder = Path(kwargs["folder_path"])
        self.uploaded = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        return SimpleNamespace(oid="c0ffee" * 6 + "abcd", commit_url="https://huggingface.co/x/commit/c0ffee")

    def create_commit(self, repo_id, operations, **kwargs):  # not used: upload_folder is the one commit
        self._record("create_commit", repo_id=repo_id, **kwargs)

    def create_tag(self, repo_id, **kwargs):
        self._record("create_tag", repo_id=repo_id, **kwargs)
        self.tags.append(kwargs["tag"])


class ForbiddenHfApi:
    def __init__(self, *a, **k):
        raise AssertionError("a test tried to build a real HfApi")


@pytest.fixture(autouse=True)
def isolated_hub(monkeypatch, tmp_path):
    """No real token, no real login file, no real HfApi in any test."""
    import huggingface_hub.constants as hf_constants

    from kazakh_ner_stance.publish import targets

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    monkeypatch.setattr(targets, "HfApi", ForbiddenHfApi)
    FakeHfApi.instances.clear()


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_ner_dataset, tiny_encoder, tmp_path_factory) -> dict:
    """A tiny NER model trained in seconds, and its evaluation on the test split."""
    from kazakh_ner_stance.evaluation.run import run_evaluate
    from kazakh_ner_stance.training.train import run_train

    root = tmp_path_factory.mktemp("publish_ckpt")
    run_train(compose("train", [
        "model=local", f"model.path={tiny_encoder}", f"data.dataset_dir={tiny_ner_dataset}", "trainer=debug",
        f"run_dir={root / 'run'}", f"paths.artifacts_dir={root / 'artifacts'}", "task.max_length=24",
        "task.window_overlap=6",
    ]))
    eval_dir = root / "eval_test"
    run_evaluate(compose("evaluate", [
        f"checkpoint={root / 'run' / 'model'}", f"dataset_dir={tiny_ner_dataset}", "split=test",
        f"out_dir={eval_dir}", "bootstrap.n=50", f"paths.artifacts_dir={root / 'artifacts'}",
    ]))
    return {"model": root / "run" / "model", "metrics": eval_dir / "metrics.json", "root": root}


def publish_cfg(tmp_path, ckpt=None, extra=()):
    ov = [f"repo_id={REPO}", f"paths.artifacts_dir={tmp_path / 'artifacts'}", f"out_dir={tmp_path / 'release'}",
          "base_model=intfloat/multilingual-e5-small"]
    if ckpt is not None:
        ov += [f"checkpoint={ckpt['model']}", f"metrics={ckpt['metrics']}"]
    return compose("publish", ov + list(extra))


@pytest.fixture(scope="session")
def staged(tiny_checkpoint, tmp_path_factory) -> Path:
    """One dry-run release, staged once; tests that change it work on a copy."""
    from kazakh_ner_stance.publish import run_publish

    tmp = tmp_path_factory.mktemp("staged")
    result = run_publish(publish_cfg(tmp, tiny_checkpoint, ["dry_run=true"]))
    assert result["dry_run"] is True
    return Path(result["folder"])


def _copy(folder: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy" / folder.name
    shutil.copytree(folder, dest)
    return dest


def _tamper_weights(folder: Path) -> None:
    """Swap two rows of the output layer (`classifier.weight`, or the markers head's last
    layer `head.4.weight`): a valid safetensors file with different weights."""
    import torch
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    key = max(k for k in tensors if k.startswith(("classifier", "head.")) and k.endswith("weight"))
    w = tensors[key].clone()
    w[[0, 1]] = w[[1, 0]]
    tensors[key] = w * 3 + torch.randn_like(w)
    save_file(tensors, str(path), metadata={"format": "pt"})


def _rewrite_manifest(folder: Path) -> None:
    from kazakh_ner_stance.publish.common import MANIFEST, write_manifest

    meta = {k: v for k, v in json.loads((folder / MANIFEST).read_text()).items() if k not in ("files", "format")}
    write_manifest(folder, meta)


# --------------------------------------------------------------------------- dry run and release contents


def test_dry_run_prints_operations_and_leaves_verified_folder(tiny_checkpoint, tmp_path, capsys):
    from kazakh_ner_stance.publish import run_publish, verify_release

    result = run_publish(publish_cfg(tmp_path, tiny_checkpoint))  # no token anywhere -> dry run by default
    out = capsys.readouterr().out
    folder = Path(result["folder"])
    assert result["dry_run"] is True and folder == tmp_path / "release"
    assert "DRY RUN" in out and "no Hub token found" in out
    assert f"create the model repo {REPO}" in out
    assert "in ONE commit to main" in out and "commit message: 'Release v0.1.0: model ner-tiny'" in out
    assert "tag that commit 'v0.1.0'" in out
    for name in ("README.md", "model.safetensors", "config.json", "tokenizer.json", "metrics.json",
                 "training_config.yaml", "verification.json", "kns_manifest.json"):
        assert (folder / name).is_file(), name
        assert name in out  # every file listed, with its size
    assert "kB" in out and "sha256" in out
    assert verify_release(folder)["kind"] == "model"
    assert not FakeHfApi.instances  # nothing was contacted


def test_release_holds_safe_files_only_and_training_config(tiny_checkpoint, tmp_path, capsys):
    import yaml

    from kazakh_ner_stance.publish import run_publish

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint["model"], ckpt)
    import pickle

    (ckpt / "training_args.bin").write_bytes(pickle.dumps({"lr": 1}))
    (ckpt / "rng_state.pth").write_bytes(b"PK\x03\x04zip")
    (ckpt / "sneaky.json").write_bytes(pickle.dumps([1, 2]))  # a pickle under a harmless name
    (ckpt / "eval").mkdir()
    result = run_publish(publish_cfg(tmp_path, {"model": ckpt, "metrics": tiny_checkpoint["metrics"]},
                                     ["dry_run=true"]))
    folder = Path(result["folder"])
    names = {p.name for p in folder.iterdir()}
    assert not names & {"training_args.bin", "rng_state.pth", "sneaky.json", "kns_complete.json", "eval"}
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    out = capsys.readouterr().out
    assert "not released: training_args.bin" in out and "not released: sneaky.json" in out
    info = json.loads((ckpt / "kns_training.json").read_text())
    from kazakh_ner_stance.publish.model import redact_local_paths

    assert yaml.safe_load((folder / "training_config.yaml").read_text()) == redact_local_paths(info)["config"]
    assert json.loads((folder / "metrics.json").read_text()) == json.loads(tiny_checkpoint["metrics"].read_text())
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["id2label"]["0"] == "O" and cfg["label2id"]["O"] == 0


# --------------------------------------------------------------------------- cards


def test_model_card_header_passes_offline_validation(staged, tiny_checkpoint):
    from huggingface_hub import ModelCard, metadata_load
    from huggingface_hub.repocard import eval_results_to_model_index, model_index_to_eval_results

    from kazakh_ner_stance.cards import validate_card_file

    meta = validate_card_file(staged / "README.md", "model")
    assert meta == metadata_load(staged / "README.md")
    assert meta["language"] == ["kk"] and meta["license"] == "cc-by-4.0"
    assert meta["base_model"] == "intfloat/multilingual-e5-small" and meta["datasets"] == ["IS2AI/KazNERD"]
    assert meta["pipeline_tag"] == "token-classification" and "kazakh" in meta["tags"]
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "ner-tiny"
    assert eval_results_to_model_index(name, results) == meta["model-index"]  # round trip
    m = json.loads(tiny_checkpoint["metrics"].read_text())
    by_name = {r.metric_name: r for r in results}
    micro = by_name["micro F1 (strict IOB2 entities)"]
    assert micro.metric_value == round(m["micro"]["f1"], 4)
    assert micro.dataset_split == "test" and micro.dataset_name.startswith("KazNERD (validation file")  # a project-made split, said so and micro.task_type == "token-classification"
    assert by_name["token accuracy"].metric_value == round(m["token_accuracy"], 4)
    card = ModelCard.load(staged / "README.md")  # the library loads it without complaint
    assert card.data.eval_results and card.data.base_model == meta["base_model"]

    text = card.text
    assert "Predictor.from_pretrained(model_dir)" in text and "from kazakh_ner_stance import Predictor" in text
    assert 'pipeline("token-classification"' in text and 'aggregation_strategy="first"' in text
    lo, hi = m["micro"]["f1_ci"]
    assert f"[{lo:.4f}, {hi:.4f}]" in text  # CIs in the text
    for t, row in m["per_type"].items():
        assert f"| {t} | {row['precision']:.4f} |" in text
    assert "TV news" in text
    assert "Yeshpanov" in text and "LREC 2022" in text and "417–426" in text
    assert "learning rate" in text and "training_config.yaml" in text


BAD_HEADERS = {
    "no licence": lambda m: m.pop("license"),
    "unknown licence": lambda m: m.update(license="kazakh-public-licence"),
    "no model-index": lambda m: m.pop("model-index"),
    "no base_model": lambda m: m.pop("base_model"),
    "bad base_model": lambda m: m.update(base_model="not a repo id!!"),
    "bad language": lambda m: m.update(language=["Kazakh"]),
    "bad pipeline_tag": lambda m: m.update(pipeline_tag="ner-tagging"),
    "non-numeric metric": lambda m: m["model-index"][0]["results"][0]["metrics"][0].update(value="high"),
    "broken model-index": lambda m: m["model-index"][0]["results"][0].pop("dataset"),
    "model-index without split": lambda m: m["model-index"][0]["results"][0]["dataset"].pop("split"),
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
def test_model_card_validation_rejects_bad_headers(staged, case):
    import yaml

    from kazakh_ner_stance.cards import CardValidationError, validate_model_card
    from kazakh_ner_stance.cards.validate import split_card

    meta, body = split_card((staged / "README.md").read_text(encoding="utf-8"))
    BAD_HEADERS[case](meta)
    text = "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n" + body
    with pytest.raises(CardValidationError):
        validate_model_card(text)


def test_card_without_header_or_with_template_holes_is_rejected(staged):
    from kazakh_ner_stance.cards import CardValidationError, validate_model_card

    text = (staged / "README.md").read_text(encoding="utf-8")
    with pytest.raises(CardValidationError, match="no YAML header"):
        validate_model_card(text.split("---\n", 2)[2])
    with pytest.raises(CardValidationError, match="unfilled"):
        validate_model_card(text + "\nScore: {micro_f1}\n")


def test_transformers_pipeline_snippet_works_on_the_release(staged):
    from transformers import pipeline

    from kazakh_ner_stance.publish.common import hub_offline

    with hub_offline():
        ner = pipeline("token-classification", model=str(staged), aggregation_strategy="first", device="cpu")
        out = ner("Қасым-Жомарт Тоқаев Астанада Қазақстан халқына Жолдау жариялады.")
    assert isinstance(out, list)
    assert all({"entity_group", "word", "start", "end", "score"} <= set(e) for e in out)


def test_predictor_snippet_works_on_the_release(staged):
    from kazakh_ner_stance import predict
    from kazakh_ner_stance import Predictor
    from kazakh_ner_stance.publish.common import hub_offline

    assert Predictor is predict.Predictor
    with hub_offline():
        out = Predictor.from_pretrained(staged)(["Қасым-Жомарт Тоқаев Астанада сөз сөйледі."])
    assert isinstance(out, list) and len(out) == 1


# --------------------------------------------------------------------------- verification


def test_verify_refuses_a_tampered_weight_file(staged, tmp_path):
    from kazakh_ner_stance.publish import ReleaseVerificationError, verify_release

    folder = _copy(staged, tmp_path)
    verify_release(folder)  # the untouched copy verifies
    _tamper_weights(folder)
    with pytest.raises(ReleaseVerificationError, match="model.safetensors: SHA-256 differs"):
        verify_release(folder)
    _rewrite_manifest(folder)  # a consistent manifest does not help: the predictions changed
    with pytest.raises(ReleaseVerificationError, match="does not reproduce the source checkpoint") as err:
        verify_release(folder)
    assert "predictions_sha256" in str(err.value) or "mean_confidence" in str(err.value)


def test_publish_refuses_a_tampered_release_before_any_upload(staged, tmp_path, monkeypatch):
    from kazakh_ner_stance.publish import run_publish, targets

    folder = _copy(staged, tmp_path)
    _tamper_weights(folder)
    _rewrite_manifest(folder)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr(targets, "HfApi", FakeHfApi)
    with pytest.raises(KnsError, match="were the weights changed"):
        run_publish(publish_cfg(tmp_path, extra=[f"release={folder}"]))
    assert all(not api.calls for api in FakeHfApi.instances)


def test_extra_or_missing_files_fail_the_manifest(staged, tmp_path):
    from kazakh_ner_stance.publish import ReleaseVerificationError, verify_release

    folder = _copy(staged, tmp_path)
    (folder / "optimizer.pt").write_bytes(b"\x80\x04junk")
    with pytest.raises(ReleaseVerificationError, match="optimizer.pt: present but not listed"):
        verify_release(folder)
    (folder / "optimizer.pt").unlink()
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ReleaseVerificationError, match="tokenizer.json: listed .* but missing"):
        verify_release(folder)


def test_metrics_json_of_another_model_is_refused(tiny_checkpoint, tmp_path):
    from kazakh_ner_stance.publish import ReleaseVerificationError, run_publish

    m = json.loads(tiny_checkpoint["metrics"].read_text())
    m["micro"]["f1"] = 0.987
    fake = tmp_path / "eval" / "metrics.json"
    fake.parent.mkdir()
    fake.write_text(json.dumps(m))
    with pytest.raises(ReleaseVerificationError, match="does not describe this checkpoint"):
        run_publish(publish_cfg(tmp_path, {"model": tiny_checkpoint["model"], "metrics": fake}))
    assert not (tmp_path / "release").exists()  # nothing half-built is left in out_dir


def test_sample_check_compares_with_predictions_tsv(tiny_checkpoint, tmp_path):
    """With a sample smaller than the split, the evaluation's predictions.tsv must agree."""
    from kazakh_ner_stance.publish import ReleaseVerificationError, run_publish

    result = run_publish(publish_cfg(tmp_path, tiny_checkpoint, ["verify.sample_size=3"]))
    v = json.loads((Path(result["folder"]) / "verification.json").read_text())
    assert len(v["sample"]["sent_ids"]) == 3 and v["sample"]["whole_split"] is False
    assert "predictions.tsv" in v["metrics_json_check"]

    ev = tmp_path / "other_eval"
    shutil.copytree(tiny_checkpoint["metrics"].parent, ev)
    tsv = ev / "predictions.tsv"
    lines = [ln.rsplit("\t", 1)[0] + "\tB-TIME" if ln.count("\t") == 2 and not ln.startswith("# ") else ln
             for ln in tsv.read_text(encoding="utf-8").splitlines()]
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ReleaseVerificationError, match="metrics.json was computed with another model"):
        run_publish(publish_cfg(tmp_path, {"model": tiny_checkpoint["model"], "metrics": ev / "metrics.json"},
                                ["verify.sample_size=3", f"out_dir={tmp_path / 'r2'}"]))


# --------------------------------------------------------------------------- the Hub (fake) and the token


def _all_text_under(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in folder.rglob("*") if p.is_file()]


def test_token_is_never_written_logged_or_printed(tiny_checkpoint, tmp_path, monkeypatch, capsys, caplog):
    from kazakh_ner_stance.publish import run_publish, targets

    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr(targets, "HfApi", FakeHfApi)
    caplog.set_level(logging.DEBUG)
    result = run_publish(publish_cfg(tmp_path, tiny_checkpoint))  # token present -> real (fake) upload
    assert result["dry_run"] is False and result["tag"] == "v0.1.0"
    (api,) = FakeHfApi.instances
    assert api.token == SECRET  # the token does reach HfApi (from HF_TOKEN via get_token) ...
    assert [c for c, _ in api.calls] == ["create_repo", "list_repo_refs", "upload_folder", "create_tag"]

    # ... and nowhere else: a Hub error that echoes it is scrubbed too.
    failing = FakeHfApi(token=SECRET, fail={"upload_folder": RuntimeError(f"401 Unauthorized: bad token {SECRET}")})
    monkeypatch.setattr(targets, "HfApi", lambda token=None: failing)
    with pytest.raises(KnsError) as err:
        run_publish(publish_cfg(tmp_path, tiny_checkpoint, [f"out_dir={tmp_path / 'release2'}"]))
    assert SECRET not in str(err.value) and "hf_***" in str(err.value)
    logging.getLogger("test").error("failure: %s", err.value)

    captured = capsys.readouterr()
    assert SECRET not in captured.out and SECRET not in captured.err
    for record in caplog.records:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        assert SECRET not in text
    for path, data in _all_text_under(tmp_path) + [(Path(p), d) for p, d in api.uploaded.items()]:
        assert SECRET.encode() not in data, path
    assert api.uploaded and "README.md" in api.uploaded


def test_upload_is_one_commit_then_a_version_tag(staged, tmp_path, monkeypatch, capsys):
    from kazakh_ner_stance.publish import run_publish, targets

    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr(targets, "HfApi", FakeHfApi)
    result = run_publish(publish_cfg(tmp_path, extra=[f"release={staged}", "private=true"]))
    (api,) = FakeHfApi.instances
    calls = dict(api.calls)
    assert calls["create_repo"] == {"repo_id": REPO, "repo_type": "model", "private": True, "exist_ok": True}
    up = calls["upload_folder"]
    assert up["repo_id"] == REPO and up["repo_type"] == "model" and up["revision"] == "main"
    assert Path(up["folder_path"]) == staged and up["commit_message"] == "Release v0.1.0: model ner-tiny"
    assert sum(c == "upload_folder" for c, _ in api.calls) == 1 and "create_commit" not in calls
    assert calls["create_tag"] == {"repo_id": REPO, "tag": "v0.1.0", "tag_message": "model release v0.1.0",
                                   "revision": result["commit"], "repo_type": "model"}
    assert set(api.uploaded) == set(result["files"])
    assert "published kns-test/ner-tiny v0.1.0" in capsys.readouterr().out


def test_an_existing_version_tag_is_refused_before_upload(staged, tmp_path, monkeypatch):
    from kazakh_ner_stance.publish import run_publish, targets

    monkeypatch.setenv("HF_TOKEN", SECRET)
    api = FakeHfApi(tags=["v0.1.0"])
    monkeypatch.setattr(targets, "HfApi", lambda token=None: api)
    with pytest.raises(KnsError, match="already has a release tagged v0.1.0"):
        run_publish(publish_cfg(tmp_path, extra=[f"release={staged}"]))
    assert "upload_folder" not in dict(api.calls)


def test_without_a_token_it_is_a_dry_run_and_dry_run_false_is_an_error(staged, tmp_path, capsys):
    from kazakh_ner_stance.publish import run_publish

    assert run_publish(publish_cfg(tmp_path, extra=[f"release={staged}"]))["dry_run"] is True
    with pytest.raises(KnsError, match="no Hub token"):
        run_publish(publish_cfg(tmp_path, extra=[f"release={staged}", "dry_run=false"]))
    with pytest.raises(KnsError, match="built as kns-test/ner-tiny v0.1.0"):
        run_publish(publish_cfg(tmp_path, extra=[f"release={staged}", "version=0.2.0"]))


def test_out_dir_that_is_not_a_release_is_never_replaced(tiny_checkpoint, tmp_path):
    from kazakh_ner_stance.publish import run_publish

    (tmp_path / "release").mkdir()
    (tmp_path / "release" / "notes.txt").write_text("mine")
    with pytest.raises(KnsError, match="not a staged release"):
        run_publish(publish_cfg(tmp_path, tiny_checkpoint))
    assert (tmp_path / "release" / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- local registry


def test_local_registry_is_versioned_and_never_overwritten(tiny_checkpoint, tmp_path, capsys):
    from kazakh_ner_stance.publish import run_publish, verify_release

    reg = tmp_path / "registry"
    dry = run_publish(publish_cfg(tmp_path, tiny_checkpoint, [f"target=dir:{reg}", "dry_run=true"]))
    assert dry["dry_run"] and not reg.exists()
    assert f"copy {len(dry['files'])} files" in capsys.readouterr().out

    first = run_publish(publish_cfg(tmp_path, tiny_checkpoint, [f"target=dir:{reg}"]))
    v010 = reg / "kns-test" / "ner-tiny" / "v0.1.0"
    assert Path(first["registry_path"]) == v010 and verify_release(v010)["version"] == "0.1.0"
    before = {p: p.read_bytes() for p in v010.rglob("*") if p.is_file()}
    with pytest.raises(KnsError, match="never overwritten"):
        run_publish(publish_cfg(tmp_path, tiny_checkpoint, [f"target=dir:{reg}"]))
    assert {p: p.read_bytes() for p in v010.rglob("*") if p.is_file()} == before

    run_publish(publish_cfg(tmp_path, tiny_checkpoint, [f"target=dir:{reg}", "version=0.1.1"]))
    assert sorted(p.name for p in (reg / "kns-test" / "ner-tiny").iterdir()) == ["v0.1.0", "v0.1.1"]
    card = (reg / "kns-test" / "ner-tiny" / "v0.1.1" / "README.md").read_text()
    assert 'revision="v0.1.1"' in card
    with pytest.raises(KnsError, match="not a release version"):
        run_publish(publish_cfg(tmp_path, tiny_checkpoint, [f"target=dir:{reg}", "version=latest"]))


# --------------------------------------------------------------------------- dataset releases


def test_dataset_task_is_read_from_its_columns():
    from kazakh_ner_stance.publish.dataset import _task_of

    assert _task_of(["sent_id", "tokens", "ner_tags"]) == "ner"
    assert _task_of(["id", "sent_id", "tokens", "start", "end", "target", "target_type", "label"]) == "stance"
    assert _task_of(["sent_id", "tokens", "ner_tags", "targets", "split"]) == "joint"


def test_dataset_release_parquet_card_and_row_check(tiny_ner_dataset, tmp_path, monkeypatch):
    import pyarrow.parquet as pq
    from huggingface_hub import DatasetCard

    from kazakh_ner_stance.cards import validate_card_file
    from kazakh_ner_stance.publish import ReleaseVerificationError, run_publish, targets, verify_release

    cfg = compose("publish", ["kind=dataset", f"dataset_dir={tiny_ner_dataset}", "repo_id=kns-test/kaznerd-tiny",
                              f"out_dir={tmp_path / 'ds_release'}", f"paths.artifacts_dir={tmp_path / 'a'}"])
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr(targets, "HfApi", FakeHfApi)
    result = run_publish(cfg)
    folder = Path(result["folder"])
    (api,) = FakeHfApi.instances
    assert dict(api.calls)["create_repo"]["repo_type"] == "dataset"
    assert dict(api.calls)["create_tag"]["repo_type"] == "dataset"
    for split in ("train", "validation", "test"):
        assert pq.read_table(folder / "data" / f"{split}.parquet").num_rows > 0
    assert not list(folder.rglob("*.arrow"))
    meta = validate_card_file(folder / "README.md", "dataset")
    assert meta["license"] == "cc-by-4.0" and meta["language"] == ["kk"]
    assert meta["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train.parquet"}
    text = DatasetCard.load(folder / "README.md").text
    assert "Yeshpanov" in text and "CC BY 4.0" in text and 'load_dataset("kns-test/kaznerd-tiny", revision="v0.1.0")' in text
    assert all(SECRET.encode() not in p.read_bytes() for p in folder.rglob("*") if p.is_file())

    copy = _copy(folder, tmp_path)
    table = pq.read_table(copy / "data" / "test.parquet")
    pq.write_table(table.slice(1), copy / "data" / "test.parquet")
    _rewrite_manifest(copy)
    with pytest.raises(ReleaseVerificationError, match="rows differ from the built `test` split"):
        verify_release(copy)


# --------------------------------------------------------------------------- stance checkpoints


def _stance_items(n: int, seed: int) -> list[dict]:
    """Invented stance items: a cue verb after the target decides the label."""
    import random

    rng = random.Random(seed)
    names = {"Тоқаев": "PERSON", "Астана": "GPE", "Ресей": "GPE", "Парламент": "ORGANISATION"}
    cues = {"FAVOR": "қолдады", "AGAINST": "сынады", "NONE": "барды"}
    labels = ["NONE"] * 3 + ["FAVOR", "AGAINST"]
    rows = []
    for i in range(n):
        label, name = labels[i % len(labels)], rng.choice(sorted(names))
        left = rng.sample(["бүгін", "жаңа", "жоба", "елде"], rng.randint(0, 2))
        tokens = [*left, name, cues[label], "туралы", "."]
        rows.append({"id": f"S{seed}-{i}", "sent_id": f"S{seed}-{i}", "tokens": tokens, "start": len(left),
                     "end": len(left) + 1, "target": name, "target_type": names[name], "label": label,
                     "split": "", "annotator": "test"})
    return rows


@pytest.fixture(scope="session")
def tiny_stance_checkpoint(tiny_encoder, tmp_path_factory) -> dict:
    from datasets import Dataset, DatasetDict

    from kazakh_ner_stance.data.stance_rows import stance_features
    from kazakh_ner_stance.training.train import run_train

    root = tmp_path_factory.mktemp("publish_stance")
    data = root / "stance_data"
    DatasetDict({name: Dataset.from_list([{**r, "split": name} for r in _stance_items(n, k)], features=stance_features())
                 for k, (name, n) in enumerate((("train", 30), ("validation", 10), ("test", 10)))}).save_to_disk(str(data))
    cfg = compose("train", [
        "task=stance", "data=kaznerd_stance", "model=local", f"model.path={tiny_encoder}", f"data.dataset_dir={data}",
        "trainer=debug", f"run_dir={root / 'run'}", f"paths.artifacts_dir={root / 'artifacts'}", "task.max_length=48",
        "task.bootstrap_n=20",
    ])
    run_train(cfg)
    report = json.loads((root / "run" / "metrics" / "test.json").read_text())["report"]
    metrics = {**report, "task": "stance", "split": "test", "n_sentences": report["n_items"],
               "eval_data": {"kind": "built", "path": str(data), "split": "test"}}
    (root / "metrics.json").write_text(json.dumps(metrics))
    return {"model": root / "run" / "model", "metrics": root / "metrics.json", "batch_size": cfg.trainer.eval_batch_size}


def test_stance_release_card_and_reload_check(tiny_stance_checkpoint, tmp_path, capsys):
    from kazakh_ner_stance.cards import validate_card_file
    from kazakh_ner_stance.publish import ReleaseVerificationError, run_publish, verify_release

    result = run_publish(publish_cfg(tmp_path, tiny_stance_checkpoint,
                                     [f"verify.batch_size={tiny_stance_checkpoint['batch_size']}"]))
    folder = Path(result["folder"])
    meta = validate_card_file(folder / "README.md", "model")
    assert meta["pipeline_tag"] == "text-classification"
    text = (folder / "README.md").read_text()
    assert "not part of KazNERD" in text and "F_avg" in text and "Per class" in text and "Yeshpanov" in text
    assert "`model_type: kns_stance`" in text  # the markers head needs the package to load
    assert 'pipeline("token-classification"' not in text
    assert "kns_stance.json" in {p.name for p in folder.iterdir()}
    v = json.loads((folder / "verification.json").read_text())
    assert v["check"] == "sample re-scoring" and v["metrics_json_check"].startswith("whole `test` split")
    assert "items of `test` re-scored" in capsys.readouterr().out

    copy = _copy(folder, tmp_path)
    _tamper_weights(copy)
    _rewrite_manifest(copy)
    with pytest.raises(ReleaseVerificationError, match="does not reproduce the source checkpoint"):
        verify_release(copy)


# --------------------------------------------------------------------------- the script


def test_script_dry_run_and_clean_error(tiny_checkpoint, tmp_path):
    env = {**os.environ, "HF_TOKEN": SECRET, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    args = [sys.executable, "scripts/publish.py", f"checkpoint={tiny_checkpoint['model']}",
            f"metrics={tiny_checkpoint['metrics']}", f"out_dir={tmp_path / 'rel'}", f"repo_id={REPO}",
            "dry_run=true", f"paths.artifacts_dir={tmp_path / 'artifacts'}", "base_model=intfloat/multilingual-e5-small"]
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "DRY RUN" in run.stdout and "(dry_run=true)" in run.stdout and "verified" in run.stdout
    bad = subprocess.run(args[:2] + ["checkpoint=/nonexistent/model", "repo_id=org/name", "dry_run=true",
                                     f"paths.artifacts_dir={tmp_path / 'artifacts'}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "error: checkpoint folder not found" in bad.stderr
    assert "Traceback" not in bad.stderr
    for text in (run.stdout, run.stderr, bad.stdout, bad.stderr):
        assert SECRET not in text
    for path, data in _all_text_under(tmp_path):  # the release and Hydra's logs
        assert SECRET.encode() not in data, path
    assert (tmp_path / "artifacts" / "logs").is_dir()  # Hydra did log somewhere we searched


def test_release_records_hold_no_local_paths():
    from kazakh_ner_stance.publish.model import redact_local_paths

    info = {"config": {"paths": {"root_dir": "/home/aigul/kns", "runs_dir": "/home/aigul/kns/artifacts/runs"},
                       "model": {"path": "/home/aigul/models/e5"}},
            "base_model_dir": "/home/aigul/kns/artifacts/models/e5_small_offline", "task": "ner"}
    public = redact_local_paths(info)
    assert public["config"]["paths"]["runs_dir"] == "<project>/artifacts/runs"
    assert public["base_model_dir"] == "<project>/artifacts/models/e5_small_offline"
    assert public["task"] == "ner" and info["config"]["paths"]["root_dir"] == "/home/aigul/kns"
