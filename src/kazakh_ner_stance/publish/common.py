"""Pieces shared by model and dataset releases: the manifest, forbidden files, version and
secret handling, and the offline switch used when a release is reloaded."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from ..data.download import sha256_file
from ..errors import KnsError

MANIFEST = "kns_manifest.json"
VERIFICATION = "verification.json"
FORMAT_VERSION = 1

# Never part of a release: formats that may hold pickles (arbitrary code on load).
FORBIDDEN_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz", ".h5",
                      ".msgpack", ".dill", ".sav")
_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:[-+.][0-9A-Za-z.-]+)?$")
# Hub user-access tokens: scrubbed from any text we show even if it is not *the* token.
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{8,}")


class ReleaseVerificationError(KnsError):
    """The release folder is not what was built (or not what the evaluation measured)."""


def write_json(path: Path, data) -> None:
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnsError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as err:
        raise KnsError(f"cannot read {what} {path}: {err}") from None
    if not isinstance(data, dict):
        raise KnsError(f"{what} {path} is not a JSON object")
    return data


def check_version(version: str) -> str:
    version = str(version).strip()
    if version.startswith("v"):
        version = version[1:]
    if not _VERSION.match(version):
        raise KnsError(f"version {version!r} is not a release version like 1.2.3 (or 1.2.3-rc1)")
    return version


def check_repo_id(repo_id) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id in (None, "", "???"):
        raise KnsError("no repo_id given: pass repo_id=ORG/NAME")
    repo_id = str(repo_id)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise KnsError(f"repo_id {repo_id!r} is not a valid Hub repo id: {err}") from None
    if repo_id.count("/") != 1:
        raise KnsError(f"repo_id {repo_id!r} must be ORG/NAME")
    return repo_id


def scrub(text: str, secret: str | None = None) -> str:
    """Remove the token (and anything that looks like a Hub token) from a message."""
    text = str(text)
    if secret:
        text = text.replace(secret, "hf_***")
    return _TOKEN_LIKE.sub("hf_***", text)


# --------------------------------------------------------------------------- files


def is_forbidden(path: Path) -> str | None:
    """Why `path` must never be released (a pickle-capable format), or None."""
    name = path.name.lower()
    if name.endswith(FORBIDDEN_SUFFIXES):
        return f"{path.suffix} files may hold pickles"
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if name.endswith(".safetensors"):
                # 8-byte little-endian header length, then a JSON header: nothing to unpickle.
                n = int.from_bytes(head, "little") if len(head) == 8 else -1
                ok = 0 < n < 100_000_000 and fh.read(1) == b"{"
                return None if ok else "not a valid safetensors file"
    except OSError:
        return None
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "the file is a Python pickle"
    if head == b"PK\x03\x04" and not name.endswith((".zip",)):
        return "the file is a zip archive (torch.save format)"
    return None


def release_files(folder: Path) -> list[str]:
    """Every file below `folder` (POSIX relative paths, sorted), the manifest excluded."""
    folder = Path(folder)
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            raise ReleaseVerificationError(f"{p} is a symbolic link; a release holds plain files only")
        if p.is_file():
            rel = p.relative_to(folder).as_posix()
            if rel != MANIFEST:
                out.append(rel)
    return out


def write_manifest(folder: Path, meta: dict) -> dict:
    folder = Path(folder)
    files = {rel: {"sha256": sha256_file(folder / rel), "size": (folder / rel).stat().st_size}
             for rel in release_files(folder)}
    manifest = {"format": FORMAT_VERSION, **meta, "files": files}
    write_json(folder / MANIFEST, manifest)
    return manifest


def verify_manifest(folder: Path) -> dict:
    """Every file listed with the right size and SHA-256, nothing extra, nothing pickled."""
    folder = Path(folder)
    manifest = read_json(folder / MANIFEST, "release manifest")
    listed = manifest.get("files") or {}
    present = release_files(folder)
    problems = []
    for rel in sorted(set(listed) - set(present)):
        problems.append(f"{rel}: listed in {MANIFEST} but missing")
    for rel in sorted(set(present) - set(listed)):
        problems.append(f"{rel}: present but not listed in {MANIFEST}")
    for rel in sorted(set(present) & set(listed)):
        path = folder / rel
        why = is_forbidden(path)
        if why:
            problems.append(f"{rel}: not allowed in a release ({why})")
        expected = listed[rel]
        if path.stat().st_size != expected.get("size"):
            problems.append(f"{rel}: size {path.stat().st_size} differs from the manifest's {expected.get('size')}")
        elif sha256_file(path) != expected.get("sha256"):
            problems.append(f"{rel}: SHA-256 differs from the manifest (the file was changed after it was built)")
    if problems:
        raise ReleaseVerificationError(f"release {folder} fails its manifest check:\n- " + "\n- ".join(problems))
    return manifest


def find_secret(folder: Path, secret: str | None) -> list[str]:
    """Files below `folder` whose bytes contain the secret."""
    if not secret:
        return []
    needle = secret.encode()
    return [p.relative_to(folder).as_posix() for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and needle in p.read_bytes()]


# --------------------------------------------------------------------------- folders


def is_release_folder(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def check_replaceable(out: Path) -> None:
    """A staged release may replace an earlier staged release in `out`, never other data."""
    out = Path(out)
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not is_release_folder(out)):
            raise KnsError(f"{out} exists and is not a staged release; refusing to replace it (choose another out_dir)")


@contextlib.contextmanager
def hub_offline():
    """No request may reach a hub while a release is reloaded (HF_HUB_OFFLINE for this block)."""
    import huggingface_hub.constants as hf_constants

    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    saved_env = {k: os.environ.get(k) for k in keys}
    saved_flag = hf_constants.HF_HUB_OFFLINE
    for k in keys:
        os.environ[k] = "1"
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = saved_flag
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def human_size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"
