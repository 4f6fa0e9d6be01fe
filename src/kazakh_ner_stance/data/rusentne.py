"""RuSentNE-2023 (Russian news, entity-oriented sentiment) as a stance dataset.

`python scripts/build_dataset.py data=rusentne` reads the two labelled TSV files of
RuSentNE-2023 (Golubev, Rusnachenko, Loukachevitch, Dialogue 2023; MIT licence): one row per
(sentence, target entity) with columns ``sentence, entity, entity_tag, entity_pos_start_rel,
entity_pos_end_rel, label``, where the positions are character offsets of the entity in the
sentence and the label is the sentiment toward it (1 positive, -1 negative, 0 neutral).

What the builder does:

* checks each file's SHA-256 against the pinned value (``data.sha256``) before reading it;
* checks every row: the slice ``sentence[start:end]`` must be the ``entity`` text. A row where
  it is not is reported as ``file:line`` with both strings; with ``on_bad_offset: error`` (the
  default) all such rows are listed and nothing is built, with ``skip`` they are left out, and
  counted and listed in stats.json and the card. Nothing is dropped silently;
* turns the character span into a token span over the project's word tokeniser
  (`data.tokenize.tokenize_words`, the one `predict.py` uses on raw text). The text before,
  inside and after the entity is tokenised separately, so the span boundaries are always token
  boundaries: a word that the entity cuts (``экс-премьера`` for the target ``премьера``) is
  split there; those rows are counted;
* maps entity tags to the stance layer's types (ORGANIZATION -> ORGANISATION, COUNTRY -> GPE,
  NATIONALITY -> NORP, PERSON -> PERSON; PROFESSION has no KazNERD counterpart and is kept as
  its own type) and labels to stance labels (1 -> FAVOR, -1 -> AGAINST, 0 -> NONE);
* splits: RuSentNE's train file gives ``train`` and a seeded ``validation`` carved from it
  (rows grouped by sentence text, so one sentence's targets never straddle the two); its
  labelled validation file becomes ``test`` (RuSentNE's own test set is unlabelled and not
  here), on which F1_PN (the mean of the positive and negative F1, which is our F_avg) is
  comparable with, though not the same as, the RuSentNE-2023 test scores.

The rows follow the schema of the Kazakh stance dataset (`data.stance_dataset.stance_features`)
plus ``lang`` ("ru") and ``source_row`` (the 1-based line of the row in its source file), so
that the two can be concatenated for mixed training.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import DataValidationError, KnsError, Problem
from ..labels import STANCE_LABELS

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
COLUMNS = ("sentence", "entity", "entity_tag", "entity_pos_start_rel", "entity_pos_end_rel", "label")
TAG_MAP = {"PERSON": "PERSON", "ORGANIZATION": "ORGANISATION", "COUNTRY": "GPE", "NATIONALITY": "NORP",
           "PROFESSION": "PROFESSION"}
LABEL_MAP = {"1": "FAVOR", "-1": "AGAINST", "0": "NONE"}
BAD_OFFSET_POLICIES = ("error", "skip")

CITATION = """\
@inproceedings{golubev2023rusentne,
  title     = {{RuSentNE-2023}: Evaluating Entity-Oriented Sentiment Analysis on {Russian} News Texts},
  author    = {Golubev, Anton and Rusnachenko, Nicolay and Loukachevitch, Natalia},
  booktitle = {Computational Linguistics and Intellectual Technologies: Proceedings of Dialogue 2023},
  year      = {2023},
  note      = {arXiv:2305.17679}
}"""

DEFINITIONS = """\
RuSentNE labels the **sentiment toward an entity** in a news sentence: the author's, that of a
quoted or reported person, or one implied by a reported act ("X fired Y" is negative toward Y).
Our stance labels (`docs/stance-labels.md`) ask whether *the sentence expresses or clearly
implies an attitude toward the target*, by anyone it quotes or reports. The two are close, and
the label map is 1 -> `FAVOR`, -1 -> `AGAINST`, 0 -> `NONE`. Where they differ:

* an act that harms or benefits the target without anyone evaluating it ("X was fired",
  "Y won a prize") is sentiment in RuSentNE; for us an honour or award is `FAVOR` (rule 4),
  but harm alone, with no attitude expressed, is `NONE`;
* RuSentNE's targets include PROFESSION mentions ("the lawyer", "the minister"), which are no
  named entities and no stance targets in the Kazakh layer; they are kept as type
  `PROFESSION`, so they can be filtered out (`target_type != "PROFESSION"`);
* RuSentNE has no rule for weak attitudes; ours says "when in doubt, `NONE`" (rule 6).

