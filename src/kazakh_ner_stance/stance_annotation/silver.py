"""Translate-train: a *silver* Kazakh stance layer translated from RuSentNE-2023 (issue 12).

Kazakh translations of RuSentNE training items, made by translators who saw the Russian
sentence, the target at its offsets and the label, and wrote the Kazakh sentence with the
target wrapped once in ``⟦ ⟧`` (whole words, case suffixes inside). The label and the type are
never the translator's: they are copied from the RuSentNE row the item was translated from.

Three files in ``data/stance/`` (JSON lines, committed; MIT like their source):

* ``rusentne_kk_silver.jsonl``, the layer: ``{"id", "source_id", "source_row", "text",
  "start_char", "end_char", "target", "target_type", "label", "translator"}`` (``text`` without
  the brackets; ``text[start_char:end_char] == target``);
* ``rusentne_kk_silver_check.jsonl``, a second translator's check of a seeded random sample:
  ``{"id", "adequacy": "good" | "minor" | "wrong", "span": "correct" | "wrong", "stance_kept":
  true | false, "checker", "comment"}``; the card reports the rates;
* the translators' raw output is assembled into the layer by ``assemble_layer`` (below), which
  validates every line.

``python scripts/build_dataset.py data=rusentne_kk_silver`` builds it into a stance dataset
with one split, ``train`` (``lang`` = ``kk-silver``, ``annotator`` = ``silver:<translator>``):
it is training data only and never enters an evaluation split; the recipes add it through
``task.extra_train.dir`` (a list of dataset folders is accepted).
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import DataValidationError, KnsError, Problem
from . import STANCE_LABELS
from ..data.stance_layer import read_jsonl

log = logging.getLogger(__name__)

OPEN, CLOSE = "⟦", "⟧"
LANG = "kk-silver"
LAYER_FIELDS = ("id", "source_id", "source_row", "text", "start_char", "end_char", "target", "target_type",
                "label", "translator")
ADEQUACY = ("good", "minor", "wrong")
SPAN_VERDICTS = ("correct", "wrong")


def parse_marked(marked: str) -> tuple[str, int, int]:
    """``"A ⟦B C⟧ D"`` -> ("A B C D", 2, 5). Raises ValueError naming the problem: not exactly
    one bracket pair, an empty span, spaces inside the brackets, or a span edge inside a word."""
    if marked.count(OPEN) != 1 or marked.count(CLOSE) != 1:
        raise ValueError(f"needs exactly one {OPEN}…{CLOSE} pair (found {marked.count(OPEN)} {OPEN} and "
                         f"{marked.count(CLOSE)} {CLOSE})")
    a, b = marked.index(OPEN), marked.index(CLOSE)
    if b < a:
        raise ValueError(f"{CLOSE} comes before {OPEN}")
    inner = marked[a + 1:b]
    if not inner.strip():
        raise ValueError("the marked target is empty")
    if inner != inner.strip():
        raise ValueError("spaces just inside the brackets")
    if a > 0 and marked[a - 1].isalnum():
        raise ValueError(f"the target starts inside a word ({marked[max(0, a - 10):a + 1]!r})")
    if b + 1 < len(marked) and marked[b + 1].isalpha():
        raise ValueError(f"the target ends inside a word ({marked[b:b + 10]!r}); put the suffix inside")
    text = marked[:a] + inner + marked[b + 1:]
    if "\n" in text or "\r" in text:
        raise ValueError("a line break inside the sentence")
    return text, a, a + len(inner)


def assemble_layer(translation_files: Sequence[Path], sources: Mapping[str, Mapping]) -> tuple[list[dict], list[Problem]]:
    """Translators' output lines ``{"id", "kk", "translator"}`` -> layer records. `sources`
    maps a RuSentNE item id (``rusentne/train_data:<line>``) to its built row (``source_row``,
    ``target_type``, ``label`` as a name). Every bad line is a Problem (file, line, what)."""
    problems: list[Problem] = []
    records: list[dict] = []
    seen: dict[str, str] = {}
    for path in map(Path, translation_files):
        for lineno, obj in read_jsonl(path, problems):
            where = f"{path}:{lineno}"
            sid = obj.get("id")
            if sid not in sources:
                problems.append(Problem(str(path), lineno, f"unknown source id {sid!r}"))
                continue
            if sid in seen:
                problems.append(Problem(str(path), lineno, f"{sid} translated twice (also {seen[sid]})"))
                continue
            if not str(obj.get("translator") or "").strip():
                problems.append(Problem(str(path), lineno, f"{sid}: no translator named"))
                continue
            try:
                text, s, e = parse_marked(str(obj.get("kk") or ""))
            except ValueError as err:
                problems.append(Problem(str(path), lineno, f"{sid}: {err}"))
                continue
            seen[sid] = where
            src = sources[sid]
            records.append({
                "id": f"rusentne-kk/{sid.split('/', 1)[-1]}", "source_id": sid, "source_row": int(src["source_row"]),
                "text": text, "start_char": s, "end_char": e, "target": text[s:e],
                "target_type": str(src["target_type"]), "label": str(src["label"]),
                "translator": str(obj["translator"]).strip(),
            })
    records.sort(key=lambda r: r["source_row"])
    order = {str(path): i for i, path in enumerate(map(Path, translation_files))}
    problems.sort(key=lambda q: (order.get(q.path, len(order)), q.line or 0))  # file order, then line
    return records, problems


def read_layer(path: Path) -> list[dict]:
    """The committed layer, validated line by line (DataValidationError lists every problem)."""
    path = Path(path)
    problems: list[Problem] = []
    rows: list[dict] = []
    ids: set[str] = set()
    for lineno, obj in read_jsonl(path, problems):
        missing = [f for f in LAYER_FIELDS if f not in obj]
        if missing:
            problems.append(Problem(str(path), lineno, f"missing field(s) {missing}"))
            continue
        text, s, e = obj["text"], obj["start_char"], obj["end_char"]
        if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text)):
            problems.append(Problem(str(path), lineno, f"{obj['id']}: bad character span {s}..{e}"))
            continue
        if text[s:e] != obj["target"]:
            problems.append(Problem(str(path), lineno, f"{obj['id']}: text[{s}:{e}] is {text[s:e]!r}, not the "
                                                        f"target {obj['target']!r}"))
            continue
        if obj["label"] not in STANCE_LABELS:
            problems.append(Problem(str(path), lineno, f"{obj['id']}: label {obj['label']!r} is not one of "
                                                        f"{STANCE_LABELS}"))
            continue
        if obj["id"] in ids:
            problems.append(Problem(str(path), lineno, f"duplicate id {obj['id']}"))
            continue
        ids.add(obj["id"])
        rows.append({**obj, "line": lineno})
    if problems:
        raise DataValidationError(problems)
    if not rows:
        raise KnsError(f"{path} holds no silver items")
    return rows


def read_check(path: Path, layer_ids: set[str]) -> list[dict]:
    """The second translator's verdicts, validated (ids must be in the layer)."""
    problems: list[Problem] = []
    rows = []
    for lineno, obj in read_jsonl(Path(path), problems):
        bad = []
        if obj.get("id") not in layer_ids:
            bad.append(f"id {obj.get('id')!r} is not in the layer")
        if obj.get("adequacy") not in ADEQUACY:
            bad.append(f"adequacy must be one of {ADEQUACY}")
        if obj.get("span") not in SPAN_VERDICTS:
            bad.append(f"span must be one of {SPAN_VERDICTS}")
        if not isinstance(obj.get("stance_kept"), bool):
            bad.append("stance_kept must be true or false")
        if bad:
            problems.append(Problem(str(path), lineno, "; ".join(bad)))
        else:
            rows.append(obj)
    if problems:
        raise DataValidationError(problems)
    return rows


