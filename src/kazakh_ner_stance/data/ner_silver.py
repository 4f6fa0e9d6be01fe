"""Self-training data for NER (issue 25, lever 4): KazNERD gold plus confidently pseudo-labelled
unlabelled Kazakh sentences.

    python scripts/build_dataset.py data=kaznerd_selftrain [data.teacher=RUN/model] [data.threshold=0.9]

A trained NER model (the *teacher*, by default the main job's) tags unlabelled Kazakh text: the
news-like sentences of `data=kazakh_news` (NTREX-128, FLORES-200, Akorda) and a seeded sample of
KazSAnDRA review sentences. A sentence's confidence is the lowest probability the teacher gives
any of its words' tags (Viterbi decoding, the default's): one doubtful word makes the whole
sentence doubtful, because a wrong tag taught as gold is worse than a sentence left out. Sentences
at or above `threshold` join the gold training split as silver (`sent_id` `silver:<source id>`);
validation and test are the gold dataset's, row for row, so a student's scores stay comparable
with every other run. A candidate whose words equal a gold sentence's (any split) is dropped, so
no test sentence is ever trained on, even as silver.

The build also scores the filter where gold exists: the teacher's entity F1 on the dev sentences
above the threshold against all dev sentences. That estimates the silver tags' quality; dev
decides nothing here.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..errors import KnsError

SILVER_PREFIX = "silver:"


@dataclass
class Candidate:
    """An unlabelled sentence: its id in its source (`ntrex:12`, `kazsandra:REVIEW:K`), source and words."""

    id: str
    source: str
    tokens: list[str]


@dataclass
class Silver:
    """A pseudo-labelled sentence: the teacher's tags and its confidence (lowest word probability)."""

    id: str
    source: str
    tokens: list[str]
    tags: list[str]
    confidence: float


def sentence_confidence(word_scores: Sequence[float]) -> float:
    """The lowest of the probabilities the teacher gave the tags it chose (0.0 for no words:
    an empty sentence teaches nothing)."""
    return float(min(word_scores)) if len(word_scores) else 0.0


def select_confident(labelled: Iterable[Silver], threshold: float) -> list[Silver]:
    """The sentences whose confidence is at least `threshold` (in [0, 1]), in input order."""
    if not 0.0 <= float(threshold) <= 1.0:
        raise KnsError(f"data.threshold must lie in [0, 1], not {threshold}")
    return [s for s in labelled if s.tokens and s.confidence >= float(threshold)]


def drop_gold_copies(candidates: Iterable[Candidate], gold_splits: Mapping[str, Iterable[Sequence[str]]]
                     ) -> tuple[list[Candidate], dict[str, int]]:
    """(candidates whose words equal no gold sentence, {split: how many were dropped for it})."""
    owner: dict[tuple[str, ...], str] = {}
    for split, sentences in gold_splits.items():
        for tokens in sentences:
            owner.setdefault(tuple(tokens), split)
    kept, dropped = [], {split: 0 for split in gold_splits}
    seen: set[tuple[str, ...]] = set()
    for c in candidates:
        key = tuple(c.tokens)
        if key in owner:
            dropped[owner[key]] += 1
        elif key and key not in seen:  # one copy of a repeated unlabelled sentence
            seen.add(key)
            kept.append(c)
    return kept, dropped


def unlabelled_pool(pool_cfg, paths_cfg=None) -> list[Candidate]:
    """The configured unlabelled sentences: `news` (the kazakh_news data config: every sentence of
    NTREX, FLORES and Akorda) and `kazsandra` (the kazsandra_reviews data config; a seeded sample of
    `max_sentences` review sentences of `min_tokens` to `max_tokens` words)."""
    out: list[Candidate] = []
    news = pool_cfg.get("news")
    if news and news.get("enabled", True):
        from .kazakh_news import read_sources

        out += [Candidate(s.id, s.source, list(s.tokens)) for s in read_sources(news)]
    reviews = pool_cfg.get("kazsandra")
    if reviews and reviews.get("enabled", True):
        from .kazsandra_reviews import read_configured, review_sentences

        lo, hi = int(reviews.get("min_tokens", 4)), int(reviews.get("max_tokens", 40))
        every = [s for r in read_configured(reviews) for s in review_sentences(r) if lo <= len(s.tokens) <= hi]
        random.Random(int(reviews.get("seed", 25))).shuffle(every)
        out += [Candidate(s.id, s.source, list(s.tokens)) for s in every[: int(reviews.get("max_sentences", 2000))]]
    return out


