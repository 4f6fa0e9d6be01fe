"""Counterfactual stance pairs (issue 22): minimal edits of training-split items of the Kazakh
layer that change the attitude toward one target and nothing else.

    python scripts/counterfactual_layer.py select --batches 4    # source items for the editors
    python scripts/counterfactual_layer.py assemble              # edits + blind checks -> the layer

An editor gets a source item (its sentence, the target, its gold label) and an intended label,
and rewrites the sentence in fluent Kazakh of the same register so that the sentence takes that
attitude toward the target: by changing what it says about the target (its verb, its
evaluation, a negation), or by moving the target between holder and object of the same
evaluative words (a role swap, so that a model learns whom the attitude is about). The editor
marks the target once with ``⟦ ⟧`` (whole words) and records the kind of edit.

A checker who sees only the edited sentence and the marked target labels it blind, and rates
its Kazakh (natural / minor / unnatural). An edit is kept only when the checker's label is the
intended one and the Kazakh is not unnatural; the others stay in the checks file, out of the
layer.

The layer (``data/stance/kaznerd_counterfactual.jsonl``, CC BY 4.0 like the Kazakh layer it is
made from) holds one line per kept edit: ``{"id", "source_id", "source_sent_id", "source_label",
"origin": "counterfactual", "kind", "text", "start_char", "end_char", "target", "type",
"label", "editor", "checker", "checker_label", "fluency"}``. Counterfactual items are training
data only: the stance dataset builder puts them in ``train`` only when their source item is
in train, and cross-validation keeps each one in its source item's fold (never in a dev or
test part).
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import DataValidationError, KnsError, Problem
from ..labels import STANCE_LABELS
from ..data.stance_layer import read_jsonl
from .silver import parse_marked

ORIGIN = "counterfactual"
KINDS = ("verb_change", "evaluation_change", "negation", "role_swap", "clause_added", "other")
FLUENCY = ("natural", "minor", "unnatural")
LAYER_FIELDS = ("id", "source_id", "source_sent_id", "source_label", "origin", "kind", "text", "start_char", "end_char",
                "target", "type", "label", "editor", "checker", "checker_label", "fluency")
# What the editors are asked for: (source label, intended label, how many, style hint).
DEFAULT_PLAN = (
    ("NONE", "AGAINST", 640, "change what the sentence says about the target"),
    ("NONE", "FAVOR", 340, "change what the sentence says about the target"),
    ("FAVOR", "AGAINST", 260, "flip the evaluation of the target"),
    ("AGAINST", "FAVOR", 30, "flip the evaluation of the target"),
    ("FAVOR", "NONE", 150, "role swap: make the target the holder of the same praise toward someone else"),
)
# A second round, after the first showed real gold alone stays under the aims for FAVOR.
SECOND_PLAN = (
    ("NONE", "FAVOR", 420, "change what the sentence says about the target"),
    ("NONE", "AGAINST", 180, "change what the sentence says about the target"),
)
EDIT_TYPES = ("PERSON", "ORGANISATION", "GPE", "NORP", "PROJECT", "LAW", "PRODUCT", "EVENT", "FACILITY")


def _variant_key(sent_id: str) -> str:
    import re

    m = re.match(r"^[A-Z]ID(\d+)$", sent_id)
    return m.group(1) if m else sent_id


def select_sources(train_rows: Sequence[Mapping], plan=DEFAULT_PLAN, seed: int = 22,
                   min_words: int = 5, max_words: int = 40, exclude: Sequence[str] = (),
                   first_number: int = 1) -> list[dict]:
    """Source items for the editors from the training split: seeded, one task per item and
    request, sentence variants (AID/BID) counted as one sentence, short fragments and very long
    sentences left out; the NONE sources spread over sentences (at most one per sentence)."""
    rng = random.Random(seed)
    by_label: dict[str, list[Mapping]] = defaultdict(list)
    for r in train_rows:
        if r["target_type"] in EDIT_TYPES and min_words <= len(r["tokens"]) <= max_words:
            by_label[r["label"]].append(r)
    tasks, used_sentences = [], set()
    by_id = {r["id"]: r for r in train_rows}
    for sid in exclude:
        if sid in by_id:
            used_sentences.add((_variant_key(by_id[sid]["sent_id"]), "NONE"))
    for source_label, intended, n, hint in plan:
        pool = sorted(by_label[source_label], key=lambda r: r["id"])
        rng.shuffle(pool)
        picked = 0
        for r in pool:
            if picked >= n:
                break
            key = (_variant_key(r["sent_id"]), source_label, intended)
            if key in used_sentences:
                continue
            if source_label == "NONE" and (_variant_key(r["sent_id"]), "NONE") in used_sentences:
                continue
            used_sentences.add(key)
            used_sentences.add((_variant_key(r["sent_id"]), source_label))
            if r["id"] in exclude:
                continue
            tasks.append({"task_id": f"cf{len(tasks) + first_number:04d}", "source_id": r["id"], "source_sent_id": r["sent_id"],
                          "tokens": list(r["tokens"]), "start": int(r["start"]), "end": int(r["end"]),
                          "target": r["target"], "type": r["target_type"], "source_label": source_label,
                          "intended": intended, "hint": hint})
            picked += 1
    return tasks


def marked_source(task: Mapping) -> str:
    toks = list(task["tokens"])
    s, e = task["start"], task["end"]
    return " ".join(toks[:s] + ["⟦" + " ".join(toks[s:e]) + "⟧"] + toks[e:])


def editor_batch_text(tasks: Sequence[Mapping]) -> str:
    out = []
    for t in tasks:
        out += [f"=== {t['task_id']}  target type {t['type']}; source label {t['source_label']} -> WRITE {t['intended']}"
                f"  ({t['hint']})", f"SOURCE: {marked_source(t)}", ""]
    return "\n".join(out)


def checker_batch_text(items: Sequence[Mapping]) -> str:
    out = []
    for e in items:
        out += [f"=== {e['task_id']}  target type {e['type']}", f"SENTENCE: {e['marked']}", ""]
    return "\n".join(out)


CONTROL_PREFIX = "ctl"


def control_items(tasks: Sequence[Mapping], share: float, seed: int) -> list[dict]:
    """Unedited source items mixed into the checkers' batches (ids ``ctl<task number>``), their
    gold label known: the checkers' accuracy on real items, measured blind."""
    rng = random.Random(seed)
    picked = [t for t in tasks if rng.random() < share]
    return [{"task_id": CONTROL_PREFIX + t["task_id"][2:], "type": t["type"], "marked": marked_source(t),
             "gold": t["source_label"], "source_id": t["source_id"]} for t in picked]


