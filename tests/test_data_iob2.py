"""The IOB2 reader: formats, and one test per validation problem (each names file:line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kazakh_ner_stance.data.iob2 import Sentence, read_iob2
from kazakh_ner_stance.errors import DataValidationError, KnsError

FIXTURES = Path(__file__).parent / "fixtures" / "iob2"
TYPES = ["DATE", "GPE", "PERSON", "ORGANISATION", "ART", "TIME"]


def _write(tmp_path: Path, content: str | bytes, name: str = "IOB2_valid.txt") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def _problems(path: Path, **kwargs) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        read_iob2(path, TYPES, **kwargs)
    assert isinstance(info.value, KnsError)
    return [str(p) for p in info.value.problems]


def test_reads_plain_file():
    sentences, stats = read_iob2(FIXTURES / "plain" / "IOB2_valid.txt", TYPES)
    assert len(sentences) == 6 and stats.sentences == 6 and stats["sentences"] == 6
    assert not stats.has_sent_ids and stats.format == "plain"
    first = sentences[0]
    assert isinstance(first, Sentence)
    assert first.sent_id is None and first.line == 1
    assert first.tokens == ["Астана", "–", "Қазақстанның", "астанасы", "."]
    assert first.tags == ["O", "O", "B-GPE", "O", "O"]
    assert sentences[1].line == 7
    assert stats.tokens == sum(len(s.tokens) for s in sentences)


def test_detects_sentence_ids():
    sentences, stats = read_iob2(FIXTURES / "sentid" / "IOB2_valid_sentid.txt", TYPES)
    assert stats.has_sent_ids and stats.format == "sentid"
    assert [s.sent_id for s in sentences] == ["AID100001", "AID100002", "BID200001", "BID200002"]
    assert sentences[0].line == 2  # the first token, not the ID line
    assert sentences[0].tokens[0] == "Астана"


def test_no_trailing_newline_and_extra_blank_lines(tmp_path):
    path = _write(tmp_path, "\n\nА O\n. O\n\n\n\nБ B-GPE\n. O")
    sentences, _ = read_iob2(path, TYPES)
    assert [s.tokens for s in sentences] == [["А", "."], ["Б", "."]]
    assert [s.line for s in sentences] == [3, 8]


def test_tab_separator_is_accepted(tmp_path):
    sentences, _ = read_iob2(_write(tmp_path, "А\tB-GPE\n"), TYPES)
    assert sentences[0].tags == ["B-GPE"]


def test_wrong_column_count(tmp_path):
    path = _write(tmp_path, "А O\nБ O O\nВ\n")
    problems = _problems(path)
    assert problems == [
        f"{path}:2: expected 2 columns 'token tag' separated by one space, found 3",
        f"{path}:3: expected 2 columns 'token tag' separated by one space, found 1",
    ]


def test_empty_token(tmp_path):
    path = _write(tmp_path, "А O\n O\n")
    assert _problems(path) == [f"{path}:2: empty token"]


def test_whitespace_only_line(tmp_path):
    path = _write(tmp_path, "А O\n   \nБ O\n")
    assert _problems(path) == [f"{path}:2: whitespace-only line; separate sentences with an empty line"]


def test_unknown_tag(tmp_path):
    path = _write(tmp_path, "А B-CITY\nБ o\n")
    problems = _problems(path)
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}:1: unknown tag 'B-CITY'")
    assert problems[1].startswith(f"{path}:2: unknown tag 'o'")


def test_orphan_inside_error(tmp_path):
    path = _write(tmp_path, "А O\nБ I-GPE\n\nВ B-PERSON\nГ I-GPE\n\nД B-GPE\nЕ I-GPE\n")
    assert _problems(path, orphan_inside="error") == [
        f"{path}:2: I-GPE does not continue a B-GPE or I-GPE (orphan I- tag)",
        f"{path}:5: I-GPE does not continue a B-GPE or I-GPE (orphan I- tag)",
    ]


def test_orphan_inside_repair_counts(tmp_path):
    path = _write(tmp_path, "Б I-GPE\nВ I-GPE\nГ O\nД I-DATE\n\nЕ B-GPE\nЖ I-GPE\n")
    sentences, stats = read_iob2(path, TYPES, orphan_inside="repair")
    assert sentences[0].tags == ["B-GPE", "I-GPE", "O", "B-DATE"]
    assert sentences[1].tags == ["B-GPE", "I-GPE"]
    assert stats.orphans_repaired == 2 and stats.sentences_repaired == 1


def test_bad_policy_is_refused(tmp_path):
    with pytest.raises(ValueError):
        read_iob2(_write(tmp_path, "А O\n"), TYPES, orphan_inside="ignore")


def test_bad_utf8(tmp_path):
    path = _write(tmp_path, "А O\n".encode() + b"\xff\xfe O\n" + "Б O\n".encode())
    problems = _problems(path)
    assert problems == [f"{path}:2: invalid UTF-8 (byte 0xff at column 1)"]


def test_bom(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbf" + "А O\n".encode())
    assert _problems(path) == [f"{path}:1: file starts with a UTF-8 byte-order mark (BOM); save it as UTF-8 without BOM"]


def test_crlf(tmp_path):
    path = _write(tmp_path, "А O\nБ O\r\nВ O\r\n\r\n".encode())
    problems = _problems(path)
    assert problems == [f"{path}:2: CRLF (Windows) line ending (and 2 more lines); convert the file to LF line endings"]


def test_duplicate_sentence_ids_and_missing_id_line():
    path = FIXTURES / "malformed" / "IOB2_valid_sentid.txt"
    problems = _problems(path, orphan_inside="error")
    assert problems == [
        f"{path}:3: expected 2 columns 'token tag' separated by one space, found 3",
        f"{path}:7: empty token",
        f"{path}:8: unknown tag 'B-CITY' (allowed: O, B-X, I-X with X in data.entity_types)",
        f"{path}:11: duplicate sentence ID AID1 (first at line 1)",
        f"{path}:13: I-ORGANISATION does not continue a B-ORGANISATION or I-ORGANISATION (orphan I- tag)",
        f"{path}:17: sentence has no sentence-ID line (this file heads sentences with lines like 'AID283875 O'); "
        "add one or remove them all",
    ]


def test_id_line_without_tokens(tmp_path):
    path = _write(tmp_path, "AID1 O\nА O\n\nAID2 O\n\nAID3 O\nБ O\n")
    assert _problems(path) == [f"{path}:4: sentence ID AID2 is followed by no tokens"]


def test_missing_file(tmp_path):
    problems = _problems(tmp_path / "nope.txt")
    assert problems[0].startswith(f"{tmp_path / 'nope.txt'}: cannot read the file")
