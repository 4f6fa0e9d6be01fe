"""Annotation round trip: export items to Label Studio / CSV, import filled files back with
validation, and merge annotators (their agreement: `stance_annotation.agreement`).

Items (what `stance_candidates` writes, or gold-style standoff lines plus their tokens) are
dicts with `sent_id`, `tokens`, `start`, `end` (token offsets, end exclusive), `target`,
`type` and optionally `id`, `weak_label`. Imports produce gold-style standoff records
`{sent_id, start, end, target, type, label, annotator, note?}`.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import DataValidationError, KnsError, Problem
from . import STANCE_LABELS
from ..data.stance_layer import StanceRecord, read_jsonl, record_from_obj

CSV_COLUMNS = ["item_id", "sent_id", "start", "end", "type", "target", "sentence", "marked", "label", "annotator", "note"]
LS_FROM_TARGET = "target"
LS_FROM_STANCE = "stance"


def item_id(item: Mapping) -> str:
    return str(item.get("id") or f"{item['sent_id']}:{item['start']}-{item['end']}")


def token_char_spans(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of the tokens in `" ".join(tokens)`."""
    spans, pos = [], 0
    for tok in tokens:
        spans.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    return spans


def label_config(types: Iterable[str]) -> str:
    """The Label Studio labelling config matching the exported tasks."""
    labels = "\n".join(f'    <Label value="{t}"/>' for t in types)
    choices = "\n".join(f'    <Choice value="{lab}"/>' for lab in ("FAVOR", "AGAINST", "NONE"))
    return (
        "<View>\n"
        f'  <Labels name="{LS_FROM_TARGET}" toName="text">\n{labels}\n  </Labels>\n'
        '  <Text name="text" value="$text"/>\n'
        '  <Header value="Stance of the sentence toward the highlighted target ($target, $type)"/>\n'
        f'  <Choices name="{LS_FROM_STANCE}" toName="text" choice="single" required="true">\n{choices}\n  </Choices>\n'
        "</View>\n"
    )


# --------------------------------------------------------------------------- export


def load_items(path: str | Path, sentences: Mapping[str, object] | None = None) -> list[dict]:
    """Items from JSONL; an item without `tokens` takes them from `sentences` (sent_id ->
    sentence with .tokens). Spans are checked against the tokens."""
    name = str(path)
    problems: list[Problem] = []
    items = []
    for number, obj in read_jsonl(path, problems):
        for key in ("sent_id", "start", "end", "target"):
            if key not in obj:
                problems.append(Problem(name, number, f"missing field {key!r}"))
        if any(k not in obj for k in ("sent_id", "start", "end", "target")):
            continue
        if "tokens" not in obj:
            sent = (sentences or {}).get(obj["sent_id"])
            if sent is None:
                problems.append(
                    Problem(name, number, f"item has no tokens and sent_id {obj['sent_id']!r} is not in the sentence file")
                )
                continue
            obj = {**obj, "tokens": list(sent.tokens)}
        why = _span_problem(obj["tokens"], obj["start"], obj["end"], obj["target"])
        if why:
            problems.append(Problem(name, number, f"{obj['sent_id']} tokens {obj['start']}:{obj['end']}: {why}"))
            continue
        items.append(obj)
    if problems:
        raise DataValidationError(problems)
    return items


def _span_problem(tokens: Sequence[str], start, end, target) -> str | None:
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
        return f"start/end must be integers, not {start!r}/{end!r}"
    if not (0 <= start < end <= len(tokens)):
        return f"offsets out of range (the sentence has {len(tokens)} tokens)"
    actual = " ".join(tokens[start:end])
    if actual != target:
        return f"target {target!r} does not match the sentence, which has {actual!r} there"
    return None


