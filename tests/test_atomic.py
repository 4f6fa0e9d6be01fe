"""Swapping a built folder into place (kazakh_ner_stance.atomic): the previous output survives a
failed build and a failed final rename, for the helper itself, the stance dataset builder and
the ONNX export; leftovers of an interrupted run are cleared or reported, never lost."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kazakh_ner_stance.atomic import replace_dir, replace_file, swap_into_place, write_text_atomic
from kazakh_ner_stance.config import compose
from kazakh_ner_stance.errors import KnsError

STANCE_FIX = Path(__file__).parent / "fixtures" / "stance"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fail_rename_into(monkeypatch, dest: Path, exc: BaseException | None = None, restore_fails: bool = False):
    """Make only the rename of a staging folder into `dest` fail (and, with restore_fails, the
    move of the previous folder back as well); every other os.replace works."""
    real = os.replace
    dest = Path(dest)

    def replace(src, dst, *args, **kwargs):
        if Path(dst) == dest:
            name = Path(src).name
            if name.startswith(f".{dest.name}.staging-"):
                raise exc if exc is not None else OSError(errno.EIO, "simulated rename failure")
            if restore_fails and name.startswith(f".{dest.name}.old-"):
                raise OSError(errno.EIO, "simulated restore failure")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_previous(dest: Path) -> dict[str, bytes]:
    (dest / "sub").mkdir(parents=True)
    (dest / "data.txt").write_text("previous", encoding="utf-8")
    (dest / "sub" / "more.bin").write_bytes(b"\x00\x01previous")
    return snapshot(dest)


# --------------------------------------------------------------------------- the helper


def test_replace_dir_creates_a_missing_destination(tmp_path):
    dest = tmp_path / "a" / "out"
    with replace_dir(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "new.txt").write_text("new", encoding="utf-8")
    assert snapshot(dest) == {"new.txt": b"new"}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out"]


def test_replace_dir_replaces_the_previous_folder_whole(tmp_path):
    dest = tmp_path / "out"
    write_previous(dest)
    with replace_dir(dest) as tmp:
        (tmp / "new.txt").write_text("new", encoding="utf-8")
    assert snapshot(dest) == {"new.txt": b"new"}  # nothing of the previous output is mixed in
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_build_leaves_the_destination_untouched(tmp_path):
    dest = tmp_path / "out"
    before = write_previous(dest)
    with pytest.raises(RuntimeError, match="disk full"):
        with replace_dir(dest) as tmp:
            (tmp / "half.txt").write_text("half", encoding="utf-8")
            raise RuntimeError("disk full")
    assert snapshot(dest) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_rename_into_place_restores_the_previous_folder(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    before = write_previous(dest)
    fail_rename_into(monkeypatch, dest)
    kept = re.escape(f"into {dest} (") + ".*simulated rename failure.*previous one was kept"
    with pytest.raises(KnsError, match=kept):
        with replace_dir(dest) as tmp:
            (tmp / "new.txt").write_text("new", encoding="utf-8")
    assert snapshot(dest) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder left


def test_a_failed_rename_into_a_missing_destination(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    fail_rename_into(monkeypatch, dest)
    with pytest.raises(KnsError, match="nothing was written"):
        with replace_dir(dest) as tmp:
            (tmp / "new.txt").write_text("new", encoding="utf-8")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_during_the_rename_restores_and_passes_on(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    before = write_previous(dest)
    fail_rename_into(monkeypatch, dest, exc=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        with replace_dir(dest) as tmp:
            (tmp / "new.txt").write_text("new", encoding="utf-8")
    assert snapshot(dest) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_when_the_restore_fails_too_the_previous_folder_is_kept_and_named(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    before = write_previous(dest)
    fail_rename_into(monkeypatch, dest, restore_fails=True)
    with pytest.raises(KnsError, match="nor the previous one back") as err:
        with replace_dir(dest) as tmp:
            (tmp / "new.txt").write_text("new", encoding="utf-8")
    old = tmp_path / f".out.old-{os.getpid()}"
    assert str(old) in str(err.value)
    assert snapshot(old) == before  # never deleted: it is the only copy
    monkeypatch.undo()
    with pytest.raises(KnsError, match="move it back"):  # the next run says so instead of building
        with replace_dir(dest):
            pytest.fail("the build must not start")
    assert snapshot(old) == before


def test_swap_into_place_replaces_a_file_or_link(tmp_path):
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "x").write_text("x", encoding="utf-8")
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    swap_into_place(staged, link)
    assert not link.is_symlink() and snapshot(link) == {"x": b"x"} and target.is_dir()  # the link's target is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "link"]


def test_overwrite_false_never_replaces(tmp_path):
    dest = tmp_path / "out"
    before = write_previous(dest)
    with pytest.raises(KnsError, match="already exists"):
        with replace_dir(dest, overwrite=False):
            pytest.fail("the build must not start")
    staged = tmp_path / "staged"
    staged.mkdir()
    with pytest.raises(KnsError, match="already exists"):
        swap_into_place(staged, dest, overwrite=False)
    assert snapshot(dest) == before and staged.is_dir()


def test_leftovers_of_an_interrupted_run(tmp_path):
    dest = tmp_path / "out"
    write_previous(dest)
    gone = dead_pid()
    stale_staging = tmp_path / f".out.staging-{gone}"
    (stale_staging / "half").mkdir(parents=True)
    stale_old = tmp_path / f".out.old-{gone}"  # its swap finished (dest exists); the clean-up did not
    stale_old.mkdir()
    live_staging = tmp_path / f".out.staging-{os.getppid()}"  # another run still building: left alone
    live_staging.mkdir()
    unrelated = tmp_path / ".out.staging-notes"
    unrelated.mkdir()
    with replace_dir(dest) as tmp:
        (tmp / "new.txt").write_text("new", encoding="utf-8")
    assert snapshot(dest) == {"new.txt": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", live_staging.name, unrelated.name])


def test_an_old_folder_that_is_the_only_copy_is_never_removed(tmp_path):
    dest = tmp_path / "out"
    old = tmp_path / f".out.old-{dead_pid()}"  # killed between moving out aside and renaming the new one in
    before = write_previous(old)
    with pytest.raises(KnsError, match=re.escape(f"{dest} is missing ") + ".*move it back"):
        with replace_dir(dest):
            pytest.fail("the build must not start")
    assert snapshot(old) == before and not dest.exists()


def test_replace_file(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    write_text_atomic(path, "one")
    write_text_atomic(path, "two")
    assert path.read_text(encoding="utf-8") == "two"
    with pytest.raises(RuntimeError):
        with replace_file(path) as tmp:
            tmp.write_text("half", encoding="utf-8")
            raise RuntimeError("disk full")
    monkeypatch.setattr(os, "replace", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EIO, "no")))
    with pytest.raises(OSError):
        write_text_atomic(path, "three")
    assert path.read_text(encoding="utf-8") == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


# --------------------------------------------------------------------------- the writers


def _stance_cfg(root: Path):
    return compose("build_dataset", [
        "data=kaznerd_stance", f"data.source_dir={STANCE_FIX / 'kaznerd'}",
        f"data.stance.gold_file={STANCE_FIX / 'gold.jsonl'}",
        f"data.stance.double_file={STANCE_FIX / 'gold_double.jsonl'}",
        f"paths.artifacts_dir={root}", "data.download.enabled=false", "progress=false",
    ])


def test_stance_dataset_survives_a_failed_rename(tmp_path, monkeypatch):
    from kazakh_ner_stance.data.build import run_build_dataset

    run_build_dataset(_stance_cfg(tmp_path))
    stance_dir = tmp_path / "datasets" / "kaznerd_stance"
    before = snapshot(stance_dir)
    assert "dataset_dict.json" in before and "stats.json" in before
    (stance_dir / "stats.json").write_bytes(b'{"marker": "previous build"}')  # tell old from new
    before = snapshot(stance_dir)
    fail_rename_into(monkeypatch, stance_dir)
    with pytest.raises(KnsError, match=re.escape(f"into {stance_dir} (") + ".*previous one was kept"):
        run_build_dataset(_stance_cfg(tmp_path))
    assert snapshot(stance_dir) == before
    assert not [p.name for p in stance_dir.parent.iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    run_build_dataset(_stance_cfg(tmp_path))  # and the next run replaces it
    assert (stance_dir / "stats.json").read_bytes() != b'{"marker": "previous build"}'


def test_onnx_export_survives_a_failed_rename(tiny_ner_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from kazakh_ner_stance.onnx_export import export_onnx

    out = tmp_path / "onnx"
    export_onnx(tiny_ner_checkpoint, out, exporter="legacy")
    (out / "kns_onnx.json").write_text('{"marker": "previous export"}', encoding="utf-8")
    before = snapshot(out)
    assert "model.onnx" in before
    fail_rename_into(monkeypatch, out)
    with pytest.raises(KnsError, match=re.escape(f"into {out} (") + ".*previous one was kept"):
        export_onnx(tiny_ner_checkpoint, out, exporter="legacy")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]
