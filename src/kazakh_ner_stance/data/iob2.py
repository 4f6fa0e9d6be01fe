"""Reader and validator for KazNERD-style IOB2 files.

Format: one `token tag` pair per line (a single space or a tab between them), an empty line
between sentences. KazNERD's `with_sentID` variant heads every sentence with a line
`AID283875 O`; whether a file uses sentence IDs is detected per file from its first
sentences, and then every sentence of that file must have one.

Every line is checked and *all* problems are collected before anything is raised, each one
with `file:line`: bad UTF-8, BOM, CRLF line endings, wrong column count, empty token,
unknown tag, `I-X` that does not continue a `B-X`/`I-X` (an error, or repaired to `B-X` and
counted), malformed or missing sentence-ID lines and duplicate sentence IDs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import DataValidationError, Problem, invalid_utf8_message
from ..labels import repair_orphan, tag_set

# KazNERD's IDs are AID…, BID…, …, EID… followed by digits.
SENT_ID_RE = re.compile(r"^[A-Za-z]{0,8}ID\d+$")
ORPHAN_POLICIES = ("error", "repair")
_SEP_RE = re.compile(r"[ \t]")
# How many leading sentences decide whether a file uses sentence-ID lines.
_DETECT_SENTENCES = 50


@dataclass
class Sentence:
    """One sentence. `line` is the 1-based line number of its first token."""

    sent_id: str | None
    tokens: list[str]
    tags: list[str]
    line: int


@dataclass
class ReadStats:
    """What reading one file found (also usable as a mapping: `stats["sentences"]`)."""

    path: str
    has_sent_ids: bool
    sentences: int = 0
    tokens: int = 0
    orphans_repaired: int = 0
    sentences_repaired: int = 0

    @property
    def format(self) -> str:
        return "sentid" if self.has_sent_ids else "plain"

    def as_dict(self) -> dict:
        return {**asdict(self), "format": self.format}

    def __getitem__(self, key: str):
        return self.as_dict()[key]


def _decode(path: Path, data: bytes, problems: list[Problem]) -> list[str]:
    """Bytes -> lines (without terminators), reporting BOM, bad UTF-8 and CRLF by line."""
    name = str(path)
    if data.startswith(b"\xef\xbb\xbf"):
        problems.append(Problem(name, 1, "file starts with a UTF-8 byte-order mark (BOM); save it as UTF-8 without BOM"))
        data = data[3:]
    try:
        text = data.decode("utf-8")
        lines = text.split("\n")
    except UnicodeDecodeError:
        lines = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                problems.append(Problem(name, number, invalid_utf8_message(raw, err)))
                lines.append(raw.decode("utf-8", errors="replace"))
    if data.endswith(b"\n"):
        lines.pop()  # the terminator of the last line, not an extra empty line
    if b"\r" in data:
        crlf = [i for i, line in enumerate(lines, start=1) if line.endswith("\r")]
        if crlf:
            more = f" (and {len(crlf) - 1} more lines)" if len(crlf) > 1 else ""
            problems.append(
                Problem(name, crlf[0], f"CRLF (Windows) line ending{more}; convert the file to LF line endings")
            )
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        for number, line in enumerate(lines, start=1):
            if "\r" in line:
                problems.append(Problem(name, number, "stray carriage return (\\r) inside the line"))
    return lines


def _blocks(lines: Sequence[str]) -> list[list[tuple[int, str]]]:
    """Group lines into sentences: runs of non-empty lines, separated by empty lines."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if line == "":
            if current:
                blocks.append(current)
                current = []
        else:
            current.append((number, line))
    if current:
        blocks.append(current)
    return blocks


def _looks_like_id_line(line: str) -> bool:
    parts = _SEP_RE.split(line)
    return len(parts) == 2 and parts[1] == "O" and SENT_ID_RE.match(parts[0]) is not None


