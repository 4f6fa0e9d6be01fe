"""Dataset releases: the built DatasetDict as Parquet files (`data/{split}.parquet`) with a
dataset card, stats.json and a row-level check that the Parquet files hold the built data."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from ..errors import KnsError
from ..tasks.registry import task_with
from .common import FORMAT_VERSION, VERIFICATION, ReleaseVerificationError, hub_offline, read_json, write_json

log = logging.getLogger(__name__)

SPLIT_ORDER = ("train", "validation", "test")


def _rows_digest(rows) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, ensure_ascii=False, sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def parquet_digest(path: Path) -> tuple[int, str, list[str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.num_rows, _rows_digest(table.to_pylist()), list(table.column_names)


# The columns by which a built dataset shows what it trains, read against the registry's
# TaskSpec flags (data/build.py, data/stance_dataset.py): entity tags for predicts_entities, gold
# stance `targets` beside them for predicts_stance too. A dataset without entity tags is a
# stance dataset (one target and its `label` per row).
ENTITY_COLUMNS = ("ner_tags",)
STANCE_COLUMNS = ("targets",)


def _task_of(columns: list[str]) -> str:
    entities = any(c in columns for c in ENTITY_COLUMNS)
    stance = not entities or any(c in columns for c in STANCE_COLUMNS)
    spec = task_with(entities, stance)
    if spec is None:
        raise KnsError(f"no registered task trains on a dataset with columns {columns}")
    return spec.name


def stage_dataset(cfg, tmp: Path, repo_id: str, version: str) -> dict:
    import datasets

    from ..cards import DatasetCardInputs, render_dataset_card, validate_dataset_card
    from ..data.built_dataset import compute_fingerprint

    src = cfg.get("dataset_dir")
    if src in (None, "", "???"):
        raise KnsError("kind=dataset needs dataset_dir=DIR (a folder written by scripts/build_dataset.py)")
    src = Path(str(src)).expanduser()
    if not (src / "dataset_dict.json").is_file():
        raise KnsError(f"no built dataset at {src}: build it with python scripts/build_dataset.py out_dir={src}")
    dd = datasets.load_from_disk(str(src))
    splits = [s for s in SPLIT_ORDER if s in dd] + sorted(s for s in dd if s not in SPLIT_ORDER)
    (tmp / "data").mkdir()
    files, expected = {}, {}
    for split in splits:
        ds = dd[split]
        rel = f"data/{split}.parquet"
        built_parquet = src / "parquet" / f"{split}.parquet"
        if built_parquet.is_file():
            shutil.copy2(built_parquet, tmp / rel)
        else:
            ds.to_parquet(str(tmp / rel))
        rows, digest, columns = parquet_digest(tmp / rel)
        want = _rows_digest(ds.to_list())
        if rows != len(ds) or digest != want:
            raise ReleaseVerificationError(
                f"{built_parquet if built_parquet.is_file() else rel} does not hold the rows of the built `{split}` "
                f"split in {src}; rebuild the dataset"
            )
        expected[split] = {"path": rel, "rows": len(ds), "rows_sha256": want, "columns": columns}
        files[split] = {"path": rel, "rows": len(ds), "bytes": (tmp / rel).stat().st_size}
    for extra in ("stats.json", "split_assignment.parquet"):
        if (src / extra).is_file():
            shutil.copy2(src / extra, tmp / extra)
    columns = list(dd[splits[0]].column_names)
    stats = json.loads((src / "stats.json").read_text(encoding="utf-8")) if (src / "stats.json").is_file() else {}
    # The builder's own fingerprint (stats.json): recomputing it would also hash datasets' map
    # cache files (cache-*.arrow) that training leaves in the split folders.
    fingerprint = stats.get("fingerprint") if isinstance(stats.get("fingerprint"), str) else None
    if fingerprint is None:
        try:
            fingerprint = compute_fingerprint(src)
        except (OSError, KeyError, ValueError):
            fingerprint = None
    task = _task_of(columns)
    write_json(tmp / VERIFICATION, {"format": FORMAT_VERSION, "check": "parquet rows", "task": task,
                                    "fingerprint": fingerprint, "splits": expected})
    source_card = (src / "README.md").read_text(encoding="utf-8") if (src / "README.md").is_file() else None
    card = render_dataset_card(
        DatasetCardInputs(repo_id=repo_id, version=version, task=task, splits=files, columns=columns,
                          fingerprint=fingerprint, source_card=source_card,
                          pretty_name=stats.get("dataset") if isinstance(stats.get("dataset"), str) else None)
    )
    validate_dataset_card(card, folder=tmp)
    (tmp / "README.md").write_text(card, encoding="utf-8")
    return {"kind": "dataset", "task": task, "source": str(src), "skipped": [],
            "verification": f"{len(splits)} Parquet split(s) hold exactly the built rows"}


def verify_dataset_rows(folder: Path) -> str:
    """Re-read every Parquet split of the release (offline) and compare rows with verification.json."""
    v = read_json(Path(folder) / VERIFICATION, "verification file")
    problems = []
    with hub_offline():
        for split, want in (v.get("splits") or {}).items():
            path = Path(folder) / want["path"]
            try:
                rows, digest, _ = parquet_digest(path)
            except Exception as err:  # unreadable Parquet
                problems.append(f"{want['path']}: cannot be read ({err})")
                continue
            if rows != want["rows"] or digest != want["rows_sha256"]:
                problems.append(f"{want['path']}: rows differ from the built `{split}` split")
    if problems:
        raise ReleaseVerificationError(f"dataset release {folder} fails its row check:\n- " + "\n- ".join(problems))
    return f"{len(v.get('splits') or {})} Parquet split(s) re-read: rows identical to the built dataset"
