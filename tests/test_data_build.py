"""The dataset builder: outputs, dedup/leakage, splits, determinism, atomicity, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.data.build import BuildOptions, build_ner_dataset, label_names, run_build_dataset
from kazakh_ner_stance.data.built_dataset import (
    dataset_fingerprint,
    load_built_dataset,
    load_split_assignment,
    load_stats,
)
from kazakh_ner_stance.data.ner_sources import discover_sources
from kazakh_ner_stance.errors import DataValidationError, KnsError

FIXTURES = Path(__file__).parent / "fixtures" / "iob2"
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "kaznerd"


def build(source: Path, out: Path, *overrides: str) -> dict:
    cfg = compose("build_dataset", [f"data.source_dir={source}", f"out_dir={out}", "progress=false", *overrides])
    return run_build_dataset(cfg)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_label_names_are_full_and_ordered():
    cfg = compose("build_dataset")
    labels = label_names(cfg.data.entity_types)
    assert labels[:3] == ["O", "B-ADAGE", "I-ADAGE"] and labels[-1] == "I-TIME"
    assert len(labels) == 1 + 2 * 25


def test_discovery_prefers_sentence_id_variant(tmp_path):
    found, ignored = discover_sources(FIXTURES / "sentid")
    assert found == {"validation": FIXTURES / "sentid" / "IOB2_valid_sentid.txt"}
    assert ignored == [{"file": "IOB2_valid.txt", "reason": "IOB2_valid_sentid.txt is used for validation"}]
    (tmp_path / "with_sentID").mkdir()
    for name in ("IOB2_train.txt", "with_sentID/IOB2_train2.txt", "IOB2_test.txt"):
        (tmp_path / name).write_text("А O\n", encoding="utf-8")
    found, _ = discover_sources(tmp_path)
    assert found == {"train": tmp_path / "with_sentID" / "IOB2_train2.txt", "test": tmp_path / "IOB2_test.txt"}


def test_build_single_split_outputs(tmp_path, capsys):
    out = tmp_path / "ds"
    stats = build(FIXTURES / "plain", out)
    printed = capsys.readouterr().out
    assert "split" in printed and "total" in printed and "removed: 1 exact duplicates" in printed

    dataset = load_built_dataset(out)
    assert list(dataset) == ["train", "validation", "test"]
    train = dataset["train"]
    assert train.column_names == ["sent_id", "tokens", "ner_tags"]
    assert train.features["ner_tags"].feature.names == label_names(compose("build_dataset").data.entity_types)
    total = sum(len(dataset[s]) for s in dataset)
    assert total == 5  # 6 sentences, one exact duplicate
    ids = [i for s in dataset for i in dataset[s]["sent_id"]]
    assert sorted(ids) == sorted(f"validation-{i}" for i in (0, 1, 2, 4, 5))  # validation-3 duplicates 0

    on_disk = load_stats(out)
    assert on_disk["input"] == {"sentences": 6, "tokens": 37}
    assert on_disk == {k: v for k, v in stats.items() if k != "timings"}
    duplicates = {s: 0 for s in ("train", "validation", "test")}
    duplicates[load_split_assignment(out)["validation-0"]] = 1
    assert on_disk["removed"]["duplicates"] == duplicates
    assert on_disk["removed"]["total"] == 1
    assert sum(on_disk["splits"][s]["sentences"] for s in dataset) == 5
    for name in ("README.md", "stats.json", "split_assignment.parquet", "parquet/train.parquet",
                 "parquet/validation.parquet", "parquet/test.parquet"):  # fmt: skip
        assert (out / name).is_file(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left

    assignment = load_split_assignment(out)
    assert len(assignment) == 6 and assignment["validation-3"] == assignment["validation-0"]

    import pandas as pd

    frame = pd.read_parquet(out / "parquet" / "train.parquet")
    assert list(frame.columns) == ["sent_id", "tokens", "ner_tags"] and len(frame) == len(train)


def test_sentence_id_variant_is_used(tmp_path):
    out = tmp_path / "ds"
    stats = build(FIXTURES / "sentid", out)
    assert [s["file"] for s in stats["sources"]] == ["IOB2_valid_sentid.txt"]
    assert stats["sources"][0]["format"] == "sentid"
    assert stats["ignored_sources"][0]["file"] == "IOB2_valid.txt"
    ids = {i for s in load_built_dataset(out).values() for i in s["sent_id"]}
    assert ids == {"AID100001", "AID100002", "BID200001"}  # BID200002 duplicates AID100001
    rows = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert rows["removed"]["total"] == 1


def test_three_splits_dedup_and_leakage(tmp_path):
    out = tmp_path / "ds"
    stats = build(FIXTURES / "three_splits", out)
    assert stats["removed"]["duplicates"] == {"train": 1, "validation": 0, "test": 0}
    assert stats["removed"]["leakage"] == {"train": 0, "validation": 1, "test": 2}
    dataset = load_built_dataset(out)
    assert len(dataset["train"]) == 2 and len(dataset["validation"]) == 1 and len(dataset["test"]) == 1
    assert dataset["test"]["tokens"] == [["Ертең", "қар", "жауады", "."]]
    assignment = load_split_assignment(out)
    assert assignment["test-0"] == "train" and assignment["test-1"] == "validation"

    kept = build(FIXTURES / "three_splits", tmp_path / "all", "data.dedup=false", "data.remove_leakage=false")
    assert kept["removed"]["total"] == 0 and kept["splits"]["test"]["sentences"] == 3


def test_split_is_deterministic_and_seeded(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    lines = []
    for i in range(200):
        lines += [f"сөз{i % 150} O", f"Астана{i % 150} B-GPE", ". O", ""]  # 50 exact duplicates
    (source / "IOB2_valid.txt").write_text("\n".join(lines), encoding="utf-8")
    a = build(source, tmp_path / "a")
    b = build(source, tmp_path / "b")
    c = build(source, tmp_path / "c", "data.split.seed=7")
    assert files(tmp_path / "a") == files(tmp_path / "b")  # byte-identical, arrow files included
    assert a["fingerprint"] == b["fingerprint"] == dataset_fingerprint(tmp_path / "a")
    assert c["fingerprint"] != a["fingerprint"]
    assert [a["splits"][s]["sentences"] for s in ("train", "validation", "test")] == [120, 15, 15]
    assert a["removed"]["duplicates"]["train"] + a["removed"]["duplicates"]["validation"] + \
        a["removed"]["duplicates"]["test"] == 50  # fmt: skip
    # identical sentences always land in the same split
    assignment = load_split_assignment(tmp_path / "a")
    for i in range(150, 200):
        assert assignment[f"validation-{i}"] == assignment[f"validation-{i - 150}"]
    text = (tmp_path / "a" / "stats.json").read_text(encoding="utf-8") + (tmp_path / "a" / "README.md").read_text(
        encoding="utf-8"
    )
    assert str(tmp_path) not in text  # no absolute paths (and no timestamps) in the outputs


def test_missing_splits_are_carved_from_train(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(FIXTURES / "three_splits" / "IOB2_test.txt", source / "IOB2_test.txt")
    body = "".join(f"сөз{i} O\n. O\n\n" for i in range(40))
    (source / "IOB2_train.txt").write_text(body, encoding="utf-8")
    stats = build(source, tmp_path / "ds")
    assert stats["splits"]["validation"]["sentences"] == 4  # 0.1 / (0.8 + 0.1) of 40
    assert stats["splits"]["train"]["sentences"] == 36 and stats["splits"]["test"]["sentences"] == 3

    only_dev_test = tmp_path / "src2"
    only_dev_test.mkdir()
    for name in ("IOB2_valid.txt", "IOB2_test.txt"):
        shutil.copy(FIXTURES / "three_splits" / name, only_dev_test / name)
    with pytest.raises(KnsError, match="give a train file"):
        build(only_dev_test, tmp_path / "ds2")


def test_malformed_directory_reports_every_problem_and_leaves_nothing(tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(DataValidationError) as info:
        build(FIXTURES / "malformed", out, "data.validation.orphan_inside=error")
    assert len(info.value.problems) == 6
    assert all(p.line is not None and p.path.endswith("IOB2_valid_sentid.txt") for p in info.value.problems)
    assert list(tmp_path.iterdir()) == []  # no dataset, no temp folder


def test_failed_build_keeps_previous_dataset(tmp_path):
    out = tmp_path / "ds"
    build(FIXTURES / "plain", out)
    before = files(out)
    with pytest.raises(DataValidationError):
        build(FIXTURES / "malformed", out)
    assert files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_write_failure_leaves_no_partial_dataset(tmp_path, monkeypatch):
    import kazakh_ner_stance.data.card as card

    def boom(stats):
        raise RuntimeError("disk full")

    monkeypatch.setattr(card, "render_card", boom)
    with pytest.raises(RuntimeError):
        build(FIXTURES / "plain", tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_cross_file_duplicate_ids(tmp_path):
    for name in ("IOB2_train.txt", "IOB2_test.txt"):
        (tmp_path / name).write_text("AID1 O\nА O\n\nAID2 O\nБ O\n", encoding="utf-8")
    (tmp_path / "IOB2_valid.txt").write_text("AID3 O\nВ O\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        build(tmp_path, tmp_path / "out")
    messages = [str(p) for p in info.value.problems]
    assert messages == [
        f"{tmp_path / 'IOB2_test.txt'}:1: duplicate sentence ID AID1 (also at {tmp_path / 'IOB2_train.txt'}:1)",
        f"{tmp_path / 'IOB2_test.txt'}:4: duplicate sentence ID AID2 (also at {tmp_path / 'IOB2_train.txt'}:4)",
    ]


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(KnsError, match="not a built dataset"):
        build(FIXTURES / "plain", out)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_missing_source_without_download(tmp_path):
    with pytest.raises(KnsError, match="holds none of"):
        build(FIXTURES / "empty", tmp_path / "ds", "data.download.enabled=false")
    with pytest.raises(KnsError, match="does not exist"):
        build(tmp_path / "nowhere", tmp_path / "ds", "data.download.enabled=false")


def test_missing_built_dataset_names_the_command(tmp_path):
    for fn in (load_built_dataset, dataset_fingerprint):
        with pytest.raises(KnsError, match=r"python scripts/build_dataset\.py"):
            fn(tmp_path / "absent")


def test_fix_latin_option(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "IOB2_valid.txt").write_text("Cаенс B-PERSON\nкелді O\n", encoding="utf-8")
    opts = BuildOptions.from_cfg(compose("build_dataset", [f"data.source_dir={source}", f"out_dir={tmp_path / 'a'}",
                                                           "progress=false"]))  # fmt: skip
    stats = build_ner_dataset(opts)
    assert stats["normalised"]["latin_in_cyrillic_tokens"] == 1 and stats["normalised"]["latin_in_cyrillic_fixed"] == 0
    stats = build(source, tmp_path / "b", "data.validation.fix_latin_in_cyrillic=true")
    assert stats["normalised"]["latin_in_cyrillic_fixed"] == 1
    tokens = [t for s in load_built_dataset(tmp_path / "b").values() for row in s["tokens"] for t in row]
    assert "Саенс" in tokens


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(KnsError, match="sum to 1"):
        build(FIXTURES / "plain", tmp_path / "ds", "data.split.train=0.9")
    with pytest.raises(KnsError, match="orphan_inside"):
        build(FIXTURES / "plain", tmp_path / "ds", "data.validation.orphan_inside=ignore")


def test_command_line_errors_exit_non_zero(tmp_path):
    out = tmp_path / "ds"
    command = [
        sys.executable, str(ROOT / "scripts" / "build_dataset.py"),
        f"data.source_dir={FIXTURES / 'malformed'}", f"out_dir={out}", "progress=false",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert "error: 5 problem(s) in the input:" in done.stderr
    assert f"{FIXTURES / 'malformed' / 'IOB2_valid_sentid.txt'}:8: unknown tag 'B-CITY'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "IOB2_valid_sentid.txt").is_file(), reason="shared KazNERD copy absent")
def test_shared_kaznerd_build(tmp_path):
    stats = build(SHARED, tmp_path / "ds")
    assert stats["input"]["sentences"] == 11_167
    # 25 exact duplicates (SOURCES.md); where they fall depends on the seeded, variant-grouped split
    assert sum(stats["removed"]["duplicates"].values()) == 25
    assert sum(stats["splits"][s]["sentences"] for s in ("train", "validation", "test")) == 11_142
    assert stats["sources"][0]["file"] == "IOB2_valid_sentid.txt" and stats["sources"][0]["matches_pinned_checksum"]
    assert "timings" in stats  # build time is reported by kns-bench data, not asserted
