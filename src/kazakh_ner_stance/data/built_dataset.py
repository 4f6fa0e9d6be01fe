"""Reading a built dataset back: the DatasetDict, its fingerprint, its split assignment and
stats.json, each with the build command when the folder holds no built dataset."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import KnsError
from .download import sha256_file
from .splitting import SPLITS

BUILD_COMMAND = "python scripts/build_dataset.py"


def compute_fingerprint(dataset_dir: str | Path) -> str:
    """SHA-256 over the splits' data-*.arrow files and features (what training reads; not the cache-*.arrow
    files that `Dataset.map` leaves beside them, which would change the fingerprint after a run)."""
    dataset_dir = Path(dataset_dir)
    splits = json.loads((dataset_dir / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
    digest = hashlib.sha256()
    for split in splits:
        info = json.loads((dataset_dir / split / "dataset_info.json").read_text(encoding="utf-8"))
        digest.update(f"split={split}\nfeatures={json.dumps(info.get('features'), sort_keys=True)}\n".encode())
        for arrow in sorted((dataset_dir / split).glob("data-*.arrow")):
            digest.update(f"{arrow.name}={sha256_file(arrow)}\n".encode())
    return digest.hexdigest()


def is_built_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file()


def _require_built(dataset_dir: str | Path) -> Path:
    path = Path(dataset_dir)
    if not is_built_dataset(path):
        raise KnsError(
            f"no built dataset at {path}; build it first with: {BUILD_COMMAND} out_dir={path} "
            "(add data=<name> for a dataset other than KazNERD)"
        )
    return path


def load_built_dataset(dataset_dir: str | Path):
    """The built DatasetDict (splits train, validation, test), or KnsError with the build command."""
    import datasets

    path = _require_built(dataset_dir)
    dataset = datasets.load_from_disk(str(path))
    if not isinstance(dataset, datasets.DatasetDict) or set(dataset) != set(SPLITS):
        raise KnsError(f"{path} is not a built dataset with splits {SPLITS}; rebuild it with {BUILD_COMMAND}")
    missing = {"sent_id", "tokens"} - set(dataset["train"].column_names)
    if missing:
        raise KnsError(f"{path} lacks columns {sorted(missing)}; rebuild it with {BUILD_COMMAND}")
    return datasets.DatasetDict({s: dataset[s] for s in SPLITS})


def dataset_fingerprint(dataset_dir: str | Path) -> str:
    """Stable hash of the built data (arrow content + features); training stores it in checkpoints."""
    return compute_fingerprint(_require_built(dataset_dir))


def load_split_assignment(dataset_dir: str | Path) -> dict[str, str]:
    """Source sentence ID -> split where its text lives (duplicates and leaked copies included)."""
    import pyarrow.parquet as pq

    path = _require_built(dataset_dir) / "split_assignment.parquet"
    if not path.is_file():
        raise KnsError(f"{path} is missing; rebuild the dataset with {BUILD_COMMAND}")
    table = pq.read_table(path, columns=["sent_id", "split"]).to_pydict()
    return dict(zip(table["sent_id"], table["split"]))


def load_stats(dataset_dir: str | Path) -> dict:
    return json.loads((_require_built(dataset_dir) / "stats.json").read_text(encoding="utf-8"))
