"""The dataset card (README.md) written next to a built dataset, from its stats.json.

Deterministic: it is a pure function of the stats (no dates, no absolute paths)."""

from __future__ import annotations

SPLITS = ("train", "validation", "test")

ATTRIBUTION = (
    "Rustem Yeshpanov, Yerbolat Khassanov, Huseyin Atakan Varol. "
    "KazNERD: Kazakh Named Entity Recognition Dataset. "
    "Proceedings of LREC 2022, pages 417–426."
)

CITATION = """@inproceedings{yeshpanov-etal-2022-kaznerd,
    title = "{K}az{NERD}: {K}azakh Named Entity Recognition Dataset",
    author = "Yeshpanov, Rustem and Khassanov, Yerbolat and Varol, Huseyin Atakan",
    booktitle = "Proceedings of the Thirteenth Language Resources and Evaluation Conference",
    year = "2022",
    address = "Marseille, France",
    publisher = "European Language Resources Association",
    pages = "417--426",
    url = "https://aclanthology.org/2022.lrec-1.44",
}"""


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    rule = "|" + "|".join("---:" if i >= numeric_from else "---" for i in range(len(header))) + "|"
    out = ["| " + " | ".join(header) + " |", rule]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def render_card(stats: dict) -> str:
    splits = stats["splits"]
    total_sentences = sum(splits[s]["sentences"] for s in SPLITS)
    upstream = stats.get("upstream") or {}
    repo, commit = upstream.get("repo") or "IS2AI/KazNERD", upstream.get("commit") or "unknown"
    opts = stats["options"]
    rem, rep, norm = stats["removed"], stats["repaired"], stats["normalised"]
    types = list(splits["train"]["entities_per_type"])

    front = "\n".join(
        [
            "---",
            "language:",
            "- kk",
            "license: cc-by-4.0",
            f"pretty_name: {stats['dataset']} (Kazakh NER, IOB2)",
            "task_categories:",
            "- token-classification",
            "task_ids:",
            "- named-entity-recognition",
            "size_categories:",
            f"- {_size_category(total_sentences)}",
            "source_datasets:",
            f"- {repo}",
            "---",
        ]
    )
    split_rows = [
        [s, f"{splits[s]['sentences']:,}", f"{splits[s]['tokens']:,}", f"{splits[s]['entities']:,}"] for s in SPLITS
    ]
    split_rows.append(
        ["**total**"] + [f"{sum(splits[s][k] for s in SPLITS):,}" for k in ("sentences", "tokens", "entities")]
    )
    entity_rows = [[t] + [f"{splits[s]['entities_per_type'][t]:,}" for s in SPLITS] for t in types]
    source_rows = [
        [
            f"`{src['file']}`",
            src["split"],
            "with sentence IDs" if src["format"] == "sentid" else "plain",
            f"{src['sentences']:,}",
            f"`{src['sha256']}`" + (" (pinned upstream)" if src.get("matches_pinned_checksum") else ""),
        ]
        for src in stats["sources"]
    ]
    ignored = "".join(
        f"\n- `{item['file']}` (sha256 `{item['sha256']}`) was not used: {item['reason']}."
        for item in stats["ignored_sources"]
    )
    examples = norm.get("latin_in_cyrillic_examples") or []
    example_text = ", ".join(f"`{e['token']}` ({e['file']}:{e['line']})" for e in examples[:8])

    if stats["origin"].get("kind") == "download":
        origin = f"the pinned, SHA-256-checked download from {stats['origin'].get('base_url', '')}"
    else:
        origin = "a local copy of the files above (checksums as listed)"

    body = f"""
# {stats['dataset']}: Kazakh named-entity recognition (IOB2)

Sentences from **KazNERD** ({repo}, commit `{commit}`) with token-level IOB2 tags over
{len(types)} entity types, validated and rebuilt by the `kazakh-ner-stance` toolkit
(`python scripts/build_dataset.py`). Dataset fingerprint: `{stats['fingerprint']}`.

## Provenance

{_table(["file", "split", "format", "sentences", "SHA-256"], source_rows, numeric_from=3)}
{ignored}

Origin: {origin}.

## Processing

- Every line validated (column count, empty token, unknown tag, orphan `I-` tags, UTF-8, BOM,
  CRLF, duplicate sentence IDs). Orphan `I-X` policy: `{opts['orphan_inside']}`;
  {rep['orphan_inside_tags']:,} tag(s) repaired to `B-X` in {rep['sentences']:,} sentence(s).
- Unicode NFC: {norm['nfc_tokens']:,} token(s) changed. Latin letters inside Cyrillic words:
  {norm['latin_in_cyrillic_tokens']:,} token(s) found, {norm['latin_in_cyrillic_fixed']:,} fixed
  (fixing is {"on" if opts['fix_latin_in_cyrillic'] else "off"}){": " + example_text if example_text else ""}.
- Splits: {opts['splitting']}.
- Exact duplicate sentences removed: {sum(rem['duplicates'].values()):,}
  ({", ".join(f"{k}: {v}" for k, v in rem['duplicates'].items())}); dedup is {"on" if opts['dedup'] else "off"}.
- Cross-split leakage removed: {sum(rem['leakage'].values()):,}
  ({", ".join(f"{k}: {v}" for k, v in rem['leakage'].items())}); removal is {"on" if opts['remove_leakage'] else "off"}.
- Input: {stats['input']['sentences']:,} sentences, {stats['input']['tokens']:,} tokens;
  removed in total: {rem['total']:,}. Every source sentence ID, its split and whether it was
  kept, dropped as a duplicate or as leakage is listed in `split_assignment.parquet`.

## Statistics

{_table(["split", "sentences", "tokens", "entities"], split_rows)}

### Entities per type

{_table(["type", *SPLITS], entity_rows)}

## Structure

Columns: `sent_id` (string; KazNERD's sentence ID, or `{{split}}-{{index}}` for sources without
IDs), `tokens` (list of strings), `ner_tags` (list of `ClassLabel`). The label list is fixed
by the configured entity types, so label ids are the same in every build:
{", ".join(f"`{name}`" for name in stats['labels'])}.

Files: `dataset_dict.json` and one folder per split (`datasets.load_from_disk`),
`parquet/{{train,validation,test}}.parquet`, `split_assignment.parquet`, `stats.json`.

```python
from kazakh_ner_stance.data.built_dataset import load_built_dataset
dataset = load_built_dataset("path/to/this/folder")
```

## Licence and attribution

KazNERD is released under the Creative Commons Attribution 4.0 International licence
(CC BY 4.0); so is this derived version. Changes made: validation, normalisation,
deduplication, leakage removal and re-splitting as described above.
Please cite the KazNERD authors: {ATTRIBUTION}

```bibtex
{CITATION}
```
"""
    return front + "\n" + body