Treat the labels as *silver* stance labels for training; Kazakh scores are measured on the
Kazakh layer only."""


def read_rusentne(path: str | Path, problems: list[Problem], bad_offsets: list[Problem],
                  expected_sha256: str | None = None) -> list[dict]:
    """Rows of one RuSentNE TSV file: {sentence, entity, tag, start, end, label, line}.

    Structural problems (columns, integers, unknown tags or labels) go to `problems`; rows whose
    offsets do not slice out the entity text go to `bad_offsets` (and are not returned)."""
    from ..data.download import sha256_file

    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise KnsError(f"{name}: RuSentNE file not found (set data.source_dir=DIR)")
    if expected_sha256:
        actual = sha256_file(path)
        if actual != str(expected_sha256).lower():
            raise KnsError(
                f"{name}: sha256 {actual} differs from the pinned {expected_sha256} (data.sha256); "
                "this is not the RuSentNE-2023 file the dataset card describes"
            )
    rows: list[dict] = []
    try:
        handle = open(path, encoding="utf-8", newline="")
        with handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != COLUMNS:
                raise KnsError(f"{name}:1: expected the tab-separated header {list(COLUMNS)}, found {header}")
            line = reader.line_num
            for fields in reader:
                number = line + 1  # the physical line where this row starts
                line = reader.line_num
                if not fields or all(not f.strip() for f in fields):
                    continue
                row = _check_row(fields, name, number, problems, bad_offsets)
                if row is not None:
                    rows.append(row)
    except UnicodeDecodeError as err:
        raise KnsError(f"{name}: not UTF-8 ({err.reason} at byte {err.start})") from err
    return rows


def _check_row(fields: Sequence[str], name: str, number: int, problems: list[Problem],
               bad_offsets: list[Problem]) -> dict | None:
    if len(fields) != len(COLUMNS):
        problems.append(Problem(name, number, f"expected {len(COLUMNS)} tab-separated fields, found {len(fields)}"))
        return None
    sentence, entity, tag, start, end, label = fields
    before = len(problems)
    try:
        start, end = int(start), int(end)
    except ValueError:
        problems.append(Problem(name, number, f"entity offsets must be integers, not {start!r}/{end!r}"))
    if tag not in TAG_MAP:
        problems.append(Problem(name, number, f"unknown entity_tag {tag!r} (known: {', '.join(TAG_MAP)})"))
    if label.strip() not in LABEL_MAP:
        problems.append(Problem(name, number, f"unknown label {label!r} (known: {', '.join(LABEL_MAP)})"))
    if len(problems) > before:
        return None
    if not (0 <= start < end <= len(sentence)):
        bad_offsets.append(Problem(
            name, number, f"offsets {start}:{end} are outside the {len(sentence)}-character sentence "
            f"(entity {entity!r})"))
        return None
    actual = sentence[start:end]
    if actual != entity or not entity.strip():
        bad_offsets.append(Problem(
            name, number, f"offsets {start}:{end} slice {actual!r} from the sentence, but the entity is {entity!r}"))
        return None
    return {"sentence": sentence, "entity": entity, "tag": tag, "start": start, "end": end,
            "label": LABEL_MAP[label.strip()], "line": number}


def char_span_to_tokens(sentence: str, start: int, end: int) -> tuple[list[str], int, int, bool]:
    """(tokens, token start, token end, whether a word was split at the span's edge).

    The text before, inside and after [start, end) is tokenised separately, so the span is
    exactly whole tokens; `split` says the whole-sentence tokenisation differs (the entity
    boundary fell inside one of its words)."""
    from ..data.tokenize import tokenize_words, words

    left = words(sentence[:start])
    inside = words(sentence[start:end])
    right = words(sentence[end:])
    if not inside:
        raise KnsError(f"the entity {sentence[start:end]!r} holds no word to tokenise")
    tokens = [*left, *inside, *right]
    split = tokens != [t for t, _, _ in tokenize_words(sentence)]
    return tokens, len(left), len(left) + len(inside), split


def rusentne_features():
    from datasets import Features, Value

    from .stance_rows import stance_features

    feats = dict(stance_features())
    feats["lang"] = Value("string")
    feats["source_row"] = Value("int32")
    return Features(feats)


def _carve_dev(rows: list[dict], share: float, seed: int) -> None:
    """Mark a seeded `share` of the train rows as validation, grouped by sentence text (the
    NER builder's seeded cut, so the same seed gives the same split everywhere)."""
    from .splitting import _cut

    keys = list(dict.fromkeys(r["sentence"] for r in rows))
    assignment = _cut(keys, {"train": 1.0 - share, "validation": share}, seed)
    for r in rows:
        r["split"] = assignment[r["sentence"]]


def _cfg(node, key, default=None):
    value = node.get(key, default) if hasattr(node, "get") else getattr(node, key, default)
    return default if value is None else value


def build_rows(data_cfg) -> tuple[dict[str, list[dict]], dict]:
    """Read, check and split; returns (rows per split, stats). Raises DataValidationError with
    every problem found (and every bad offset unless on_bad_offset=skip)."""
    source_dir = Path(str(data_cfg.source_dir))
    files = dict(_cfg(data_cfg, "files", {"train": "train_data.csv", "test": "validation_data_labeled.csv"}))
    pinned = dict(_cfg(data_cfg, "sha256", {}) or {})
    policy = str(_cfg(data_cfg, "on_bad_offset", "error"))
    if policy not in BAD_OFFSET_POLICIES:
        raise KnsError(f"data.on_bad_offset must be one of {BAD_OFFSET_POLICIES}, not {policy!r}")
    if set(files) != {"train", "test"}:
        raise KnsError(f"data.files must name a train and a test file, not {sorted(files)}")
    share = float(_cfg(data_cfg, "dev_share", 0.1))
    if not 0.0 < share < 1.0:
        raise KnsError(f"data.dev_share must be between 0 and 1, not {share}")
    seed = int(_cfg(data_cfg, "seed", 42))
    problems: list[Problem] = []
    bad: list[Problem] = []
    per_file: dict[str, list[dict]] = {}
    checksums: dict[str, str] = {}
    for split, fname in files.items():
        path = source_dir / str(fname)
        per_file[split] = read_rusentne(path, problems, bad, pinned.get(str(fname)))
        checksums[str(fname)] = pinned.get(str(fname)) or "not pinned"
        for r in per_file[split]:
            r["file"] = str(fname)
            r["split"] = split
    if problems or (bad and policy == "error"):
        err = DataValidationError(problems + (bad if policy == "error" else []))
        if bad and policy == "error":
            err.args = (f"{err.args[0]}\n{len(bad)} row(s) have entity offsets that do not slice out the entity "
                        "text: fix them, or pass data.on_bad_offset=skip to leave them out (they are then "
                        "counted and listed in stats.json and the card)",)
        raise err
    for p in bad:
        log.warning("skipped (data.on_bad_offset=skip): %s", p)
    _carve_dev(per_file["train"], share, seed)

    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    split_words = 0
    for source in ("train", "test"):
        for r in per_file[source]:
            tokens, t0, t1, split = char_span_to_tokens(r["sentence"], r["start"], r["end"])
            split_words += int(split)
            stem = Path(r["file"]).stem
            out[r["split"]].append({
                "id": f"rusentne/{stem}:{r['line']}",
                "sent_id": f"rusentne/{stem}:{r['line']}",
                "tokens": tokens, "start": t0, "end": t1, "target": " ".join(tokens[t0:t1]),
                "target_type": TAG_MAP[r["tag"]], "label": r["label"], "split": r["split"],
                "annotator": "rusentne-2023", "lang": "ru", "source_row": r["line"],
            })
    train_sents = {" ".join(r["tokens"]) for r in out["train"]} | {" ".join(r["tokens"]) for r in out["validation"]}
    overlap = len({" ".join(r["tokens"]) for r in out["test"]} & train_sents)
    stats = {
        "rows": {s: len(out[s]) for s in SPLITS},
        "sentences": {s: len({" ".join(r["tokens"]) for r in out[s]}) for s in SPLITS},
        "labels": {s: {lab: sum(1 for r in out[s] if r["label"] == lab) for lab in STANCE_LABELS} for s in SPLITS},
        "types": {s: dict(Counter(r["target_type"] for r in out[s]).most_common()) for s in SPLITS},
        "bad_offsets": len(bad),
        "bad_offset_rows": [str(p) for p in bad],
        "on_bad_offset": policy,
        "words_split_at_target_edge": split_words,
        "test_sentences_also_in_train_file": overlap,
        "dev_share": share,
        "seed": seed,
        "sha256": checksums,
        "tag_map": dict(TAG_MAP),
        "label_map": dict(LABEL_MAP),
    }
    return out, stats


def _card(stats: Mapping, files: Mapping[str, str]) -> str:
    from .markdown import markdown_table

    rows = [[s, *(stats["labels"][s][lab] for lab in STANCE_LABELS), stats["rows"][s], stats["sentences"][s]]
            for s in SPLITS]
    types = sorted({t for s in SPLITS for t in stats["types"][s]})
    trows = [[t, *(stats["types"][s].get(t, 0) for s in SPLITS)] for t in types]
    bad = stats["bad_offsets"]
    bad_md = (f"{bad} row(s) had entity offsets that do not slice out the entity text and were left out "
              f"(`on_bad_offset: skip`); they are listed in `stats.json`." if bad else
              "Every row's offsets slice out its entity text exactly.")
    return "\n".join([
        "---", "license: mit", "language:", "- ru", "task_categories:", "- text-classification",
        "pretty_name: RuSentNE-2023 as stance", "---", "",
        "# RuSentNE-2023 as stance toward named-entity targets", "",
        "Russian news sentences, each with one target entity and the sentiment toward it, from "
        "RuSentNE-2023 (dialogue-evaluation/RuSentNE-evaluation at commit 4d08c88; MIT licence), "
        "in the schema of the Kazakh stance dataset (`tokens`, `start`/`end` token span, `target`, "
        "`target_type`, `label`) plus `lang` (`ru`) and `source_row` (the row's line in its file; "
        "`id` is `rusentne/<file>:<line>`).", "",
        "## Splits", "",
        f"* `train` and `validation`: RuSentNE's `{files['train']}`, of which a seeded "
        f"{stats['dev_share']:.0%} of the sentences (seed {stats['seed']}, all targets of a sentence together) "
        "is `validation`;",
        f"* `test`: RuSentNE's labelled **validation** file `{files['test']}`. RuSentNE-2023's own "
        "test set is unlabelled and not included, so scores on this split are validation scores "
        "(the best F1_PN reported in the shared task, 0.66, is on its test set). "
        f"{stats['test_sentences_also_in_train_file']} of its sentences also occur in the train file.", "",
        markdown_table(["split", *STANCE_LABELS, "items", "sentences"], rows), "",
        "Target types:", "", markdown_table(["type", *SPLITS], trows), "",
        "## Labels and types", "",
        "Label map: `1 -> FAVOR`, `-1 -> AGAINST`, `0 -> NONE`. Type map: ORGANIZATION -> ORGANISATION, "
        "COUNTRY -> GPE, NATIONALITY -> NORP, PERSON -> PERSON; PROFESSION is kept as its own type "
        "(KazNERD has no such entity type; it is not a stance target type of the Kazakh layer).", "",
        DEFINITIONS, "",
        "## Offsets and tokens", "",
        "Character offsets become token spans over the project's word tokeniser (the one "
        "`predict.py` uses for raw text); the text before, inside and after the target is "
        "tokenised separately, so a word that the target boundary cuts is split there "
        f"({stats['words_split_at_target_edge']} rows). " + bad_md, "",
        "## Citation", "", "```bibtex", CITATION, "```", "",
        "## Provenance", "",
        *(f"- `{name}`: sha256 `{digest}`" for name, digest in stats["sha256"].items()),
        "- build: `python scripts/build_dataset.py data=rusentne`", "",
    ])


def run_build_rusentne(cfg) -> dict:
    """Hydra entry point (`data.builder`): build the RuSentNE stance DatasetDict into out_dir."""
    from datasets import Dataset, DatasetDict

    from .stance_dataset import _write_aside

    data = cfg.data
    rows, stats = build_rows(data)
    if not bool(_cfg(cfg, "progress", True)):
        import datasets

        datasets.disable_progress_bars()
    files = dict(_cfg(data, "files", {"train": "train_data.csv", "test": "validation_data_labeled.csv"}))
    feats = rusentne_features()

    def write(tmp: Path):
        DatasetDict({s: Dataset.from_list(rows[s], features=feats) for s in SPLITS}).save_to_disk(str(tmp))
        (tmp / "README.md").write_text(_card(stats, files), encoding="utf-8")
        (tmp / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2), encoding="utf-8")

    out_dir = Path(str(cfg.out_dir))
    _write_aside(write, out_dir, bool(_cfg(cfg, "overwrite", True)))
    print(f"RuSentNE stance dataset: {out_dir}")
    for s in SPLITS:
        print(f"  {s:<10} {stats['rows'][s]:>5} items  " + "  ".join(f"{lab} {stats['labels'][s][lab]}"
                                                               for lab in STANCE_LABELS))
    print(f"  bad offsets: {stats['bad_offsets']} ({stats['on_bad_offset']}); words split at a target edge: "
          f"{stats['words_split_at_target_edge']}")
    stats["dataset_dir"] = str(out_dir)
    return stats
