"""Sentence splitting and word tokenisation of raw Kazakh text, following KazNERD conventions.

Both functions return character offsets into the original string, so predictions can be
mapped back onto the text.

Word tokens (`tokenize_words`), as in KazNERD:
- punctuation is a token of its own: `. , ; : ! ? ( ) [ ] « » “ ” " / — –` (so `khabar.kz`
  gives `khabar . kz`, and `т.б.` gives `т . б .`, as in the corpus);
- hyphenated words and suffixes stay whole: `АҚШ-тың`, `COVID-19-ға`, `128-інші`, `Екі-`
  (a dangling hyphen before punctuation), a suffix after a space (`» -ға`), and a suffix
  right after a closing quote, bracket or per cent sign (`%-ға`, `»-ның`);
- numbers with inner separators stay whole: `1,5`, `12.03.2020`, `18:00`; a number before
  `%` is split from it (`50%` -> `50 %`);
- `—` is always a token; `–` is one too, except between two letters (`іс–шаралар`);
  a spaced `-` is a token; `...` is one token.

Sentences (`split_sentences`): a break after `.`, `!`, `?`, `…` (plus closing quotes or
brackets) when whitespace and then an upper-case letter, digit, opening quote or dash
follow, and after blank lines. No break after common Kazakh/Russian abbreviations (`т.б.`,
`ж.`, `млн.`, `проф.`, ...) or after an initial (`А. Байтұрсынұлы`).
"""

from __future__ import annotations

import re

_L = r"[^\W\d_]"  # a letter (any script)
_NUM = r"\d+(?:[.,:]\d+)+"  # 1,5  12.03.2020  18:00
_WORD = r"\w+(?:['’]\w+)*"  # letters/digits/underscore, inner apostrophes (Latin-script Kazakh)
_CORE = rf"(?:{_NUM}|{_WORD})"
# Joiners inside a word: a hyphen (ASCII or Unicode), or an en dash between two letters.
_JOIN = rf"(?:[-‐‑]|(?<={_L})–(?={_L}))"
_TOKEN_RE = re.compile(
    "|".join(
        [
            rf"[»”)\]%\"]-{_WORD}(?:-{_WORD})*",  # »-ның, %-ға: a suffix glued to a closing symbol
            rf"(?:-(?={_L}))?{_CORE}(?:{_JOIN}{_CORE})*(?:-(?!\w))?",  # words, numbers, -ға, Екі-
            r"\.\.\.",
            r"\S",
        ]
    )
)


def tokenize_words(text: str) -> list[tuple[str, int, int]]:
    """Tokens of `text` as `(token, start, end)`, with `text[start:end] == token`."""
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def words(text: str) -> list[str]:
    return [t for t, _, _ in tokenize_words(text)]


# --------------------------------------------------------------------------- sentences

# Lower-cased, without the final dot. Only abbreviations that rarely end a sentence.
ABBREVIATIONS = frozenset(
    """
    т.б т.с.с т.с б.з.б б.з ж.т.б ж жж ғ ғғ мыс көш обл ауд респ тел млн млрд трлн проф акад
    доц т.ғ.д т.ғ.к ф.ғ.д ф.ғ.к э.ғ.д э.ғ.к п.ғ.д п.ғ.к с.ғ.д м.ғ.д г гг ул им т.е т.д т.п
    """.split()
)
_ENDER = r"(?:\.\.\.|[.!?…]+)"
_CLOSERS = "»”\")]'’"
_BREAK_RE = re.compile(rf"{_ENDER}[{re.escape(_CLOSERS)}]*(?=\s+[\"«“(\[—–\-\d\w])")
_BLANK_RE = re.compile(r"\n[ \t]*\n\s*")


def _word_before(text: str, end: int) -> str:
    """The abbreviation-like chunk (letters and inner dots) ending just before `end`."""
    start = end
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
        start -= 1
    return text[start:end]


def _is_break(text: str, match: re.Match) -> bool:
    nxt = text[match.end() :].lstrip()[:1]
    if not nxt:
        return False
    if nxt.isalpha() and not nxt.isupper():
        return False  # lower case continues the sentence (abbreviation, ellipsis mid-sentence)
    if match.group(0) == ".":
        word = _word_before(text, match.start())
        if word.lower().strip(".") in ABBREVIATIONS:
            return False
        if len(word) == 1 and word.isupper():
            return False  # an initial: А. Байтұрсынұлы
    return True


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans `(start, end)` of `text`, trimmed of surrounding whitespace."""
    cuts = [0]
    for block in _BLANK_RE.finditer(text):
        cuts.append(block.start())
        cuts.append(block.end())
    for match in _BREAK_RE.finditer(text):
        if _is_break(text, match):
            cuts.append(match.end())
    cuts.append(len(text))
    spans = []
    bounds = sorted(set(cuts))
    for start, end in zip(bounds, bounds[1:]):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans


# --------------------------------------------------------------------------- joining tokens

_NO_SPACE_BEFORE = set(".,;:!?)]}»”%…")
_NO_SPACE_AFTER = {"«", "(", "[", "{", "“", "„"}


def detokenize(tokens: list[str]) -> str:
    """Join tokens as natural text: no space before closing punctuation, none after an
    opening quote or bracket; straight double quotes alternate between opening and closing."""
    out: list[str] = []
    no_space_next = True
    quote_open = False
    for token in tokens:
        space = not no_space_next
        if token[:1] in _NO_SPACE_BEFORE:
            space = False
        no_space_next = token in _NO_SPACE_AFTER
        if token == '"':
            if quote_open:
                space = False
            else:
                no_space_next = True
            quote_open = not quote_open
        if space:
            out.append(" ")
        out.append(token)
    return "".join(out)
