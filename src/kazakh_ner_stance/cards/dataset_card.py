"""The dataset card (README.md) of a dataset release.

It keeps the builder's card (provenance, processing, statistics) and adds what the release
needs: a `configs` header pointing the Hub's viewer and `datasets.load_dataset` at the Parquet
files, the licence (CC BY 4.0) with attribution, and how to load this exact version."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..tasks.registry import task_spec
from .model_card import KAZNERD_REFERENCE, STANCE_NOTE


@dataclass
class DatasetCardInputs:
    repo_id: str
    version: str
    task: str
    splits: dict[str, dict]  # split -> {"path": "data/train.parquet", "rows": int, "bytes": int}
    columns: list[str]
    fingerprint: str | None
    source_card: str | None = None
    pretty_name: str | None = None
    source_datasets: list[str] = field(default_factory=lambda: ["IS2AI/KazNERD"])


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def card_header(inp: DatasetCardInputs, source_meta: dict) -> str:
    from huggingface_hub import DatasetCardData

    spec = task_spec(inp.task)
    categories, task_ids = list(spec.dataset_categories), list(spec.dataset_task_ids)
    meta = dict(source_meta)
    meta.update(
        language=["kk"],
        license="cc-by-4.0",
        pretty_name=meta.get("pretty_name") or inp.pretty_name or inp.repo_id.split("/")[-1],
        task_categories=meta.get("task_categories") or categories,
        size_categories=[_size_category(sum(s["rows"] for s in inp.splits.values()))],
        source_datasets=meta.get("source_datasets") or list(inp.source_datasets),
        tags=sorted(set(meta.get("tags") or []) | {"kazakh", "kaznerd", "kazakh-ner-stance"}),
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": info["path"]} for split, info in inp.splits.items()],
            }
        ],
    )
    if task_ids and not meta.get("task_ids"):
        meta["task_ids"] = task_ids
    return "---\n" + DatasetCardData(**meta).to_yaml() + "\n---\n"


def render_dataset_card(inp: DatasetCardInputs) -> str:
    from ..data.card import CITATION
    from .validate import split_card

    source_meta, body = {}, ""
    if inp.source_card:
        try:
            source_meta, body = split_card(inp.source_card)
        except Exception:  # a card without header: keep its text only
            body = inp.source_card
    rows = "\n".join(
        f"| {split} | `{info['path']}` | {info['rows']:,} | {info['bytes']:,} |" for split, info in inp.splits.items()
    )
    rev = f"v{inp.version}"
    release = [
        f"## This release (`{rev}`)",
        "",
        "| split | file | rows | bytes |",
        "|---|---|---:|---:|",
        rows,
        "",
        f"Columns: {', '.join(f'`{c}`' for c in inp.columns)}. "
        + (f"Built-dataset fingerprint: `{inp.fingerprint}`. " if inp.fingerprint else "")
        + "The splits travel as Parquet files under `data/` (the `save_to_disk` layout described above is the "
        "built folder's); every file's SHA-256 is listed in `kns_manifest.json`, `stats.json` holds the build "
        "statistics and `verification.json` a digest of every split's rows.",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'dataset = load_dataset("{inp.repo_id}", revision="{rev}")',
        "```",
    ]
    if "@inproceedings{yeshpanov" not in body:
        release += [
            "",
            "## Licence and attribution",
            "",
            "KazNERD is released under the Creative Commons Attribution 4.0 International licence (CC BY 4.0); "
            "so is this derived version (changes: validation, normalisation, deduplication, leakage removal, "
            "re-splitting). Please cite the KazNERD authors:",
            "",
            KAZNERD_REFERENCE,
            "",
            "```bibtex",
            CITATION,
            "```",
        ]
    else:
        release += ["", "Licence: CC BY 4.0, with attribution to the KazNERD authors (see above)."]
    if task_spec(inp.task).predicts_stance:  # the task's data carries the stance layer
        release += ["", STANCE_NOTE]
    if not body.strip():
        body = f"\n# {inp.pretty_name or inp.repo_id}\n\nKazakh data derived from KazNERD.\n"
    return card_header(inp, source_meta) + body.rstrip() + "\n\n" + "\n".join(release) + "\n"
