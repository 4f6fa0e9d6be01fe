"""Stance candidates from raw Kazakh text: sentence split, tokenise, find targets, emit items.

Targets come from a NER checkpoint (any `predict(tokens_list) -> tags_list` callable; by
default `kazakh_ner_stance.tasks.ner.predict_word_tags` over `load_ner_checkpoint(dir)`),
and/or from a configured list of target names matched with their Kazakh case forms
(Тоқаев, Тоқаевтың, Тоқаевқа; Астана, Астанада, Астанадан; multiword names inflect on
their last word: Біріккен Ұлттар Ұйымының).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import KnsError
from . import TARGET_TYPES
from ..data.stance_join import entity_spans

Predictor = Callable[[list[list[str]]], list[list[str]]]

BACK_VOWELS = set("аоұыяёю")
FRONT_VOWELS = set("әөүіеэи")
VOWELS = BACK_VOWELS | FRONT_VOWELS | {"у"}
SONANTS = set("йурлжз")  # voiced, non-nasal
NASALS = set("мнң")


def kk_lower(text: str) -> str:
    return text.lower()


def is_back(stem: str) -> bool:
    """Vowel harmony: the last unambiguous vowel decides (у is skipped); default back. The
    Russian-style surname endings -ев/-ов/-ева/-ова do not count: the root decides
    (Тоқаевтың, Назарбаевқа, but Медведевтің)."""
    low = kk_lower(stem)
    for ending in ("ева", "ова", "ёва", "ев", "ов", "ёв"):
        if low.endswith(ending) and len(low) > len(ending) + 1:
            low = low[: -len(ending)]
            break
    for ch in reversed(low):
        if ch in BACK_VOWELS:
            return True
        if ch in FRONT_VOWELS:
            return False
    return True


def case_forms(word: str) -> set[str]:
    """Lower-cased surface forms of `word` in the Kazakh cases (nominative, genitive,
    accusative, dative, locative (+ attributive -ғы/-гі), ablative, instrumental), following
    vowel harmony and the consonant assimilation of the last letter. Words ending in ы/і also
    get the pronominal forms of a 3rd-person possessive (Ұйымына, Ұйымында, Ұйымынан, Ұйымын).
    Abbreviations and numbers take a hyphenated suffix in any variant (АҚШ-тың, АҚШ-қа)."""
    w = kk_lower(word)
    if not w:
        return set()
    back = is_back(w)
    a, y = ("а", "ы") if back else ("е", "і")
    last = w[-1]
    if last in VOWELS - {"у"}:
        g, acc, dat, loc, abl = "н", "н", ("ғ" if back else "г"), "д", "д"
    elif last in SONANTS:
        g, acc, dat, loc, abl = "д", "д", ("ғ" if back else "г"), "д", "д"
    elif last in NASALS:
        g, acc, dat, loc, abl = "н", "д", ("ғ" if back else "г"), "д", "н"
    else:  # voiceless, and б в г д as pronounced devoiced at the end of a word
        g, acc, dat, loc, abl = "т", "т", ("қ" if back else "к"), "т", "т"
    attr = "ғы" if back else "гі"
    forms = {
        w,
        w + g + y + "ң",
        w + acc + y,
        w + dat + a,
        w + loc + a,
        w + loc + a + attr,
        w + abl + a + "н",
        w + "мен", w + "бен", w + "пен",
    }
    if last in ("ы", "і"):  # possessive 3rd person: the pronominal n
        forms |= {w + "н", w + "н" + a, w + "нд" + a, w + "нд" + a + attr, w + "н" + a + "н", w + "мен"}
    if not any(ch in VOWELS for ch in w) or w.upper() == word or any(ch.isdigit() for ch in w):
        # Abbreviation or number: hyphenated suffix, harmony by pronunciation; accept all.
        for suffix in ("ның", "нің", "дың", "дің", "тың", "тің", "ны", "ні", "ды", "ді", "ты", "ті",
                       "ға", "ге", "қа", "ке", "да", "де", "та", "те", "дан", "ден", "тан", "тен", "нан", "нен",
                       "дағы", "дегі", "тағы", "тегі", "мен", "бен", "пен"):
            forms.add(f"{w}-{suffix}")
    return forms


@dataclass
class NamePattern:
    name: str
    type: str | None
    prefix: tuple[str, ...]  # lower-cased words before the last
    last_forms: frozenset[str]

    @property
    def length(self) -> int:
        return len(self.prefix) + 1


class NameMatcher:
    """Finds configured target names (any case form of the last word) in token lists."""

    def __init__(self, names: Iterable[str | Mapping]):
        self.patterns: list[NamePattern] = []
        for entry in names:
            if isinstance(entry, str):
                entry = {"name": entry}
            name = str(entry.get("name", "")).strip()
            if not name:
                raise KnsError(f"stance candidates: a target name is empty ({entry!r})")
            words = name.split()
            forms = set()
            for variant in [words[-1], *entry.get("forms", [])]:
                forms |= case_forms(variant)
            self.patterns.append(
                NamePattern(name, entry.get("type"), tuple(kk_lower(w) for w in words[:-1]), frozenset(forms))
            )
        self.patterns.sort(key=lambda p: -p.length)

    def find(self, tokens: Sequence[str]) -> list[tuple[int, int, NamePattern]]:
        low = [kk_lower(t) for t in tokens]
        taken = [False] * len(tokens)
        found = []
        for p in self.patterns:  # longest names first; no overlaps
            n = p.length
            for i in range(len(tokens) - n + 1):
                if any(taken[i : i + n]):
                    continue
                if tuple(low[i : i + n - 1]) == p.prefix and low[i + n - 1] in p.last_forms:
                    found.append((i, i + n, p))
                    for k in range(i, i + n):
                        taken[k] = True
        return sorted(found, key=lambda f: f[0])


def default_predictor(checkpoint_dir: str | Path) -> Predictor:
    """Word-level NER tags from a trained checkpoint (the lead's tasks.ner API)."""
    from ..tasks.ner import load_ner_checkpoint, predict_word_tags

    loaded = load_ner_checkpoint(checkpoint_dir)
    if isinstance(loaded, tuple):
        model, tokenizer = loaded[0], loaded[1]
    else:
        model, tokenizer = loaded.model, loaded.tokenizer
    return lambda tokens_list: predict_word_tags(model, tokenizer, tokens_list)


def read_documents(paths: Iterable[str | Path]) -> list[tuple[str, str]]:
    """(doc_id, text): a .txt file is one document (id = file name without suffix); a .jsonl
    file holds one `{"id", "text"}` object per line."""
    docs = []
    for p in paths:
        path = Path(str(p))
        if not path.is_file():
            raise KnsError(f"{path}: input file not found")
        if path.suffix == ".jsonl":
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    docs.append((str(obj.get("id") or f"{path.stem}-{number}"), str(obj["text"])))
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise KnsError(f"{path}:{number}: expected a JSON object with 'text' ({err})") from err
        else:
            docs.append((path.stem, path.read_text(encoding="utf-8")))
    return docs


def extract_candidates(
    docs: Sequence[tuple[str, str]],
    matcher: NameMatcher | None = None,
    predictor: Predictor | None = None,
    target_types: Sequence[str] = TARGET_TYPES,
    split_fn: Callable[[str], list[tuple[int, int]]] | None = None,
    tokenize_fn: Callable[[str], list[tuple[str, int, int]]] | None = None,
    batch_size: int = 32,
) -> list[dict]:
    """Candidate stance items (one per target span per sentence)."""
    if matcher is None and predictor is None:
        raise KnsError("stance candidates: configure target names and/or a NER checkpoint")
    if split_fn is None or tokenize_fn is None:
        from ..data.tokenize import split_sentences, tokenize_words

        split_fn = split_fn or split_sentences
        tokenize_fn = tokenize_fn or tokenize_words
    sentences = []  # (doc_id, sent_id, text, tokens, char spans, offset)
    for doc_id, text in docs:
        for k, (s, e) in enumerate(split_fn(text)):
            sent_text = text[s:e]
            toks = tokenize_fn(sent_text)
            if not toks:
                continue
            sentences.append(
                (doc_id, f"{doc_id}-s{k:04d}", sent_text, [t for t, _, _ in toks], [(a + s, b + s) for _, a, b in toks])
            )
    predicted: list[list[str] | None] = [None] * len(sentences)
    if predictor is not None:
        for i in range(0, len(sentences), batch_size):
            batch = [sent[3] for sent in sentences[i : i + batch_size]]
            tags = predictor(batch)
            if len(tags) != len(batch) or any(len(t) != len(b) for t, b in zip(tags, batch)):
                raise KnsError("the NER predictor returned a different number of sentences or tags than it was given")
            predicted[i : i + len(batch)] = [list(t) for t in tags]
    items = []
    for (doc_id, sent_id, _text, tokens, chars), tags in zip(sentences, predicted):
        spans: dict[tuple[int, int], dict] = {}
        if tags is not None:
            for s, e, t in entity_spans(tags):
                if t in target_types:
                    spans[(s, e)] = {"type": t, "source": "ner"}
        if matcher is not None:
            for s, e, p in matcher.find(tokens):
                if any(not (e <= a or s >= b) for a, b in spans):
                    continue  # the NER span wins where they overlap
                spans[(s, e)] = {"type": p.type, "source": "names", "name": p.name}
        for (s, e), info in sorted(spans.items()):
            items.append(
                {
                    "id": f"{sent_id}:{s}-{e}",
                    "doc_id": doc_id,
                    "sent_id": sent_id,
                    "tokens": tokens,
                    "start": s,
                    "end": e,
                    "target": " ".join(tokens[s:e]),
                    "type": info["type"],
                    "source": info["source"],
                    **({"name": info["name"]} if "name" in info else {}),
                    "char_start": chars[s][0],
                    "char_end": chars[e - 1][1],
                }
            )
    return items


def iob2_candidates(sentences, target_types: Sequence[str] = TARGET_TYPES) -> list[dict]:
    """Candidates from gold NER spans of an IOB2 file with sentence IDs (for curating gold)."""
    items = []
    for sent in sentences:
        for s, e, t in entity_spans(sent.tags):
            if t in target_types:
                items.append(
                    {
                        "id": f"{sent.sent_id}:{s}-{e}",
                        "sent_id": sent.sent_id,
                        "tokens": list(sent.tokens),
                        "start": s,
                        "end": e,
                        "target": " ".join(sent.tokens[s:e]),
                        "type": t,
                        "source": "iob2",
                    }
                )
    return items
