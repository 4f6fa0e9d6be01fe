"""The text a vocabulary trim keeps pieces for: corpus files (IOB2, CSV/TSV with a text
column, plain text, a zip of such files) and built dataset folders, read with a fingerprint each."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..data.download import sha256_file
from ..errors import KnsError

# Columns read as text from CSV/TSV corpora (KazSAnDRA: text, text_cleaned; RuSentNE: sentence, entity).
TEXT_COLUMNS = ("text", "text_cleaned", "sentence", "entity", "target", "target_text")
SKIPPED_NAMES = ("license", "licence", "readme", "sources", "notice", "copying")


@dataclass
class CorpusFile:
    """One corpus file (or built dataset folder): what was read from it and its fingerprint."""

    path: str
    kind: str
    sha256: str
    texts: list[str] = field(default_factory=list)  # raw text, tokenized as a string
    words: list[list[str]] = field(default_factory=list)  # pre-split words (NER-style input)

    @property
    def n_sentences(self) -> int:
        return len(self.texts) + len(self.words)

    def record(self) -> dict:
        # sentences: as tokenized, i.e. with the NFC / Latin-look-alike-fixed variants of word lists
        return {"path": self.path, "kind": self.kind, "sha256": self.sha256, "sentences": self.n_sentences}


def _skip(p: Path) -> bool:
    stem = p.name.lower()
    return p.name.startswith(".") or stem.endswith(".md") or any(stem.startswith(s) for s in SKIPPED_NAMES)


def expand_corpus_paths(paths: Iterable) -> list[Path]:
    """Files and built-dataset folders named by `paths` (a plain folder: the files in it)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(str(raw)).expanduser()
        if not p.exists():
            raise KnsError(f"trim corpus {p} does not exist (pass trim.corpus=[...] with existing files or folders)")
        if p.is_dir() and not _is_dataset_dir(p):
            found = sorted(c for c in p.iterdir() if (c.is_file() or _is_dataset_dir(c)) and not _skip(c))
            if not found:
                raise KnsError(f"trim corpus folder {p} holds no corpus files")
            out.extend(found)
        else:
            out.append(p)
    seen, unique = set(), []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _is_dataset_dir(p: Path) -> bool:
    return p.is_dir() and ((p / "dataset_dict.json").is_file() or (p / "dataset_info.json").is_file())


def _dir_sha256(p: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(str(f.relative_to(p)).encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise KnsError(f"{where}:{line}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _looks_like_iob2(lines: Sequence[str]) -> bool:
    from ..data.iob2 import _SEP_RE

    body = [ln for ln in lines[:2000] if ln.strip()]
    if not body:
        return False
    hits = 0
    for ln in body:
        parts = _SEP_RE.split(ln.strip())
        if len(parts) == 2 and (parts[1] == "O" or parts[1][:2] in ("B-", "I-")):
            hits += 1
    return hits >= 0.9 * len(body)


def _read_iob2_words(lines: Sequence[str]) -> list[list[str]]:
    """Sentences (word lists) of an IOB2 file; sentence-ID lines (`AID283875 O`) are not text."""
    from ..data.iob2 import _SEP_RE, _blocks, _looks_like_id_line, detect_sent_ids

    blocks = _blocks([ln if ln.strip() else "" for ln in lines])
    has_ids = detect_sent_ids(blocks)
    out = []
    for block in blocks:
        if has_ids and block and _looks_like_id_line(block[0][1]):
            block = block[1:]
        words = [_SEP_RE.split(line.strip())[0] for _, line in block]
        if words:
            out.append(words)
    return out


def _read_table(text: str, where: str) -> list[str]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first else ","
    csv.field_size_limit(1 << 24)
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    columns = [c for c in TEXT_COLUMNS if c in (reader.fieldnames or [])]
    if not columns:
        raise KnsError(
            f"{where}: a table without a text column (has {reader.fieldnames}; expected one of {list(TEXT_COLUMNS)})"
        )
    out = []
    for row in reader:
        for c in columns:
            value = (row.get(c) or "").strip()
            if value:
                out.append(value)
    return out


def _is_table(text: str) -> bool:
    first = text.split("\n", 1)[0].lower()
    cells = [c.strip().strip('"') for c in (first.split("\t") if "\t" in first else first.split(","))]
    return len(cells) > 1 and any(c in TEXT_COLUMNS for c in cells)


def _read_text_file(path: Path, text: str, where: str) -> CorpusFile:
    lines = text.splitlines()
    if _looks_like_iob2(lines):
        return CorpusFile(where, "iob2", "", words=_read_iob2_words(lines))
    if _is_table(text) or path.suffix.lower() in (".csv", ".tsv"):
        return CorpusFile(where, "table", "", texts=_read_table(text, where))
    return CorpusFile(where, "text", "", texts=[ln.strip() for ln in lines if ln.strip()])


def _read_dataset_dir(path: Path) -> CorpusFile:
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    splits = ds.values() if isinstance(ds, DatasetDict) else [ds]
    cf = CorpusFile(str(path), "dataset", "")
    for split in splits:
        # The words (NER, stance and joint datasets) and plain text columns; never tag lists or ids.
        for name, feature in split.features.items():
            if name == "tokens":
                cf.words.extend([list(w) for w in split[name] if w])
            elif name in TEXT_COLUMNS and getattr(feature, "dtype", None) == "string":
                cf.texts.extend([t for t in split[name] if t])
    return cf


def read_corpus_file(path: Path) -> CorpusFile:
    """Text of one corpus file: IOB2 (word lists), CSV/TSV with a text column, a zip of such
    files, a built dataset folder, or plain text (one sentence per line)."""
    path = Path(path)
    if _is_dataset_dir(path):
        cf = _read_dataset_dir(path)
        cf.sha256 = _dir_sha256(path)
    elif path.suffix.lower() == ".zip":
        cf = CorpusFile(str(path), "zip", "")
        try:
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if not n.endswith("/") and not _skip(Path(n))]
                for name in members:
                    where = f"{path}:{name}"
                    inner = _read_text_file(Path(name), _decode(zf.read(name), where), where)
                    cf.texts.extend(inner.texts)
                    cf.words.extend(inner.words)
        except zipfile.BadZipFile as err:
            raise KnsError(f"{path}: not a readable zip file ({err})") from None
        cf.sha256 = sha256_file(path)
    else:
        try:
            data = path.read_bytes()
        except OSError as err:
            raise KnsError(f"{path}: cannot read the corpus file ({err.strerror or err})") from None
        cf = _read_text_file(path, _decode(data, str(path)), str(path))
        cf.sha256 = sha256_file(path)
    if not cf.n_sentences:
        raise KnsError(f"{path}: no text found in this corpus file")
    return cf


def read_corpora(paths: Iterable) -> list[CorpusFile]:
    return [read_corpus_file(p) for p in expand_corpus_paths(paths)]


def with_normalized_variants(words: list[list[str]]) -> list[list[str]]:
    """The dataset builder stores words NFC-normalised with Latin look-alikes fixed; the
    trimmed vocabulary must cover those forms as well as the raw file's."""
    from ..data.normalize import fix_latin_in_cyrillic, nfc

    out = list(words)
    for ws in words:
        fixed = [fix_latin_in_cyrillic(nfc(w)) for w in ws]
        if fixed != ws:
            out.append(fixed)
    return out
