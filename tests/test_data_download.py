"""The pinned, checksum-checked download (file:// URLs and a monkeypatched fetch; no network)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

import kazakh_ner_stance.data.download as download
from kazakh_ner_stance.config import compose
from kazakh_ner_stance.data.built_dataset import load_built_dataset
from kazakh_ner_stance.data.build import run_build_dataset
from kazakh_ner_stance.errors import KnsError

FIXTURES = Path(__file__).parent / "fixtures" / "iob2"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def upstream(tmp_path) -> Path:
    """A fake upstream folder with three split files."""
    folder = tmp_path / "upstream"
    folder.mkdir()
    for name in ("IOB2_train.txt", "IOB2_valid.txt", "IOB2_test.txt"):
        shutil.copy(FIXTURES / "three_splits" / name, folder / name)
    return folder


def test_file_url_download_verified_and_cached(upstream, tmp_path, monkeypatch):
    checksums = {p.name: _sha(p) for p in upstream.iterdir()}
    dest = download.download_files(upstream.as_uri(), checksums, tmp_path / "cache", progress=False)
    assert sorted(p.name for p in dest.iterdir()) == sorted(checksums)
    # second call: files are cached and verified, nothing fetched
    monkeypatch.setattr(download, "fetch", lambda url, dest: pytest.fail(f"fetched {url} again"))
    download.download_files(upstream.as_uri(), checksums, tmp_path / "cache", progress=False)


def test_checksum_mismatch_is_refused(upstream, tmp_path):
    checksums = {"IOB2_valid.txt": "0" * 64}
    with pytest.raises(KnsError, match="checksum mismatch .*IOB2_valid.txt.*refusing"):
        download.download_files(upstream.as_uri(), checksums, tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []  # nothing left for the builder to pick up


def test_tampered_cache_is_fetched_again(upstream, tmp_path):
    checksums = {"IOB2_valid.txt": _sha(upstream / "IOB2_valid.txt")}
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "IOB2_valid.txt").write_text("tampered O\n", encoding="utf-8")
    download.download_files(upstream.as_uri(), checksums, cache, progress=False)
    assert (cache / "IOB2_valid.txt").read_bytes() == (upstream / "IOB2_valid.txt").read_bytes()


def test_network_failure_is_a_user_error(tmp_path, monkeypatch):
    def offline(url, dest):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(download, "fetch", offline)
    with pytest.raises(KnsError, match="could not download .*Network is unreachable"):
        download.download_files("https://example.invalid/x", {"IOB2_valid.txt": "0" * 64}, tmp_path, progress=False)


def _config(upstream: Path, tmp_path: Path, checksums: dict):
    from omegaconf import open_dict

    cfg = compose("build_dataset", [
        f"data.source_dir={tmp_path / 'no-such-dir'}", f"out_dir={tmp_path / 'ds'}", "progress=false",
        f"data.download.base_url={upstream.as_uri()}", f"data.download.cache_dir={tmp_path / 'cache'}",
    ])  # fmt: skip
    with open_dict(cfg):
        cfg.data.download.sha256 = checksums
    return cfg


def test_builder_falls_back_to_the_pinned_download(upstream, tmp_path):
    checksums = {p.name: _sha(p) for p in upstream.iterdir()}
    stats = run_build_dataset(_config(upstream, tmp_path, checksums))
    assert stats["origin"]["kind"] == "download"
    assert all(src["matches_pinned_checksum"] for src in stats["sources"])
    assert len(load_built_dataset(tmp_path / "ds")["test"]) == 1


def test_builder_refuses_a_bad_download(upstream, tmp_path):
    checksums = {p.name: _sha(p) for p in upstream.iterdir()}
    checksums["IOB2_test.txt"] = "f" * 64
    with pytest.raises(KnsError, match="does not exist, and the pinned download failed: checksum mismatch"):
        run_build_dataset(_config(upstream, tmp_path, checksums))
    assert not (tmp_path / "ds").exists()