def check_sample(ids: Sequence[str], n: int = 100, seed: int = 42) -> list[str]:
    """The seeded random sample the second translator checks."""
    ids = sorted(ids)
    return sorted(random.Random(seed).sample(ids, min(n, len(ids))))


def check_rates(check: Sequence[Mapping]) -> dict:
    n = len(check)
    if not n:
        return {"n": 0}
    adequacy = Counter(c["adequacy"] for c in check)
    return {
        "n": n,
        "adequate": (adequacy["good"] + adequacy["minor"]) / n,
        "adequacy": {k: adequacy[k] for k in ADEQUACY},
        "span_correct": sum(c["span"] == "correct" for c in check) / n,
        "stance_kept": sum(bool(c["stance_kept"]) for c in check) / n,
    }


def layer_rows(layer: Sequence[Mapping]) -> tuple[list[dict], int]:
    """Layer records -> stance dataset rows (token spans over the project's word tokeniser)."""
    from ..data.rusentne import char_span_to_tokens

    out, split_words = [], 0
    for r in layer:
        tokens, t0, t1, split = char_span_to_tokens(r["text"], r["start_char"], r["end_char"])
        split_words += int(split)
        out.append({
            "id": r["id"], "sent_id": r["id"], "tokens": tokens, "start": t0, "end": t1,
            "target": " ".join(tokens[t0:t1]), "target_type": r["target_type"], "label": r["label"],
            "split": "train", "annotator": f"silver:{r['translator']}", "lang": LANG,
            "source_row": int(r["source_row"]),
        })
    return out, split_words