def pseudo_label(model, tokenizer, id2label, candidates: Sequence[Candidate], *, batch_size: int = 32,
                 max_length: int | None = None, overlap: int | None = None, decoding: str = "viterbi") -> list[Silver]:
    """The teacher's tags and confidence for every candidate (input order)."""
    from ..tasks.ner import predict_word_tags

    tags, scores = predict_word_tags(model, tokenizer, [c.tokens for c in candidates], batch_size, max_length,
                                     32 if overlap is None else overlap, id2label, return_scores=True,
                                     decoding=decoding)
    return [Silver(c.id, c.source, c.tokens, t, sentence_confidence(s)) for c, t, s in zip(candidates, tags, scores)]


def filter_quality_on_dev(model, tokenizer, id2label, dev_tokens, dev_tags, threshold: float, **predict) -> dict:
    """The teacher on gold dev: entity F1 over all sentences and over those the filter would keep."""
    from ..evaluation.ner_metrics import entity_counts, extract_spans, micro_prf

    cands = [Candidate(str(i), "dev", list(t)) for i, t in enumerate(dev_tokens)]
    labelled = pseudo_label(model, tokenizer, id2label, cands, **predict)
    gold_spans = [extract_spans(list(tags)) for tags in dev_tags]
    counts = entity_counts(gold_spans, [s.tags for s in labelled])
    keep = [int(s.id) for s in select_confident(labelled, threshold)]  # the candidates' ids are their indices
    all_p, all_r, all_f = micro_prf(counts)
    out = {"sentences": len(labelled), "f1_all": all_f, "precision_all": all_p, "recall_all": all_r,
           "kept": len(keep), "f1_kept": None, "precision_kept": None, "recall_kept": None,
           "exact_sentences_kept": None}
    if keep:
        p, r, f = micro_prf(counts[keep])
        exact = sum(1 for i in keep if labelled[i].tags == list(dev_tags[i]))
        out.update(f1_kept=f, precision_kept=p, recall_kept=r, exact_sentences_kept=exact / len(keep))
    return out


def silver_rows(silver: Sequence[Silver], label2id: Mapping[str, int]) -> dict:
    """Columns of the silver rows in the gold dataset's layout (sent_id, tokens, ner_tags)."""
    unknown = sorted({t for s in silver for t in s.tags if t not in label2id})
    if unknown:
        raise KnsError(f"the teacher's tags {unknown} are not in the gold dataset's label list: the teacher was "
                       "trained on another label set")
    return {"sent_id": [SILVER_PREFIX + s.id for s in silver], "tokens": [list(s.tokens) for s in silver],
            "ner_tags": [[label2id[t] for t in s.tags] for s in silver]}


def with_silver(gold, silver: Sequence[Silver]):
    """The gold DatasetDict with the silver rows appended to train; validation and test untouched."""
    import datasets

    features = gold["train"].features
    names = features["ner_tags"].feature.names
    rows = silver_rows(silver, {n: i for i, n in enumerate(names)})
    silver_ds = datasets.Dataset.from_dict(rows, features=features)
    return datasets.DatasetDict({"train": datasets.concatenate_datasets([gold["train"], silver_ds]),
                                 "validation": gold["validation"], "test": gold["test"]})


def _stats(silver_all: Sequence[Silver], kept: Sequence[Silver], dropped: Mapping[str, int], threshold: float,
           gold, teacher: str, dev_quality: dict) -> dict:
    by_source: dict[str, dict] = {}
    for s in silver_all:
        row = by_source.setdefault(s.source, {"candidates": 0, "kept": 0, "kept_with_entities": 0})
        row["candidates"] += 1
    for s in kept:
        row = by_source[s.source]
        row["kept"] += 1
        row["kept_with_entities"] += int(any(t != "O" for t in s.tags))
    entity_types: dict[str, int] = {}
    for s in kept:
        for t in s.tags:
            if t.startswith("B-"):
                entity_types[t[2:]] = entity_types.get(t[2:], 0) + 1
    return {"teacher": teacher, "threshold": threshold, "candidates": len(silver_all), "kept": len(kept),
            "dropped_as_gold_copies": dict(dropped), "by_source": by_source,
            "silver_entities": dict(sorted(entity_types.items(), key=lambda kv: -kv[1])),
            "gold_sentences": {s: len(gold[s]) for s in gold}, "dev_filter_quality": dev_quality}


