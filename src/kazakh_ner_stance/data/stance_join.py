"""Join the stance layer onto the KazNERD sentences and onto the NER dataset's splits.

`join_records` checks every standoff item against the sentence that carries its `sent_id` in
KazNERD's `with_sentID` file (offsets in range, target text, an entity of a target type) and
reports every mismatch as `file:line: ...`; `split_assignment` gives each sentence the split it
has in the built NER dataset, so that a sentence is in the same split in both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import DataValidationError, Problem
from ..labels import TARGET_TYPES, iob2_spans
from .stance_layer import StanceRecord


# --------------------------------------------------------------------------- join


@dataclass
class SentenceView:
    """What the join needs of a sentence (kazakh_ner_stance.data.iob2.Sentence fits)."""

    sent_id: str
    tokens: list[str]
    tags: list[str]


def entity_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) of every IOB2 entity, end exclusive; a stray I-X starts a new
    entity (``labels.iob2_spans`` in lenient mode)."""
    return iob2_spans(tags, "lenient")


def check_span(
    rec: StanceRecord, sentence, target_types: Sequence[str] | None, check_entity: bool = True
) -> str | None:
    """Why `rec` does not fit `sentence` (None when it fits). Also fills `rec.type` from the
    tags when the record has none (the double file carries no type)."""
    tokens = list(sentence.tokens)
    n = len(tokens)
    where = f"{rec.sent_id} tokens {rec.start}:{rec.end}"
    if not (0 <= rec.start < rec.end <= n):
        return f"{where}: offsets out of range (the sentence has {n} tokens; need 0 <= start < end <= {n})"
    actual = " ".join(tokens[rec.start : rec.end])
    if actual != rec.target:
        hint = ""
        want = rec.target.split(" ")
        for i in range(0, n - len(want) + 1):
            if tokens[i : i + len(want)] == want:
                hint = f"; {rec.target!r} is at tokens {i}:{i + len(want)}"
                break
        return (
            f"{where}: target {rec.target!r} does not match the sentence, which has {actual!r} there"
            f" (the sentence or the offsets changed){hint}"
        )
    if not check_entity:
        return None
    tags = list(sentence.tags)
    spans = {(s, e): t for s, e, t in entity_spans(tags)}
    etype = spans.get((rec.start, rec.end))
    if etype is None:
        return (
            f"{where}: {rec.target!r} is not a named entity of the sentence"
            f" (NER tags there: {' '.join(tags[rec.start : rec.end])})"
        )
    if rec.type is None:
        rec.type = etype
    elif rec.type != etype:
        return f"{where}: {rec.target!r} is a {etype} entity in the sentence, not {rec.type}"
    if target_types is not None and rec.type not in target_types:
        return f"{where}: type {rec.type} is not a stance target type (allowed: {', '.join(target_types)})"
    return None


def join_records(
    records: Iterable[StanceRecord],
    sentences: Mapping[str, object],
    target_types: Sequence[str] | None = TARGET_TYPES,
    check_entity: bool = True,
) -> list[StanceRecord]:
    """Check every record against its sentence; raise DataValidationError listing every
    record that does not fit (file:line, sent_id, offsets, what differs)."""
    problems: list[Problem] = []
    ok: list[StanceRecord] = []
    for rec in records:
        sentence = sentences.get(rec.sent_id)
        if sentence is None:
            problems.append(Problem(rec.path, rec.line, f"unknown sent_id {rec.sent_id!r} (not in the sentence file)"))
            continue
        why = check_span(rec, sentence, target_types, check_entity=check_entity)
        if why:
            problems.append(Problem(rec.path, rec.line, why))
            continue
        ok.append(rec)
    if problems:
        raise DataValidationError(problems)
    return ok


# --------------------------------------------------------------------------- split assignment


def split_assignment(
    ner_dsd, sentences: Mapping[str, object], recorded: Mapping[str, str] | None = None
) -> tuple[dict[str, str], str]:
    """sent_id -> NER split. By the NER builder's recorded assignment (split_assignment.parquet:
    every source sentence ID, duplicates and leaked copies included) or its `sent_id` column
    when they carry the with_sentID IDs, else by identical token sequences."""
    if recorded and any(sid in recorded for sid in sentences):
        mapping = {sid: recorded[sid] for sid in sentences if recorded.get(sid)}
        missing = [sid for sid in sentences if sid not in mapping]
        if missing:  # not in the NER sources: the same text takes the same split
            by_tokens = _split_by_tokens(ner_dsd)
            for sid in missing:
                split = by_tokens.get(tuple(sentences[sid].tokens))
                if split:
                    mapping[sid] = split
        return mapping, "sent_id (NER split_assignment.parquet)"
    by_id: dict[str, str] = {}
    by_tokens: dict[tuple[str, ...], str] = {}
    for split in ner_dsd:
        ds = ner_dsd[split]
        ids = ds["sent_id"] if "sent_id" in ds.column_names else [None] * len(ds)
        for sid, tokens in zip(ids, ds["tokens"]):
            if sid is not None:
                by_id[str(sid)] = split
            by_tokens.setdefault(tuple(tokens), split)
    overlap = sum(1 for sid in sentences if sid in by_id)
    mapping: dict[str, str] = {}
    method = "sent_id" if overlap else "tokens"
    for sid, sentence in sentences.items():
        split = by_id.get(sid) if overlap else None
        if split is None:
            # Same text as a kept sentence (e.g. a duplicate the NER builder dropped): same split.
            split = by_tokens.get(tuple(sentence.tokens))
        if split is not None:
            mapping[sid] = split
    return mapping, method


def _split_by_tokens(ner_dsd) -> dict[tuple[str, ...], str]:
    out: dict[tuple[str, ...], str] = {}
    for split in ner_dsd:
        for tokens in ner_dsd[split]["tokens"]:
            out.setdefault(tuple(tokens), split)
    return out