def _card(stats: Mapping) -> str:
    from ..data.markdown import markdown_table
    from ..data.rusentne import CITATION

    c = stats["check"]
    if c.get("n"):
        check_md = (f"A second translator checked a seeded random sample of {c['n']} items against the Russian "
                    f"source: adequate translation {c['adequate']:.0%} (good {c['adequacy']['good']}, minor "
                    f"slips {c['adequacy']['minor']}, wrong {c['adequacy']['wrong']}); target span correct "
                    f"{c['span_correct']:.0%}; attitude toward the target kept {c['stance_kept']:.0%}.")
    else:
        check_md = "No second-translator check has been recorded yet."
    rows = [[lab, stats["labels"].get(lab, 0)] for lab in STANCE_LABELS]
    return "\n".join([
        "---", "license: mit", "language:", "- kk", "task_categories:", "- text-classification",
        "pretty_name: RuSentNE-2023 translated to Kazakh (silver stance)", "---", "",
        "# Silver Kazakh stance items translated from RuSentNE-2023", "",
        "**Silver, training only.** Kazakh translations of RuSentNE-2023 training items (Russian news; "
        "Golubev, Rusnachenko, Loukachevitch, Dialogue 2023; MIT). The translators wrote the Kazakh sentence "
        "with the target marked; the label and type are the RuSentNE row's, mapped as in the `rusentne` "
        "dataset (1 FAVOR, -1 AGAINST, 0 NONE; ORGANIZATION -> ORGANISATION, COUNTRY -> GPE, NATIONALITY -> "
        "NORP, PROFESSION kept). One split, `train`; never part of any evaluation split. Rows carry "
        f"`lang` = `{LANG}`, `annotator` = `silver:<translator>` and `source_row` (the RuSentNE train-file "
        "line).", "",
        f"{stats['items']} items from {stats['translators']} translators:", "",
        markdown_table(["label", "items"], rows), "",
        "## Quality", "", check_md, "",
        f"Token spans: {stats['words_split_at_target_edge']} items had a word split at a target edge.", "",
        "## Citation of the source", "", "```bibtex", CITATION, "```", "",
        "## Provenance", "",
        f"- layer: `{stats['layer']}` (sha256 `{stats['layer_sha256']}`)",
        "- build: `python scripts/build_dataset.py data=rusentne_kk_silver`", "",
    ])


def run_build_silver(cfg) -> dict:
    """Hydra entry point (`data.builder`): the silver layer as a one-split stance dataset."""
    from datasets import Dataset, DatasetDict

    from ..data.download import sha256_file
    from ..data.stance_dataset import _write_aside
    from ..data.rusentne import rusentne_features

    data = cfg.data
    layer_path = Path(str(data.layer))
    layer = read_layer(layer_path)
    check_path = data.get("check")
    check = read_check(Path(str(check_path)), {r["id"] for r in layer}) if check_path and Path(str(check_path)).is_file() else []
    rows, split_words = layer_rows(layer)
    stats = {
        "items": len(rows), "labels": dict(Counter(r["label"] for r in rows)),
        "types": dict(Counter(r["target_type"] for r in rows).most_common()),
        "translators": len({r["translator"] for r in layer}), "words_split_at_target_edge": split_words,
        "check": check_rates(check), "layer": layer_path.name, "layer_sha256": sha256_file(layer_path),
    }
    if not bool(cfg.get("progress", True)):
        import datasets

        datasets.disable_progress_bars()

    def write(tmp: Path):
        DatasetDict({"train": Dataset.from_list(rows, features=rusentne_features())}).save_to_disk(str(tmp))
        (tmp / "README.md").write_text(_card(stats), encoding="utf-8")
        (tmp / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2), encoding="utf-8")

    out_dir = Path(str(cfg.out_dir))
    _write_aside(write, out_dir, bool(cfg.get("overwrite", True)))
    print(f"silver Kazakh stance layer (training only): {out_dir}")
    print(f"  train {stats['items']} items  " + "  ".join(f"{lab} {stats['labels'].get(lab, 0)}" for lab in STANCE_LABELS))
    if stats["check"].get("n"):
        c = stats["check"]
        print(f"  second-translator check of {c['n']}: adequate {c['adequate']:.0%}, span correct "
              f"{c['span_correct']:.0%}, stance kept {c['stance_kept']:.0%}")
    stats["dataset_dir"] = str(out_dir)
    return stats