def detect_sent_ids(blocks: Sequence[Sequence[tuple[int, str]]]) -> bool:
    """True when most of the first sentences start with a sentence-ID line (`AID283875 O`)."""
    head = blocks[:_DETECT_SENTENCES]
    if not head:
        return False
    hits = sum(1 for block in head if _looks_like_id_line(block[0][1]))
    return hits * 2 > len(head)


def read_iob2(
    path: str | Path,
    entity_types: Iterable[str],
    orphan_inside: str = "error",
) -> tuple[list[Sentence], ReadStats]:
    """Read and validate one IOB2 file.

    `orphan_inside`: what to do with `I-X` that does not follow `B-X`/`I-X`: `"error"` reports
    it, `"repair"` rewrites it to `B-X` and counts it in the returned stats.
    Raises DataValidationError listing every problem (file:line) found in the file.
    """
    if orphan_inside not in ORPHAN_POLICIES:
        raise ValueError(f"orphan_inside must be one of {ORPHAN_POLICIES}, not {orphan_inside!r}")
    path = Path(path)
    name = str(path)
    allowed = tag_set(entity_types)
    problems: list[Problem] = []
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataValidationError([Problem(name, None, f"cannot read the file: {err.strerror or err}")]) from err

    lines = _decode(path, data, problems)
    for number, line in enumerate(lines, start=1):
        if line and not line.strip():
            problems.append(Problem(name, number, "whitespace-only line; separate sentences with an empty line"))
    blocks = _blocks([line if line.strip() else "" for line in lines])
    has_ids = detect_sent_ids(blocks)
    stats = ReadStats(path=name, has_sent_ids=has_ids)
    sentences: list[Sentence] = []
    seen_ids: dict[str, int] = {}

    for block in blocks:
        sent_id: str | None = None
        if has_ids:
            id_number, id_line = block[0]
            if _looks_like_id_line(id_line):
                sent_id = _SEP_RE.split(id_line)[0]
                block = block[1:]
                if sent_id in seen_ids:
                    problems.append(
                        Problem(name, id_number, f"duplicate sentence ID {sent_id} (first at line {seen_ids[sent_id]})")
                    )
                else:
                    seen_ids[sent_id] = id_number
                if not block:
                    problems.append(Problem(name, id_number, f"sentence ID {sent_id} is followed by no tokens"))
                    continue
            else:
                problems.append(
                    Problem(
                        name,
                        id_number,
                        "sentence has no sentence-ID line (this file heads sentences with lines like "
                        "'AID283875 O'); add one or remove them all",
                    )
                )
        tokens: list[str] = []
        tags: list[str] = []
        prev = "O"
        repaired_here = 0
        for number, line in block:
            parts = _SEP_RE.split(line)
            if len(parts) != 2:
                problems.append(
                    Problem(name, number, f"expected 2 columns 'token tag' separated by one space, found {len(parts)}")
                )
                prev = "O"
                continue
            token, tag = parts
            if token == "":
                problems.append(Problem(name, number, "empty token"))
            if tag not in allowed:
                problems.append(
                    Problem(name, number, f"unknown tag {tag!r} (allowed: O, B-X, I-X with X in data.entity_types)")
                )
                prev = "O"
                tokens.append(token)
                tags.append("O")
                continue
            repaired = repair_orphan(prev, tag)  # B-X for an orphan I-X, else the tag itself
            if repaired != tag:
                if orphan_inside == "error":
                    problems.append(
                        Problem(name, number, f"{tag} does not continue a B-{tag[2:]} or {tag} (orphan I- tag)")
                    )
                else:
                    tag = repaired
                    repaired_here += 1
            tokens.append(token)
            tags.append(tag)
            prev = tag
        if repaired_here:
            stats.orphans_repaired += repaired_here
            stats.sentences_repaired += 1
        if tokens:
            sentences.append(Sentence(sent_id=sent_id, tokens=tokens, tags=tags, line=block[0][0]))
            stats.tokens += len(tokens)

    if problems:
        raise DataValidationError(problems)
    stats.sentences = len(sentences)
    return sentences, stats
