"""Kazakh stance data v2 (issue 22): the KazNERD stance layer, the gold layer over the extra
Kazakh news-like text, and the counterfactual pairs, in one stance dataset.

    python scripts/build_dataset.py data=kazakh_stance

Rows are the stance dataset's (``data.stance_dataset.stance_features``) plus

* ``lang`` ``kk`` for every row (the cross-lingual sampler's target language);
* ``origin``: ``gold`` (a real sentence, labelled by annotators) or ``counterfactual``;
* ``source``: ``kaznerd``, ``ntrex``, ``flores``, ``akorda``, ``kazsandra`` (a
  counterfactual's is its source item's);
* ``group``: the unit that never crosses a split or a CV fold: a KazNERD sentence with its
  identical sentences and ID variants, a news document, a review, and for a counterfactual the
  group of the item it was made from;
* ``source_id``: the item a counterfactual was made from ('' for gold items).

Splits: KazNERD items keep the splits of ``data=kaznerd_stance`` (built first when missing),
so its figures stay comparable; news items are split by document and review items
(``data.reviews``, the KazSAnDRA layer; off in ``data=kazakh_stance``) by review (seeded);
counterfactual items go to ``train`` when their source item is in train and are dropped
otherwise (they are training data only, never evaluated on). ``data.extra_dir`` gets the train
items that are not KazNERD's (news gold and counterfactual) as a one-split dataset, for the
joint model, which reads KazNERD's own from its joint dataset.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import KnsError
from ..labels import STANCE_LABELS

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


def v2_features():
    from datasets import Features, Value

    from .stance_rows import stance_features

    feats = dict(stance_features())
    for name in ("lang", "origin", "source", "group", "source_id"):
        feats[name] = Value("string")
    return Features(feats)


def kaznerd_rows(dsd, variant_id_pattern: str | None) -> list[dict]:
    from ..evaluation.stance_cv import stance_groups

    rows = []
    for split in SPLITS:
        part = dsd[split]
        names = part.features["label"].names
        groups = stance_groups(part["sent_id"], part["tokens"], variant_id_pattern)
        for r, g in zip(part, groups):
            rows.append({**r, "label": names[int(r["label"])], "split": split, "lang": "kk", "origin": "gold",
                         "source": "kaznerd", "group": f"kaznerd:{g}", "source_id": ""})
    # stance_groups groups within one split only; a sentence group never spans splits (NER build).
    return rows


def news_rows(layer: Sequence[Mapping], sentences: Mapping[str, object], shares: Mapping[str, float], seed: int,
              added: Sequence[Mapping] = (), group_prefix: str = "news") -> list[dict]:
    """Rows of a gold layer over documents (news, reviews), split by document. `added`: items of
    a later layer over the same text (the NER-proposed targets); they follow their document's
    split, and documents only they cover are cut apart with the same shares, so no earlier item
    changes split."""
    from .splitting import _cut

    docs = sorted({r["doc_id"] for r in layer})
    split_of_doc = _cut(docs, dict(shares), seed)
    new_docs = sorted({r["doc_id"] for r in added} - set(split_of_doc))
    if new_docs:
        split_of_doc.update(_cut(new_docs, dict(shares), seed))
    taken = {r["id"] for r in layer}
    clash = [r["id"] for r in added if r["id"] in taken]
    if clash:
        raise KnsError(f"{len(clash)} added news item(s) repeat an id of the news layer, e.g. {clash[:3]}")
    rows = []
    for r in [*layer, *added]:
        s = sentences[r["sent_id"]]
        rows.append({"id": r["id"], "sent_id": r["sent_id"], "tokens": list(s.tokens), "start": r["start"],
                     "end": r["end"], "target": r["target"], "target_type": r["type"], "label": r["label"],
                     "split": split_of_doc[r["doc_id"]], "annotator": r["annotator"], "lang": "kk", "origin": "gold",
                     "source": r["source"], "group": f"{group_prefix}:{r['doc_id']}", "source_id": ""})
    return rows


def counterfactual_rows(layer: Sequence[Mapping], by_id: Mapping[str, Mapping]) -> tuple[list[dict], Counter]:
    """Counterfactual items placed with their source item; dropped (and counted) when the
    source is not a training item."""
    from .rusentne import char_span_to_tokens

    rows, dropped = [], Counter()
    for r in layer:
        src = by_id.get(r["source_id"])
        if src is None:
            dropped["source not in the dataset"] += 1
            continue
        if src["split"] != "train":
            dropped[f"source in {src['split']}"] += 1
            continue
        tokens, t0, t1, _ = char_span_to_tokens(r["text"], r["start_char"], r["end_char"])
        rows.append({"id": r["id"], "sent_id": r["id"], "tokens": tokens, "start": t0, "end": t1,
                     "target": " ".join(tokens[t0:t1]), "target_type": r["type"], "label": r["label"],
                     "split": "train", "annotator": f"{r['editor']}+{r['checker']}", "lang": "kk",
                     "origin": "counterfactual", "source": src["source"], "group": src["group"],
                     "source_id": r["source_id"]})
    return rows, dropped


def review_rows(rev_cfg) -> list[dict]:
    """The KazSAnDRA reviews layer's rows, split by review; only the reviews the layer names are
    cut into sentences."""
    from ..stance_annotation import news_layer
    from .kazsandra_reviews import read_configured, sentences_by_id

    path = Path(str(rev_cfg.layer))
    ids = {r["sent_id"] for r in news_layer.read_layer(path)}
    sentences = sentences_by_id(read_configured(rev_cfg.text), ids)
    layer = news_layer.read_layer(path, sentences)
    return news_rows(layer, sentences, rev_cfg.split, int(rev_cfg.seed), group_prefix="review")


def count_table(rows: Sequence[Mapping]) -> dict:
    out: dict[str, dict] = {}
    for r in rows:
        key = f"{r['split']}/{r['origin']}/{r['source']}"
        out.setdefault(key, Counter())[r["label"]] += 1
    return {k: dict(v) for k, v in sorted(out.items())}


def _ensure_kaznerd_stance(cfg):
    from .built_dataset import load_built_dataset
    from .stance_dataset import run_build_stance_dataset

    stance_dir = Path(str(cfg.data.stance.stance_dir))
    if not (stance_dir / "dataset_dict.json").is_file() or bool(cfg.data.get("rebuild_kaznerd_stance", False)):
        from omegaconf import OmegaConf

        log.info("building the KazNERD stance layer first (%s)", stance_dir)
        kaznerd_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        kaznerd_cfg.out_dir = str(stance_dir)  # out_dir names this (v2) dataset's folder, not the layer's
        run_build_stance_dataset(kaznerd_cfg)
    return load_built_dataset(stance_dir)


def build_rows(cfg) -> tuple[dict[str, list[dict]], dict]:
    from omegaconf import OmegaConf

    from ..stance_annotation import counterfactual, news_layer
    from .kazakh_news import read_sources

    data = cfg.data
    pattern = OmegaConf.select(cfg, "data.split.variant_id_pattern", default=r"^[A-Z]ID(\d+)$")
    rows = kaznerd_rows(_ensure_kaznerd_stance(cfg), pattern)
    stats: dict = {"kaznerd_items": len(rows)}
    news_cfg = data.get("news")
    if news_cfg and news_cfg.get("layer"):
        sentences = {s.id: s for s in read_sources(news_cfg.text)}
        layer = news_layer.read_layer(Path(str(news_cfg.layer)), sentences)
        added = news_layer.read_layer(Path(str(news_cfg.ner_layer)), sentences) if news_cfg.get("ner_layer") else []
        nrows = news_rows(layer, sentences, news_cfg.split, int(news_cfg.seed), added)
        stats["news_ner_proposed_items"] = len(added)
        stats["news_items"] = len(nrows)
        stats["news_documents"] = len({r["group"] for r in nrows})
        rows += nrows
    rev_cfg = data.get("reviews")
    if rev_cfg and rev_cfg.get("layer"):
        rrows = review_rows(rev_cfg)
        stats["review_items"] = len(rrows)
        rows += rrows
    cf_cfg = data.get("counterfactual")
    if cf_cfg and cf_cfg.get("layer"):
        layer = counterfactual.read_layer(Path(str(cf_cfg.layer)))
        crows, dropped = counterfactual_rows(layer, {r["id"]: r for r in rows})
        stats["counterfactual_items"] = len(crows)
        stats["counterfactual_dropped"] = dict(dropped)
        stats["counterfactual_kinds"] = dict(Counter(r["kind"] for r in layer))
        rows += crows
    by_split = {s: [r for r in rows if r["split"] == s] for s in SPLITS}
    by_split["train_extra"] = [r for r in by_split["train"] if r["source"] != "kaznerd" or r["origin"] != "gold"]
    stats["counts"] = count_table(rows)
    stats["labels"] = {s: dict(Counter(r["label"] for r in by_split[s])) for s in by_split}
    return by_split, stats


def _card(stats: Mapping, agreements: Mapping[str, Mapping]) -> str:
    from .markdown import markdown_table

    table = [[k, *(v.get(lab, 0) for lab in STANCE_LABELS)] for k, v in stats["counts"].items()]
    lines = [
        "---", "license: cc-by-sa-4.0", "language:", "- kk", "task_categories:", "- text-classification",
        "pretty_name: Kazakh target stance v2 (KazNERD layer, news and review gold layers, counterfactual pairs)",
        "---", "", "# Kazakh target stance, v2", "",
        "Stance (FAVOR / AGAINST / NONE) toward named-entity targets in Kazakh sentences: the KazNERD layer "
        "(CC BY 4.0), a gold layer over NTREX-128, FLORES-200 and Akorda sentences (CC BY-SA 4.0), where "
        "configured a gold layer over KazSAnDRA review sentences (CC BY 4.0), and counterfactual edits of "
        "KazNERD training items (training only). As a whole: CC BY-SA 4.0.", "",
        "Columns beyond the stance dataset's: `lang`, `origin` (gold | counterfactual), `source`, `group` "
        "(never split across splits or CV folds), `source_id` (a counterfactual's source item).", "",
        "## Items per split / origin / source", "",
        markdown_table(["split/origin/source", *STANCE_LABELS], table), "",
        f"Counterfactual items dropped (source not a training item): {stats.get('counterfactual_dropped', {})}.", "",
    ]
    for layer, agreement in agreements.items():
        t, lab = agreement["targets"], agreement["labels"]
        per_class = ", ".join(f"{k} {v:.3f}" for k, v in lab["per_class_kappa"].items() if v is not None)
        lines += [f"## Agreement on the {layer} layer", "",
                  f"Blind double annotation of {t['sentences']} sentences: target F1 {t['f1_span_and_type']} (span "
                  f"and type); label kappa {lab['kappa']:.3f} over {lab['n']} shared targets ({per_class}); "
                  f"{agreement['adjudication']['disagreements']} differences adjudicated.", ""]
    lines += ["## Documentation", "", "`data/stance/README.md` (how each layer was made, kappa, licences, citations).", ""]
    return "\n".join(lines)


def run_build_stance_v2(cfg) -> dict:
    """Hydra entry point (`data.builder`)."""
    from datasets import Dataset, DatasetDict

    from .stance_dataset import _write_aside

    by_split, stats = build_rows(cfg)
    for s in SPLITS:
        if not by_split[s]:
            raise KnsError(f"the {s} split of the v2 stance dataset is empty")
    agreements = {}
    for layer in ("news", "reviews"):
        node = cfg.data.get(layer)
        agreement_file = node.get("agreement") if node and node.get("layer") else None
        if agreement_file and Path(str(agreement_file)).is_file():
            agreements[layer] = json.loads(Path(str(agreement_file)).read_text(encoding="utf-8"))
    if not bool(cfg.get("progress", True)):
        import datasets

        datasets.disable_progress_bars()
    feats = v2_features()

    def write(tmp: Path):
        DatasetDict({s: Dataset.from_list(by_split[s], features=feats) for s in SPLITS}).save_to_disk(str(tmp))
        (tmp / "README.md").write_text(_card(stats, agreements), encoding="utf-8")
        (tmp / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    def write_extra(tmp: Path):
        DatasetDict({"train": Dataset.from_list(by_split["train_extra"], features=feats)}).save_to_disk(str(tmp))
        (tmp / "README.md").write_text(
            "# Kazakh stance v2: the training items that are not KazNERD's\n\nNews gold items of the train split and "
            "counterfactual items (training only), for `task.extra_train` of the joint model; see the "
            "`kazakh_stance` dataset's card.\n", encoding="utf-8")

    out_dir = Path(str(cfg.out_dir))
    _write_aside(write, out_dir, bool(cfg.get("overwrite", True)))
    if cfg.data.get("extra_dir"):
        _write_aside(write_extra, Path(str(cfg.data.extra_dir)), True)
    print(f"Kazakh stance v2: {out_dir}")
    for s in (*SPLITS, "train_extra"):
        lab = stats["labels"][s]
        print(f"  {s:<12} {len(by_split[s]):>6} items  " + "  ".join(f"{k} {lab.get(k, 0)}" for k in STANCE_LABELS))
    stats["dataset_dir"] = str(out_dir)
    return stats
