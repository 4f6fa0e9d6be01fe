"""Readers of the extra Kazakh news-like text (issue 22): NTREX-128 and FLORES-200 (aligned
lines, document ids), Akorda (VISL CG-3 stream with proper-noun analyses); bad lines reported
with file and line, pinned checksums enforced, the builder end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.data.kazakh_news import (is_headline, np_spans, ntrex_documents, read_cg3, read_flores,
                                                read_ntrex, read_sources, run_build_kazakh_news)
from kazakh_ner_stance.data.download import sha256_file
from kazakh_ner_stance.errors import DataValidationError, KnsError

FIX = Path(__file__).parent / "fixtures" / "kazakh_news"
NTREX_FILES = {"kaz": "kaz.txt", "eng": "eng.txt", "rus": "rus.txt"}
FLORES_FILES = {"kaz": "kaz.devtest", "eng": "eng.devtest", "rus": "rus.devtest", "metadata": "metadata.tsv"}


def news_cfg(source_dir: Path, out: Path | None = None, pin: bool = True):
    """The kazakh_news build config over the fixture folder (its own file names, its checksums)."""
    overrides = [
        "data=kazakh_news", f"data.source_dir={source_dir}", "progress=false",
        "data.sources.ntrex.files.kaz=kaz.txt", "data.sources.ntrex.files.eng=eng.txt",
        "data.sources.ntrex.files.rus=rus.txt", "data.sources.flores.files.kaz=kaz.devtest",
        "data.sources.flores.files.eng=eng.devtest", "data.sources.flores.files.rus=rus.devtest",
        "data.sources.flores.files.metadata=metadata.tsv", "data.sources.akorda.file=akorda.tagged.txt",
    ]
    if out is not None:
        overrides.append(f"out_dir={out}")
    cfg = compose("build_dataset", overrides)
    cfg.data.sha256 = ({str(p.relative_to(source_dir)): sha256_file(p) for p in sorted(source_dir.rglob("*")) if p.is_file()}
                       if pin else None)
    return cfg


def test_ntrex_lines_documents_and_alignment():
    problems = []
    sents = read_ntrex(FIX / "ntrex", NTREX_FILES, problems)
    assert problems == []
    assert [s.id for s in sents] == [f"ntrex:{i}" for i in range(1, 6)]
    # Two headlines open two documents; the body lines belong to the headline before them.
    assert [s.doc_id for s in sents] == ["ntrex-doc001"] * 3 + ["ntrex-doc002"] * 2
    assert sents[1].eng == "Party leader Askar Akhmetov celebrated the victory."
    assert sents[1].rus.startswith("Лидер партии")
    # The project's tokenization: punctuation split off, words kept whole.
    assert sents[1].tokens == ["Партия", "жетекшісі", "Асқар", "Ахметов", "жеңісті", "тойлады", "."]


def test_headline_rule():
    assert is_headline("New stadium opens") and not is_headline("It opened.")
    assert not is_headline("He said: 'we won'")  # a closing quote ends a sentence
    # Consecutive headline lines (title + sub-title) start one document, not two.
    assert ntrex_documents(["Title", "Sub-title", "Body.", "Body.", "Next title", "Body."]) == [0, 0, 0, 0, 1, 1]


def test_flores_documents_from_metadata_urls():
    problems = []
    sents = read_flores(FIX / "flores200", FLORES_FILES, problems)
    assert problems == []
    assert [s.doc_id for s in sents] == ["flores-doc001", "flores-doc001", "flores-doc002"]
    assert [s.domain for s in sents] == ["wikinews", "wikinews", "wikivoyage"]
    assert sents[2].eng.startswith("Paris")


def test_cg3_keeps_surface_tokens_and_proper_noun_analyses():
    problems = []
    sents = read_cg3(FIX / "akorda" / "akorda.tagged.txt", problems)
    assert problems == []
    assert [s.id for s in sents] == ["akorda:1", "akorda:15"]  # the line of the first token
    first, second = sents
    assert first.tokens == ["Дмитрий", "Медведевтің", "Астанаға", "сапары", "жоспарланды", "."]
    assert first.np_tags[:4] == [["np", "ant"], ["np", "cog"], ["np", "top"], []]
    # A given name joins the surname after it; a place after them is a span of its own.
    assert np_spans(first.np_tags) == [(0, 2, ["ant", "cog"]), (2, 3, ["top"])]
    # The translation comment is kept; a multi-word unit becomes one token per word.
    assert second.eng == "we support this initiative ."
    assert second.tokens == ["Біз", "жүзеге", "асыру", "керек", "."]


def test_bad_lines_are_reported_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.tagged.txt"
    bad.write_text('"<Астана>"\n\t"Астана" np top nom #1->0\nжай мәтін\n\n"<.>"\n', encoding="utf-8")
    problems = []
    read_cg3(bad, problems)
    text = [str(p) for p in problems]
    assert any(t.startswith(f"{bad}:3:") and "neither a token line" in t for t in text)
    assert any(f"{bad}:5:" in t and "has no reading" in t for t in text)

    folder = tmp_path / "ntrex"
    shutil.copytree(FIX / "ntrex", folder)
    (folder / "eng.txt").write_text("Title\n\nBody.\n", encoding="utf-8")  # an empty line and 3 lines for 5
    (folder / "rus.txt").write_bytes((FIX / "ntrex" / "rus.txt").read_bytes().replace("Лидер".encode(), b"\xff\xfe"))
    problems = []
    read_ntrex(folder, NTREX_FILES, problems)
    text = [str(p) for p in problems]
    assert f"{folder / 'eng.txt'}:2: empty line where a sentence is expected" in text
    assert any(t.startswith(f"{folder / 'eng.txt'}: 3 lines, but kaz.txt has 5") for t in text)
    assert any(t.startswith(f"{folder / 'rus.txt'}:2: invalid UTF-8") for t in text)


def test_checksums_are_pinned_and_a_different_copy_is_refused(tmp_path):
    src = tmp_path / "news"
    shutil.copytree(FIX, src)
    cfg = news_cfg(src)
    assert len(read_sources(cfg.data)) == 5 + 3 + 2
    (src / "flores200" / "kaz.devtest").write_text("Өзгертілген.\nЕкі.\nҮш.\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"kaz.devtest: sha256 .* is not the pinned"):
        read_sources(cfg.data)
    # The shipped config pins the shared files' checksums.
    shipped = compose("build_dataset", ["data=kazakh_news"]).data.sha256
    assert len(shipped) == 7 and all(len(v) == 64 for v in shipped.values())


def test_builder_writes_one_split_with_ids_documents_and_card(tmp_path):
    from datasets import load_from_disk

    out = tmp_path / "built"
    stats = run_build_kazakh_news(news_cfg(FIX, out))
    dsd = load_from_disk(str(out))
    rows = dsd["all"]
    assert len(rows) == 10 and stats["by_source"] == {"ntrex": 5, "flores": 3, "akorda": 2}
    assert stats["documents"] == {"ntrex": 2, "flores": 2, "akorda": 2}
    row = rows[8]
    assert row["id"] == "akorda:1" and row["np_tags"][0] == ["np", "ant"]
    assert "CC BY-SA 4.0" in (out / "README.md").read_text(encoding="utf-8")
    assert json.loads((out / "stats.json").read_text())["sentences"] == 10


def test_missing_file_is_a_clear_error(tmp_path):
    src = tmp_path / "news"
    shutil.copytree(FIX, src)
    cfg = news_cfg(src, pin=False)
    (src / "ntrex" / "rus.txt").unlink()
    with pytest.raises(KnsError, match="rus.txt: file not found"):
        read_sources(cfg.data)
