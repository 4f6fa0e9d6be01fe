"""Readers for the extra Kazakh news-like text (issue 22): NTREX-128, FLORES-200 and Akorda.

    python scripts/build_dataset.py data=kazakh_news

Three sources in ``shared/data/kazakh_news_extra/`` (CC BY-SA 4.0, provenance in SOURCES.md):

* ``ntrex/``: NTREX-128, the WMT19 news test set translated into Kazakh; three files aligned
  line by line (Kazakh, English, Russian). The files mark no document boundaries, so a
  document starts at a headline: a line whose English has no sentence-final punctuation
  (consecutive headline lines, a title and its sub-title, start one document together).
  This finds 123-136 documents for WMT19's 123; an article cut in two at a sub-heading makes
  two groups, never one group across two articles' sentences it should not share.
* ``flores200/``: FLORES-200 devtest, three aligned files plus ``metadata_devtest.tsv``
  (URL, domain, topic per line); consecutive lines with the same URL are one document.
* ``akorda/``: sentences from the President's site in VISL CG-3 stream format. The reader
  keeps the surface tokens as they are (already tokenized) and each token's proper-noun
  analysis (``np`` with its sub-tags: ``ant`` given name, ``cog`` surname, ``top`` place,
  ``org`` organisation, ``al`` other), and the ``# kaz<TAB>eng`` translation comment when a
  sentence has one. The file is a random sample, so each sentence is its own document.

Every sentence gets an id ``<source>:<line>`` (1-based line of the Kazakh file; for Akorda
the line of its first token), a ``doc_id``, the project's word tokens (``data.tokenize``) and
the English / Russian line beside it. A file whose checksum differs from the pinned one is
refused; a line that cannot be read (not UTF-8, empty where text is expected, a CG-3 line of
unknown shape) is reported with its file and line, and nothing is built.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import DataValidationError, KnsError, Problem, invalid_utf8_message
from .tokenize import words

SOURCES = ("ntrex", "flores", "akorda")
NP_KINDS = ("ant", "cog", "top", "org", "al")
# A sentence ends with one of these (after closing quotes/brackets): used to tell a headline.
_FINAL = re.compile(r"[.?!…:;][\"'”’»)\]]*\s*$|[\"'”’»]\s*$")


@dataclass
class NewsSentence:
    id: str
    source: str
    doc_id: str
    line: int
    text: str
    tokens: list[str]
    eng: str = ""
    rus: str = ""
    domain: str = ""
    topic: str = ""
    # Akorda only: per token, the CG-3 proper-noun sub-tags ([] for a token that is no np).
    np_tags: list[list[str]] = field(default_factory=list)

    def as_row(self) -> dict:
        return {"id": self.id, "source": self.source, "doc_id": self.doc_id, "line": self.line, "text": self.text,
                "tokens": list(self.tokens), "eng": self.eng, "rus": self.rus, "domain": self.domain,
                "topic": self.topic, "np_tags": [list(t) for t in self.np_tags] or [[] for _ in self.tokens]}


def read_lines(path: Path, problems: list[Problem], allow_empty: bool = False) -> list[str]:
    """The file's lines (no final empty line); undecodable or empty lines become Problems."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise KnsError(f"{path}: file not found") from err
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for number, raw_line in enumerate(lines, start=1):
        try:
            text = raw_line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as err:
            problems.append(Problem(str(path), number, invalid_utf8_message(raw_line, err)))
            text = ""
        else:
            if not allow_empty and not text.strip():
                problems.append(Problem(str(path), number, "empty line where a sentence is expected"))
        out.append(text)
    return out


def _aligned(kaz: Path, others: Mapping[str, Path], problems: list[Problem]) -> tuple[list[str], dict[str, list[str]]]:
    kk = read_lines(kaz, problems)
    rest = {}
    for name, path in others.items():
        lines = read_lines(path, problems)
        if len(lines) != len(kk):
            problems.append(Problem(str(path), None, f"{len(lines)} lines, but {kaz.name} has {len(kk)}: the files "
                                                     "must be aligned line by line"))
        rest[name] = lines
    return kk, rest


