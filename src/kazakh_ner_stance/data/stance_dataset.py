"""Stance dataset: build the stance and joint DatasetDicts from the joined gold layer.

The gold layer (`data/stance/kaznerd_valid_stance.jsonl`) is standoff: one JSON object per
line, `{"sent_id", "start", "end", "target", "type", "label", "annotator", "note"?}`, with
token offsets (end exclusive) into the whitespace tokens of the sentence that carries
`sent_id` in KazNERD's `with_sentID` file. `data.stance_layer` reads and validates it;
`data.stance_join` checks every item against that sentence and reports *every* mismatch as
`file:line: ...` before anything is built.

The built stance dataset follows the NER dataset's splits: a sentence is in the same split in
both, because each item takes the split of its sentence in the built NER DatasetDict (built
first when missing). A `joint` DatasetDict holds each annotated sentence with its NER tags and
the stance of each annotated target span.

The rows and their features are `data.stance_rows`; the card text is `data.stance_cards`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ..atomic import replace_dir
from ..errors import DataValidationError, KnsError, Problem
from ..labels import STANCE_LABELS, TARGET_TYPES, ner_label_names
from ..stance_annotation import weak_label_evaluation, weak_labels
from ..stance_annotation.agreement import pair_agreement
from .markdown import markdown_table
from .stance_cards import card_text, joint_sections, stance_sections
from .stance_join import join_records, split_assignment
from .stance_layer import read_double, read_standoff
from .stance_rows import SPLITS, PlacedRows, add_untargeted_sentences, build_rows, joint_features, stance_features

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- statistics


def label_stats(items: Iterable[Mapping]) -> dict:
    """Counts per split x label and per target type x label (items: dicts with split,
    label (name), target_type)."""
    per_split: dict[str, Counter] = defaultdict(Counter)
    per_type: dict[str, Counter] = defaultdict(Counter)
    per_split_type: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for it in items:
        per_split[it["split"]][it["label"]] += 1
        per_type[it["target_type"]][it["label"]] += 1
        per_split_type[it["split"]][it["target_type"]][it["label"]] += 1

    def full(counter: Counter) -> dict:
        out = {lab: counter.get(lab, 0) for lab in STANCE_LABELS}
        out["total"] = sum(counter.values())
        return out

    total = Counter()
    for c in per_split.values():
        total.update(c)
    return {
        "per_split": {s: full(per_split[s]) for s in SPLITS if s in per_split},
        "per_type": {t: full(per_type[t]) for t in sorted(per_type, key=lambda t: -sum(per_type[t].values()))},
        "per_split_type": {
            s: {t: full(c) for t, c in sorted(per_split_type[s].items())} for s in SPLITS if s in per_split_type
        },
        "total": full(total),
    }


def stats_tables(stats: Mapping) -> str:
    """Markdown: label distribution per split and per target type."""
    head = ["", *STANCE_LABELS, "total"]
    rows = [[s, *(c[lab] for lab in STANCE_LABELS), c["total"]] for s, c in stats["per_split"].items()]
    t = stats["total"]
    rows.append(["**all**", *(t[lab] for lab in STANCE_LABELS), t["total"]])
    out = ["Label distribution per split:", "", markdown_table(["split", *head[1:]], rows), ""]
    rows = [[ty, *(c[lab] for lab in STANCE_LABELS), c["total"]] for ty, c in stats["per_type"].items()]
    out += ["Label distribution per target type (all splits):", "", markdown_table(["type", *head[1:]], rows)]
    return "\n".join(out)


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- writing


def _write_aside(build, out_dir: Path, overwrite: bool) -> None:
    """`build(tmp_dir)` writes the dataset; then it replaces out_dir in one rename (the previous
    out_dir survives a failed build or rename)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise KnsError(f"{out_dir} exists; pass overwrite=true to replace it")
    with replace_dir(out_dir) as tmp:
        build(tmp)


# --------------------------------------------------------------------------- the build


def _cfg_get(node, key, default=None):
    try:
        value = node.get(key, default)
    except AttributeError:
        value = getattr(node, key, default)
    return default if value is None else value