def mixed_check_batches(edits: Sequence[Mapping], controls: Sequence[Mapping], n: int, seed: int) -> list[list[dict]]:
    """Edits and controls dealt to `n` batches in a seeded order (controls do not stand out)."""
    pool = list(edits) + list(controls)
    random.Random(seed).shuffle(pool)
    return [pool[k::n] for k in range(n)]


def read_edits(paths: Sequence[Path], tasks: Mapping[str, Mapping]) -> tuple[dict[str, dict], list[Problem]]:
    """Editors' lines ``{"task_id", "edited", "kind", "editor"}`` (``edited`` with the target in
    ⟦ ⟧) -> {task_id: edit}. A bad line is a Problem naming the file and line."""
    problems: list[Problem] = []
    out: dict[str, dict] = {}
    for path in map(Path, paths):
        for lineno, obj in read_jsonl(path, problems):
            tid = obj.get("task_id")
            if tid not in tasks:
                problems.append(Problem(str(path), lineno, f"unknown task id {tid!r}"))
                continue
            if tid in out:
                problems.append(Problem(str(path), lineno, f"{tid} edited twice"))
                continue
            if obj.get("kind") not in KINDS:
                problems.append(Problem(str(path), lineno, f"{tid}: kind {obj.get('kind')!r} is not one of {list(KINDS)}"))
                continue
            if not str(obj.get("editor") or "").strip():
                problems.append(Problem(str(path), lineno, f"{tid}: no editor named"))
                continue
            try:
                text, s, e = parse_marked(str(obj.get("edited") or ""))
            except ValueError as err:
                problems.append(Problem(str(path), lineno, f"{tid}: {err}"))
                continue
            src = tasks[tid]
            if text.split() == list(src["tokens"]) or text.replace(" ", "") == "".join(src["tokens"]):
                problems.append(Problem(str(path), lineno, f"{tid}: the edit is the source sentence unchanged"))
                continue
            out[tid] = {"task_id": tid, "text": text, "start_char": s, "end_char": e, "target": text[s:e],
                        "kind": obj["kind"], "editor": str(obj["editor"]).strip(), "marked": obj["edited"],
                        "type": src["type"]}
    return out, problems


def read_checks(paths: Sequence[Path], edits: Mapping[str, Mapping]) -> tuple[dict[str, dict], list[Problem]]:
    """Checkers' lines ``{"task_id", "label", "fluency", "checker", "comment"?}``; `edits` holds
    the edits and the control items the checkers were given."""
    problems: list[Problem] = []
    out: dict[str, dict] = {}
    for path in map(Path, paths):
        for lineno, obj in read_jsonl(path, problems):
            tid = obj.get("task_id")
            bad = []
            if tid not in edits:
                bad.append(f"unknown or unedited task id {tid!r}")
            elif tid in out:
                bad.append(f"{tid} checked twice")
            if obj.get("label") not in STANCE_LABELS:
                bad.append(f"label {obj.get('label')!r} is not one of {list(STANCE_LABELS)}")
            if obj.get("fluency") not in FLUENCY:
                bad.append(f"fluency {obj.get('fluency')!r} is not one of {list(FLUENCY)}")
            if not str(obj.get("checker") or "").strip():
                bad.append("no checker named")
            elif tid in edits and str(obj["checker"]).strip() == edits[tid].get("editor"):
                bad.append(f"{tid}: the checker is the editor")
            if bad:
                problems.append(Problem(str(path), lineno, "; ".join(bad)))
                continue
            out[tid] = {"label": obj["label"], "fluency": obj["fluency"], "checker": str(obj["checker"]).strip(),
                        "comment": str(obj.get("comment") or "").strip()}
    return out, problems


