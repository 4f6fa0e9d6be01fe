"""Stance candidates from raw text: Kazakh case forms of target names, injectable NER."""

from __future__ import annotations

import json

import pytest

from kazakh_ner_stance.stance_annotation.candidates import NameMatcher, case_forms, extract_candidates


@pytest.mark.parametrize(
    "name,forms",
    [
        ("Тоқаев", {"тоқаевтың", "тоқаевқа", "тоқаевты", "тоқаевтан", "тоқаевпен"}),
        ("Медведев", {"медведевтің", "медведевке"}),
        ("Астана", {"астанада", "астанадан", "астанаға", "астананың", "астананы", "астанадағы"}),
        ("Қазақстан", {"қазақстанның", "қазақстанға", "қазақстаннан", "қазақстанды"}),
        ("Ресей", {"ресейдің", "ресейге", "ресейде", "ресейден"}),
        ("Бішкек", {"бішкектің", "бішкекке", "бішкекте"}),
        ("Ұйымы", {"ұйымының", "ұйымына", "ұйымында", "ұйымынан", "ұйымын"}),
        ("АҚШ", {"ақш-тың", "ақш-қа", "ақш-та"}),
    ],
)
def test_case_forms(name, forms):
    got = case_forms(name)
    assert forms <= got, forms - got


def test_vowel_harmony_rejects_wrong_forms():
    assert "тоқаевтің" not in case_forms("Тоқаев")
    assert "астанаге" not in case_forms("Астана")


def test_name_matcher_multiword_and_overlaps():
    m = NameMatcher(["Тоқаев", {"name": "Біріккен Ұлттар Ұйымы", "type": "ORGANISATION"}, "Ұйымы"])
    tokens = "Біріккен Ұлттар Ұйымының хатшысы Тоқаевқа хат жазды".split()
    assert [(s, e, p.name) for s, e, p in m.find(tokens)] == [(0, 3, "Біріккен Ұлттар Ұйымы"), (4, 5, "Тоқаев")]


def _split(text):
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch == ".":
            out.append((start, i + 1))
            start = i + 2
    return out


def _tok(text):
    out, pos = [], 0
    for tok in text.split(" "):
        if tok:
            out.append((tok, pos, pos + len(tok)))
        pos += len(tok) + 1
    return out


def test_extract_with_names_and_fake_ner():
    text = "Тоқаевқа Астанада алғыс айтылды . Ұлттық банк шешім қабылдады ."
    calls = []

    def fake_predict(tokens_list):
        calls.append(len(tokens_list))
        return [["B-ORGANISATION", "I-ORGANISATION"] + ["O"] * (len(t) - 2) if t[0] == "Ұлттық" else ["O"] * len(t)
                for t in tokens_list]

    items = extract_candidates(
        [("doc1", text)], NameMatcher(["Тоқаев", {"name": "Астана", "type": "GPE"}]), fake_predict,
        split_fn=_split, tokenize_fn=_tok,
    )
    assert calls == [2]
    got = [(i["sent_id"], i["start"], i["end"], i["target"], i["type"], i["source"]) for i in items]
    assert got == [
        ("doc1-s0000", 0, 1, "Тоқаевқа", None, "names"),
        ("doc1-s0000", 1, 2, "Астанада", "GPE", "names"),
        ("doc1-s0001", 0, 2, "Ұлттық банк", "ORGANISATION", "ner"),
    ]
    assert text[items[2]["char_start"] : items[2]["char_end"]] == "Ұлттық банк"


def test_run_candidates_script_config(tmp_path):
    """The tool verb end to end with the project tokenizer and a fake predictor."""
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.stance_annotation.cli import run_stance_candidates

    doc = tmp_path / "news.txt"
    doc.write_text("Депутаттар Тоқаевтың бастамасын қолдады. Ресейге қарсы санкциялар талқыланды.", encoding="utf-8")
    out = tmp_path / "c.jsonl"
    cfg = compose("stance_candidates", [f"input=[{doc}]", "names=['Тоқаев','Ресей']", f"out={out}"])
    items = run_stance_candidates(cfg, predictor=lambda tl: [["O"] * len(t) for t in tl])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["target"] for r in rows] == ["Тоқаевтың", "Ресейге"] == [i["target"] for i in items]
    assert [r["weak_label"] for r in rows] == ["FAVOR", "AGAINST"]
