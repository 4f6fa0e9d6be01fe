"""RuSentNE builder: offsets -> token spans, bad offsets reported with file and line, label and
type maps, pinned checksums, the dev carve grouped by sentence, the card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.data.download import sha256_file
from kazakh_ner_stance.errors import DataValidationError, KnsError
from kazakh_ner_stance.data.rusentne import char_span_to_tokens, run_build_rusentne

FIXTURE = Path(__file__).parent / "fixtures" / "rusentne"
FILES = ("train_data.csv", "validation_data_labeled.csv")


def _cfg(source: Path, out: Path, *extra: str):
    cfg = compose("build_dataset", ["data=rusentne", f"data.source_dir={source}", f"out_dir={out}",
                                    "progress=false", "data.dev_share=0.25", *extra])
    cfg.data.sha256 = {name: sha256_file(source / name) for name in FILES}  # the fixture's own
    return cfg


def test_char_span_to_tokens_cuts_words_at_the_target_edge():
    tokens, s, e, split = char_span_to_tokens("Суд обвинил экс-премьера в коррупции.", 16, 24)
    assert tokens[s:e] == ["премьера"] and tokens[s - 1] == "экс-" and split
    tokens, s, e, split = char_span_to_tokens("Президент Путин похвалил работу «Газпрома».", 33, 41)
    assert tokens == ["Президент", "Путин", "похвалил", "работу", "«", "Газпрома", "»", "."]
    assert (s, e, split) == (5, 6, False)


def test_build_rusentne_fixture(tmp_path):
    from datasets import load_from_disk

    out = tmp_path / "rusentne"
    stats = run_build_rusentne(_cfg(FIXTURE, out))
    dsd = load_from_disk(str(out))
    assert set(dsd) == {"train", "validation", "test"}
    assert len(dsd["train"]) + len(dsd["validation"]) == 12 and len(dsd["test"]) == 3
    assert len(dsd["validation"]) > 0
    # Every target of a sentence stays on one side of the dev carve.
    side = {}
    for split in ("train", "validation"):
        for row in dsd[split]:
            assert side.setdefault(" ".join(row["tokens"]), split) == split
    rows = {r["source_row"]: r for s in ("train", "validation") for r in dsd[s]}
    names = dsd["train"].features["label"].names
    assert names == ["NONE", "FAVOR", "AGAINST"]
    gazprom, putin, ex_premier = rows[2], rows[3], rows[4]
    assert gazprom["target"] == "Газпрома" and gazprom["target_type"] == "ORGANISATION"
    assert names[gazprom["label"]] == "FAVOR" and names[putin["label"]] == "NONE"
    assert names[ex_premier["label"]] == "AGAINST" and ex_premier["target_type"] == "PROFESSION"
    assert ex_premier["tokens"][ex_premier["start"]:ex_premier["end"]] == ["премьера"]
    assert {rows[5]["target_type"], rows[7]["target_type"]} == {"GPE", "NORP"}
    quoted = rows[8]  # a CSV-quoted sentence: offsets count the unquoted text
    assert quoted["target"] == "Сагитова" and '"' in quoted["tokens"]
    for r in rows.values():
        assert r["lang"] == "ru" and r["id"] == f"rusentne/train_data:{r['source_row']}"
        assert " ".join(r["tokens"][r["start"]:r["end"]]) == r["target"]
    test = dsd["test"]
    assert [names[x] for x in test["label"]] == ["FAVOR", "AGAINST", "NONE"]
    assert test["id"][0] == "rusentne/validation_data_labeled:2"
    assert stats["bad_offsets"] == 0 and stats["words_split_at_target_edge"] == 1
    card = (out / "README.md").read_text(encoding="utf-8")
    for needle in ("license: mit", "Golubev", "1 -> `FAVOR`", "PROFESSION", "**validation**", "sha256"):
        assert needle in card
    assert json.loads((out / "stats.json").read_text())["label_map"]["-1"] == "AGAINST"


def _with_bad_offsets(tmp_path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src)
    path = src / "train_data.csv"
    lines = path.read_text(encoding="utf-8").split("\n")
    cells = lines[3].split("\t")  # line 4: "премьера" at 16:24
    cells[3], cells[4] = "12", "20"
    lines[3] = "\t".join(cells)
    cells = lines[10].split("\t")  # line 11: past the end of the sentence
    cells[4] = "999"
    lines[10] = "\t".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")
    return src


def test_bad_offsets_are_errors_naming_file_line_and_both_strings(tmp_path):
    src = _with_bad_offsets(tmp_path)
    with pytest.raises(DataValidationError) as info:
        run_build_rusentne(_cfg(src, tmp_path / "out"))
    msg = str(info.value)
    assert "train_data.csv:4: offsets 12:20 slice 'экс-прем' from the sentence, but the entity is 'премьера'" in msg
    assert "train_data.csv:11: offsets" in msg and "outside" in msg
    assert "2 row(s)" in msg and "on_bad_offset=skip" in msg
    assert not (tmp_path / "out").exists()  # nothing built

    stats = run_build_rusentne(_cfg(src, tmp_path / "out", "data.on_bad_offset=skip"))
    assert stats["bad_offsets"] == 2 and stats["rows"]["train"] + stats["rows"]["validation"] == 10
    assert any(":4:" in r for r in stats["bad_offset_rows"])
    assert "2 row(s) had entity offsets" in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")


def test_pinned_checksum_and_structural_problems(tmp_path):
    cfg = _cfg(FIXTURE, tmp_path / "o")
    cfg.data.sha256["train_data.csv"] = "0" * 64
    with pytest.raises(KnsError, match="train_data.csv: sha256 .* differs from the pinned 0000"):
        run_build_rusentne(cfg)
    # The shipped config pins the shared files, so the fixture is refused with it.
    with pytest.raises(KnsError, match="differs from the pinned 75c443ab"):
        run_build_rusentne(compose("build_dataset", ["data=rusentne", f"data.source_dir={FIXTURE}",
                                                     f"out_dir={tmp_path / 'o'}"]))
    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src)
    path = src / "validation_data_labeled.csv"
    text = path.read_text(encoding="utf-8").replace("ORGANIZATION\t", "COMPANY\t").replace("\t-1\n", "\t2\n")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        run_build_rusentne(_cfg(src, tmp_path / "out"))
    msg = str(info.value)
    assert "validation_data_labeled.csv:2: unknown entity_tag 'COMPANY'" in msg
    assert "validation_data_labeled.csv:3: unknown label '2'" in msg


def test_rusentne_config_pins_the_shared_files():
    cfg = compose("build_dataset", ["data=rusentne"])
    assert cfg.data.sha256["train_data.csv"].startswith("75c443ab")
    assert cfg.data.sha256["validation_data_labeled.csv"].startswith("e5259588")
    assert cfg.data.on_bad_offset == "error"
