"""Outputs that are replaced whole or not at all.

A writer builds its folder in a staging folder beside the destination (same filesystem),
then `swap_into_place` moves the previous destination aside, renames the staging folder in,
and only then deletes the previous one. If the rename in fails, the previous folder is moved
back: a failed run never costs the output of the last good one.

    with replace_dir(out_dir) as tmp:   # tmp: an empty folder next to out_dir
        write_everything(tmp)           # raising here leaves out_dir untouched
    # here out_dir holds exactly what was written to tmp

Names beside the destination: `.NAME.staging-PID` (being built) and `.NAME.old-PID` (the
previous output during the swap). A run killed mid-way can leave either; the next run removes
them when that is safe (a staging folder of a process that is gone; an old folder once the
destination exists) and stops with a clear message when the old folder is the only copy of
the previous output.

Single files: `replace_file(path)` yields a temporary path beside `path` and renames it over
`path` on success; `write_text_atomic` is the one-call form."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from .errors import KnsError

STAGING = "staging"
OLD = "old"


def _sibling(dest: Path, kind: str, pid: int | None = None) -> Path:
    return dest.with_name(f".{dest.name}.{kind}-{os.getpid() if pid is None else pid}")


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: the process exists
        return True
    return True


def _leftovers(dest: Path, kind: str) -> list[tuple[Path, int]]:
    pattern = re.compile(re.escape(f".{dest.name}.{kind}-") + r"(\d+)")
    if not dest.parent.is_dir():
        return []
    found = []
    for p in dest.parent.iterdir():
        m = pattern.fullmatch(p.name)
        if m:
            found.append((p, int(m.group(1))))
    return sorted(found)


def _clear_old(dest: Path) -> None:
    """Old folders of an interrupted swap: garbage once `dest` exists; otherwise the only copy."""
    for old, pid in _leftovers(dest, OLD):
        if _present(dest):  # the swap finished; only its clean-up was cut short
            _remove(old)
        else:
            raise KnsError(
                f"{dest} is missing and {old} holds its previous content, left by a run (pid {pid}) that was "
                f"interrupted or is still running; move it back (mv '{old}' '{dest}') or delete it, then run again"
            )


def clear_leftovers(dest: str | Path) -> None:
    """Remove what an interrupted earlier run left beside `dest` where that is safe (see the module doc)."""
    dest = Path(dest)
    _clear_old(dest)
    for staging, pid in _leftovers(dest, STAGING):
        if pid == os.getpid() or not _pid_alive(pid):
            _remove(staging)


def swap_into_place(staged: str | Path, dest: str | Path, overwrite: bool = True) -> None:
    """Replace `dest` (a folder, file or link, or nothing) by `staged` (on the same filesystem).

    The previous `dest` is moved aside, `staged` renamed in, then the previous one deleted. If
    the rename in fails, the previous `dest` is moved back and a KnsError naming `dest` is
    raised; `staged` is left for its owner to remove. overwrite=False: a `dest` that exists is
    never replaced (KnsError)."""
    staged, dest = Path(staged), Path(dest)
    _clear_old(dest)
    old = _sibling(dest, OLD)
    had_previous = _present(dest)
    if had_previous and not overwrite:
        raise KnsError(f"{dest} already exists; refusing to replace it")
    if had_previous:
        try:
            os.replace(dest, old)
        except OSError as err:
            raise KnsError(f"could not move the previous {dest} aside ({err}); it was left as it was") from err
    try:
        os.replace(staged, dest)
    except BaseException as err:
        if had_previous:
            try:
                os.replace(old, dest)
            except OSError as restore_err:
                raise KnsError(
                    f"could not move the new output into {dest} ({err}), nor the previous one back "
                    f"({restore_err}): it is in {old}; move it back by hand"
                ) from err
        if not isinstance(err, Exception):  # KeyboardInterrupt and the like: restored, passed on
            raise
        kept = "the previous one was kept" if had_previous else "nothing was written there"
        raise KnsError(f"could not move the new output into {dest} ({err}); {kept}") from err
    if had_previous:
        _remove(old)


@contextlib.contextmanager
def replace_dir(dest: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder beside `dest`; when the block ends without an error, the
    folder replaces `dest` (`swap_into_place`). When the block raises, the staging folder is
    removed and `dest` is untouched. The staging folder never outlives the block. overwrite=False:
    an existing `dest` is never replaced (checked again at the swap)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if _present(dest) and not overwrite:
        raise KnsError(f"{dest} already exists; refusing to replace it")
    clear_leftovers(dest)
    staging = _sibling(dest, STAGING)
    staging.mkdir()
    try:
        yield staging
        swap_into_place(staging, dest, overwrite=overwrite)
    finally:
        if _present(staging):
            _remove(staging)


@contextlib.contextmanager
def replace_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; write the file there. When the block ends without
    an error it is renamed over `path` (readers see the old file or the new one, never part of
    one); when it raises, the temporary file is removed and `path` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Replace `path` by `text` in one rename."""
    with replace_file(path) as tmp:
        tmp.write_text(text, encoding=encoding)
