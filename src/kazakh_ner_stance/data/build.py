"""Build a validated, versioned Hugging Face dataset from KazNERD-style IOB2 files.

Pipeline (`python scripts/build_dataset.py`, options in configs/build_dataset.yaml and
configs/data/kaznerd.yaml):

1. Find the sources (`discover_sources`): for each split, the first existing file of
   `IOB2_{name}_sentid.txt`, `IOB2_{name}2.txt`, `with_sentID/IOB2_{name}2.txt`,
   `IOB2_{name}.txt`, with name `train`, `valid`/`dev`/`validation`, `test`. So the
   sentence-ID variant is preferred when a folder holds both; the other candidates are
   recorded as ignored (with checksums) in stats.json and the card. Whether a file really
   has sentence-ID lines is detected from its content. No files in `data.source_dir` and
   `data.download.enabled`: the pinned KazNERD files are downloaded and SHA-256-checked.
2. Read and validate every line (iob2.read_iob2); all problems of all files are reported at
   once, with file:line, before anything is written.
3. Normalise tokens to NFC; report (and with `fix_latin_in_cyrillic` fix) Latin letters in
   Cyrillic words.
4. Splits. Sentences are grouped by their token sequence ("identical sentences"). With a
   single source split, the groups are ordered by a seeded hash (blake2b of seed + tokens;
   independent of library versions) and cut 80/10/10, so identical sentences always share a
   split and the result is reproducible. With train present but validation/test missing,
   the missing ones are carved out of train the same way. Then exact duplicates within a
   split are removed (first kept), and a validation sentence equal to a train sentence or
   a test sentence equal to a train/validation sentence is removed as leakage.
5. Write into a temporary folder next to `out_dir` and rename it into place at the end:
   DatasetDict (save_to_disk) with columns sent_id / tokens / ner_tags (ClassLabel over
   the full fixed label list), `parquet/{split}.parquet`, `split_assignment.parquet`
   (every source sentence ID -> split and status, for joining stance annotations),
   `stats.json` and the dataset card `README.md`. No timestamps or absolute paths are
   written, so the same input and seed give byte-identical files.

Step 1 lives in `data.ner_sources`, step 4 in `data.splitting`, the card in `data.card`, and
reading a built dataset back (`load_built_dataset`, its fingerprint) in `data.built_dataset`.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import replace_dir
from ..errors import DataValidationError, KnsError, Problem
from ..labels import ner_label_names as label_names  # O, then B-X, I-X per type in config order
from .built_dataset import compute_fingerprint, is_built_dataset
from .card import CITATION
from .download import sha256_file
from .iob2 import ORPHAN_POLICIES, Sentence, read_iob2
from .ner_sources import resolve_sources
from .normalize import NormalizeReport, normalize_sentences
from .splitting import SPLITS, _Record, assign_splits, dedup_and_leakage

# Reading a built dataset back (data.built_dataset), the split helpers (data.splitting) and source
# discovery (data.ner_sources) are also named here, for the modules that import them from data.build.

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


# --------------------------------------------------------------------------- options


@dataclass
class BuildOptions:
    out_dir: Path
    source_dir: Path | None
    entity_types: list[str]
    name: str = "kaznerd"
    orphan_inside: str = "repair"
    fix_latin_in_cyrillic: bool = False
    dedup: bool = True
    remove_leakage: bool = True
    ratios: dict = field(default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1})
    seed: int = 42
    # Sentence IDs matching this regex with the same group(1) are variants of one sentence
    # (KazNERD: AID336541 / BID336541 differ only in how numbers are written) and must
    # share a split, or near-copies of test sentences sit in train. null: no grouping.
    variant_id_pattern: str | None = r"^[A-Z]ID(\d+)$"
    overwrite: bool = True
    progress: bool = True
    download: dict | None = None

    @classmethod
    def from_cfg(cls, cfg) -> BuildOptions:
        from omegaconf import OmegaConf

        data = cfg.data
        validation = data.get("validation") or {}
        split = data.get("split") or {}
        download = OmegaConf.to_container(data.download, resolve=True) if data.get("download") else None
        options = cls(
            out_dir=Path(str(cfg.out_dir)),
            source_dir=Path(str(data.source_dir)) if data.get("source_dir") else None,
            entity_types=[str(t) for t in data.entity_types],
            name=str(data.get("name", "kaznerd")),
            orphan_inside=str(validation.get("orphan_inside", "repair")),
            fix_latin_in_cyrillic=bool(validation.get("fix_latin_in_cyrillic", False)),
            dedup=bool(data.get("dedup", True)),
            remove_leakage=bool(data.get("remove_leakage", True)),
            ratios={
                "train": float(split.get("train", 0.8)),
                "validation": float(split.get("dev", 0.1)),
                "test": float(split.get("test", 0.1)),
            },
            seed=int(split.get("seed", 42)),
            variant_id_pattern=split.get("variant_id_pattern", r"^[A-Z]ID(\d+)$"),
            overwrite=bool(cfg.get("overwrite", True)),
            progress=bool(cfg.get("progress", True)),
            download=download,
        )
        options.check()
        return options

    def check(self) -> None:
        if self.orphan_inside not in ORPHAN_POLICIES:
            raise KnsError(f"data.validation.orphan_inside must be one of {ORPHAN_POLICIES}, not {self.orphan_inside!r}")
        if any(r < 0 for r in self.ratios.values()) or abs(sum(self.ratios.values()) - 1.0) > 1e-6:
            raise KnsError(f"data.split train/dev/test must be >= 0 and sum to 1, got {self.ratios}")
        if not self.entity_types or len(set(self.entity_types)) != len(self.entity_types):
            raise KnsError("data.entity_types must be a non-empty list without repeats")


# --------------------------------------------------------------------------- writing


def _features(labels: list[str]):
    from datasets import ClassLabel, Features, Sequence, Value

    return Features(
        {"sent_id": Value("string"), "tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=labels))}
    )


def _split_stats(records: list[_Record], entity_types: list[str]) -> dict:
    entities = Counter()
    tokens = 0
    for r in records:
        tokens += len(r.sent.tokens)
        entities.update(t[2:] for t in r.sent.tags if t.startswith("B-"))
    return {
        "sentences": len(records),
        "tokens": tokens,
        "entities": sum(entities.values()),
        "entities_per_type": {t: entities.get(t, 0) for t in entity_types},
    }


def _check_out_dir(opt: BuildOptions) -> None:
    out = opt.out_dir
    if out.exists():
        if not opt.overwrite:
            raise KnsError(f"{out} exists; pass overwrite=true to replace it or choose another out_dir")
        if not out.is_dir() or (any(out.iterdir()) and not is_built_dataset(out)):
            raise KnsError(f"{out} exists and is not a built dataset; refusing to replace it (choose another out_dir)")


def build_ner_dataset(opt: BuildOptions) -> dict:
    """Build the dataset described by `opt`; returns stats.json's content (plus timings)."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    timings: dict[str, float] = {}
    _check_out_dir(opt)
    src = _Sources(*resolve_sources(opt))
    bar = tqdm(total=len(src.present) + 6, desc="build_dataset", unit="step", disable=not opt.progress)
    with _timed(timings, "read"):
        read = _read_and_validate(opt, src, bar)
    with _timed(timings, "normalise"):
        report = _normalise(opt, src, read, bar)
    with _timed(timings, "split"):
        splits = _split(opt, src, read, bar)
    stats = _build_stats(opt, src, read, report, splits)
    with _timed(timings, "write"):
        _write_and_swap(opt, stats, splits, bar)
    timings["total"] = time.perf_counter() - started
    return {**stats, "timings": timings}


