"""The source files of a NER build: KazNERD-style IOB2 files found in a folder (step 1 of
`data.build`), or the pinned, SHA-256-checked download when the folder has none."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import KnsError
from .download import download_files
from .splitting import SPLITS

if TYPE_CHECKING:
    from .build import BuildOptions

log = logging.getLogger(__name__)

# Accepted file names per split, in order of preference (sentence-ID variants first).
SPLIT_FILE_NAMES = {"train": ("train",), "validation": ("valid", "dev", "validation"), "test": ("test",)}
FILE_PATTERNS = ("IOB2_{name}_sentid.txt", "IOB2_{name}2.txt", "with_sentID/IOB2_{name}2.txt", "IOB2_{name}.txt")


def discover_sources(source_dir: str | Path) -> tuple[dict[str, Path], list[dict]]:
    """Map split -> file for the IOB2 files in `source_dir`, plus the candidates not used."""
    source_dir = Path(source_dir)
    found: dict[str, Path] = {}
    ignored: list[dict] = []
    for split in SPLITS:
        for name in SPLIT_FILE_NAMES[split]:
            for pattern in FILE_PATTERNS:
                path = source_dir / pattern.format(name=name)
                if not path.is_file():
                    continue
                if split not in found:
                    found[split] = path
                else:
                    ignored.append(
                        {
                            "file": path.relative_to(source_dir).as_posix(),
                            "reason": f"{found[split].relative_to(source_dir).as_posix()} is used for {split}",
                        }
                    )
    return found, ignored


def _expected_files() -> str:
    return ", ".join(p.format(name="{train,valid,test}") for p in FILE_PATTERNS)


def resolve_sources(opt: BuildOptions) -> tuple[dict[str, Path], list[dict], dict]:
    """(split -> file, ignored candidates, origin) from source_dir, else from the pinned download."""
    reason = None
    if opt.source_dir is not None:
        if opt.source_dir.is_dir():
            found, ignored = discover_sources(opt.source_dir)
            if found:
                return found, ignored, {"kind": "directory"}
            reason = f"data.source_dir={opt.source_dir} holds none of {_expected_files()}"
        else:
            reason = f"data.source_dir={opt.source_dir} does not exist"
    else:
        reason = "no data.source_dir given"
    dl = opt.download or {}
    if not dl.get("enabled") or not dl.get("sha256"):
        raise KnsError(f"{reason} (and data.download.enabled is false)")
    log.warning("%s; downloading the pinned files of %s@%s", reason, dl.get("repo"), dl.get("commit"))
    try:
        dest = download_files(dl["base_url"], dl["sha256"], dl["cache_dir"], progress=opt.progress)
    except KnsError as err:
        raise KnsError(f"{reason}, and the pinned download failed: {err}") from err
    found, ignored = discover_sources(dest)
    if not found:
        raise KnsError(f"the download into {dest} produced none of {_expected_files()}")
    return found, ignored, {"kind": "download", "base_url": dl["base_url"]}
