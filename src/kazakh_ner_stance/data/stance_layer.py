"""The stance layer: read and validate a standoff stance file.

A standoff file (the gold layer `data/stance/kaznerd_valid_stance.jsonl`, the double-annotated
subset, imported layers) holds one JSON object per line, `{"sent_id", "start", "end", "target",
"type", "label", "annotator", "note"?}`, with token offsets (end exclusive) into the whitespace
tokens of the sentence that carries `sent_id`. Reading checks each line on its own (UTF-8, JSON,
fields, labels, duplicate spans) and reports *every* problem as `file:line: ...` at once;
`data.stance_join` then checks the items against their sentences.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataValidationError, KnsError, Problem, invalid_utf8_message
from ..labels import STANCE_LABELS


# --------------------------------------------------------------------------- standoff reading


@dataclass
class StanceRecord:
    """One line of a standoff stance file (gold, double-annotated or imported)."""

    sent_id: str
    start: int
    end: int
    target: str
    label: str
    type: str | None = None
    annotator: str | None = None
    note: str | None = None
    path: str = ""
    line: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.sent_id, self.start, self.end)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


def read_jsonl(path: str | Path, problems: list[Problem]) -> list[tuple[int, dict]]:
    """(line number, object) for every non-empty line; a line that is not UTF-8, not JSON or
    not an object becomes a Problem naming the file and line."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise KnsError(f"{name}: file not found") from err
    except OSError as err:
        raise KnsError(f"{name}: cannot read it: {err}") from err
    rows: list[tuple[int, dict]] = []
    for number, raw_line in enumerate(raw.split(b"\n"), start=1):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append(Problem(name, number, invalid_utf8_message(raw_line, err)))
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(Problem(name, number, f"not valid JSON ({err.msg} at column {err.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(name, number, f"expected a JSON object, found {type(obj).__name__}"))
            continue
        rows.append((number, obj))
    return rows


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def record_from_obj(
    obj: Mapping,
    name: str,
    number: int | None,
    problems: list[Problem],
    label_key: str = "label",
    require_type: bool = True,
) -> StanceRecord | None:
    """Validate the fields of one standoff object; None (and Problems) when it is unusable."""
    before = len(problems)
    for key in ("sent_id", "start", "end", "target", label_key):
        if key not in obj:
            problems.append(Problem(name, number, f"missing field {key!r}"))
    if require_type and "type" not in obj:
        problems.append(Problem(name, number, "missing field 'type'"))
    if len(problems) > before:
        return None
    sent_id, start, end, target, label = (obj[k] for k in ("sent_id", "start", "end", "target", label_key))
    if not isinstance(sent_id, str) or not sent_id:
        problems.append(Problem(name, number, f"sent_id must be a non-empty string, not {sent_id!r}"))
    if not _is_int(start) or not _is_int(end):
        problems.append(Problem(name, number, f"start/end must be integers, not {start!r}/{end!r}"))
    if not isinstance(target, str):
        problems.append(Problem(name, number, f"target must be a string, not {target!r}"))
    if label not in STANCE_LABELS:
        problems.append(
            Problem(name, number, f"unknown {label_key} {label!r} (allowed: {', '.join(STANCE_LABELS)})")
        )
    etype = obj.get("type")
    if etype is not None and not isinstance(etype, str):
        problems.append(Problem(name, number, f"type must be a string, not {etype!r}"))
    if len(problems) > before:
        return None
    known = {"sent_id", "start", "end", "target", "type", label_key, "annotator", "note"}
    return StanceRecord(
        sent_id=sent_id,
        start=start,
        end=end,
        target=target,
        label=label,
        type=etype,
        annotator=obj.get("annotator"),
        note=obj.get("note"),
        path=name,
        line=number,
        extra={k: v for k, v in obj.items() if k not in known},
    )


def read_standoff(
    path: str | Path, label_key: str = "label", require_type: bool = True
) -> list[StanceRecord]:
    """Read a standoff stance file; every problem (bad JSON, fields, labels, duplicate
    spans) is collected and raised together as DataValidationError."""
    name = str(path)
    problems: list[Problem] = []
    records: list[StanceRecord] = []
    seen: dict[tuple[str, int, int], int] = {}
    for number, obj in read_jsonl(path, problems):
        rec = record_from_obj(obj, name, number, problems, label_key=label_key, require_type=require_type)
        if rec is None:
            continue
        if rec.key in seen:
            problems.append(
                Problem(
                    name,
                    number,
                    f"duplicate item {rec.sent_id} tokens {rec.start}:{rec.end} (first at line {seen[rec.key]})",
                )
            )
            continue
        seen[rec.key] = number
        records.append(rec)
    if problems:
        raise DataValidationError(problems)
    return records


def read_double(path: str | Path) -> list[StanceRecord]:
    """The double-annotated file: `label_final` is the label; `label_a`/`label_b` and the
    annotators stay in `extra` (used for agreement)."""
    records = read_standoff(path, label_key="label_final", require_type=False)
    problems = []
    for rec in records:
        for key in ("label_a", "label_b"):
            value = rec.extra.get(key)
            if value not in STANCE_LABELS:
                problems.append(
                    Problem(rec.path, rec.line, f"unknown {key} {value!r} (allowed: {', '.join(STANCE_LABELS)})")
                )
    if problems:
        raise DataValidationError(problems)
    return records