# Phases of build_ner_dataset, in the order it calls them.


@dataclass
class _Sources:
    """The source files of a build: split -> file, the candidates not used, where they came from."""

    files: dict[str, Path]
    ignored: list[dict]
    origin: dict

    @property
    def present(self) -> list[str]:
        return [s for s in SPLITS if s in self.files]

    @property
    def root(self) -> Path:
        return next(iter(self.files.values())).parent


@contextmanager
def _timed(timings: dict[str, float], name: str):
    """Record in `timings[name]` how long the block took (nothing when it raises)."""
    t = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t


def _read_and_validate(opt: BuildOptions, src: _Sources, bar) -> dict[str, tuple[list[Sentence], object]]:
    """split -> (sentences, read stats) of every source file. All problems of all files (bad
    lines, duplicate sentence IDs across files) are raised together, before anything is written."""
    problems: list[Problem] = []
    read: dict[str, tuple[list[Sentence], object]] = {}
    for split in src.present:
        bar.set_postfix_str(f"read {src.files[split].name}")
        try:
            read[split] = read_iob2(src.files[split], opt.entity_types, opt.orphan_inside)
        except DataValidationError as err:
            problems.extend(err.problems)
        bar.update()
    if problems:
        bar.close()
        raise DataValidationError(problems)
    # sentence IDs: generated for files without them, unique across all files
    seen: dict[str, tuple[str, int]] = {}
    for split in src.present:
        sentences, stats = read[split]
        for index, sent in enumerate(sentences):
            if sent.sent_id is None:
                sent.sent_id = f"{split}-{index}"
            where = (str(src.files[split]), sent.line - 1 if stats.has_sent_ids else sent.line)
            if sent.sent_id in seen:
                first = seen[sent.sent_id]
                problems.append(
                    Problem(where[0], where[1], f"duplicate sentence ID {sent.sent_id} (also at {first[0]}:{first[1]})")
                )
            else:
                seen[sent.sent_id] = where
    if problems:
        bar.close()
        raise DataValidationError(problems)
    if not any(read[s][0] for s in src.present):
        bar.close()
        raise KnsError(f"no sentences in {', '.join(str(src.files[s]) for s in src.present)}")
    return read