def run_build_stance_dataset(cfg) -> dict:
    """Build the stance DatasetDict (and its joint variant); returns the stats dict."""
    st = cfg.data.stance
    target_types = list(_cfg_get(st, "target_types", TARGET_TYPES))
    sentid_file, sentences = _read_sentences(cfg.data)
    records, double = load_gold(st, sentences, target_types)
    ner = _ner_dataset(cfg)
    placed = _place_in_splits(st, records, sentences, ner)
    stats = _dataset_stats(placed, _double_agreement(records, double))
    wl_report = stats["weak_labels"] = _weak_label_report(st, placed.items)
    stats["provenance"] = _provenance(st, sentid_file, ner, placed.method, double)
    _quiet_progress(cfg)
    stance_dir, joint_dir = _output_dirs(cfg)
    counts_md = _write_datasets(cfg, stats, placed, stance_dir, joint_dir, wl_report)
    stats["stance_dir"], stats["joint_dir"] = str(stance_dir), str(joint_dir)
    _print_summary(stance_dir, joint_dir, counts_md, wl_report)
    return stats


# Phases of run_build_stance_dataset, in the order it calls them.


def _read_sentences(data) -> tuple[Path, dict]:
    """(the with_sentID file, sent_id -> its sentence): what the standoff offsets point into."""
    from ..data.iob2 import read_iob2

    st = data.stance
    sentid_file = Path(st.sentid_file)
    if not sentid_file.is_file():
        raise KnsError(f"{sentid_file}: the with_sentID IOB2 file does not exist (set data.stance.sentid_file)")
    orphan = str(_cfg_get(_cfg_get(data, "validation", {}), "orphan_inside", "repair"))
    sents, _ = read_iob2(sentid_file, list(data.entity_types), orphan_inside=orphan)
    if not sents or sents[0].sent_id is None:
        raise KnsError(f"{sentid_file}: has no sentence-ID lines; the stance join needs KazNERD's with_sentID file")
    return sentid_file, {s.sent_id: s for s in sents}


def load_gold(cfg_stance, sentences: Mapping[str, object], target_types: Sequence[str]):
    """Read + join the gold file and (when present) the double-annotated file."""
    gold_path = Path(cfg_stance.gold_file)
    if not gold_path.is_file():
        raise KnsError(
            f"{gold_path}: the stance gold file does not exist (set data.stance.gold_file=PATH)"
        )
    records = join_records(read_standoff(gold_path), sentences, target_types)
    double = None
    double_path = _cfg_get(cfg_stance, "double_file", None)
    if double_path and Path(double_path).is_file():
        double = join_records(read_double(double_path), sentences, target_types)
    return records, double


class _NerSplits(NamedTuple):
    """The built NER dataset whose splits the stance data follows."""

    dsd: object  # DatasetDict
    dir: str
    fingerprint: str
    recorded: dict[str, str] | None  # its split_assignment.parquet: sent_id -> split


# Keys of the stance data config that the NER build it starts must not see: the stance options
# and the builder that points back here.
_STANCE_ONLY_KEYS = ("stance", "builder")


def _ner_dataset(cfg) -> _NerSplits:
    """The built NER dataset whose splits the stance data follows (built first when missing)."""
    from omegaconf import OmegaConf

    from . import build as ner_build
    from .built_dataset import dataset_fingerprint, load_built_dataset, load_split_assignment

    st = cfg.data.stance
    ner_dir = Path(str(st.ner_dataset_dir))
    if bool(_cfg_get(st, "rebuild_ner", False)) or not (ner_dir / "dataset_dict.json").is_file():
        log.info("building the NER dataset first (its splits decide the stance splits): %s", ner_dir)
        plain = OmegaConf.to_container(cfg, resolve=True)
        for key in _STANCE_ONLY_KEYS:
            plain["data"].pop(key, None)
        plain["data"].update({"task": "ner", "name": str(_cfg_get(st, "ner_name", "kaznerd")), "dataset_dir": str(ner_dir)})
        plain["out_dir"] = str(ner_dir)
        ner_build.run_build_dataset(OmegaConf.create(plain))
    dsd = load_built_dataset(ner_dir)
    fingerprint = dataset_fingerprint(ner_dir)
    try:
        assignment = load_split_assignment(ner_dir)
    except (KnsError, AttributeError):
        assignment = None
    return _NerSplits(dsd, str(ner_dir), fingerprint, assignment)