def is_headline(english: str) -> bool:
    return bool(english.strip()) and not _FINAL.search(english)


def ntrex_documents(english: Sequence[str]) -> list[int]:
    """Document number per line: a new one at each headline that follows a non-headline."""
    doc, out, prev_head = -1, [], False
    for i, line in enumerate(english):
        head = is_headline(line)
        if i == 0 or (head and not prev_head):
            doc += 1
        out.append(doc)
        prev_head = head
    return out


def read_ntrex(folder: Path, files: Mapping[str, str], problems: list[Problem]) -> list[NewsSentence]:
    folder = Path(folder)
    kaz = folder / files["kaz"]
    kk, other = _aligned(kaz, {"eng": folder / files["eng"], "rus": folder / files["rus"]}, problems)
    eng, rus = other["eng"], other["rus"]
    docs = ntrex_documents(eng) if len(eng) == len(kk) else [0] * len(kk)
    out = []
    for i, text in enumerate(kk):
        out.append(NewsSentence(id=f"ntrex:{i + 1}", source="ntrex", doc_id=f"ntrex-doc{docs[i] + 1:03d}", line=i + 1,
                                text=text, tokens=words(text), eng=_at(eng, i), rus=_at(rus, i)))
    return out


def _at(lines: Sequence[str], i: int) -> str:
    return lines[i] if i < len(lines) else ""


