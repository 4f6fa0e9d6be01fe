"""Predictor and scripts/predict.py: raw text -> sentences, tokens, entities (offsets that
slice the input), stance per target; NER, stance, NER+stance and joint checkpoints; empty and
2,000-word lines; stdin/stdout and files."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.predict import Predictor, make_document, parse_line, tags_to_spans

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады."
DOC = EXAMPLE + " Астанада «Нұр Отан» партиясының жиналысы өтті.  Ол 2023 ж. басталды!"


@pytest.fixture(scope="module")
def ner_checkpoint(tiny_ner_checkpoint) -> Path:
    return tiny_ner_checkpoint


@pytest.fixture(scope="module")
def predictor(ner_checkpoint) -> Predictor:
    return Predictor.from_pretrained(ner_checkpoint)


def _fake_tagger(model, tokenizer, tokens_list, **kwargs):
    """Deterministic NER: runs of capitalised words are PERSON, a 4-digit number is DATE."""
    tags, scores = [], []
    for words in tokens_list:
        sent, prev = [], "O"
        for w in words:
            if w[:1].isupper() and w[:1].isalpha():
                tag = "I-PERSON" if prev.endswith("PERSON") else "B-PERSON"
            elif w.isdigit() and len(w) == 4:
                tag = "B-DATE"
            else:
                tag = "O"
            sent.append(tag)
            prev = tag
        tags.append(sent)
        scores.append([0.9] * len(words))
    return (tags, scores) if kwargs.get("return_scores") else tags


def _fake_stance(model, tokenizer, items, batch_size=32, max_length=256):
    """FAVOR when the sentence holds 'қолдады', else NONE; records what it was given."""
    model.seen.extend(items)
    out = []
    for it in items:
        assert 0 <= it["start"] < it["end"] <= len(it["tokens"])
        label = "FAVOR" if "қолдады" in it["tokens"] else "NONE"
        probs = {"NONE": 0.1, "FAVOR": 0.1, "AGAINST": 0.1}
        probs[label] = 0.8
        out.append({"label": label, "probs": probs})
    return out


@pytest.fixture
def fake_ner(monkeypatch):
    import kazakh_ner_stance.tasks.ner as ner

    monkeypatch.setattr(ner, "predict_word_tags", _fake_tagger)
    return (object(), object(), {0: "O"})


@pytest.fixture
def fake_stance(monkeypatch):
    import kazakh_ner_stance.tasks.stance as stance

    monkeypatch.setattr(stance, "predict_stance", _fake_stance)
    model = types.SimpleNamespace(seen=[], config=types.SimpleNamespace(kns_stance={"max_length": 64}))
    return (model, object(), {0: "NONE", 1: "FAVOR", 2: "AGAINST"})


def _check_offsets(rec: dict) -> None:
    text = rec["text"]
    for tok in rec["tokens"]:
        assert text[tok["start"]:tok["end"]] == tok["text"]
    for sent in rec["sentences"]:
        assert rec["tokens"][sent["token_start"]]["start"] == sent["start"]
        assert rec["tokens"][sent["token_end"] - 1]["end"] == sent["end"]
    for span in rec["entities"] + rec["targets"]:
        assert text[span["char_start"]:span["char_end"]] == span["text"]
        toks = rec["tokens"][span["token_start"]:span["token_end"]]
        assert toks and toks[0]["start"] == span["char_start"] and toks[-1]["end"] == span["char_end"]
        sent = rec["sentences"][span["sentence"]]
        assert sent["token_start"] <= span["token_start"] < span["token_end"] <= sent["token_end"]


# ----------------------------------------------------------------------------- pure parts


def test_tags_to_spans():
    assert tags_to_spans(["B-PERSON", "I-PERSON", "O", "B-GPE", "B-GPE", "I-GPE"]) == [
        (0, 2, "PERSON"), (3, 4, "GPE"), (4, 6, "GPE")]
    assert tags_to_spans(["I-ORG", "I-ORG", "I-GPE"]) == [(0, 2, "ORG"), (2, 3, "GPE")]
    assert tags_to_spans([]) == []


def test_documents_from_text_json_and_tokens():
    doc = make_document(DOC)
    assert len(doc.sentences) == 3 and doc.targets is None
    assert [t for t, _, _ in doc.tokens[:4]] == ["Қазақстан", "Президенті", "Қасым-Жомарт", "Тоқаев"]
    # a character target that cuts words is widened to whole words
    doc = make_document({"text": EXAMPLE, "targets": [[23, 36], {"start": 0, "end": 9, "type": "GPE"}], "id": 5})
    assert doc.targets == [(2, 4, None), (0, 1, "GPE")] and doc.extra == {"id": 5}
    doc = make_document({"tokens": ["Тоқаев", "Астанада", "сөйледі", "."], "start": 0, "end": 1})
    assert doc.text == "Тоқаев Астанада сөйледі ." and doc.targets == [(0, 1, None)]
    # a target that crosses a sentence break joins the two sentences
    text = "Бірінші сөйлем. Екінші сөйлем."
    assert len(make_document(text).sentences) == 2
    assert len(make_document({"text": text, "targets": [[8, 22]]}).sentences) == 1
    for bad in ({"text": EXAMPLE, "targets": [[5, 500]]}, {"text": EXAMPLE, "targets": [[9, 10]]},
                {"text": EXAMPLE, "targets": [["a", 3]]}, {"tokens": ["а"], "targets": [[0, 2]]}, {"foo": 1}):
        with pytest.raises(KnsError):
            make_document(bad)


def test_parse_line_formats():
    assert parse_line("Қазақстан\n") == "Қазақстан"
    assert parse_line('{"text": "x"}\r\n') == {"text": "x"}
    assert parse_line("{not json") == "{not json"  # auto: a text line that happens to start with {
    assert parse_line('{"text": "x"}', "text") == '{"text": "x"}'
    with pytest.raises(KnsError, match="in.txt:3"):
        parse_line("plain", "jsonl", where="in.txt:3")


# ----------------------------------------------------------------------------- NER checkpoint


def test_ner_checkpoint_raw_text(predictor):
    recs = predictor([EXAMPLE, DOC, ""])
    assert len(recs) == 3 and predictor.task == "ner"
    rec = recs[1]
    assert set(rec) == {"text", "sentences", "tokens", "entities", "targets"}
    assert rec["text"] == DOC and len(rec["sentences"]) == 3 and rec["targets"] == []
    for r in recs:
        _check_offsets(r)
    ents = [e for r in recs for e in r["entities"]]
    assert ents, "the tiny model should tag something"
    types_ = set(predictor.ner[2].values())
    # An entity's score is the mean of its words' argmax probabilities, so never below 1/labels
    # (catches a score read from another label's probability, or from logits).
    floor = 1 / len(types_) - 1e-6  # scores are rounded to 6 places
    assert all("B-" + e["type"] in types_ and floor <= e["score"] <= 1 for e in ents)
    assert recs[2] == {"text": "", "sentences": [], "tokens": [], "entities": [], "targets": []}
    single = predictor(EXAMPLE)  # one text in, one dict out
    assert single == recs[0]
    assert predictor([]) == []


def test_predictions_do_not_depend_on_batching(predictor):
    texts = [EXAMPLE, DOC, "Астана", "Ол бүгін Алматыға барды ."] * 3
    a = predictor(texts, batch_size=1)
    b = predictor(texts, batch_size=64)
    assert [r["entities"] for r in a] == [r["entities"] for r in b]
    assert a[0] == predictor([EXAMPLE])[0]


def test_very_long_and_whitespace_input(predictor):
    words = ["Тоқаев", "Астанада", "жиналыс", "өткізді", "және", "Алматы"] * 334
    long_line = " ".join(words[:2000])
    recs = predictor([long_line, "   \t ", "."])
    rec = recs[0]
    assert len(rec["tokens"]) == 2000 and len(rec["sentences"]) == 1  # no full stop: one sentence
    _check_offsets(rec)
    covered = sum(e["token_end"] - e["token_start"] for e in rec["entities"])
    assert covered <= 2000
    assert recs[1]["tokens"] == [] and recs[1]["sentences"] == []
    assert len(recs[2]["tokens"]) == 1


def test_offsets_slice_the_input_back(fake_ner):
    p = Predictor(ner=fake_ner)
    texts = [EXAMPLE, "  " + DOC + "  ", "«Қазақтелеком» АҚ-ның 2023 жылғы есебі…  Жаңа\tЖол"]
    for rec in p(texts):
        _check_offsets(rec)
    rec = p(EXAMPLE)
    assert [e["text"] for e in rec["entities"]] == ["Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік"]
    e = rec["entities"][0]
    assert (e["char_start"], e["char_end"], e["token_start"], e["token_end"]) == (0, 52, 0, 5)
    assert e["score"] == pytest.approx(0.9)


# ----------------------------------------------------------------------------- stance


def test_ner_plus_stance_runs_stance_on_target_entities(fake_ner, fake_stance):
    p = Predictor(ner=fake_ner, stance=fake_stance, stance_target_types=["PERSON"])
    recs = p([DOC, "бұл 2023 жылы болды."])
    assert p.task == "ner+stance"
    rec = recs[0]
    _check_offsets(rec)
    assert [t["text"] for t in rec["targets"]] == [e["text"] for e in rec["entities"] if e["type"] == "PERSON"]
    first = rec["targets"][0]
    assert first["label"] == "FAVOR" and set(first["probs"]) == {"NONE", "FAVOR", "AGAINST"}
    assert rec["targets"][1]["label"] == "NONE"  # another sentence, without the cue
    assert recs[1]["targets"] == [] and recs[1]["entities"][0]["type"] == "DATE"  # DATE is not a target type
    item = fake_stance[0].seen[0]  # the stance model sees the target's sentence, local span
    assert item["tokens"][item["start"]:item["end"]] == first["text"].split()


def test_stance_only_checkpoint_with_given_targets(fake_stance):
    p = Predictor(stance=fake_stance)
    recs = p([{"text": EXAMPLE, "targets": [[34, 40], [0, 9, "GPE"]], "id": "a"},
              {"tokens": ["Тоқаев", "сынады", "."], "start": 0, "end": 1}, EXAMPLE])
    assert recs[0]["id"] == "a" and recs[0]["entities"] == []
    assert [(t["text"], t["type"], t["label"]) for t in recs[0]["targets"]] == [
        ("Қазақстан", "GPE", "FAVOR"), ("Тоқаев", None, "FAVOR")]  # sorted by position
    assert recs[1]["text"] == "Тоқаев сынады ." and recs[1]["targets"][0]["label"] == "NONE"
    assert recs[2]["targets"] == []  # plain text, no targets: nothing to classify (warned once)
    for r in recs:
        _check_offsets(r)


def test_joint_checkpoint_through_fakes(tmp_path, monkeypatch):
    calls = {}

    def load_joint_checkpoint(path, device=None, cpu_linear="torch"):
        calls["path"] = Path(path)
        return "model", "tokenizer", {"task": "joint"}

    def predict_joint(model, tokenizer, tokens_list, batch_size=32):
        out = []
        for words in tokens_list:
            tags = ["B-PERSON" if w == "Тоқаев" else "O" for w in words]
            targets = [{"start": i, "end": i + 1, "type": "PERSON", "label": "AGAINST", "probs": [0.1, 0.2, 0.7]}
                       for i, w in enumerate(words) if w == "Тоқаев"]
            out.append({"tags": tags, "scores": [0.8] * len(words), "targets": targets})
        return out

    fake = types.ModuleType("kazakh_ner_stance.tasks.joint")
    fake.load_joint_checkpoint, fake.predict_joint = load_joint_checkpoint, predict_joint
    monkeypatch.setitem(sys.modules, "kazakh_ner_stance.tasks.joint", fake)
    import kazakh_ner_stance.tasks as tasks_pkg

    monkeypatch.setattr(tasks_pkg, "joint", fake, raising=False)
    (tmp_path / "kns_training.json").write_text(json.dumps({"task": "joint"}))
    (tmp_path / "config.json").write_text("{}")
    p = Predictor.from_pretrained(tmp_path)
    assert calls["path"] == tmp_path and p.task == "joint"
    rec = p("Бүгін Тоқаев келді. Тоқаев сөйледі.")
    _check_offsets(rec)
    assert [(e["text"], e["sentence"]) for e in rec["entities"]] == [("Тоқаев", 0), ("Тоқаев", 1)]
    assert [t["token_start"] for t in rec["targets"]] == [1, 4]
    assert rec["targets"][0]["label"] == "AGAINST" and rec["targets"][0]["probs"]["2"] == pytest.approx(0.7)


@pytest.fixture(scope="module")
def stance_checkpoint(tiny_stance_checkpoint) -> Path:
    return tiny_stance_checkpoint


def test_real_tiny_stance_checkpoints(ner_checkpoint, stance_checkpoint):
    alone = Predictor.from_pretrained(stance_checkpoint)
    assert alone.task == "stance"
    rec = alone({"text": EXAMPLE, "targets": [[34, 40]]})
    assert rec["targets"][0]["text"] == "Тоқаев" and rec["targets"][0]["label"] in ("NONE", "FAVOR", "AGAINST")
    assert sum(rec["targets"][0]["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    both = Predictor.from_pretrained(ner_checkpoint, stance_checkpoint=stance_checkpoint)
    assert both.task == "ner+stance"
    both.stance_target_types = {e for e in (v[2:] for v in both.ner[2].values()) if e}  # every type is a target
    rec = both(DOC)
    _check_offsets(rec)
    assert len(rec["targets"]) == len(rec["entities"])
    with pytest.raises(KnsError, match="already predicts stance"):
        Predictor.from_pretrained(stance_checkpoint, stance_checkpoint=stance_checkpoint)
    with pytest.raises(KnsError, match="not a stance one"):
        Predictor.from_pretrained(ner_checkpoint, stance_checkpoint=ner_checkpoint)


def test_real_tiny_joint_checkpoint(tiny_encoder, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from test_task_joint import save_joint_dataset
    finally:
        sys.path.pop(0)
    from kazakh_ner_stance.training.train import run_train

    data = save_joint_dataset(tmp_path / "joint_tiny")
    run = tmp_path / "run"
    run_train(compose("train", [
        "task=joint", "data=kaznerd_joint", "model=local", f"model.path={tiny_encoder}", f"data.dataset_dir={data}",
        "trainer=debug", f"run_dir={run}", f"paths.artifacts_dir={tmp_path / 'artifacts'}", "task.max_length=24",
        "task.window_overlap=6", "task.bootstrap_n=0", "evaluate_test=false",
    ]))
    p = Predictor.from_pretrained(run / "model")
    assert p.task == "joint"
    long_line = " ".join(["Тоқаев", "Астанада", "жиналыс", "өткізді", "."] * 400)
    recs = p([DOC, "", long_line])
    for r in recs:
        _check_offsets(r)
        for t in r["targets"]:
            assert t["label"] in ("NONE", "FAVOR", "AGAINST") and sum(t["probs"].values()) == pytest.approx(1, abs=1e-4)
    assert len(recs[2]["tokens"]) == 2000 and len(recs[2]["sentences"]) == 400


# ----------------------------------------------------------------------------- command line


def test_run_predict_stdin_stdout(ner_checkpoint, monkeypatch, capsys):
    from kazakh_ner_stance.predict import run_predict

    lines = [EXAMPLE, "", '{"text": "Тоқаев келді.", "id": 3}', DOC]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    summary = run_predict(compose("predict", [f"checkpoint={ner_checkpoint}", "input=-", "output=-"]))
    out = capsys.readouterr()
    recs = [json.loads(line) for line in out.out.splitlines()]
    assert [r["text"] for r in recs] == [EXAMPLE, "", "Тоқаев келді.", DOC] and recs[2]["id"] == 3
    assert summary["lines"] == 4 and "predicted 4 line(s)" in out.err
    for r in recs:
        _check_offsets(r)


def test_run_predict_files(ner_checkpoint, tmp_path, predictor):
    from kazakh_ner_stance.predict import run_predict

    src = tmp_path / "in.txt"
    src.write_text("\ufeff" + EXAMPLE + "\r\n" + DOC + "\n", encoding="utf-8")  # BOM and CRLF
    out = tmp_path / "sub" / "out.jsonl"
    run_predict(compose("predict", [f"checkpoint={ner_checkpoint}", f"input={src}", f"output={out}", "chunk_lines=1",
                                    "batch_size=2"]))
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert recs == predictor([EXAMPLE, DOC])
    assert not list(out.parent.glob("*.tmp*"))
    with pytest.raises(KnsError, match="does not exist"):
        run_predict(compose("predict", [f"checkpoint={ner_checkpoint}", f"input={tmp_path / 'nope.txt'}"]))
    with pytest.raises(KnsError, match="no checkpoint"):
        run_predict(compose("predict", []))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x"}\nplain\n', encoding="utf-8")
    with pytest.raises(KnsError, match="bad.jsonl:2"):
        run_predict(compose("predict", [f"checkpoint={ner_checkpoint}", f"input={bad}", "input_format=jsonl",
                                        f"output={tmp_path / 'o.jsonl'}"]))
    assert not (tmp_path / "o.jsonl").exists()  # no half-written output


def test_predict_script_pipes(ner_checkpoint):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "predict.py"), f"checkpoint={ner_checkpoint}"],
        input=EXAMPLE + "\n", capture_output=True, text=True, encoding="utf-8", timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    recs = [json.loads(line) for line in proc.stdout.splitlines()]  # stdout holds JSON lines only
    assert len(recs) == 1 and recs[0]["text"] == EXAMPLE
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), "checkpoint=/nonexistent"],
                         input="", capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert bad.returncode == 2 and "checkpoint folder not found" in bad.stderr


def test_lazy_package_export():
    import kazakh_ner_stance

    assert kazakh_ner_stance.Predictor is Predictor


# ----------------------------------------------------------------------------- bad input bytes

BAD_BYTES = "Астана қаласы.\n".encode() + b"\xff\xfe bad\n" + "Тоқаев келді.\n".encode()


def test_bad_utf8_file_names_line_and_byte(ner_checkpoint, tmp_path):
    from kazakh_ner_stance.predict import run_predict

    src = tmp_path / "bad.txt"
    src.write_bytes(BAD_BYTES + b"ok\n\xc3(\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(KnsError) as err:
        run_predict(compose("predict", [f"checkpoint={ner_checkpoint}", f"input={src}", f"output={out}"]))
    msg = str(err.value)
    assert f"{src}:2: invalid UTF-8 (byte 0xff at column 1)" in msg
    assert f"{src}:5: invalid UTF-8 (byte 0xc3 at column 1)" in msg and "on_bad_line=skip" in msg
    assert not out.exists()
    with pytest.raises(KnsError, match="on_bad_line must be"):
        run_predict(compose("predict", [f"checkpoint={ner_checkpoint}", f"input={src}", "on_bad_line=drop"]))


def test_bad_utf8_skip_keeps_the_valid_lines(ner_checkpoint, tmp_path, predictor, capsys):
    from kazakh_ner_stance.predict import run_predict

    src = tmp_path / "bad.txt"
    src.write_bytes(b"\xef\xbb\xbf" + BAD_BYTES)
    out = tmp_path / "out.jsonl"
    summary = run_predict(compose("predict", [f"checkpoint={ner_checkpoint}", f"input={src}", f"output={out}",
                                              "on_bad_line=skip"]))
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert recs == predictor(["Астана қаласы.", "Тоқаев келді."])
    assert summary["skipped_lines"] == 1 and summary["lines"] == 2
    assert f"skipped 1 bad line(s) (on_bad_line=skip): {src}:2: invalid UTF-8" in capsys.readouterr().err


def test_bad_utf8_on_stdin(ner_checkpoint, monkeypatch, capsys):
    from kazakh_ner_stance.predict import run_predict

    # error: the lines before the bad one are written, then a clear error (not a traceback).
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(BAD_BYTES)))
    with pytest.raises(KnsError, match=r"stdin:2: invalid UTF-8 \(byte 0xff at column 1\)"):
        run_predict(compose("predict", [f"checkpoint={ner_checkpoint}"]))
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["Астана қаласы."]
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(BAD_BYTES)))
    summary = run_predict(compose("predict", [f"checkpoint={ner_checkpoint}", "on_bad_line=skip"]))
    assert summary["skipped_lines"] == 1
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == ["Астана қаласы.",
                                                                                           "Тоқаев келді."]


def test_skip_also_covers_bad_json_lines(ner_checkpoint, tmp_path):
    from kazakh_ner_stance.predict import run_predict

    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "Бір."}\n{"text": "Екі.", "targets": [[0, 99]]}\nplain\n{"text": "Үш."}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = run_predict(compose("predict", [f"checkpoint={ner_checkpoint}", f"input={src}", f"output={out}",
                                              "input_format=jsonl", "on_bad_line=skip"]))
    assert summary["skipped_lines"] == 2
    assert [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").splitlines()] == ["Бір.", "Үш."]


def test_predict_script_bad_bytes_exit_2(ner_checkpoint):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), f"checkpoint={ner_checkpoint}"],
                          input=BAD_BYTES, capture_output=True, timeout=300, cwd=ROOT)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "stdin:2: invalid UTF-8 (byte 0xff at column 1)" in err
    assert "Traceback" not in err and "UnicodeDecodeError" not in err
    assert json.loads(proc.stdout.decode().splitlines()[0])["text"] == "Астана қаласы."
