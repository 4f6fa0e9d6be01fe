"""`scripts/publish.py`: stage, verify and publish a model or dataset release.

    python scripts/publish.py checkpoint=RUN/model metrics=EVAL/metrics.json out_dir=DIR repo_id=ORG/NAME
    python scripts/publish.py kind=dataset dataset_dir=DIR repo_id=ORG/NAME
    python scripts/publish.py release=DIR repo_id=ORG/NAME target=dir:/srv/registry

Steps: (1) stage the release in a temporary folder next to `out_dir` (model: safetensors
weights, config with label maps, tokenizer, kns_training.json, training_config.yaml, the
evaluation's metrics.json, verification.json, card README.md; dataset: data/*.parquet,
stats.json, card); (2) write `kns_manifest.json` (SHA-256 and size of every file); (3) verify:
the manifest, the card header (offline, see cards.validate), and a reload of the folder with
the Hub switched off that must reproduce the verification scores; (4) move it into `out_dir`;
(5) dry run: print the plan; otherwise upload it to the Hub in one commit and tag it
`v<version>`, or copy it to `PATH/ORG/NAME/v<version>/` for `target=dir:PATH`.

The token: `huggingface_hub.get_token()` (HF_TOKEN, or the `hf auth login` file). It is only
handed to `HfApi`; it is never printed, logged, written or left in an error message, and a
release folder that contains it is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from ..atomic import replace_dir
from ..errors import KnsError
from .common import (
    MANIFEST,
    VERIFICATION,
    ReleaseVerificationError,
    check_replaceable,
    check_repo_id,
    check_version,
    find_secret,
    read_json,
    scrub,
    verify_manifest,
    write_manifest,
)

log = logging.getLogger(__name__)

__all__ = ["run_publish", "verify_release", "ReleaseVerificationError", "MANIFEST", "VERIFICATION"]


def verify_release(folder) -> dict:
    """Check a release folder as it would be published: manifest, card, offline reload + re-scoring.

    Raises ReleaseVerificationError (a KnsError) with every reason; returns what was checked."""
    from ..cards import validate_card_file

    folder = Path(folder)
    if not folder.is_dir():
        raise KnsError(f"release folder not found: {folder}")
    manifest = verify_manifest(folder)
    kind = manifest.get("kind", "model")
    validate_card_file(folder / "README.md", repo_type="model" if kind == "model" else "dataset")
    if kind == "model":
        from .verification import verify_model_sample

        sample = verify_model_sample(folder)
    else:
        from .dataset import verify_dataset_rows

        sample = verify_dataset_rows(folder)
    return {"kind": kind, "files": len(manifest["files"]) + 1, "card": "valid (offline)", "reload": sample,
            "repo_id": manifest.get("repo_id"), "version": manifest.get("version")}


def _token() -> str | None:
    from huggingface_hub import get_token

    try:
        return get_token()
    except Exception as err:  # e.g. a failed OIDC exchange
        raise KnsError(f"cannot read the Hub token: {scrub(err)}") from None


def _target(value) -> str:
    value = str(value or "hub").strip()
    if value == "hub":
        return value
    if value.startswith("dir:") and len(value) > 4:
        return value
    raise KnsError(f"target={value!r}: use target=hub or target=dir:PATH (a local registry folder)")


def _stage(cfg: DictConfig, kind: str, repo_id: str, version: str) -> tuple[Path, dict]:
    from .. import __version__

    out = cfg.get("out_dir")
    out_dir = Path(str(out)).expanduser() if out not in (None, "", "???") else Path(cfg.paths.releases_dir) / repo_id
    with replace_dir(out_dir) as tmp:  # staged beside out_dir, swapped in (an earlier release survives a failure)
        if kind == "model":
            from .model import stage_model

            summary = stage_model(cfg, tmp, repo_id, version)
        else:
            from .dataset import stage_dataset

            summary = stage_dataset(cfg, tmp, repo_id, version)
        write_manifest(tmp, {"kind": kind, "task": summary["task"], "repo_id": repo_id, "version": version,
                             "built_by": f"kazakh-ner-stance {__version__}"})
        summary["checks"] = verify_release(tmp)  # before it is put in place
        check_replaceable(out_dir)
    return out_dir, summary


def run_publish(cfg: DictConfig, api=None) -> dict:
    """Hydra entry point (cli.publish_main). `api`: an HfApi-like object (tests pass a fake)."""
    from .. import __version__
    from .targets import HfApi, describe, make_plan, upload_to_hub, write_to_registry

    kind = str(cfg.get("kind") or "model")
    if kind not in ("model", "dataset"):
        raise KnsError(f"kind={kind!r}: use kind=model or kind=dataset")
    repo_id = check_repo_id(cfg.get("repo_id"))
    version = check_version(cfg.get("version") or __version__)
    target = _target(cfg.get("target"))
    token = _token() if target == "hub" else None
    dry_run = cfg.get("dry_run")
    if dry_run is None:
        dry_run = target == "hub" and token is None
        why = "no Hub token found (set HF_TOKEN or run `hf auth login` to publish)" if dry_run else None
    else:
        dry_run = bool(dry_run)
        why = "dry_run=true"
    if target == "hub" and not dry_run and token is None:
        raise KnsError("no Hub token: set HF_TOKEN or run `hf auth login` (or pass dry_run=true)")

    if cfg.get("release"):
        folder = Path(str(cfg.release)).expanduser()
        checks = verify_release(folder)
        manifest = read_json(folder / MANIFEST, "release manifest")
        if manifest.get("kind") != kind:
            raise KnsError(f"{folder} is a {manifest.get('kind')} release; pass kind={manifest.get('kind')}")
        if manifest.get("repo_id") != repo_id or manifest.get("version") != version:
            raise KnsError(
                f"{folder} was built as {manifest.get('repo_id')} v{manifest.get('version')} (its card says so); "
                f"rebuild it for {repo_id} v{version}"
            )
        summary = {"kind": kind, "source": str(folder), "skipped": [], "checks": checks}
    else:
        folder, summary = _stage(cfg, kind, repo_id, version)
    leaked = find_secret(folder, token)
    if leaked:
        raise KnsError(f"the release in {folder} contains the Hub token (in {', '.join(leaked)}); refusing to publish")

    checks = summary["checks"]
    print(f"release folder: {folder} (verified)")
    print(f"  manifest: {checks['files']} files, SHA-256 checked; card: {checks['card']}")
    print(f"  {checks['reload']}")
    if summary.get("verification"):
        print(f"  metrics.json: {summary['verification']}" if kind == "model" else f"  {summary['verification']}")
    for name, why_not in summary.get("skipped") or []:
        print(f"  not released: {name} ({why_not})")

    online = bool(cfg.get("online_card_check")) and not dry_run
    if online:
        _online_card_check(folder, kind, token)
    plan = make_plan(kind, repo_id, version, folder, target, bool(cfg.get("private", False)))
    print(describe(plan, dry_run, why))
    result = {"folder": str(folder), "dry_run": dry_run, "repo_id": repo_id, "version": version, "tag": plan.tag,
              "files": [p for p, _, _ in plan.files], "online_card_check": online}
    if dry_run:
        return result
    if target == "hub":
        api = api if api is not None else HfApi(token=token)
        done = upload_to_hub(plan, api, token)
        print(f"published {repo_id} {plan.tag}: commit {done['commit']} ({done['url']})")
        result.update(done)
    else:
        dest = write_to_registry(plan)
        print(f"published {repo_id} {plan.tag} to {dest}")
        result["registry_path"] = str(dest)
    return result


def _online_card_check(folder: Path, kind: str, token: str | None) -> None:
    from huggingface_hub import DatasetCard, ModelCard

    card_cls = ModelCard if kind == "model" else DatasetCard
    try:
        card_cls.load(folder / "README.md").validate()
    except Exception as err:
        raise KnsError(f"the Hub rejects the card: {scrub(err, token)}") from None