def _place_in_splits(st, records, sentences, ner: _NerSplits) -> PlacedRows:
    """Give each item the NER split of its sentence and make the stance and joint rows; an item
    whose sentence is in no split is dropped with a warning (or, with unassigned=error, refused)."""
    assignment, method = split_assignment(ner.dsd, {r.sent_id: sentences[r.sent_id] for r in records}, ner.recorded)
    stance_rows, joint_rows, unassigned = build_rows(records, sentences, assignment)
    joint_sentences = str(_cfg_get(st, "joint_sentences", "all"))
    if joint_sentences not in ("all", "annotated"):
        raise KnsError(f"data.stance.joint_sentences must be all or annotated, not {joint_sentences!r}")
    untargeted = add_untargeted_sentences(joint_rows, ner.dsd) if joint_sentences == "all" else 0
    if unassigned:
        listing = ", ".join(sorted({r.sent_id for r in unassigned})[:10])
        if str(_cfg_get(st, "unassigned", "drop")) == "error":
            raise DataValidationError(
                [
                    Problem(r.path, r.line, f"sentence {r.sent_id} is in no split of the NER dataset {ner.dir}")
                    for r in unassigned
                ]
            )
        log.warning("%d item(s) dropped: their sentence is in no NER split (%s)", len(unassigned), listing)
    return PlacedRows(stance_rows, joint_rows, unassigned, method, joint_sentences, untargeted)


def _double_agreement(records, double) -> dict | None:
    """Cross-check the double-annotated layer against the gold labels: agreement of its two
    annotators, and a warning per item whose final label differs from the gold one."""
    if double is None:
        return None
    gold_by_key = {r.key: r for r in records}
    mismatch = [d for d in double if d.key in gold_by_key and gold_by_key[d.key].label != d.label]
    for d in mismatch[:20]:
        log.warning("%s: label_final %s differs from the gold label %s", d.where, d.label, gold_by_key[d.key].label)
    pairs = [(d.extra["label_a"], d.extra["label_b"]) for d in double]
    report = pair_agreement([a for a, _ in pairs], [b for _, b in pairs])
    report["items"] = len(double)
    report["not_in_gold"] = sum(1 for d in double if d.key not in gold_by_key)
    report["final_differs_from_gold"] = len(mismatch)
    report["adjudicated"] = sum(1 for d in double if d.extra.get("adjudicated"))
    return report


def _dataset_stats(placed: PlacedRows, double_report: dict | None) -> dict:
    all_items = placed.items
    stats = label_stats(all_items)
    stats.update(
        {
            "items": len(all_items),
            "sentences": len({r["sent_id"] for r in all_items}),
            "sentences_per_split": {s: len({r["sent_id"] for r in placed.stance_rows[s]}) for s in SPLITS},
            "joint_sentences": placed.joint_sentences,
            "joint_sentences_per_split": {s: len(placed.joint_rows[s]) for s in SPLITS},
            "joint_sentences_without_targets": placed.untargeted,
            "dropped_unassigned": len(placed.unassigned),
            "split_assignment": placed.method,
            "annotators": dict(Counter(r["annotator"] or "?" for r in all_items)),
            "agreement": double_report,
        }
    )
    return stats


def _weak_label_report(st, all_items: list[dict]) -> dict:
    """The weak labelling functions scored against the gold layer (reported in the card)."""
    wl_cfg = _cfg_get(st, "weak_labels", {})
    lexicon = weak_labels.load_lexicon(_cfg_get(wl_cfg, "lexicon", "default"))
    lfs = weak_labels.make_lfs(lexicon, **weak_labels.lf_options(wl_cfg))
    wl_items = [
        weak_labels.Item(tokens=r["tokens"], start=r["start"], end=r["end"], type=r["target_type"]) for r in all_items
    ]
    return weak_label_evaluation.evaluate(lfs, wl_items, [r["label"] for r in all_items])