def _normalise(opt: BuildOptions, src: _Sources, read: dict, bar) -> NormalizeReport:
    """Tokens to NFC; Latin letters in Cyrillic words reported (and fixed when asked)."""
    bar.set_postfix_str("normalise")
    report = NormalizeReport()
    for split in src.present:
        normalize_sentences(read[split][0], src.files[split].name, report, fix_latin=opt.fix_latin_in_cyrillic)
    if report.latin_in_cyrillic_tokens:
        log.warning(
            "%d token(s) have Latin letters inside Cyrillic words (%s; see stats.json), e.g. %s",
            report.latin_in_cyrillic_tokens,
            f"{report.latin_in_cyrillic_fixed} fixed" if opt.fix_latin_in_cyrillic else "not fixed",
            ", ".join(f"{e['file']}:{e['line']} {e['token']}" for e in report.examples[:3]),
        )
    bar.update()
    return report


@dataclass
class _Splits:
    records: list[_Record]  # every source sentence, with its split and status
    how: str  # how the splits were made
    removed: dict  # duplicates and leaked sentences per split
    kept: dict[str, list[_Record]]  # split -> the sentences it holds


def _split(opt: BuildOptions, src: _Sources, read: dict, bar) -> _Splits:
    """Splits, then duplicates within a split and leakage across splits removed."""
    bar.set_postfix_str("split")
    records = [
        _Record(sent=s, source_split=split, key="\n".join(s.tokens)) for split in src.present for s in read[split][0]
    ]
    how = assign_splits(records, src.present, opt.ratios, opt.seed, opt.variant_id_pattern)
    removed = dedup_and_leakage(records, opt.dedup, opt.remove_leakage)
    kept = {s: [r for r in records if r.status == "kept" and r.split == s] for s in SPLITS}
    bar.update()
    return _Splits(records, how, removed, kept)