def export_label_studio(items: Sequence[Mapping], path: str | Path, prefill_label: bool = False) -> Path:
    """Label Studio tasks (JSON list): sentence text, the target span as a prediction
    (pre-annotation) and, with `prefill_label`, the weak label as the pre-selected choice.
    A `label_config.xml` for the project is written next to it."""
    path = Path(path)
    tasks = []
    for k, it in enumerate(items, start=1):
        tokens = list(it["tokens"])
        spans = token_char_spans(tokens)
        cs, ce = spans[it["start"]][0], spans[it["end"] - 1][1]
        result = [
            {
                "id": f"t{k}",
                "from_name": LS_FROM_TARGET,
                "to_name": "text",
                "type": "labels",
                "value": {"start": cs, "end": ce, "text": it["target"], "labels": [it.get("type") or "TARGET"]},
            }
        ]
        if prefill_label and it.get("weak_label") in STANCE_LABELS:
            result.append(
                {
                    "id": f"s{k}",
                    "from_name": LS_FROM_STANCE,
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": [it["weak_label"]]},
                }
            )
        tasks.append(
            {
                "id": k,
                "data": {
                    "text": " ".join(tokens),
                    "item_id": item_id(it),
                    "sent_id": it["sent_id"],
                    "start": it["start"],
                    "end": it["end"],
                    "target": it["target"],
                    "type": it.get("type") or "",
                },
                "predictions": [{"model_version": "kns-stance-candidates", "result": result}],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    types = sorted({it.get("type") or "TARGET" for it in items})
    (path.parent / "label_config.xml").write_text(label_config(types), encoding="utf-8")
    return path


def export_csv(items: Sequence[Mapping], path: str | Path, annotator: str = "") -> Path:
    """One row per item; `marked` shows the sentence with the target in [[ ]]; fill `label`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for it in items:
            tokens = list(it["tokens"])
            marked = tokens[: it["start"]] + ["[[" + " ".join(tokens[it["start"] : it["end"]]) + "]]"] + tokens[it["end"] :]
            writer.writerow(
                {
                    "item_id": item_id(it),
                    "sent_id": it["sent_id"],
                    "start": it["start"],
                    "end": it["end"],
                    "type": it.get("type") or "",
                    "target": it["target"],
                    "sentence": " ".join(tokens),
                    "marked": " ".join(marked),
                    "label": "",
                    "annotator": annotator,
                    "note": "",
                }
            )
    return path


# --------------------------------------------------------------------------- import


def _normalise_label(raw) -> str | None:
    if raw is None:
        return None
    value = str(raw).strip()
    return value.upper() if value else None


class _Collector:
    """Shared validation of imported annotations: labels, spans, reference sentences, duplicates."""

    def __init__(self, name: str, reference: Mapping[str, object] | None, allow_unlabelled: bool):
        self.name = name
        self.reference = reference
        self.allow_unlabelled = allow_unlabelled
        self.problems: list[Problem] = []
        self.records: list[StanceRecord] = []
        self.seen: dict[tuple, str] = {}
        self.unlabelled = 0

    def add(self, where: str, line: int | None, tokens, sent_id, start, end, target, etype, label, annotator, note):
        def bad(msg):
            self.problems.append(Problem(self.name, line, f"{where}{msg}"))

        label = _normalise_label(label)
        if label is None:
            if self.allow_unlabelled:
                self.unlabelled += 1
                return
            bad("no stance label chosen")
            return
        if label not in STANCE_LABELS:
            bad(f"unknown label {label!r} (allowed: {', '.join(STANCE_LABELS)})")
            return
        if not sent_id:
            bad("missing sent_id")
            return
        if self.reference is not None:
            ref = self.reference.get(sent_id)
            if ref is None:
                bad(f"unknown sent_id {sent_id!r} (not in the reference items/sentences)")
                return
            if tokens is not None and list(tokens) != list(ref.tokens):
                bad(f"the sentence text of {sent_id} differs from the reference sentence")
                return
            tokens = list(ref.tokens)
        if tokens is None:
            bad("no sentence text to check the span against")
            return
        why = _span_problem(tokens, start, end, target)
        if why:
            bad(f"{sent_id} tokens {start}:{end}: {why}")
            return
        annotator = str(annotator or "").strip() or "unknown"
        key = (annotator, sent_id, start, end)
        if key in self.seen:
            bad(f"duplicate annotation of {sent_id} tokens {start}:{end} by {annotator} (first at {self.seen[key]})")
            return
        self.seen[key] = where.rstrip(": ") or f"line {line}"
        self.records.append(
            StanceRecord(
                sent_id=sent_id, start=start, end=end, target=target, label=label, type=etype or None,
                annotator=annotator, note=note or None, path=self.name, line=line,
            )
        )

    def result(self) -> list[StanceRecord]:
        if self.problems:
            raise DataValidationError(self.problems)
        return self.records


def _reference_map(reference) -> Mapping[str, object] | None:
    """sent_id -> object with .tokens, from a list of items or a mapping of sentences."""
    if reference is None:
        return None
    if isinstance(reference, Mapping):
        return reference
    from types import SimpleNamespace

    return {it["sent_id"]: SimpleNamespace(tokens=list(it["tokens"])) for it in reference}


def _annotator_name(completed_by) -> str:
    if isinstance(completed_by, Mapping):
        return str(completed_by.get("email") or completed_by.get("username") or completed_by.get("id") or "")
    return "" if completed_by is None else str(completed_by)


def import_label_studio(
    path: str | Path, reference=None, annotator: str | None = None, allow_unlabelled: bool = False
) -> list[StanceRecord]:
    """Records from a Label Studio JSON export (list of tasks with `annotations`). Errors name
    the file and the record (task) index. `annotator` overrides Label Studio's user."""
    path = Path(path)
    name = str(path)
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise KnsError(f"{name}: file not found") from err
    except json.JSONDecodeError as err:
        raise DataValidationError([Problem(name, err.lineno, f"not valid JSON ({err.msg})")]) from err
    if isinstance(tasks, Mapping):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise DataValidationError([Problem(name, None, "expected a JSON list of Label Studio tasks")])
    col = _Collector(name, _reference_map(reference), allow_unlabelled)
    for index, task in enumerate(tasks, start=1):
        where = f"record {index} (task id {task.get('id') if isinstance(task, Mapping) else '?'}): "
        if not isinstance(task, Mapping) or not isinstance(task.get("data"), Mapping):
            col.problems.append(Problem(name, None, f"{where}not a Label Studio task (no 'data')"))
            continue
        data = task["data"]
        text = data.get("text")
        tokens = text.split(" ") if isinstance(text, str) else None
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not annotations:
            if not allow_unlabelled:
                col.problems.append(Problem(name, None, f"{where}no annotation"))
            else:
                col.unlabelled += 1
            continue
        for a_index, ann in enumerate(annotations, start=1):
            here = where if len(annotations) == 1 else f"{where}annotation {a_index}: "
            start, end, target = data.get("start"), data.get("end"), data.get("target")
            choices = []
            for res in ann.get("result") or []:
                value = res.get("value") or {}
                if res.get("type") == "choices":
                    choices.extend(value.get("choices") or [])
                elif res.get("type") == "labels" and tokens is not None:
                    # The annotator may have moved the span: map characters back to tokens.
                    spans = token_char_spans(tokens)
                    starts = {s: i for i, (s, _) in enumerate(spans)}
                    ends = {e: i + 1 for i, (_, e) in enumerate(spans)}
                    cs, ce = value.get("start"), value.get("end")
                    if cs not in starts or ce not in ends:
                        col.problems.append(
                            Problem(name, None, f"{here}span {cs}:{ce} does not start and end on token boundaries")
                        )
                        start = None
                        break
                    start, end = starts[cs], ends[ce]
                    target = value.get("text", " ".join(tokens[start:end]))
            else:
                if len(choices) > 1:
                    col.problems.append(Problem(name, None, f"{here}several stance choices {choices}; choose one"))
                    continue
                who = annotator or _annotator_name(ann.get("completed_by"))
                col.add(
                    here, None, tokens, data.get("sent_id"), start, end, target, data.get("type"),
                    choices[0] if choices else None, who, None,
                )
    return col.result()


def import_csv(
    path: str | Path, reference=None, annotator: str | None = None, allow_unlabelled: bool = False
) -> list[StanceRecord]:
    """Records from a filled CSV (columns as exported); errors name the file and line."""
    path = Path(path)
    name = str(path)
    try:
        f = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError as err:
        raise KnsError(f"{name}: file not found") from err
    col = _Collector(name, _reference_map(reference), allow_unlabelled)
    with f:
        reader = csv.DictReader(f)
        required = {"sent_id", "start", "end", "target", "label"}
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise DataValidationError([Problem(name, 1, f"missing columns {sorted(missing)} in the header")])
        line = reader.line_num
        for row in reader:
            line_here = line + 1
            line = reader.line_num
            try:
                start, end = int(row["start"]), int(row["end"])
            except (TypeError, ValueError):
                col.problems.append(Problem(name, line_here, f"start/end must be integers, not {row['start']!r}/{row['end']!r}"))
                continue
            sentence = row.get("sentence")
            tokens = sentence.split(" ") if sentence else None
            col.add(
                "", line_here, tokens, (row.get("sent_id") or "").strip(), start, end, row["target"], row.get("type"),
                row.get("label"), annotator or row.get("annotator"), row.get("note"),
            )
    return col.result()


def import_file(path, reference=None, annotator=None, allow_unlabelled=False) -> list[StanceRecord]:
    """By extension: .json (Label Studio export) or .csv."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return import_label_studio(path, reference, annotator, allow_unlabelled)
    if suffix == ".csv":
        return import_csv(path, reference, annotator, allow_unlabelled)
    raise KnsError(f"{path}: cannot tell the format; expected a .json Label Studio export or a .csv")


def record_dict(rec: StanceRecord) -> dict:
    out = {"sent_id": rec.sent_id, "start": rec.start, "end": rec.end, "target": rec.target, "type": rec.type,
           "label": rec.label, "annotator": rec.annotator}
    if rec.note:
        out["note"] = rec.note
    return out


def write_jsonl(rows: Iterable[Mapping], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_records(path: str | Path) -> list[StanceRecord]:
    """Imported/gold-style JSONL (duplicates allowed across annotators, not within one)."""
    name = str(path)
    problems: list[Problem] = []
    out = []
    seen: dict[tuple, int] = {}
    for number, obj in read_jsonl(path, problems):
        rec = record_from_obj(obj, name, number, problems, require_type=False)
        if rec is None:
            continue
        key = (rec.annotator, *rec.key)
        if key in seen:
            problems.append(Problem(name, number, f"duplicate item {rec.sent_id} tokens {rec.start}:{rec.end} by {rec.annotator} (first at line {seen[key]})"))
            continue
        seen[key] = number
        out.append(rec)
    if problems:
        raise DataValidationError(problems)
    return out


# --------------------------------------------------------------------------- merge


def merge(records_per_file: Sequence[Sequence[StanceRecord]]) -> list[dict]:
    """One row per item with every annotator's label; `label_final` is the majority label
    (None on a tie: needs adjudication). With exactly two annotators the row also carries the
    double-annotation fields label_a/annotator_a/label_b/annotator_b/adjudicated."""
    problems: list[Problem] = []
    items: dict[tuple, dict] = {}
    for records in records_per_file:
        for rec in records:
            row = items.setdefault(
                rec.key, {"sent_id": rec.sent_id, "start": rec.start, "end": rec.end, "target": rec.target,
                          "type": rec.type, "labels": {}, "_where": {}}
            )
            if row["target"] != rec.target or (rec.type and row["type"] and rec.type != row["type"]):
                problems.append(Problem(rec.path, rec.line, f"{rec.sent_id} tokens {rec.start}:{rec.end}: target/type "
                                        f"{rec.target!r}/{rec.type} differs from {row['target']!r}/{row['type']} at {next(iter(row['_where'].values()))}"))
                continue
            row["type"] = row["type"] or rec.type
            who = rec.annotator or "unknown"
            if who in row["labels"] and row["labels"][who] != rec.label:
                problems.append(Problem(rec.path, rec.line, f"{who} labelled {rec.sent_id} tokens {rec.start}:{rec.end} "
                                        f"{rec.label} here but {row['labels'][who]} at {row['_where'][who]}"))
                continue
            row["labels"][who] = rec.label
            row["_where"].setdefault(who, rec.where)
    if problems:
        raise DataValidationError(problems)
    out = []
    for key in sorted(items):
        row = items[key]
        row.pop("_where")
        counts = Counter(row["labels"].values()).most_common()
        final = counts[0][0] if len(counts) == 1 or counts[0][1] > counts[1][1] else None
        row["label_final"] = final
        row["agreed"] = len(counts) == 1
        if len(row["labels"]) == 2:
            (a, la), (b, lb) = sorted(row["labels"].items())
            row.update({"label_a": la, "annotator_a": a, "label_b": lb, "annotator_b": b, "adjudicated": False})
        out.append(row)
    return out


def by_annotator(records: Iterable[StanceRecord]) -> dict[str, list[StanceRecord]]:
    out: dict[str, list[StanceRecord]] = defaultdict(list)
    for rec in records:
        out[rec.annotator or "unknown"].append(rec)
    return dict(out)