def _provenance(st, sentid_file: Path, ner: _NerSplits, method: str, double) -> dict:
    """File names and checksums only: no absolute paths or timestamps in what is written."""
    gold_path = Path(st.gold_file)
    provenance = {
        "sentence file": f"{sentid_file.name} (sha256 {sha256(sentid_file)})",
        "gold file": f"{gold_path.name} (sha256 {sha256(gold_path)})",
        "NER dataset (splits)": f"{Path(ner.dir).name} (fingerprint {ner.fingerprint})",
        "split assignment": f"by {method}",
    }
    if double is not None:
        dpath = Path(str(st.double_file))
        provenance["double-annotated file"] = f"{dpath.name} (sha256 {sha256(dpath)})"
    return provenance


def _quiet_progress(cfg) -> None:
    if not bool(_cfg_get(cfg, "progress", True)):
        import datasets

        datasets.disable_progress_bars()


# The two datasets this builder writes, by the data config (`data=`) that names each one.
_STANCE_CONFIG, _JOINT_CONFIG = "kaznerd_stance", "kaznerd_joint"


def _output_dirs(cfg) -> tuple[Path, Path]:
    """(stance_dir, joint_dir). `out_dir` takes the place of the one the config's task trains on:
    the data config that the task registry names for it (`TaskSpec.dataset_config`)."""
    from ..tasks.registry import TASKS

    st = cfg.data.stance
    dirs = {_STANCE_CONFIG: Path(st.stance_dir), _JOINT_CONFIG: Path(st.joint_dir)}
    spec = TASKS.get(str(cfg.data.task))
    if spec is not None and spec.dataset_config in dirs:
        dirs[spec.dataset_config] = Path(cfg.out_dir)
    return dirs[_STANCE_CONFIG], dirs[_JOINT_CONFIG]


def _save_dataset(tmp: Path, rows: Mapping[str, list[dict]], features, title: str, sections: Sequence[str],
                  provenance: Mapping, stats: Mapping) -> None:
    """One DatasetDict (a split per SPLITS) with its card and stats.json, into `tmp`."""
    from datasets import Dataset, DatasetDict

    dsd = DatasetDict({s: Dataset.from_list(rows[s], features=features) for s in SPLITS})
    dsd.save_to_disk(str(tmp))
    (tmp / "README.md").write_text(card_text(title, [s for s in sections if s], provenance), encoding="utf-8")
    (tmp / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2), encoding="utf-8")


def _write_datasets(cfg, stats: dict, placed: PlacedRows, stance_dir: Path, joint_dir: Path, wl_report: dict) -> str:
    """Write the stance and the joint dataset aside and swap each into place; returns the
    label-count tables (markdown) that both cards hold."""
    names = ner_label_names(list(cfg.data.entity_types))
    overwrite = bool(_cfg_get(cfg, "overwrite", True))
    counts_md = stats_tables(stats)
    stance_card = stance_sections(stats, placed, counts_md, weak_label_evaluation.report_markdown(wl_report), joint_dir)
    joint_card = joint_sections(placed, counts_md)
    provenance = stats["provenance"]
    _write_aside(lambda tmp: _save_dataset(tmp, placed.stance_rows, stance_features(), "KazNERD stance",
                                           stance_card, provenance, stats), stance_dir, overwrite)
    _write_aside(lambda tmp: _save_dataset(tmp, placed.joint_rows, joint_features(names),
                                           "KazNERD joint NER + stance", joint_card, provenance, stats),
                 joint_dir, overwrite)
    return counts_md


def _print_summary(stance_dir: Path, joint_dir: Path, counts_md: str, wl_report: dict) -> None:
    print(f"stance dataset: {stance_dir}\njoint dataset: {joint_dir}")
    print(counts_md)
    print()
    print(weak_label_evaluation.report_text(wl_report))