def _card(stats: Mapping) -> str:
    q = stats["dev_filter_quality"]
    lines = [
        "# KazNERD + self-training silver (kazakh-ner-stance)", "",
        "KazNERD gold (the `kaznerd` dataset, splits unchanged) with confidently pseudo-labelled Kazakh sentences",
        "appended to **train only**. Built by `python scripts/build_dataset.py data=kaznerd_selftrain`.", "",
        f"- teacher: `{stats['teacher']}` (Viterbi decoding)",
        f"- threshold: every word's tag probability >= {stats['threshold']}",
        f"- candidates {stats['candidates']:,}, kept {stats['kept']:,}; dropped as copies of gold sentences: "
        f"{stats['dropped_as_gold_copies']}", "",
        "| source | candidates | kept | kept with an entity |", "|---|---:|---:|---:|",
    ]
    for src, row in stats["by_source"].items():
        lines.append(f"| {src} | {row['candidates']:,} | {row['kept']:,} | {row['kept_with_entities']:,} |")
    if q:
        kept_f1 = "n/a" if q["f1_kept"] is None else f"{q['f1_kept']:.3f}"
        lines += ["", f"The filter on gold dev (an estimate of the silver tags' quality): the teacher's entity F1 is "
                      f"{q['f1_all']:.3f} over all {q['sentences']:,} dev sentences and {kept_f1} over the "
                      f"{q['kept']:,} it would keep."]
    lines += ["", "Licences: KazNERD CC BY 4.0; NTREX-128, FLORES-200, Akorda CC BY-SA 4.0; KazSAnDRA CC BY 4.0 "
                  "(see shared/data/SOURCES.md). The silver tags are a model's, not an annotator's: train only."]
    return "\n".join(lines) + "\n"


def run_build_ner_silver(cfg) -> dict:
    """Hydra entry point (`data.builder`)."""
    import datasets

    from .built_dataset import compute_fingerprint, load_built_dataset
    from ..tasks.ner import load_ner_checkpoint
    from ..training.checkpoints import trained_inference
    from ..atomic import replace_dir

    d = cfg.data
    teacher = Path(str(d.teacher))
    if not teacher.is_dir():
        raise KnsError(f"no teacher NER model at {teacher}: train one first (python scripts/train.py "
                       "experiment=kaznerd_ner_e5_small) or pass data.teacher=DIR")
    gold_dir = Path(str(d.gold_dir))
    gold = load_built_dataset(gold_dir)
    names = gold["train"].features["ner_tags"].feature.names
    threshold = float(d.threshold)
    if not 0.0 <= threshold <= 1.0:
        raise KnsError(f"data.threshold must lie in [0, 1], not {threshold}")
    if not bool(cfg.get("progress", True)):
        datasets.disable_progress_bars()
    candidates = unlabelled_pool(d.pool)
    candidates, dropped = drop_gold_copies(candidates, {s: gold[s]["tokens"] for s in gold})
    model, tokenizer, id2label = load_ner_checkpoint(teacher, cpu_linear="auto")
    trained = trained_inference(teacher)
    predict = dict(batch_size=int(d.get("batch_size", 32)), max_length=trained["max_length"],
                   overlap=trained["overlap"], decoding=str(d.get("decoding", "viterbi")))
    print(f"pseudo-labelling {len(candidates):,} sentences with {teacher} ...", flush=True)
    labelled = pseudo_label(model, tokenizer, id2label, candidates, **predict)
    kept = select_confident(labelled, threshold)
    dev_quality = filter_quality_on_dev(model, tokenizer, id2label, gold["validation"]["tokens"],
                                        [[names[i] for i in tags] for tags in gold["validation"]["ner_tags"]],
                                        threshold, **predict)
    stats = _stats(labelled, kept, dropped, threshold, gold, str(teacher), dev_quality)
    out = with_silver(gold, kept)
    out_dir = Path(str(cfg.out_dir))
    if out_dir.exists() and not bool(cfg.get("overwrite", True)):
        raise KnsError(f"{out_dir} exists; pass overwrite=true to replace it")
    with replace_dir(out_dir) as tmp:
        out.save_to_disk(str(tmp), num_shards={s: 1 for s in out})
        # Which silver sentences were kept, with their confidence (the dataset itself keeps only tags).
        with open(tmp / "silver.jsonl", "w", encoding="utf-8") as f:
            for s in kept:
                f.write(json.dumps({"id": s.id, "source": s.source, "confidence": s.confidence},
                                   ensure_ascii=False) + "\n")
        stats["fingerprint"] = compute_fingerprint(tmp)
        (tmp / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_card(stats), encoding="utf-8")
    print(_card(stats))
    print(f"written to {out_dir}")
    return stats
