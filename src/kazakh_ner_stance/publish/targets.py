"""Where a verified release goes: the Hugging Face Hub (one commit + a version tag), or a
versioned local registry folder. Also the printed plan of a dry run."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import replace_dir
from ..errors import KnsError
from .common import MANIFEST, human_size, read_json, scrub, verify_manifest

log = logging.getLogger(__name__)


def HfApi(token=None):  # noqa: N802  (a seam the tests replace with a recording fake)
    from huggingface_hub import HfApi as _HfApi

    return _HfApi(token=token)


@dataclass
class Plan:
    kind: str  # model | dataset
    repo_id: str
    version: str
    folder: Path
    target: str  # "hub" or "dir:PATH"
    private: bool
    files: list[tuple[str, int, str]] = field(default_factory=list)  # (path, size, sha256)

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def commit_message(self) -> str:
        return f"Release {self.tag}: {self.kind} {self.repo_id.split('/')[-1]}"

    @property
    def commit_description(self) -> str:
        from .. import __version__

        return (f"Built and verified by kazakh-ner-stance {__version__} (scripts/publish.py); every file's SHA-256 "
                f"is in {MANIFEST}.")

    @property
    def tag_message(self) -> str:
        return f"{self.kind} release {self.tag}"

    @property
    def total_size(self) -> int:
        return sum(s for _, s, _ in self.files)


def make_plan(kind: str, repo_id: str, version: str, folder: Path, target: str, private: bool) -> Plan:
    manifest = read_json(Path(folder) / MANIFEST, "release manifest")
    files = [(rel, int(v["size"]), v["sha256"]) for rel, v in sorted(manifest["files"].items())]
    mf = Path(folder) / MANIFEST
    from ..data.download import sha256_file

    files.append((MANIFEST, mf.stat().st_size, sha256_file(mf)))
    return Plan(kind, repo_id, version, Path(folder), target, private, sorted(files))


def registry_path(target: str, repo_id: str, version: str) -> Path:
    root = Path(target[len("dir:"):]).expanduser()
    org, name = repo_id.split("/")
    return root / org / name / f"v{version}"


def describe(plan: Plan, dry_run: bool, why_dry: str | None) -> str:
    width = max([len(p) for p, _, _ in plan.files] + [10])
    listing = "\n".join(f"       {p:<{width}}  {human_size(s):>9}  sha256 {h[:12]}…" for p, s, h in plan.files)
    head = f"{'DRY RUN' if dry_run else 'PUBLISH'}: {plan.kind} release {plan.repo_id} {plan.tag}"
    if dry_run:
        head += f" ({why_dry}); the verified folder is staged, nothing is published. It would:"
    if plan.target == "hub":
        repo_type = "model" if plan.kind == "model" else "dataset"
        steps = [
            f"  1. create the {repo_type} repo {plan.repo_id} on the Hub if missing (private={str(plan.private).lower()})",
            f"  2. upload {len(plan.files)} files ({human_size(plan.total_size)}) from {plan.folder} in ONE commit to "
            f"main:\n{listing}\n     commit message: {plan.commit_message!r}",
            f"  3. tag that commit {plan.tag!r} (message {plan.tag_message!r})",
        ]
    else:
        dest = registry_path(plan.target, plan.repo_id, plan.version)
        steps = [
            f"  1. copy {len(plan.files)} files ({human_size(plan.total_size)}) from {plan.folder} to {dest} "
            f"(refused if that version exists):\n{listing}",
            "  2. check every copied file against the manifest",
        ]
    return "\n".join([head, *steps])


# --------------------------------------------------------------------------- the Hub


def upload_to_hub(plan: Plan, api, token: str | None) -> dict:
    """create_repo (exist_ok) -> refuse an existing tag -> upload_folder (one commit) -> create_tag."""
    repo_type = "model" if plan.kind == "model" else "dataset"

    def call(step: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KnsError:
            raise
        except Exception as err:  # the Hub's errors: shown without the token, without a traceback
            raise KnsError(f"{step} failed for {plan.repo_id}: {scrub(err, token)}") from None

    url = call("create_repo", api.create_repo, plan.repo_id, repo_type=repo_type, private=plan.private, exist_ok=True)
    refs = call("list_repo_refs", api.list_repo_refs, plan.repo_id, repo_type=repo_type)
    if plan.tag in {t.name for t in (getattr(refs, "tags", None) or [])}:
        raise KnsError(f"{plan.repo_id} already has a release tagged {plan.tag}; pass version=X.Y.Z for a new one")
    verify_manifest(plan.folder)  # nothing changed since it was verified
    info = call(
        "upload_folder", api.upload_folder, repo_id=plan.repo_id, folder_path=str(plan.folder), repo_type=repo_type,
        revision="main", commit_message=plan.commit_message, commit_description=plan.commit_description,
    )
    oid = getattr(info, "oid", None)
    call("create_tag", api.create_tag, plan.repo_id, tag=plan.tag, tag_message=plan.tag_message, revision=oid,
         repo_type=repo_type)
    return {"url": str(url), "commit": oid, "tag": plan.tag}


# --------------------------------------------------------------------------- local registry


def write_to_registry(plan: Plan) -> Path:
    dest = registry_path(plan.target, plan.repo_id, plan.version)
    if dest.exists():
        raise KnsError(f"{dest} already exists: a published version is never overwritten; pass version=X.Y.Z")
    with replace_dir(dest, overwrite=False) as tmp:
        shutil.copytree(plan.folder, tmp, dirs_exist_ok=True)
        verify_manifest(tmp)
        if dest.exists():
            raise KnsError(f"{dest} appeared while copying; refusing to overwrite it")
    return dest