def _build_stats(opt: BuildOptions, src: _Sources, read: dict, report: NormalizeReport, splits: _Splits) -> dict:
    """stats.json's content, less the fingerprint and file checksums (known once written)."""
    present = src.present
    stats: dict = {
        "format_version": FORMAT_VERSION,
        "dataset": opt.name,
        "labels": label_names(opt.entity_types),
        "sources": [
            {
                "split": split,
                "file": src.files[split].relative_to(src.root).as_posix(),
                "format": read[split][1].format,
                "sha256": sha256_file(src.files[split]),
                "sentences": read[split][1].sentences,
                "tokens": read[split][1].tokens,
            }
            for split in present
        ],
        "ignored_sources": [
            {**item, "sha256": sha256_file(src.root / item["file"])} for item in src.ignored
        ],
        "origin": src.origin,
        "upstream": {k: (opt.download or {}).get(k) for k in ("repo", "commit")},
        "options": {
            "orphan_inside": opt.orphan_inside,
            "fix_latin_in_cyrillic": opt.fix_latin_in_cyrillic,
            "dedup": opt.dedup,
            "remove_leakage": opt.remove_leakage,
            "split_ratios": opt.ratios,
            "seed": opt.seed,
            "splitting": splits.how,
        },
        "input": {"sentences": sum(len(read[s][0]) for s in present), "tokens": sum(read[s][1].tokens for s in present)},
        "repaired": {
            "orphan_inside_tags": sum(read[s][1].orphans_repaired for s in present),
            "sentences": sum(read[s][1].sentences_repaired for s in present),
        },
        "normalised": report.as_dict(),
        "removed": splits.removed,
        "splits": {s: _split_stats(splits.kept[s], opt.entity_types) for s in SPLITS},
    }
    dl = opt.download or {}
    known = {str(v).lower() for key in ("sha256", "known_sha256") for v in (dl.get(key) or {}).values()}
    for source in stats["sources"]:
        source["matches_pinned_checksum"] = source["sha256"] in known
    return stats


def _write_and_swap(opt: BuildOptions, stats: dict, splits: _Splits, bar) -> None:
    """Write everything into a folder beside out_dir, then rename it into place; `stats` gets
    the fingerprint and the checksums of the files written."""
    import datasets

    progress_was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        with replace_dir(opt.out_dir) as tmp:
            dataset = _dataset_dict(opt, stats["labels"], splits.kept)
            bar.set_postfix_str("save_to_disk")
            dataset.save_to_disk(str(tmp), num_shards={s: 1 for s in SPLITS})
            bar.update()
            bar.set_postfix_str("parquet")
            (tmp / "parquet").mkdir()
            for split in SPLITS:
                dataset[split].to_parquet(str(tmp / "parquet" / f"{split}.parquet"))
            _write_assignment(splits.records, tmp / "split_assignment.parquet")
            bar.update()
            bar.set_postfix_str("stats + card")
            _write_stats_and_card(tmp, stats)
            bar.update()
            bar.set_postfix_str("rename into place")
        bar.update()
    finally:
        if progress_was_on:
            datasets.enable_progress_bars()
        bar.close()


def _dataset_dict(opt: BuildOptions, labels: list[str], kept: dict[str, list[_Record]]):
    import datasets

    label2id = {name: i for i, name in enumerate(labels)}
    features = _features(labels)
    splits = {}
    for split in SPLITS:
        rows = kept[split]
        splits[split] = datasets.Dataset.from_dict(
            {
                "sent_id": [r.sent.sent_id for r in rows],
                "tokens": [r.sent.tokens for r in rows],
                "ner_tags": [[label2id[t] for t in r.sent.tags] for r in rows],
            },
            features=features,
            info=datasets.DatasetInfo(
                description=f"{opt.name}: Kazakh named entities (IOB2), built by kazakh-ner-stance",
                citation=CITATION,
                homepage="https://github.com/IS2AI/KazNERD",
                license="CC BY 4.0",
                features=features,
            ),
            split=split,
        )
    return datasets.DatasetDict(splits)


def _write_stats_and_card(tmp: Path, stats: dict) -> None:
    stats["fingerprint"] = compute_fingerprint(tmp)
    stats["files"] = {
        p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()
    }
    (tmp / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    from .card import render_card

    (tmp / "README.md").write_text(render_card(stats), encoding="utf-8")


def _write_assignment(records: list[_Record], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "sent_id": [r.sent.sent_id for r in records],
            "source_split": [r.source_split for r in records],
            "split": [r.split for r in records],
            "status": [r.status for r in records],
            "kept_sent_id": [r.kept_sent_id for r in records],
        }
    )
    pq.write_table(table, path)


# --------------------------------------------------------------------------- entry point


