"""Text normalisation for the builder: Unicode NFC, and Latin look-alikes in Cyrillic words.

A "word" here is a maximal run of letters inside a token, so `QR-код` or `IT-мамандарды`
(a Latin word hyphenated to a Cyrillic suffix) are fine, while `Cаенс` (Latin C) or
`мемлекеттiк` (Latin i for Kazakh і) are flagged. Flagged words are always reported; with
`fix=True` a word is rewritten only when Cyrillic letters outnumber Latin ones and every
Latin letter in it has a Cyrillic look-alike (so `iPhoneды` is reported but left alone).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_LETTER_RUN = re.compile(r"[^\W\d_]+")
_CYR = re.compile(r"[\u0400-\u04FF\u0500-\u052F]")
_LAT = re.compile(r"[A-Za-z\u00C0-\u024F]")

LATIN_TO_CYRILLIC = {
    "a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "i": "і", "h": "һ",
    "k": "к", "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О",
    "P": "Р", "T": "Т", "X": "Х", "Y": "У", "I": "І",
}  # fmt: skip


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def mixed_script_words(token: str) -> list[str]:
    """Letter runs of `token` that contain both Cyrillic and Latin letters."""
    return [w for w in _LETTER_RUN.findall(token) if _CYR.search(w) and _LAT.search(w)]


def _fix_word(word: str) -> str:
    latin = _LAT.findall(word)
    cyrillic = _CYR.findall(word)
    if len(cyrillic) <= len(latin) or any(ch not in LATIN_TO_CYRILLIC for ch in latin):
        return word
    return "".join(LATIN_TO_CYRILLIC.get(ch, ch) for ch in word)


def fix_latin_in_cyrillic(token: str) -> str:
    """`token` with fixable mixed-script words rewritten to Cyrillic (else unchanged)."""
    if not mixed_script_words(token):
        return token
    return _LETTER_RUN.sub(lambda m: _fix_word(m.group(0)), token)


@dataclass
class NormalizeReport:
    nfc_tokens: int = 0
    latin_in_cyrillic_tokens: int = 0
    latin_in_cyrillic_fixed: int = 0
    examples: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "nfc_tokens": self.nfc_tokens,
            "latin_in_cyrillic_tokens": self.latin_in_cyrillic_tokens,
            "latin_in_cyrillic_fixed": self.latin_in_cyrillic_fixed,
            "latin_in_cyrillic_examples": self.examples,
        }


def normalize_sentences(
    sentences, file_name: str, report: NormalizeReport, fix_latin: bool = False, max_examples: int = 30
) -> None:
    """Normalise `sentences` (iob2.Sentence) in place, counting what changed in `report`.

    Token line numbers are reconstructed from `Sentence.line` (tokens are one per line)."""
    for sent in sentences:
        for i, token in enumerate(sent.tokens):
            if not token.isascii():
                normal = nfc(token)
                if normal != token:
                    report.nfc_tokens += 1
                    token = sent.tokens[i] = normal
                if mixed_script_words(token):
                    report.latin_in_cyrillic_tokens += 1
                    fixed = fix_latin_in_cyrillic(token) if fix_latin else token
                    if len(report.examples) < max_examples:
                        example = {"file": file_name, "line": sent.line + i, "token": token}
                        if fix_latin:
                            example["fixed"] = fixed
                        report.examples.append(example)
                    if fixed != token:
                        report.latin_in_cyrillic_fixed += 1
                        sent.tokens[i] = fixed
