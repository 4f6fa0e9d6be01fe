"""Pinned, SHA-256-checked download of the KazNERD IOB2 files (for users without the shared copy).

`data.download` in the config names the base URL (a commit-pinned raw.githubusercontent.com
folder; a `file://` URL works too, which is how the tests exercise this) and one SHA-256 per
file. A file whose checksum differs is deleted and refused; a cached file is reused only when
its checksum still matches.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ..errors import KnsError

log = logging.getLogger(__name__)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Copy `url` (https:// or file://) to `dest`. Tests monkeypatch this."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def download_files(base_url: str, sha256: Mapping[str, str], dest_dir: str | Path, progress: bool = True) -> Path:
    """Fetch every `name` in `sha256` from `base_url/name` into `dest_dir`, verified.

    Returns `dest_dir`. Raises KnsError on a network failure or a checksum mismatch (the bad
    file is removed, never left where the builder would pick it up)."""
    from tqdm.auto import tqdm

    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    base = base_url.rstrip("/")
    for name in tqdm(sorted(sha256), desc="download", unit="file", disable=not progress):
        expected = str(sha256[name]).lower()
        target = dest_dir / name
        if target.is_file() and sha256_file(target) == expected:
            log.info("cached and verified: %s", target)
            continue
        url = f"{base}/{name}"
        partial = dest_dir / f".{name}.part"
        try:
            fetch(url, partial)
        except Exception as err:  # noqa: BLE001  (any transport error becomes a user message)
            partial.unlink(missing_ok=True)
            raise KnsError(
                f"could not download {url}: {err}. Offline? Put IOB2_*.txt files in a folder and pass "
                "data.source_dir=DIR"
            ) from err
        actual = sha256_file(partial)
        if actual != expected:
            partial.unlink(missing_ok=True)
            raise KnsError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}; refusing to use it "
                "(the file was deleted)"
            )
        partial.replace(target)
        log.info("downloaded and verified: %s", target)
    return dest_dir