def format_stats_table(stats: dict, out_dir: str | Path | None = None) -> str:
    rows = [("split", "sentences", "tokens", "entities")]
    for split in SPLITS:
        s = stats["splits"][split]
        rows.append((split, f"{s['sentences']:,}", f"{s['tokens']:,}", f"{s['entities']:,}"))
    total = [sum(stats["splits"][s][k] for s in SPLITS) for k in ("sentences", "tokens", "entities")]
    rows.append(("total", *(f"{v:,}" for v in total)))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    fmt = lambda r: "  ".join(c.ljust(width[0]) if i == 0 else c.rjust(width[i]) for i, c in enumerate(r))  # noqa: E731
    lines = []
    if out_dir is not None:
        lines.append(f"built {stats['dataset']} -> {out_dir}")
    lines.append(f"fingerprint {stats['fingerprint']}")
    for src in stats["sources"]:
        lines.append(
            f"source {src['split']}: {src['file']} ({src['format']}, {src['sentences']:,} sentences, "
            f"sha256 {src['sha256'][:12]}…)"
        )
    for item in stats["ignored_sources"]:
        lines.append(f"ignored {item['file']}: {item['reason']}")
    lines.append(f"splitting: {stats['options']['splitting']}")
    lines += ["", fmt(rows[0]), fmt(tuple("-" * w for w in width))] + [fmt(r) for r in rows[1:]]
    rem, rep, norm = stats["removed"], stats["repaired"], stats["normalised"]
    lines += [
        "",
        f"input: {stats['input']['sentences']:,} sentences, {stats['input']['tokens']:,} tokens",
        f"removed: {sum(rem['duplicates'].values()):,} exact duplicates "
        f"({', '.join(f'{k} {v}' for k, v in rem['duplicates'].items())}), "
        f"{sum(rem['leakage'].values()):,} leaked ({', '.join(f'{k} {v}' for k, v in rem['leakage'].items())})"
        + (f"; {conflicts} of them had different tags" if (conflicts := rem["duplicates_with_different_tags"]) else ""),
        f"repaired: {rep['orphan_inside_tags']:,} orphan I- tags in {rep['sentences']:,} sentences "
        f"(policy {stats['options']['orphan_inside']})",
        f"normalised: {norm['nfc_tokens']:,} tokens to NFC; {norm['latin_in_cyrillic_tokens']:,} tokens with Latin "
        f"letters in Cyrillic words ({norm['latin_in_cyrillic_fixed']:,} fixed)",
        "",
    ]
    types = list(stats["splits"]["train"]["entities_per_type"])
    erows = [("entity type", *SPLITS)] + [
        (t, *(f"{stats['splits'][s]['entities_per_type'][t]:,}" for s in SPLITS)) for t in types
    ]
    ew = [max(len(r[i]) for r in erows) for i in range(4)]
    efmt = lambda r: "  ".join(c.ljust(ew[0]) if i == 0 else c.rjust(ew[i]) for i, c in enumerate(r))  # noqa: E731
    lines += [efmt(erows[0]), efmt(tuple("-" * w for w in ew))] + [efmt(r) for r in erows[1:]]
    return "\n".join(lines)


def _trains_on_ner_data(task) -> bool:
    """Whether task `task` trains on what this builder makes, sentences with NER tags and no stance:
    by the task registry, a task that finds entities and gives no stance."""
    from ..tasks.registry import TASKS

    spec = TASKS.get(str(task))
    return spec is not None and spec.predicts_entities and not spec.predicts_stance


def run_build_dataset(cfg) -> dict:
    """Hydra entry point (cli.build_dataset_main). A data config may name another builder
    as `data.builder: package.module:function` (e.g. the stance dataset)."""
    from omegaconf import OmegaConf

    builder = OmegaConf.select(cfg, "data.builder", default=None)
    if builder and builder != f"{__name__}:run_build_dataset":
        module, _, function = str(builder).partition(":")
        return getattr(importlib.import_module(module), function)(cfg)
    task = OmegaConf.select(cfg, "data.task", default="ner")
    if not _trains_on_ner_data(task):
        raise KnsError(f"data.task={task}: this builder makes NER datasets; set data.builder for other tasks")
    options = BuildOptions.from_cfg(cfg)
    stats = build_ner_dataset(options)
    print(format_stats_table(stats, options.out_dir))
    print(f"\nbuilt in {stats['timings']['total']:.1f} s")
    return stats
