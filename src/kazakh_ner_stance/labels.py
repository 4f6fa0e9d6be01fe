"""The project's label vocabularies and its IOB2 tag scheme: one copy of each.

Everything else imports from here; this module imports nothing of the package (and no
numpy, torch or datasets), so any layer can use it.

Stance
    ``STANCE_LABELS``: ``NONE, FAVOR, AGAINST``; the order is the ClassLabel ids 0, 1, 2
    of every stance and joint dataset, model head and probability column.
    ``TARGET_TYPES``: the entity types a stance target may have
    (/work/shared/docs/stance-labels.md; the configs' ``data.stance.target_types`` and
    ``task.stance_types`` repeat the same list as overridable defaults).

NER
    ``ner_label_names(types)``: the full, fixed label list ``O, B-X, I-X, ...`` in the order
    of ``types`` (the dataset's ClassLabel and every NER head). ``tag_set(types)``: the same
    tags as a set. ``entity_types_of(labels)``: the types named by a label list.

IOB2 spans
    ``iob2_spans(tags, mode)`` decodes one sentence's tags into entity spans. A span is
    ``(start, end, type)``: word indices with ``end`` exclusive, so ``words[start:end]`` is
    the entity. (Serialised forms may keep another order: metrics.json's ``gold_span`` /
    ``pred_span`` lists are ``[type, start, end]``, see evaluation/ner_metrics.py.)

    ``mode="strict"`` is seqeval's ``mode="strict", scheme=IOB2`` and what every metric uses:
    an entity is a maximal run ``B-X I-X ... I-X``; an *orphan* ``I-X`` (one that does not
    continue a ``B-X``/``I-X`` run) starts no entity and is skipped; a tag that is not ``O``,
    ``B-X`` or ``I-X`` (X non-empty) raises ValueError.

    ``mode="lenient"`` is the usual decoding fix for predictions and what the stance layer
    reads gold tags with: an orphan ``I-X`` starts an entity as if it were ``B-X`` (so the
    spans are the strict ones of ``repair_iob2(tags)``); tags that start with neither
    ``B-`` nor ``I-`` count as ``O`` and are not validated.

    ``repair_iob2(tags)`` rewrites each orphan ``I-X`` to ``B-X`` (``repair_orphan`` does it
    for one tag, ``is_orphan`` only tells); the data reader's ``orphan_inside: repair``
    and the NER predictions use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# --------------------------------------------------------------------------- stance

# The exact order matters: ClassLabel ids 0, 1, 2 are NONE, FAVOR, AGAINST everywhere.
STANCE_LABELS: tuple[str, ...] = ("NONE", "FAVOR", "AGAINST")

# Entity types a stance target may have (stance-labels.md).
TARGET_TYPES: tuple[str, ...] = (
    "PERSON",
    "ORGANISATION",
    "GPE",
    "NORP",
    "EVENT",
    "PROJECT",
    "LAW",
    "FACILITY",
    "LOCATION",
    "PRODUCT",
)

# --------------------------------------------------------------------------- NER labels


def ner_label_names(entity_types: Iterable[str]) -> list[str]:
    """The full, fixed label list: O, then B-X, I-X for each type in the given order."""
    names = ["O"]
    for etype in entity_types:
        names += [f"B-{etype}", f"I-{etype}"]
    return names


def tag_set(entity_types: Iterable[str]) -> set[str]:
    """Every valid tag over `entity_types` (O, B-X, I-X)."""
    return set(ner_label_names(entity_types))


def entity_types_of(labels: Iterable) -> list[str]:
    """The entity types a label list names (X of its B-X/I-X labels), first-seen order."""
    return list(dict.fromkeys(str(lab)[2:] for lab in labels if str(lab)[:2] in ("B-", "I-")))


# --------------------------------------------------------------------------- IOB2

Span = tuple[int, int, str]  # (start, end, type), word indices, end exclusive
SPAN_MODES = ("strict", "lenient")


def split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) of a strict IOB2 tag: ("O", "") or ("B"|"I", X); ValueError otherwise."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BI":
        return tag[0], tag[2:]
    raise ValueError(f"not an IOB2 tag: {tag!r}")


def _split_lenient(tag: str) -> tuple[str, str]:
    if tag.startswith("B-"):
        return "B", tag[2:]
    if tag.startswith("I-"):
        return "I", tag[2:]
    return "O", ""


def iob2_spans(tags: Sequence[str], mode: str = "strict") -> list[Span]:
    """The entities of one sentence's IOB2 tags as (start, end, type), end exclusive, in order.

    strict: orphan I-X starts nothing, non-IOB2 tags raise ValueError (the metrics, = seqeval
    strict IOB2). lenient: orphan I-X starts an entity, unknown tags are O (predictions and
    the stance layer). See the module docstring."""
    if mode == "strict":
        split, orphan_starts = split_tag, False
    elif mode == "lenient":
        split, orphan_starts = _split_lenient, True
    else:
        raise ValueError(f"mode must be one of {SPAN_MODES}, not {mode!r}")
    spans: list[Span] = []
    etype: str | None = None
    start = 0
    for i, tag in enumerate(tags):
        prefix, typ = split(tag)
        if etype is not None and prefix == "I" and typ == etype:
            continue
        if etype is not None:
            spans.append((start, i, etype))
            etype = None
        if prefix == "B" or (orphan_starts and prefix == "I"):
            start, etype = i, typ
    if etype is not None:
        spans.append((start, len(tags), etype))
    return spans


def spans_overlap(a: Sequence[int], b: Sequence[int]) -> bool:
    """True when two word spans (start, end, ...), end exclusive, share a word."""
    return a[0] < b[1] and b[0] < a[1]


def is_orphan(prev: str, tag: str) -> bool:
    """True for an I-X that does not continue `prev` (the tag before it: B-X or I-X)."""
    return tag.startswith("I-") and prev[2:] != tag[2:]


def repair_orphan(prev: str, tag: str) -> str:
    """`tag`, with an orphan I-X (see is_orphan) rewritten to B-X."""
    return "B-" + tag[2:] if is_orphan(prev, tag) else tag


def repair_iob2(tags: Iterable[str]) -> list[str]:
    """A valid IOB2 sequence: every orphan I-X becomes B-X (each tag judged against the
    repaired tag before it). Strict decoding would otherwise drop such entities."""
    fixed: list[str] = []
    prev = "O"
    for tag in tags:
        prev = repair_orphan(prev, tag)
        fixed.append(prev)
    return fixed


def iob2_transitions(labels: Sequence[str]):
    """(allowed[prev, next], allowed_first[next]) of IOB2 as boolean numpy arrays over `labels`:
    I-X only after B-X or I-X, never first. Labels that are not IOB2 tags are treated as O."""
    import numpy as np

    parts = [(t[:2], t[2:]) if t.startswith(("B-", "I-")) else ("O", "") for t in labels]
    n = len(labels)
    allowed = np.ones((n, n), dtype=bool)
    for j, (prefix, etype) in enumerate(parts):
        if prefix == "I-":
            allowed[:, j] = [p[1] == etype and p[0] in ("B-", "I-") for p in parts]
    first = np.array([p[0] != "I-" for p in parts], dtype=bool)
    return allowed, first


def viterbi_iob2(log_probs, labels: Sequence[str], transitions=None, learned=None) -> list[int]:
    """The label indices of the most probable valid IOB2 sequence for one sentence: the sum of
    per-word log-probabilities, maximised over sequences with no orphan I-X. Unlike argmax and
    then repairing orphans, a word torn between I-PERSON and B-GPE after B-PERSON is decided by
    the whole sequence. `log_probs`: [n_words, n_labels]; `transitions`: iob2_transitions(labels)
    (pass it when decoding many sentences); `learned`: a CRF's scores (tasks/crf.py
    CrfPotentials: transitions[prev, next], start, end) added to the sum, IOB2 still enforced."""
    import numpy as np

    scores = np.asarray(log_probs, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise ValueError(f"log_probs must be [n_words, {len(labels)}], not {scores.shape}")
    if len(scores) == 0:
        return []
    allowed, first = transitions if transitions is not None else iob2_transitions(labels)
    penalty = np.where(allowed, 0.0, -np.inf)
    start = np.zeros(len(labels))
    end = np.zeros(len(labels))
    if learned is not None:
        penalty = penalty + np.asarray(learned.transitions, dtype=np.float64)
        start = np.asarray(learned.start, dtype=np.float64)
        end = np.asarray(learned.end, dtype=np.float64)
    best = np.where(first, scores[0] + start, -np.inf)
    back = np.zeros(scores.shape, dtype=np.int64)
    for i in range(1, len(scores)):
        total = best[:, None] + penalty  # [prev, next]
        back[i] = total.argmax(axis=0)
        best = total[back[i], np.arange(len(labels))] + scores[i]
    path = [int((best + end).argmax())]
    for i in range(len(scores) - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return path[::-1]


def count_orphans(tags: Sequence[str]) -> int:
    """Orphan I-X tags (each judged against the tag before it, as written). Strict: a
    non-IOB2 tag raises ValueError."""
    for tag in tags:
        split_tag(tag)
    return sum(is_orphan(prev, tag) for prev, tag in zip(["O", *tags], tags))


__all__ = [
    "STANCE_LABELS",
    "TARGET_TYPES",
    "ner_label_names",
    "tag_set",
    "entity_types_of",
    "Span",
    "SPAN_MODES",
    "split_tag",
    "iob2_spans",
    "spans_overlap",
    "is_orphan",
    "repair_orphan",
    "repair_iob2",
    "iob2_transitions",
    "viterbi_iob2",
    "count_orphans",
]