def assemble(tasks: Mapping[str, Mapping], edits: Mapping[str, Mapping], checks: Mapping[str, Mapping]) -> tuple[list[dict], dict]:
    """Kept edits as layer records, and the report: per intended label and kind, how many were
    written, checked, recovered by the checker, and kept."""
    layer, report = [], {"tasks": len(tasks), "edited": len(edits), "checked": 0, "kept": 0,
                         "by_intended": {}, "by_kind": {}, "fluency": Counter(), "confusion": Counter()}
    controls = {tid: c for tid, c in checks.items() if tid.startswith(CONTROL_PREFIX)}
    if controls:
        gold = {CONTROL_PREFIX + t[2:]: tasks[t]["source_label"] for t in tasks}
        report["controls"] = {"n": len(controls),
                              "checker_agrees_with_gold": sum(c["label"] == gold.get(t) for t, c in controls.items()),
                              "confusion": Counter(f"{gold.get(t)}->{c['label']}" for t, c in controls.items())}
    for tid in sorted(edits):
        e, t, c = edits[tid], tasks[tid], checks.get(tid)
        bi = report["by_intended"].setdefault(t["intended"], Counter())
        bk = report["by_kind"].setdefault(e["kind"], Counter())
        bi["edited"] += 1
        bk["edited"] += 1
        if c is None:
            continue
        report["checked"] += 1
        report["fluency"][c["fluency"]] += 1
        report["confusion"][f"{t['intended']}->{c['label']}"] += 1
        agreed = c["label"] == t["intended"]
        natural = c["fluency"] != "unnatural"
        for b in (bi, bk):
            b["checked"] += 1
            b["recovered"] += int(agreed)
        if not (agreed and natural):
            continue
        for b in (bi, bk):
            b["kept"] += 1
        report["kept"] += 1
        layer.append({"id": f"cf:{tid}", "source_id": t["source_id"], "source_sent_id": t["source_sent_id"],
                      "source_label": t["source_label"], "origin": ORIGIN, "kind": e["kind"], "text": e["text"],
                      "start_char": e["start_char"], "end_char": e["end_char"], "target": e["target"], "type": t["type"],
                      "label": t["intended"], "editor": e["editor"], "checker": c["checker"],
                      "checker_label": c["label"], "fluency": c["fluency"]})
    report = json.loads(json.dumps(report))  # Counters -> plain dicts
    return layer, report


def read_layer(path: Path) -> list[dict]:
    """The committed counterfactual layer, validated line by line."""
    path = Path(path)
    problems: list[Problem] = []
    rows, ids = [], set()
    for lineno, obj in read_jsonl(path, problems):
        missing = [f for f in LAYER_FIELDS if f not in obj]
        if missing:
            problems.append(Problem(str(path), lineno, f"missing field(s) {missing}"))
            continue
        text, s, e = obj["text"], obj["start_char"], obj["end_char"]
        what = obj["id"]
        if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text)) or text[s:e] != obj["target"]:
            problems.append(Problem(str(path), lineno, f"{what}: text[{s}:{e}] is not the target {obj['target']!r}"))
            continue
        if obj["origin"] != ORIGIN:
            problems.append(Problem(str(path), lineno, f"{what}: origin must be {ORIGIN!r}"))
            continue
        if obj["label"] not in STANCE_LABELS or obj["source_label"] not in STANCE_LABELS:
            problems.append(Problem(str(path), lineno, f"{what}: a label is not one of {list(STANCE_LABELS)}"))
            continue
        if obj["label"] == obj["source_label"]:
            problems.append(Problem(str(path), lineno, f"{what}: label {obj['label']} is the source item's: an edit "
                                                        "must change the attitude toward the target"))
            continue
        if obj["checker_label"] != obj["label"] or obj["fluency"] == "unnatural" or obj["checker"] == obj["editor"]:
            problems.append(Problem(str(path), lineno, f"{what}: not agreed by an independent checker"))
            continue
        if what in ids:
            problems.append(Problem(str(path), lineno, f"duplicate id {what}"))
            continue
        ids.add(what)
        rows.append({**obj, "line": lineno})
    if problems:
        raise DataValidationError(problems)
    if not rows:
        raise KnsError(f"{path} holds no counterfactual items")
    return rows
