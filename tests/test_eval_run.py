"""scripts/evaluate.py end to end: external IOB2 files, built splits, reports, errors, stance hook."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "eval"))
import evalfix  # noqa: E402

from kazakh_ner_stance.config import compose  # noqa: E402
from kazakh_ner_stance.errors import KnsError  # noqa: E402
from kazakh_ner_stance.evaluation import run as run_mod  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _stub_checkpoint(path: Path, task: str = "ner") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text("{}", encoding="utf-8")
    info = {"task": task, "model_name": "stub-model", "data_fingerprint": "b" * 64, "train_time_s": 42.0}
    (path / "kns_training.json").write_text(json.dumps(info), encoding="utf-8")
    return path


def _fake_backend(table: dict):
    """Backend whose 'model' answers from a {tokens: tags} table (gold when missing)."""

    def load(path):
        return "model", "tokenizer", {0: "O", 1: "B-PERSON", 2: "I-PERSON", 3: "B-GPE", 4: "I-GPE",
                                      5: "B-ORGANISATION", 6: "I-ORGANISATION", 7: "B-DATE", 8: "I-DATE"}

    def predict(model, tokenizer, tokens_list, batch_size=32, max_length=None, **_):
        return [list(table[tuple(t)]) for t in tokens_list]

    return lambda: (load, predict)


@pytest.fixture
def hand_setup(tmp_path, monkeypatch):
    tokens, gold, pred = evalfix.read_hand_tsv()
    monkeypatch.setattr(run_mod, "_ner_backend", _fake_backend({tuple(t): p for t, p in zip(tokens, pred)}))
    return tmp_path, tokens, gold, pred


@pytest.mark.parametrize("with_ids", [True, False], ids=["sentid", "plain"])
def test_external_iob2_file_hand_numbers_and_report(hand_setup, with_ids, capsys):
    tmp, tokens, gold, _ = hand_setup
    ids = [f"TID{i}" for i in range(len(tokens))] if with_ids else None
    test_file = evalfix.write_iob2(tmp / "external.txt", tokens, gold, ids)
    ckpt = _stub_checkpoint(tmp / "ckpt")
    cfg = compose("evaluate", [f"checkpoint={ckpt}", f"data.test_file={test_file}", "bootstrap.n=200"])
    run_mod.run_evaluate(cfg)
    out = ckpt / "eval" / "external"  # default out_dir: under the checkpoint
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["task"] == "ner" and m["split"] == "external" and m["n_sentences"] == 5
    assert m["micro"]["f1"] == pytest.approx(3 / 7) and m["macro"]["f1"] == pytest.approx(1 / 3)
    assert m["per_type"]["PERSON"]["f1"] == pytest.approx(2 / 3) and m["per_type"]["GPE"]["support"] == 3
    assert m["token_accuracy"] == pytest.approx(18 / 25)
    lo, hi = m["micro"]["f1_ci"]
    # The bootstrap (n=200, seed 0) over fixed predictions is exact arithmetic: recorded values
    # (identical with and without sentence ids); a changed resampling or seed moves them.
    assert lo <= 3 / 7 <= hi and (lo, hi) == (0.0, pytest.approx(0.750694, abs=1e-6))
    assert m["errors"]["counts"]["boundary"] == 2 and m["errors"]["counts"]["type_confusion"] == 1
    assert m["model"] == "stub-model" and m["train_time_s"] == 42.0 and m["data_fingerprint"] == "b" * 64
    assert m["eval_data"]["kind"] == "file" and m["eval_data"]["fingerprint"].startswith("sha256:")
    assert m["bootstrap"] == {"n": 200, "seed": 0, "confidence": 0.95}
    assert m["metric_module"] == "kns_seqeval"
    if with_ids:
        assert m["errors"]["top_confusions"][0]["examples"][0]["sent_id"] == "TID2"
    # files
    for name in ("report.md", "report.html", "predictions.tsv", "plots/per_type_f1.png", "plots/confusion.png",
                 "plots/error_counts.png"):
        assert (out / name).is_file(), name
    assert (out / "plots" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| micro | 0.4286 | 0.4286 | 0.4286 |" in md and "![type confusion heat map](plots/confusion.png)" in md
    assert "ORGANISATION -> GPE: 1" in md
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 3  # plots embedded, nothing external
    assert not re.search(r'(src|href)="(?!data:)', page) and "<script" not in page
    assert "<table>" in page and "PERSON" in page and "0.4286" in page
    printed = capsys.readouterr().out
    assert "micro" in printed and "0.4286" in printed and "metrics.json" in printed
    assert not list(out.glob(".staging-*"))


def test_real_tiny_model_with_only_the_two_paths(tmp_path, capsys):
    """A real (random) checkpoint and an IOB2 file: nothing else given."""
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    ckpt = evalfix.save_tiny_ner_checkpoint(tmp_path / "run" / "model")
    tokens, tags, ids = evalfix.synthetic_corpus(12)
    tokens[0] = tokens[0] * 12  # one long sentence: must be windowed, never truncated
    tags[0] = tags[0] * 12
    test_file = evalfix.write_iob2(tmp_path / "kaz.iob2", tokens, tags, ids)
    run_mod.run_evaluate(compose("evaluate", [f"checkpoint={ckpt}", f"data.test_file={test_file}"]))
    out = ckpt / "eval" / "kaz"
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["n_sentences"] == 12 and m["n_tokens"] == sum(len(t) for t in tokens)
    assert m["model"] == "tiny-bert" and m["bootstrap"]["n"] == 1000
    # predictions.tsv holds one predicted tag per gold word; metrics agree with seqeval on it
    gold, pred, cur_g, cur_p = [], [], [], []
    for line in (out / "predictions.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        if not line:
            gold.append(cur_g), pred.append(cur_p)
            cur_g, cur_p = [], []
            continue
        _, g, p = line.split("\t")
        cur_g.append(g), cur_p.append(p)
    assert not cur_g  # every sentence ends with a blank line
    assert [len(g) for g in gold] == [len(t) for t in tokens] and gold == tags
    assert m["micro"]["f1"] == pytest.approx(f1_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0))


def test_built_dataset_split(tmp_path, monkeypatch):
    from kazakh_ner_stance.data.built_dataset import dataset_fingerprint, load_built_dataset

    ds_dir = evalfix.build_dataset(tmp_path)
    test = load_built_dataset(ds_dir)["test"]
    names = test.features["ner_tags"].feature.names
    table = {tuple(t): [names[i] for i in row] for t, row in zip(test["tokens"], test["ner_tags"])}
    monkeypatch.setattr(run_mod, "_ner_backend", _fake_backend(table))  # a perfect model
    ckpt = _stub_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "out"
    run_mod.run_evaluate(compose("evaluate", [f"checkpoint={ckpt}", f"dataset_dir={ds_dir}", "split=test",
                                              f"out_dir={out}", "bootstrap.n=100"]))
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["split"] == "test" and m["n_sentences"] == len(test)
    assert m["micro"]["f1"] == 1.0 and m["micro"]["f1_ci"] == [1.0, 1.0] and m["token_accuracy"] == 1.0
    assert m["eval_data"] == {"kind": "built", "path": str(ds_dir.resolve()), "split": "test",
                              "fingerprint": dataset_fingerprint(ds_dir), "name": "test"}
    # a second run into the same folder replaces everything, leaving no staging folder
    run_mod.run_evaluate(compose("evaluate", [f"checkpoint={ckpt}", f"dataset_dir={ds_dir}", "split=test",
                                              f"out_dir={out}", "bootstrap.n=0"]))
    m2 = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m2["micro"]["f1_ci"] is None and not list(out.glob(".staging-*"))
    with pytest.raises(KnsError, match="no split 'dev'"):
        run_mod.run_evaluate(compose("evaluate", [f"checkpoint={ckpt}", f"dataset_dir={ds_dir}", "split=dev",
                                                  f"out_dir={out}"]))


def test_checkpoint_problems_name_the_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(KnsError, match=re.escape(str(missing))):
        run_mod.run_evaluate(compose("evaluate", [f"checkpoint={missing}", "data.test_file=x"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KnsError, match=re.escape(str(empty)) + ".*config.json"):
        run_mod.run_evaluate(compose("evaluate", [f"checkpoint={empty}", "data.test_file=x"]))


def test_cli_reports_error_and_exit_code_2(tmp_path):
    missing = tmp_path / "no_such_checkpoint"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), f"checkpoint={missing}", "data.test_file=x.txt",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr and str(missing) in proc.stderr and "Traceback" not in proc.stderr


def test_invalid_test_file_reports_file_and_line(hand_setup):
    tmp, *_ = hand_setup
    bad = tmp / "bad.txt"
    bad.write_text("Абай B-PERSON\nкелді O\n\nАстана B-CITY\n", encoding="utf-8")
    ckpt = _stub_checkpoint(tmp / "ckpt")
    with pytest.raises(KnsError, match=re.escape(f"{bad}:4")):
        run_mod.run_evaluate(compose("evaluate", [f"checkpoint={ckpt}", f"data.test_file={bad}"]))


def _stance_dataset(path: Path) -> Path:
    import datasets

    gold, _, _, ttypes = evalfix.read_stance_hand()
    feats = datasets.Features({
        "tokens": datasets.List(datasets.Value("string")), "start": datasets.Value("int32"),
        "end": datasets.Value("int32"), "label": datasets.ClassLabel(names=list(evalfix.LABELS)),
        "target_type": datasets.Value("string"),
    })
    rows = {"tokens": [["Мақсат", f"сөз{i}", "."] for i in range(len(gold))], "start": [0] * len(gold),
            "end": [1] * len(gold), "label": [evalfix.LABELS.index(g) for g in gold], "target_type": ttypes}
    ds = datasets.Dataset.from_dict(rows, features=feats)
    datasets.DatasetDict({"train": ds, "validation": ds, "test": ds}).save_to_disk(str(path))
    return path


@pytest.fixture
def stance_setup(tmp_path, monkeypatch):
    import numpy as np

    _, _, probs, _ = evalfix.read_stance_hand()
    calls = []

    def load(path):
        calls.append(Path(path))
        return "model", "tokenizer", dict(enumerate(evalfix.LABELS))

    def predict_probs(model, tokenizer, items, batch_size, max_length):
        return np.array([probs[int(it["tokens"][1][3:])] for it in items])  # answer by item number

    monkeypatch.setattr(run_mod, "_stance_backend", lambda: (load, predict_probs))
    return tmp_path, _stance_dataset(tmp_path / "stance_ds"), calls


@pytest.mark.parametrize("how", ["data_override", "from_training_info"])
def test_stance_checkpoint_on_a_built_stance_split(stance_setup, how):
    tmp, ds_dir, calls = stance_setup
    ckpt = _stub_checkpoint(tmp / "stance_ckpt", task="stance")
    out = tmp / "out"
    if how == "data_override":
        overrides = ["data=kaznerd_stance", f"dataset_dir={ds_dir}"]
    else:  # nothing about data given: the dataset the checkpoint was trained on
        info = json.loads((ckpt / "kns_training.json").read_text(encoding="utf-8"))
        info["config"] = {"data": {"task": "stance", "dataset_dir": str(ds_dir)}}
        (ckpt / "kns_training.json").write_text(json.dumps(info), encoding="utf-8")
        overrides = []
    run_mod.run_evaluate(compose("evaluate", [f"checkpoint={ckpt}", f"out_dir={out}", "bootstrap.n=200", *overrides]))
    assert calls == [ckpt.resolve()]
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["task"] == "stance" and m["n_sentences"] == 10 and m["metric_module"] == "kns_stance"
    assert m["macro"]["f1"] == pytest.approx(25 / 36) and m["f_avg"]["value"] == pytest.approx(2 / 3)
    assert m["calibration"]["ece"] == pytest.approx(0.29) and m["macro"]["f1_ci"] is not None
    assert m["per_target_type"]["PERSON"]["f_avg"] == pytest.approx(0.8)
    assert m["eval_data"]["kind"] == "built" and m["eval_data"]["fingerprint"]
    for name in ("stance_f1.png", "stance_confusion.png", "reliability.png"):
        assert (out / "plots" / name).is_file()
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 3 and "F_avg" in page and "Per target type" in page


def test_stance_checkpoint_without_stance_data_is_a_clear_error(stance_setup):
    tmp, _, _ = stance_setup
    ckpt = _stub_checkpoint(tmp / "stance_ckpt", task="stance")
    with pytest.raises(KnsError, match="data=kaznerd_stance"):
        run_mod.run_evaluate(compose("evaluate", [f"checkpoint={ckpt}", f"out_dir={tmp / 'o'}"]))
    with pytest.raises(KnsError, match="test_file is for NER"):
        run_mod.run_evaluate(compose("evaluate", [f"checkpoint={ckpt}", "data.test_file=x.txt"]))
