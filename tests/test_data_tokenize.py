"""Sentence splitting and word tokenisation (KazNERD conventions, character offsets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kazakh_ner_stance.data.tokenize import detokenize, split_sentences, tokenize_words, words

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "kaznerd" / "IOB2_valid_sentid.txt"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Әрі «Қара сөздерінің» аудиодискісін тыңдауға болады.",
         ["Әрі", "«", "Қара", "сөздерінің", "»", "аудиодискісін", "тыңдауға", "болады", "."]),
        ("АҚШ-тың COVID-19-ға қатысты шешімі", ["АҚШ-тың", "COVID-19-ға", "қатысты", "шешімі"]),
        ("1,5 млн теңге 12.03.2020 күні 128-інші рет", ["1,5", "млн", "теңге", "12.03.2020", "күні", "128-інші", "рет"]),
        ("бағасы 50%-ға өсті, яғни 7%", ["бағасы", "50", "%-ға", "өсті", ",", "яғни", "7", "%"]),
        ("2005 – 2018-інші жылдар, іс–шаралар", ["2005", "–", "2018-інші", "жылдар", ",", "іс–шаралар"]),
        ("Бұл—үй. — Иә, — деді ол.", ["Бұл", "—", "үй", ".", "—", "Иә", ",", "—", "деді", "ол", "."]),
        ("«КОВИД-19» -ға, «Нұр»-ның (о) т.б. Екі-, үш", 
         ["«", "КОВИД-19", "»", "-ға", ",", "«", "Нұр", "»-ның", "(", "о", ")", "т", ".", "б", ".", "Екі-", ",", "үш"]),
        ("сағат 18:00-де khabar.kz сайтында...", ["сағат", "18:00-де", "khabar", ".", "kz", "сайтында", "..."]),
        ("алпыс - жетпіс", ["алпыс", "-", "жетпіс"]),
    ],
)  # fmt: skip
def test_tokenize_words(text, expected):
    assert words(text) == expected


def test_offsets_slice_the_text():
    text = "  Астана  —\tҚазақстанның «бас» қаласы.\n"
    tokens = tokenize_words(text)
    assert all(text[start:end] == token for token, start, end in tokens)
    assert tokens[0] == ("Астана", 2, 8)


def test_detokenize_round_trip():
    tokens = ["Ол", "«", "Жаңа", "өмір", "»", "кітабын", "(", "2020", ")", "оқыды", ",", "50", "%", "."]
    text = detokenize(tokens)
    assert text == "Ол «Жаңа өмір» кітабын (2020) оқыды, 50%."
    assert words(text) == tokens
    assert detokenize(["Ол", '"', "Иә", '"', "деді"]) == 'Ол "Иә" деді'


def test_split_sentences():
    text = "А. Байтұрсынұлы 1873 ж. туған. Ол ақын т.б. болды! «Иә», — деді ол. Сосын 2020 жылы келді?\n\nЖаңа абзац"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "А. Байтұрсынұлы 1873 ж. туған.",
        "Ол ақын т.б. болды!",
        "«Иә», — деді ол.",
        "Сосын 2020 жылы келді?",
        "Жаңа абзац",
    ]
    assert split_sentences("") == [] and split_sentences("  \n ") == []
    assert split_sentences("бір... екі") == [(0, 10)]


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_file(), reason="shared KazNERD copy absent")
def test_kaznerd_round_trip_share():
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.data.iob2 import read_iob2

    sentences, _ = read_iob2(SHARED, list(compose("build_dataset").data.entity_types), orphan_inside="repair")
    exact = sum(words(detokenize(s.tokens)) == s.tokens for s in sentences)
    assert exact / len(sentences) >= 0.98
