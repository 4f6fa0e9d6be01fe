"""Joint NER + stance: train/save/load/predict through run_train, reload gives identical output."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.training.train import run_train

PERSONS = [["Қасым-Жомарт", "Тоқаев"], ["Назарбаев"], ["Әлихан", "Смайылов"]]
GPES = [["Астана"], ["Алматы"], ["Ресей"], ["Қытай"]]
ORGS = [["Ұлттық", "банк"], ["Парламент"]]
CUES = {1: ["қолдады", "мақтады"], 2: ["сынады", "айыптады"], 0: ["барды", "айтты"]}
FILLER = ["бүгін", "жаңа", "жоба", "туралы", "жиналыс", "өтті", "және", "елде"]


def make_rows(n: int, seed: int, names: list[str]) -> list[dict]:
    rng = random.Random(seed)
    idx = {t: i for i, t in enumerate(names)}
    rows = []
    for i in range(n):
        person, gpe = rng.choice(PERSONS), rng.choice(GPES)
        org = rng.choice(ORGS) if i % 3 == 0 else None
        label = [0, 0, 1, 2, 1, 0][i % 6]
        toks, tags, targets = [], [], []

        def put(words, etype, stance=None):
            start = len(toks)
            toks.extend(words)
            tags.extend([idx["B-" + etype]] + [idx["I-" + etype]] * (len(words) - 1))
            if stance is not None:
                targets.append({"start": start, "end": len(toks), "target": " ".join(words), "type": etype,
                                "label": stance})

        def plain(words):
            toks.extend(words)
            tags.extend([0] * len(words))

        plain(rng.sample(FILLER, rng.randint(0, 2)))
        put(person, "PERSON", label)
        plain([rng.choice(CUES[label])])
        put(gpe, "GPE", 0)
        plain(rng.sample(FILLER, rng.randint(1, 3)))
        if org:
            put(org, "ORGANISATION", 0)
        plain(["."])
        rows.append({"sent_id": f"J{seed}-{i}", "tokens": toks, "ner_tags": tags, "targets": targets, "split": ""})
        if i % 4 == 3:  # a sentence with no target (joint_sentences=all): NER loss only
            words = rng.sample(FILLER, rng.randint(2, 4)) + ["."]
            rows.append({"sent_id": f"J{seed}-{i}-plain", "tokens": words, "ner_tags": [0] * len(words),
                         "targets": [], "split": ""})
    # one sentence far longer than the window: the NER windows and the span's window must work
    long_toks = ["сөз"] * 40 + ["Тоқаев"] + ["сөз"] * 30 + ["Астана", "."]
    long_tags = [0] * 40 + [idx["B-PERSON"]] + [0] * 30 + [idx["B-GPE"], 0]
    rows.append({"sent_id": f"J{seed}-long", "tokens": long_toks, "ner_tags": long_tags, "split": "",
                 "targets": [{"start": 40, "end": 41, "target": "Тоқаев", "type": "PERSON", "label": 1},
                             {"start": 71, "end": 72, "target": "Астана", "type": "GPE", "label": 0}]})
    return rows


def save_joint_dataset(out: Path, sizes=(30, 8, 8)) -> Path:
    from datasets import Dataset, DatasetDict

    from kazakh_ner_stance.data.stance_rows import joint_features
    from kazakh_ner_stance.labels import ner_label_names

    types = ["EVENT", "GPE", "ORGANISATION", "PERSON"]
    names = ner_label_names(types)
    splits = {}
    for k, (name, n) in enumerate(zip(("train", "validation", "test"), sizes)):
        rows = [{**r, "split": name} for r in make_rows(n, k, names)]
        splits[name] = Dataset.from_list(rows, features=joint_features(names))
    DatasetDict(splits).save_to_disk(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_joint_dataset(tmp_path_factory) -> Path:
    return save_joint_dataset(tmp_path_factory.mktemp("data") / "joint_tiny")


@pytest.fixture
def joint_overrides(tiny_joint_dataset, tiny_encoder, tmp_path):
    return [
        "task=joint", "data=kaznerd_joint", "model=local", f"model.path={tiny_encoder}",
        f"data.dataset_dir={tiny_joint_dataset}", "trainer=debug", f"run_dir={tmp_path / 'run'}",
        f"paths.artifacts_dir={tmp_path / 'artifacts'}", "task.max_length=24", "task.window_overlap=6",
        "task.bootstrap_n=50",
    ]


def test_joint_train_save_load_predict(joint_overrides, tiny_joint_dataset):
    import torch
    from datasets import load_from_disk
    from transformers import AutoModel

    from kazakh_ner_stance.tasks.joint import KnsJointModel, load_joint_checkpoint, predict_joint

    cfg = compose("train", joint_overrides)
    dev = run_train(cfg)
    run = Path(cfg.run_dir)
    # The returned dev score is the configured selection metric as metrics/validation.json records
    # it, and that is the mean of the NER F1 and the stance macro-F1 recorded beside it (catches
    # selecting on one head only, or returning the 0.0 fallback).
    validation = json.loads((run / "metrics" / "validation.json").read_text())
    assert cfg.task.selection_metric == "mean_ner_f1_stance_macro_f1"
    assert dev == validation["mean_ner_f1_stance_macro_f1"]
    assert dev == pytest.approx((validation["ner_f1"] + validation["macro_f1"]) / 2, abs=1e-12)
    model_dir = run / "model"
    assert json.loads((model_dir / "kns_training.json").read_text())["task"] == "joint"
    assert json.loads((model_dir / "config.json").read_text())["model_type"] == "kns_joint"
    assert (model_dir / "model.safetensors").is_file()
    test = json.loads((run / "metrics" / "test.json").read_text())
    for key in ("macro_f1", "f_avg", "macro_f1_ci", "ner_f1", "e2e_macro_f1"):
        assert key in test

    model, tokenizer, info = load_joint_checkpoint(model_dir)
    ds = load_from_disk(str(tiny_joint_dataset))["test"]
    names = ds.features["ner_tags"].feature.names
    assert [info["ner_id2label"][i] for i in range(len(names))] == names
    assert info["stance_labels"] == ["NONE", "FAVOR", "AGAINST"] and info["max_length"] == 24

    tokens = [list(t) for t in ds["tokens"]] + [[], ["Тоқаев"], ["сөз"] * 120]
    out = predict_joint(model, tokenizer, tokens, batch_size=3)
    assert len(out) == len(tokens)
    for sent, o in zip(tokens, out):
        assert len(o["tags"]) == len(sent) == len(o["scores"])
        assert all(t in names for t in o["tags"])
        for tgt in o["targets"]:
            assert 0 <= tgt["start"] < tgt["end"] <= len(sent)
            assert tgt["type"] in info["stance_types"] and tgt["label"] in info["stance_labels"]
            assert abs(sum(tgt["probs"].values()) - 1) < 1e-4
            assert o["tags"][tgt["start"]] in ("B-" + tgt["type"], "I-" + tgt["type"])

    # A second load (also through AutoModel) gives identical predictions and weights.
    again = KnsJointModel.from_pretrained(model_dir)
    auto = AutoModel.from_pretrained(model_dir)
    assert type(auto) is KnsJointModel
    for a, b in zip(model.state_dict().values(), auto.state_dict().values()):
        assert torch.equal(a, b)
    assert predict_joint(again, tokenizer, tokens, batch_size=3) == out
    # Other batch sizes pad differently: the same answers up to float noise.
    other = predict_joint(again, tokenizer, tokens, batch_size=5)
    for a, b in zip(other, out):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)
    # Forcing a target: predict the gold spans too (the stance head on given spans).
    from kazakh_ner_stance.tasks.joint import predict_span_probs

    spans = [[(t["start"], t["end"]) for t in ts] for ts in ds["targets"]]
    probs = predict_span_probs(model, tokenizer, list(ds["tokens"]), spans, batch_size=2)
    assert [p.shape[0] for p in probs] == [len(s) for s in spans]


def test_long_sentence_span_uses_window_that_holds_it(tiny_encoder):
    from transformers import AutoTokenizer

    from kazakh_ner_stance.tasks.joint_encoding import encode_joint

    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    words = ["сөз"] * 40 + ["Тоқаев"] + ["сөз"] * 30 + ["Астана", "."]
    targets = [[{"start": 40, "end": 41, "label": 1}, {"start": 71, "end": 72, "label": 0}]]
    enc = encode_joint(tok, [words], 24, 6, targets=targets)
    assert len(enc["input_ids"]) > 2  # windowed
    seen = {}
    for k in range(len(enc["input_ids"])):
        for j, ps, pe, lab in zip(enc["span_index"][k], enc["span_starts"][k], enc["span_ends"][k],
                                  enc["stance_labels"][k]):
            assert j not in seen  # each span read from exactly one window
            seen[j] = lab
            wids = enc["word_ids"][k][ps:pe]
            start = targets[0][j]["start"]
            assert set(wids) == {start}  # the pieces of exactly the target word
    assert seen == {0: 1, 1: 0}


def test_stance_loss_weight_and_class_weights(tiny_encoder, tiny_joint_dataset, joint_overrides):
    import torch
    from transformers import AutoTokenizer

    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.tasks.joint import JointTask

    ds = load_built_dataset(tiny_joint_dataset)
    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    task = JointTask(compose("train", joint_overrides + ["task.stance_loss_weight=0.0"]), ds, tok)
    model = task.build_model(tiny_encoder)
    assert model.config.stance_class_weights == task.class_weights and task.class_weights[2] > 1
    feats = task.encode_train(ds["train"])
    batch = task.data_collator()([feats[i] for i in range(6)])
    model.eval()
    with torch.no_grad():
        out = model(**batch)
    assert float(out.loss) == pytest.approx(float(out.ner_loss))  # weight 0: NER only
    model.config.stance_loss_weight = 2.0
    with torch.no_grad():
        out2 = model(**batch)
    assert float(out2.loss) == pytest.approx(float(out2.ner_loss) + 2.0 * float(out2.stance_loss), rel=1e-5)
    valid = batch["stance_labels"] != -100
    w = torch.tensor(task.class_weights)
    expect = torch.nn.functional.cross_entropy(out2.stance_logits[valid], batch["stance_labels"][valid], weight=w)
    assert float(out2.stance_loss) == pytest.approx(float(expect), rel=1e-5)


@pytest.mark.parametrize("experiment", ["kaznerd_joint_e5_small", "kaznerd_joint_xlmr_base"])
def test_joint_experiments_compose(experiment):
    cfg = compose("train", [f"experiment={experiment}"])
    assert cfg.task.name == "joint" and cfg.data.name == "kaznerd_joint"


def test_evaluate_py_scores_a_joint_checkpoint(joint_overrides, tiny_joint_dataset, tmp_path):
    """evaluate.py on the checkpoint train.py writes for task=joint: NER, stance on gold targets
    and end to end, each with its own report; the stance numbers are the training evaluation's."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.evaluation.run import run_evaluate
    from kazakh_ner_stance.tasks.joint import JointTask, load_joint_checkpoint
    from kazakh_ner_stance.training.train import run_train

    cfg = compose("train", joint_overrides)
    run_train(cfg)
    model_dir = tmp_path / "run" / "model"
    out = tmp_path / "eval"
    # No data option: the joint dataset the checkpoint was trained on is found from kns_training.json.
    metrics = run_evaluate(compose("evaluate", [f"checkpoint={model_dir}", f"out_dir={out}", "bootstrap.n=20",
                                                f"paths.artifacts_dir={tmp_path / 'artifacts'}"]))
    assert metrics["task"] == "joint" and set(metrics["parts"]) == {"ner", "stance", "stance_end_to_end"}
    test = load_from_disk(str(tiny_joint_dataset))["test"]
    n_targets = sum(len(ts) for ts in test["targets"])
    assert metrics["parts"]["stance"]["n_items"] == n_targets == metrics["parts"]["stance_end_to_end"]["n_items"]
    assert metrics["parts"]["ner"]["n_sentences"] == len(test)
    for part in ("ner", "stance", "stance_end_to_end"):
        assert (out / part / "report.html").is_file() and (out / part / "metrics.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["parts"]["ner"]["micro"]["f1"] == \
        metrics["parts"]["ner"]["micro"]["f1"]
    # The same numbers as the joint task's own evaluation during training.
    model, tok, _ = load_joint_checkpoint(model_dir)
    task = JointTask(cfg, load_built_dataset(tiny_joint_dataset), AutoTokenizer.from_pretrained(model_dir))
    own = task.evaluate(model, test)
    assert abs(own["macro_f1"] - metrics["parts"]["stance"]["macro"]["f1"]) < 1e-9
    assert abs(own["ner_f1"] - metrics["parts"]["ner"]["micro"]["f1"]) < 1e-9
    assert abs(own["e2e_macro_f1"] - metrics["parts"]["stance_end_to_end"]["macro"]["f1"]) < 1e-9
    # compare.py ranks each head among its own kind (and lists the parts once).
    from kazakh_ner_stance.evaluation.compare import run_compare

    board = run_compare(compose("compare", [f"runs=[{out},{tmp_path / 'eval'}]", f"out_dir={tmp_path / 'cmp'}"]))
    assert [r["name"] for r in board["ner"]["rows"]] == ["eval [ner]"]
    assert sorted(r["name"] for r in board["stance"]["rows"]) == ["eval [stance]", "eval [stance_end_to_end]"]
    # publish.py dry run on the same checkpoint: the card shows each head's own metrics.
    from kazakh_ner_stance.publish import run_publish

    release = tmp_path / "release"
    run_publish(compose("publish", [
        f"checkpoint={model_dir}", f"metrics={out / 'metrics.json'}", "repo_id=kns-test/joint-tiny", "dry_run=true",
        f"paths.artifacts_dir={tmp_path / 'artifacts'}", f"out_dir={release}", "base_model=intfloat/multilingual-e5-small"]))
    card = (release / "README.md").read_text(encoding="utf-8")
    assert "### NER (" in card and "### Stance on the gold targets (" in card and "### Stance end to end" in card
    assert "name: 'stance on the gold targets: macro F1" in card and "micro F1 (strict IOB2 entities)" in card
    # The joint release is re-scored on reload (NER tags and stance on the gold targets), and
    # equals metrics.json's parts on the whole split; changed weights are refused.
    verification = json.loads((release / "verification.json").read_text())
    assert verification["check"] == "sample re-scoring" and verification["task"] == "joint"
    assert verification["metrics_json_check"].startswith("whole `test` split re-scored")
    assert verification["expected"]["stance"]["n_items"] == n_targets

    import torch
    from safetensors.torch import load_file, save_file

    from kazakh_ner_stance.publish import ReleaseVerificationError
    from kazakh_ner_stance.publish.verification import verify_model_sample

    assert "predictions identical" in verify_model_sample(release)
    tensors = load_file(str(release / "model.safetensors"))
    key = max(k for k in tensors if k.startswith("stance_head") and k.endswith("weight"))  # its last layer
    tensors[key] = tensors[key] * 3 + torch.randn_like(tensors[key])
    save_file(tensors, str(release / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ReleaseVerificationError, match="does not reproduce the source checkpoint"):
        verify_model_sample(release)
