"""KazSAnDRA review sentences that name an entity: the text of the reviews stance layer (issue 22).

    python scripts/build_dataset.py data=kazsandra_reviews     # the selected sentences, as a dataset

KazSAnDRA (CC BY 4.0; ``shared/data/SOURCES.md``) holds 81,495 Kazakh reviews of apps, shops,
maps and books, each with a polarity label. Reviews praise, thank and blame banks, shops,
mobile operators and apps by name («Каспиге рахмет», «Билайн ... дым дамымаған»): real Kazakh
sentences in which the target is the *object* of an attitude, the case the news text holds
few of. The polarity label is the review's, not a stance toward any one name, so it is never
shown to an annotator and never becomes a stance label.

* Every row of the three zipped CSV files is read (``custom_id``, ``text``, ``domain``,
  ``label``); a file whose checksum differs from the pinned one is refused, and a row without
  an id or text, or with a repeated id, is reported with its file and CSV line.
* A review is cut into sentences (``tokenize.split_sentences``) and tokenized with the
  project's word tokenizer; sentence ``k`` of review ``ID`` is ``kazsandra:ID:k`` and the
  review is its document, so these ids never depend on which sentences were selected.
* Candidate names, shown to the annotators as proposals, come from two cues: a short list of
  brands, operators, banks, shops and apps that reviews name in lower case or transliterated
  (``BRANDS``), and words that this corpus writes capitalised after the first word of a
  sentence (``capitalised_words``). Names of God («Алла», «Құдай») are no target type and are
  never proposed. The annotators mark the targets themselves; the proposals only find the
  sentences.
* ``select_sentences`` draws a seeded sample of such sentences: one sentence per review, no
  repeated text, at most ``per_name`` sentences per proposed name (so that no one name, like
  Kaspi, dominates the layer and a model cannot learn the name instead of the sentence),
  spread over domains in proportion to the corpus.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..errors import DataValidationError, KnsError, Problem
from .kazakh_news import NewsSentence
from .tokenize import split_sentences, words

SOURCE = "kazsandra"
COLUMNS = ("custom_id", "text", "domain", "label")

# Lower-cased word prefixes -> the name they stand for. Reviews write these in lower case,
# in Latin or Cyrillic, and inflect them («каспиге», «билайнның»), hence prefixes.
BRANDS: Mapping[str, str] = {
    "каспи": "Kaspi", "kaspi": "Kaspi", "билайн": "Beeline", "beeline": "Beeline", "теле2": "Tele2",
    "tele2": "Tele2", "алтел": "Altel", "altel": "Altel", "актив": "Activ", "activ": "Activ", "кселл": "Kcell",
    "kcell": "Kcell", "гугл": "Google", "google": "Google", "ватсап": "WhatsApp", "whatsapp": "WhatsApp",
    "инстаграм": "Instagram", "instagram": "Instagram", "ютуб": "YouTube", "youtube": "YouTube",
    "тикток": "TikTok", "tiktok": "TikTok", "телеграм": "Telegram", "telegram": "Telegram", "halyk": "Halyk",
    "homebank": "Halyk", "сбер": "Sber", "jusan": "Jusan", "жусан": "Jusan", "егов": "eGov", "egov": "eGov",
    "казпочта": "Kazpost", "қазпочта": "Kazpost", "kazpost": "Kazpost", "wildberries": "Wildberries",
    "вайлдберриз": "Wildberries", "озон": "Ozon", "ozon": "Ozon", "samsung": "Samsung", "самсунг": "Samsung",
    "iphone": "Apple", "айфон": "Apple", "apple": "Apple", "xiaomi": "Xiaomi", "сяоми": "Xiaomi",
    "huawei": "Huawei", "хуавей": "Huawei", "яндекс": "Yandex", "yandex": "Yandex", "2гис": "2GIS",
    "2gis": "2GIS", "технодом": "Technodom", "technodom": "Technodom", "сулпак": "Sulpak", "sulpak": "Sulpak",
    "алсер": "Alser", "alser": "Alser", "магнум": "Magnum", "magnum": "Magnum", "меломан": "Meloman",
    "marwin": "Marwin", "марвин": "Marwin", "olx": "OLX", "колеса": "Kolesa", "kolesa": "Kolesa",
    "крыша": "Krisha", "krisha": "Krisha", "glovo": "Glovo", "wolt": "Wolt", "netflix": "Netflix",
    "android": "Android", "андроид": "Android", "playmarket": "Play Market", "плеймаркет": "Play Market",
}
# Two-word brands: (first word prefix, second word prefix) -> name.
BRAND_PAIRS: Mapping[tuple[str, str], str] = {
    ("play", "market"): "Play Market", ("плей", "маркет"): "Play Market", ("халық", "банк"): "Halyk",
    ("халык", "банк"): "Halyk", ("home", "bank"): "Halyk", ("app", "store"): "App Store",
}
NOT_TARGETS = ("алла", "құдай", "кудай", "пайғамбар", "allah", "alloh")


@dataclass(frozen=True)
class Review:
    id: str
    file: str
    line: int
    text: str
    domain: str


def read_reviews(root: Path, files: Sequence[str], pinned: Mapping[str, str] | None) -> list[Review]:
    """Every review of the configured zip (or plain CSV) files, after the checksum check; raises
    DataValidationError with every problem found (file and CSV line)."""
    from .download import sha256_file

    root = Path(root)
    problems: list[Problem] = []
    for name in files:
        path = root / name
        if not path.is_file():
            problems.append(Problem(str(path), None, "file not found"))
            continue
        digest = (pinned or {}).get(name)
        if digest and sha256_file(path) != str(digest):
            problems.append(Problem(str(path), None, f"sha256 is not the pinned {digest} (a different copy; set "
                                                      "data.sha256=null to skip the check)"))
    if problems:
        raise DataValidationError(problems)
    reviews: list[Review] = []
    seen: dict[str, str] = {}
    for name in files:
        path = root / name
        for where, handle in _csv_handles(path):
            reviews += _read_csv(handle, where, seen, problems)
    if problems:
        raise DataValidationError(problems)
    return reviews


def _csv_handles(path: Path):
    if path.suffix != ".zip":
        with open(path, encoding="utf-8", newline="") as f:
            yield str(path), f
        return
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise KnsError(f"{path}: not a zip file ({err})") from err
    with zf:
        names = [n for n in zf.namelist() if n.endswith(".csv")]
        if not names:
            raise KnsError(f"{path}: no .csv file inside the zip")
        for inner in names:
            with zf.open(inner) as raw:
                yield f"{path}:{inner}", io.TextIOWrapper(raw, encoding="utf-8", newline="")


def _read_csv(handle, where: str, seen: dict[str, str], problems: list[Problem]) -> list[Review]:
    reader = csv.DictReader(handle)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        problems.append(Problem(where, 1, f"missing column(s) {missing} (the header has {reader.fieldnames})"))
        return []
    out = []
    try:
        for row in reader:
            line = reader.line_num
            rid, text = (row.get("custom_id") or "").strip(), (row.get("text") or "").strip()
            if not rid:
                problems.append(Problem(where, line, "empty custom_id"))
            elif rid in seen:
                problems.append(Problem(where, line, f"custom_id {rid!r} repeats the one of {seen[rid]}"))
            elif not text:
                problems.append(Problem(where, line, f"review {rid!r} has no text"))
            else:
                seen[rid] = f"{where}:{line}"
                out.append(Review(rid, where, line, text, (row.get("domain") or "").strip()))
    except UnicodeDecodeError as err:
        problems.append(Problem(where, reader.line_num + 1, f"not UTF-8 ({err.reason} at byte {err.start})"))
    except csv.Error as err:
        problems.append(Problem(where, reader.line_num, f"unreadable CSV: {err}"))
    return out


def review_sentences(review: Review) -> list[NewsSentence]:
    """The review's sentences, each with the project's tokens; ids ``kazsandra:ID:k``."""
    out = []
    for k, (a, b) in enumerate(split_sentences(review.text)):
        text = review.text[a:b]
        out.append(NewsSentence(id=f"{SOURCE}:{review.id}:{k}", source=SOURCE, doc_id=review.id, line=review.line,
                                text=text, tokens=words(text), domain=review.domain))
    return out


def sentences_by_id(reviews: Iterable[Review], ids: Iterable[str]) -> dict[str, NewsSentence]:
    """The sentences named by `ids` (``kazsandra:ID:k``); an id whose review or sentence does not
    exist raises KnsError naming it."""
    wanted = defaultdict(set)
    for sid in ids:
        parts = sid.split(":")
        if len(parts) != 3 or parts[0] != SOURCE or not parts[2].isdigit():
            raise KnsError(f"{sid!r} is no KazSAnDRA sentence id (kazsandra:REVIEW:K)")
        wanted[parts[1]].add(sid)
    out = {}
    for r in reviews:
        if r.id in wanted:
            for s in review_sentences(r):
                if s.id in wanted[r.id]:
                    out[s.id] = s
    missing = sorted({i for v in wanted.values() for i in v} - set(out))
    if missing:
        raise KnsError(f"{len(missing)} KazSAnDRA sentence id(s) not found in the reviews, e.g. {missing[:3]}")
    return out


def _god(word: str) -> bool:
    low = word.lower()
    return any(name in low for name in NOT_TARGETS)


def capitalised_words(sentences: Iterable[Sequence[str]], min_count: int = 3, share: float = 0.8) -> set[str]:
    """Lower-cased words that the corpus writes capitalised in at least `share` of their
    occurrences after a sentence's first word (and at least `min_count` times): proper names by
    usage, where a list of common words would never be complete."""
    upper, total = Counter(), Counter()
    for tokens in sentences:
        for i, tok in enumerate(tokens):
            if i == 0 or not tok[:1].isalpha() or len(tok) < 2 or tok.isupper():
                continue
            key = tok.lower()
            total[key] += 1
            if tok[0].isupper() and tokens[i - 1] not in {".", "!", "?", "…"}:
                upper[key] += 1
    return {w for w, n in upper.items() if n >= min_count and n >= share * total[w] and not _god(w)}


def candidate_names(tokens: Sequence[str], capitalised: set[str]) -> list[tuple[int, int, str]]:
    """Proposed name spans ``(start, end, name)``; ``name`` is the brand, or the word itself."""
    low = [t.lower() for t in tokens]
    out, i = [], 0
    while i < len(tokens):
        pair = BRAND_PAIRS.get((low[i], low[i + 1][:6])) if i + 1 < len(tokens) else None
        if pair is None and i + 1 < len(tokens):
            pair = next((n for (a, b), n in BRAND_PAIRS.items() if low[i].startswith(a) and low[i + 1].startswith(b)),
                        None)
        if pair:
            out.append((i, i + 2, pair))
            i += 2
            continue
        brand = next((n for p, n in BRANDS.items() if low[i].startswith(p)), None)
        if brand:
            out.append((i, i + 1, brand))
        elif i > 0 and tokens[i][:1].isupper() and low[i] in capitalised:
            out.append((i, i + 1, tokens[i]))
        i += 1
    return out


def select_sentences(reviews: Sequence[Review], n: int, seed: int = 22, per_name: int = 25, min_tokens: int = 4,
                     max_tokens: int = 40) -> list[NewsSentence]:
    """A seeded sample of `n` review sentences that hold a proposed name: one per review, no
    repeated text, at most `per_name` per name, domains in proportion to the candidates."""
    sents = [s for r in reviews for s in review_sentences(r)]
    capitalised = capitalised_words(s.tokens for s in sents)
    pool: dict[str, list[tuple[NewsSentence, list[str]]]] = defaultdict(list)
    for s in sents:
        if not min_tokens <= len(s.tokens) <= max_tokens:
            continue
        names = [name.lower() for _, _, name in candidate_names(s.tokens, capitalised)]
        if names:
            pool[s.domain].append((s, names))
    rng = random.Random(seed)
    total = sum(len(v) for v in pool.values())
    if total == 0:
        raise KnsError("no review sentence holds a proposed name")
    quota = {d: round(n * len(v) / total) for d, v in pool.items()}
    chosen, used_reviews, used_text, per = [], set(), set(), Counter()
    for domain in sorted(pool):
        items = list(pool[domain])
        rng.shuffle(items)
        taken = 0
        for s, names in items:
            if taken >= quota[domain]:
                break
            key = " ".join(s.tokens).lower()
            if s.doc_id in used_reviews or key in used_text or any(per[m] >= per_name for m in names):
                continue
            chosen.append(s)
            used_reviews.add(s.doc_id)
            used_text.add(key)
            per.update(set(names))
            taken += 1
    chosen.sort(key=lambda s: s.id)
    return chosen


def proposal_tags(sentence: NewsSentence, capitalised: set[str]) -> list[list[str]]:
    """Per token, ``["cand"]`` where a proposed name covers it (the annotation batches list them)."""
    tags: list[list[str]] = [[] for _ in sentence.tokens]
    for a, b, _ in candidate_names(sentence.tokens, capitalised):
        for i in range(a, b):
            tags[i] = ["cand"]
    return tags


def read_configured(data_cfg) -> list[Review]:
    return read_reviews(Path(str(data_cfg.source_dir)), list(data_cfg.files), data_cfg.get("sha256"))


def selected_sentences(data_cfg) -> list[NewsSentence]:
    """The configured sample (``data.selection``), each sentence with its proposals in ``np_tags``."""
    reviews = read_configured(data_cfg)
    sel = data_cfg.selection
    chosen = select_sentences(reviews, int(sel.n), int(sel.seed), int(sel.per_name), int(sel.min_tokens),
                              int(sel.max_tokens))
    capitalised = capitalised_words(s.tokens for r in reviews for s in review_sentences(r))
    for s in chosen:
        s.np_tags = proposal_tags(s, capitalised)
    return chosen


def run_build_kazsandra_reviews(cfg) -> dict:
    """Hydra entry point (`data.builder`): the selected sentences as a one-split dataset."""
    from datasets import Dataset, DatasetDict

    from .kazakh_news import news_features
    from .stance_dataset import _write_aside

    chosen = selected_sentences(cfg.data)
    stats = {"sentences": len(chosen), "domains": dict(Counter(s.domain for s in chosen))}

    def write(tmp: Path):
        DatasetDict({"train": Dataset.from_list([s.as_row() for s in chosen], features=news_features())}).save_to_disk(
            str(tmp))
        (tmp / "README.md").write_text(
            "# KazSAnDRA review sentences that name an entity\n\nThe sentences the reviews stance layer was annotated "
            "over (data/stance/README.md); KazSAnDRA, CC BY 4.0 (Yeshpanov and Varol, 2024).\n", encoding="utf-8")

    out_dir = Path(str(cfg.out_dir))
    _write_aside(write, out_dir, bool(cfg.get("overwrite", True)))
    print(f"KazSAnDRA review sentences: {len(chosen)} -> {out_dir}")
    return stats

