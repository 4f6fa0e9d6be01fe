"""NFC and Latin-in-Cyrillic normalisation."""

from __future__ import annotations

import unicodedata

from kazakh_ner_stance.data.iob2 import Sentence
from kazakh_ner_stance.data.normalize import (
    NormalizeReport,
    fix_latin_in_cyrillic,
    mixed_script_words,
    normalize_sentences,
)


def test_mixed_script_detection():
    assert mixed_script_words("Cаенс") == ["Cаенс"]  # Latin C
    assert mixed_script_words("мемлекеттiк") == ["мемлекеттiк"]  # Latin i
    for fine in ("QR-код", "IT-мамандарды", "COVID-19-ға", "Астана", "Telegram", "2020"):
        assert mixed_script_words(fine) == [], fine


def test_fix_only_when_safe():
    assert fix_latin_in_cyrillic("Cаенс") == "Саенс"
    assert fix_latin_in_cyrillic("мемлекеттiк") == "мемлекеттік"
    assert fix_latin_in_cyrillic("IT-мамандарды") == "IT-мамандарды"
    assert fix_latin_in_cyrillic("iPhoneды") == "iPhoneды"  # n has no Cyrillic look-alike: left alone


def test_normalize_sentences_counts_and_fixes():
    decomposed = unicodedata.normalize("NFD", "й")
    sent = Sentence(sent_id="x", tokens=["Ол", decomposed, "Cаенс"], tags=["O", "O", "O"], line=10)
    report = NormalizeReport()
    normalize_sentences([sent], "f.txt", report, fix_latin=False)
    assert sent.tokens[1] == "й" and report.nfc_tokens == 1
    assert report.latin_in_cyrillic_tokens == 1 and report.latin_in_cyrillic_fixed == 0
    assert report.examples == [{"file": "f.txt", "line": 12, "token": "Cаенс"}]
    assert sent.tokens[2] == "Cаенс"  # reported, not fixed

    report = NormalizeReport()
    normalize_sentences([sent], "f.txt", report, fix_latin=True)
    assert sent.tokens[2] == "Саенс" and report.latin_in_cyrillic_fixed == 1
