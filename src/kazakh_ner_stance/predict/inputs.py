"""Prediction input: lines of text or JSON read as UTF-8 and turned into tokenised `Document`s.

The formats (plain text, `{"text", "targets"}`, `{"tokens", "targets"}`) are described in
the package docstring (`kazakh_ner_stance.predict`); the server parses request bodies with the
same `make_document`."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import KnsError, Problem, invalid_utf8_message

ON_BAD_LINE = ("error", "skip")


class InputError(KnsError):
    """One input item (a line, a request body item) that cannot be read: `where` it is, which
    `field` of it is wrong (None: the item itself), and what is wrong. str() is
    "where: detail", the message the command line prints; the server reports the parts."""

    def __init__(self, where: str, detail: str, field: str | None = None):
        self.where, self.detail, self.field = where, detail, field
        super().__init__(f"{where}: {detail}")


@dataclass
class Document:
    """One input line, tokenised: words with character offsets, sentences as word ranges."""

    text: str
    tokens: list[tuple[str, int, int]]
    sentences: list[tuple[int, int]]  # word index ranges [lo, hi)
    targets: list[tuple[int, int, str | None]] | None = None  # word ranges into `tokens`
    extra: dict = field(default_factory=dict)


def _target_tuple(raw, where: str, key: str = "targets") -> tuple[int, int, str | None]:
    if isinstance(raw, Mapping):
        start, end, ttype = raw.get("start"), raw.get("end"), raw.get("type")
    elif isinstance(raw, (list, tuple)) and len(raw) in (2, 3):
        start, end = raw[0], raw[1]
        ttype = raw[2] if len(raw) == 3 else None
    else:
        raise InputError(where, "a target must be [start, end], [start, end, type] or "
                                f'{{"start", "end", "type"}}, got {raw!r}', key)
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        raise InputError(where, f"target offsets must be integers, got {raw!r}", key)
    if ttype is not None and not isinstance(ttype, str):
        raise InputError(where, f"a target type must be a string, got {ttype!r}", key)
    return start, end, ttype


def _sentence_ranges(text: str, tokens: list[tuple[str, int, int]], split: bool) -> list[tuple[int, int]]:
    """Word ranges of the sentences (each word goes to the sentence its first character is in)."""
    from ..data.tokenize import split_sentences

    if not tokens:
        return []
    if not split:
        return [(0, len(tokens))]
    starts = [s for _, s, _ in tokens]
    ranges = []
    for c0, c1 in split_sentences(text):
        lo, hi = bisect.bisect_left(starts, c0), bisect.bisect_left(starts, c1)
        if hi > lo:
            ranges.append((lo, hi))
    # Words outside every sentence span (never expected) join the sentence before them.
    fixed, cursor = [], 0
    for lo, hi in ranges:
        if lo > cursor and fixed:
            fixed[-1] = (fixed[-1][0], lo)
        elif lo > cursor:
            lo = cursor
        fixed.append((lo, hi))
        cursor = hi
    if fixed and cursor < len(tokens):
        fixed[-1] = (fixed[-1][0], len(tokens))
    return fixed or [(0, len(tokens))]


def _merge_for_targets(sentences: list[tuple[int, int]], targets) -> list[tuple[int, int]]:
    """Join consecutive sentences that a target crosses: a target lives in one sentence."""
    if not targets:
        return sentences
    merged = list(sentences)
    for t0, t1, _ in targets:
        out = []
        for lo, hi in merged:
            if out and out[-1][0] < t1 and t0 < out[-1][1] and lo < t1:
                out[-1] = (out[-1][0], hi)  # previous sentence overlaps the target, and so does this
            else:
                out.append((lo, hi))
        merged = out
    return merged


def make_document(item: Any, split_sentences: bool = True, where: str = "input") -> Document:
    """A `Document` from a text string or a JSON-like dict (see the module docstring)."""
    from ..data.tokenize import tokenize_words

    if isinstance(item, str):
        tokens = tokenize_words(item)
        return Document(item, tokens, _sentence_ranges(item, tokens, split_sentences))
    if not isinstance(item, Mapping):
        raise InputError(where, f"expected a text string or an object with 'text' or 'tokens', got {type(item).__name__}")
    extra = {k: v for k, v in item.items() if k not in ("text", "tokens", "targets", "start", "end")}
    raw_targets = item.get("targets")
    if raw_targets is None and "start" in item and "end" in item:
        raw_targets = [[item["start"], item["end"]]]
    if raw_targets is not None and not isinstance(raw_targets, list):
        raise InputError(where, "'targets' must be a list of spans", "targets")
    key = "targets" if "targets" in item else "start"  # where given targets are named
    parsed = [_target_tuple(t, where, f"{key}[{i}]" if key == "targets" else key)
              for i, t in enumerate(raw_targets or [])]
    if "tokens" in item and item["tokens"] is not None:
        words = item["tokens"]
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            raise InputError(where, "'tokens' must be a list of non-empty strings", "tokens")
        tokens, pos = [], 0
        for w in words:
            tokens.append((w, pos, pos + len(w)))
            pos += len(w) + 1
        text = " ".join(words)
        targets = []
        for i, (t0, t1, ttype) in enumerate(parsed):
            if not 0 <= t0 < t1 <= len(tokens):
                raise InputError(where, f"target token span [{t0}, {t1}) is outside the {len(tokens)} tokens",
                                 f"{key}[{i}]" if key == "targets" else key)
            targets.append((t0, t1, ttype))
        sentences = [(0, len(tokens))] if tokens else []
        return Document(text, tokens, sentences, targets if raw_targets is not None else None, extra)
    text = item.get("text")
    if not isinstance(text, str):
        raise InputError(where, "a JSON line needs a 'text' string or a 'tokens' list", "text")
    tokens = tokenize_words(text)
    starts, ends = [s for _, s, _ in tokens], [e for _, _, e in tokens]
    targets = []
    for i, (c0, c1, ttype) in enumerate(parsed):
        tfield = f"{key}[{i}]" if key == "targets" else key
        if not 0 <= c0 < c1 <= len(text):
            raise InputError(where, f"target character span [{c0}, {c1}) is outside the text ({len(text)} characters)",
                             tfield)
        lo = bisect.bisect_right(ends, c0)  # first word ending after c0
        hi = bisect.bisect_left(starts, c1)  # words starting before c1
        if hi <= lo:
            raise InputError(where, f"target [{c0}, {c1}) = {text[c0:c1]!r} covers no word", tfield)
        targets.append((lo, hi, ttype))
    sentences = _merge_for_targets(_sentence_ranges(text, tokens, split_sentences), targets)
    return Document(text, tokens, sentences, targets if raw_targets is not None else None, extra)


def parse_line(line: str, fmt: str = "auto", where: str = "input") -> Any:
    """A text string or a decoded JSON object, by `fmt` (auto | text | jsonl)."""
    line = line.rstrip("\r\n")
    if fmt == "text":
        return line
    if fmt not in ("auto", "jsonl"):
        raise KnsError(f"input_format must be auto, text or jsonl, not {fmt!r}")
    stripped = line.strip()
    if fmt == "jsonl" and not stripped:
        return ""
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as err:
            if fmt == "jsonl":
                raise InputError(where, f"not a JSON object ({err.msg} at column {err.colno})") from None
            return line
        if isinstance(obj, dict) and ("text" in obj or "tokens" in obj):
            return obj
        if fmt == "jsonl":
            raise InputError(where, "a JSON line needs a 'text' or 'tokens' key")
        return line
    if fmt == "jsonl":
        raise InputError(where, "not a JSON object (input_format=jsonl)")
    return line


def read_lines(f, source: str = "input") -> Iterator[str | InputError]:
    """Lines of a binary file object, decoded as UTF-8 (a leading BOM dropped), split on b"\\n"
    only (not on \\u2028 or form feeds as str.splitlines would): one item per line. A line that
    is not UTF-8 comes out as an `InputError` naming the line and the byte, so that the caller
    decides whether to stop or skip, and the lines around it are still read."""
    for n, raw in enumerate(f, start=1):
        if isinstance(raw, str):  # an already decoded text stream (e.g. a replaced sys.stdin)
            yield raw[1:] if n == 1 and raw.startswith("\ufeff") else raw
            continue
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as err:
            yield InputError(f"{source}:{n}", invalid_utf8_message(raw, err))


def scan_utf8(path: Path) -> list[Problem]:
    """Every line of a file that is not UTF-8 (one fast pass when the whole file is valid)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return []
    except UnicodeDecodeError:
        pass
    problems = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append(Problem(str(path), n, invalid_utf8_message(raw, err)))
    return problems