def read_flores(folder: Path, files: Mapping[str, str], problems: list[Problem]) -> list[NewsSentence]:
    folder = Path(folder)
    kaz = folder / files["kaz"]
    kk, other = _aligned(kaz, {"eng": folder / files["eng"], "rus": folder / files["rus"]}, problems)
    meta_path = folder / files["metadata"]
    meta_lines = read_lines(meta_path, problems)
    header = meta_lines[0].split("\t") if meta_lines else []
    need = ("URL", "domain", "topic")
    if any(h not in header for h in need):
        problems.append(Problem(str(meta_path), 1, f"header {header} lacks one of {list(need)}"))
        return []
    col = {h: header.index(h) for h in need}
    meta = []
    for number, line in enumerate(meta_lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            problems.append(Problem(str(meta_path), number, f"{len(fields)} tab-separated fields, expected {len(header)}"))
            fields = (fields + [""] * len(header))[:len(header)]
        meta.append({h: fields[c] for h, c in col.items()})
    if len(meta) != len(kk):
        problems.append(Problem(str(meta_path), None, f"{len(meta)} metadata rows, but {kaz.name} has {len(kk)} lines"))
    doc_of_url: dict[str, int] = {}
    out, prev_url, doc = [], None, 0
    for i, text in enumerate(kk):
        m = meta[i] if i < len(meta) else {"URL": "", "domain": "", "topic": ""}
        if m["URL"] != prev_url:  # consecutive lines of one URL: one document
            doc = doc_of_url.setdefault(m["URL"], len(doc_of_url) + 1) if m["URL"] else len(doc_of_url) + 1 + i
        prev_url = m["URL"]
        out.append(NewsSentence(id=f"flores:{i + 1}", source="flores", doc_id=f"flores-doc{doc:03d}", line=i + 1,
                                text=text, tokens=words(text), eng=_at(other["eng"], i), rus=_at(other["rus"], i),
                                domain=m["domain"], topic=m["topic"]))
    return out


_CG_TOKEN = re.compile(r'^"<(.*)>"\s*$')
_CG_READING = re.compile(r'^\s+"(.*)"((?:\s+\S+)*)\s*$')


def read_cg3(path: Path, problems: list[Problem], source: str = "akorda") -> list[NewsSentence]:
    """A VISL CG-3 stream: ``"<surface>"`` token lines, tab-indented reading lines
    (``"lemma" tag tag ...``), ``#`` comment lines (``# kaz<TAB>eng``), blank lines between
    sentences. The first reading of a token decides its proper-noun tags."""
    path = Path(path)
    lines = read_lines(path, problems, allow_empty=True)
    out: list[NewsSentence] = []
    tokens: list[str] = []
    nps: list[list[str]] = []
    first_line = 0
    eng = ""
    has_reading: list[bool] = []  # per CG-3 token (a multi-word unit is one)
    start_of_unit: list[int] = []  # its first word's index in `tokens`

    def flush():
        nonlocal tokens, nps, eng, has_reading, start_of_unit
        if tokens:
            for k, ok in enumerate(has_reading):
                if not ok:
                    problems.append(Problem(str(path), first_line, f"token {k + 1} ({tokens[start_of_unit[k]]!r}) of "
                                                                   "the sentence has no reading"))
            n = len(out) + 1
            out.append(NewsSentence(id=f"{source}:{first_line}", source=source, doc_id=f"{source}-doc{n:03d}",
                                    line=first_line, text=" ".join(tokens), tokens=list(tokens), eng=eng,
                                    np_tags=nps))
        tokens, nps, eng, has_reading, start_of_unit = [], [], "", [], []

    pending_eng = ""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            if tokens:
                flush()
            parts = line[1:].split("\t")
            pending_eng = parts[1].strip() if len(parts) > 1 else ""
            continue
        m = _CG_TOKEN.match(line)
        if m:
            if not tokens:
                first_line = number
                eng, pending_eng = pending_eng, ""
            parts = m.group(1).split()
            if not parts:
                problems.append(Problem(str(path), number, "an empty token"))
                continue
            # A multi-word unit («жүзеге асыру») becomes one token per word, all sharing its reading.
            start_of_unit.append(len(tokens))
            tokens.extend(parts)
            nps.extend([] for _ in parts)
            has_reading.append(False)
            continue
        r = _CG_READING.match(line)
        if r and tokens:
            if not has_reading[-1]:
                tags = r.group(2).split()
                if "np" in tags:
                    for k in range(start_of_unit[-1], len(tokens)):
                        nps[k] = ["np"] + [t for t in tags if t in NP_KINDS]
                has_reading[-1] = True
            continue
        problems.append(Problem(str(path), number, "neither a token line (\"<word>\"), a reading (tab, \"lemma\" "
                                                   "tags), a comment (#) nor a blank line"
                                if not r else "a reading line before any token"))
    flush()
    return out


def np_spans(np_tags: Sequence[Sequence[str]]) -> list[tuple[int, int, list[str]]]:
    """Proper-noun tokens as (start, end, tags) spans, proposals for the annotators. A given
    name joins the names after it («Дмитрий Медведевтің»: ant + cog, one person); any other
    proper noun is a span of its own («Медведевтің Астанаға» are two)."""
    spans: list[tuple[int, int, list[str]]] = []
    for i, tags in enumerate(np_tags):
        if not tags:
            continue
        kinds = [t for t in tags if t != "np"]
        if spans and spans[-1][1] == i and "ant" in spans[-1][2] and set(kinds) & {"ant", "cog"}:
            s, _, prev = spans[-1]
            spans[-1] = (s, i + 1, sorted(set(prev) | set(kinds)))
        else:
            spans.append((i, i + 1, sorted(kinds)))
    return spans


def read_sources(data_cfg) -> list[NewsSentence]:
    """Every configured source, after the checksum check; raises DataValidationError with every
    problem found."""
    from .download import sha256_file

    root = Path(str(data_cfg.source_dir))
    problems: list[Problem] = []
    pinned = data_cfg.get("sha256") or {}
    for rel, digest in pinned.items():
        path = root / rel
        if not path.is_file():
            problems.append(Problem(str(path), None, "file not found"))
            continue
        actual = sha256_file(path)
        if actual != str(digest):
            problems.append(Problem(str(path), None, f"sha256 {actual} is not the pinned {digest} "
                                                      "(a different copy; set data.sha256=null to skip the check)"))
    if problems:
        raise DataValidationError(problems)
    out: list[NewsSentence] = []
    src = data_cfg.sources
    for name in SOURCES:
        node = src.get(name)
        if not node or not node.get("enabled", True):
            continue
        if name == "ntrex":
            out += read_ntrex(root / node.dir, node.files, problems)
        elif name == "flores":
            out += read_flores(root / node.dir, node.files, problems)
        else:
            out += read_cg3(root / node.dir / node.file, problems, source=name)
    for s in out:
        if s.text.strip() and not s.tokens:
            problems.append(Problem(s.id, s.line, "no tokens"))
    if problems:
        raise DataValidationError(problems)
    return out


def news_features():
    from datasets import Features, List, Value

    return Features({
        "id": Value("string"), "source": Value("string"), "doc_id": Value("string"), "line": Value("int32"),
        "text": Value("string"), "tokens": List(Value("string")), "eng": Value("string"), "rus": Value("string"),
        "domain": Value("string"), "topic": Value("string"), "np_tags": List(List(Value("string"))),
    })


def news_stats(sentences: Sequence[NewsSentence]) -> dict:
    by_source = Counter(s.source for s in sentences)
    docs = {src: len({s.doc_id for s in sentences if s.source == src}) for src in by_source}
    return {
        "sentences": len(sentences), "tokens": sum(len(s.tokens) for s in sentences),
        "by_source": dict(by_source), "documents": docs,
        "akorda_proper_noun_spans": sum(len(np_spans(s.np_tags)) for s in sentences if s.np_tags),
        "with_english": sum(bool(s.eng) for s in sentences),
    }


CITATIONS = """\
- NTREX-128: Federmann, Kocmi, Xin. NTREX-128 – News Test References for MT Evaluation of 128 Languages. SUMEval 2022.
- FLORES-200: NLLB Team. No Language Left Behind: Scaling Human-Centered Machine Translation. 2022.
- Akorda: apertium-kaz, `texts/akorda-random.tagged.txt` (Apertium project), CC BY-SA 4.0."""


def _card(stats: Mapping, data_cfg) -> str:
    from .markdown import markdown_table

    rows = [[src, stats["by_source"][src], stats["documents"][src]] for src in stats["by_source"]]
    return "\n".join([
        "---", "license: cc-by-sa-4.0", "language:", "- kk", "- en", "- ru", "pretty_name: Kazakh news-like text "
        "(NTREX-128, FLORES-200, Akorda)", "---", "",
        "# Kazakh news-like text for the stance layer", "",
        "Unannotated Kazakh sentences, each with its document id, the project's word tokens and the aligned "
        "English / Russian line (NTREX, FLORES). Akorda sentences keep their CG-3 surface tokens and proper-noun "
        "analyses (`np_tags`). The stance layer over them is `data/stance/kazakh_news_stance.jsonl`.", "",
        markdown_table(["source", "sentences", "documents"], rows), "",
        f"{stats['tokens']} tokens; {stats['akorda_proper_noun_spans']} proper-noun spans in Akorda.", "",
        "NTREX documents are found by headline (no sentence-final punctuation in the English line); FLORES "
        "documents by the metadata URL; each Akorda sentence is its own document.", "",
        "## Licence and citation", "", "CC BY-SA 4.0, inherited from every source.", "", CITATIONS, "",
    ])


def run_build_kazakh_news(cfg) -> dict:
    """Hydra entry point (`data.builder`): one split, `all`, of every sentence."""
    from datasets import Dataset, DatasetDict

    from .stance_dataset import _write_aside

    sentences = read_sources(cfg.data)
    stats = news_stats(sentences)
    if not bool(cfg.get("progress", True)):
        import datasets

        datasets.disable_progress_bars()

    def write(tmp: Path):
        DatasetDict({"all": Dataset.from_list([s.as_row() for s in sentences], features=news_features())}).save_to_disk(
            str(tmp))
        (tmp / "README.md").write_text(_card(stats, cfg.data), encoding="utf-8")
        (tmp / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    out_dir = Path(str(cfg.out_dir))
    _write_aside(write, out_dir, bool(cfg.get("overwrite", True)))
    print(f"Kazakh news-like text: {out_dir}")
    for src, n in stats["by_source"].items():
        print(f"  {src:<7} {n:>5} sentences in {stats['documents'][src]} documents")
    stats["dataset_dir"] = str(out_dir)
    return stats
