"""Weak stance labels: Kazakh cue-lexicon labelling functions (LFs) that may abstain.

Each LF sees one (sentence tokens, target span) item and returns "FAVOR", "AGAINST", "NONE" or
None (abstain). The lexicon (lexicons/default.yaml, or any YAML of the same shape) holds the
cues; the LFs hold the grammar: Kazakh is SOV, so a cue verb's object (the target) comes
before it in an oblique case, its nominative subject is the reported agent (NONE), passive
cues evaluate their nominative subject, «X-ға қарсы» is against X, negation flips support to
AGAINST, «қарсы алу» (welcome) is FAVOR unless a holiday is welcomed, and «қарсы» that is part
of a name (сыбайлас жемқорлыққа қарсы қызмет) is no stance at all.

`weak_label_evaluation.evaluate` scores the LFs and their majority vote against gold labels.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import KnsError
from . import STANCE_LABELS

LEXICON_DIR = Path(__file__).resolve().parent / "lexicons"
_NEG_RE = re.compile(r"^(ма|ме|ба|бе|па|пе)(?![қкн])")

# Case endings on the last token of a target (KazNERD spans include the inflected word).
_CASES: list[tuple[str, re.Pattern]] = [
    ("GEN", re.compile(r"(ның|нің|дың|дің|тың|тің)$")),
    ("LOC", re.compile(r"(дағы|дегі|тағы|тегі|ндағы|ндегі)$")),
    ("ABL", re.compile(r"(дан|ден|тан|тен|нан|нен)$")),
    ("INS", re.compile(r"(менен|мен|бен|пен)$")),
    ("LOC", re.compile(r"(да|де|та|те)$")),
    ("DAT", re.compile(r"(ға|ге|қа|ке|[ыі]на|[ыі]не|[ыі]а|[ыі]е)$")),
    ("ACC", re.compile(r"(ны|ні|ды|ді|ты|ті|[ыі]н|сын|сін)$")),
]
OBJECT_CASES = {"ACC", "DAT", "GEN", "ABL"}


def kk_lower(text: str) -> str:
    return text.lower()


def case_of(token: str) -> str:
    """Rough morphological case of an inflected Kazakh word (NOM when no ending is seen)."""
    low = kk_lower(token)
    if len(low) <= 3:
        return "NOM"
    for name, pattern in _CASES:
        if pattern.search(low):
            return name
    return "NOM"


@dataclass
class Item:
    """One (sentence, target) pair seen by the labelling functions."""

    tokens: Sequence[str]
    start: int
    end: int
    type: str | None = None


# --------------------------------------------------------------------------- lexicon


@dataclass
class Cue:
    parts: tuple[str, ...]  # lower-case prefixes; the last one is the negatable stem
    exclude: tuple[re.Pattern, ...] = ()


@dataclass
class Lexicon:
    favor_active: list[Cue]
    favor_passive: list[Cue]
    against_active: list[Cue]
    against_passive: list[Cue]
    postpositions_against: list[str]
    name_nouns: set[str]
    idioms: list[dict]
    negators: set[str]
    light_verbs: list[str]
    boundaries: set[str]
    location_types: set[str]
    epithets_favor: set[str] = field(default_factory=set)
    epithets_against: set[str] = field(default_factory=set)
    epithet_window: int = 2


def _cues(entries, where: str) -> list[Cue]:
    cues = []
    for entry in entries or []:
        if isinstance(entry, str):
            entry = {"stem": entry}
        if "stem" not in entry:
            raise KnsError(f"{where}: a cue needs a 'stem' ({entry!r})")
        try:
            exclude = tuple(re.compile(p) for p in entry.get("exclude", []) or [])
        except re.error as err:
            raise KnsError(f"{where}: bad exclude pattern in {entry!r}: {err}") from err
        cues.append(Cue(tuple(kk_lower(entry["stem"]).split()), exclude))
    return cues


def load_lexicon(source: str | Path | Mapping = "default") -> Lexicon:
    """`default` (the packaged lexicon), a lexicon name under lexicons/, a YAML path, or a dict."""
    if isinstance(source, Mapping):
        raw, where = dict(source), "<lexicon>"
    else:
        path = Path(str(source))
        if not path.suffix:
            path = LEXICON_DIR / f"{source}.yaml"
        if not path.is_file():
            raise KnsError(f"{path}: lexicon file not found")
        where = str(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise KnsError(f"{where}: not valid YAML: {err}") from err
    favor, against = raw.get("favor", {}) or {}, raw.get("against", {}) or {}
    for idiom in raw.get("idioms", []) or []:
        if idiom.get("label") not in (*STANCE_LABELS, None):
            raise KnsError(f"{where}: idiom {idiom.get('name')!r} has unknown label {idiom.get('label')!r}")
    return Lexicon(
        favor_active=_cues(favor.get("active"), where),
        favor_passive=_cues(favor.get("passive"), where),
        against_active=_cues(against.get("active"), where),
        against_passive=_cues(against.get("passive"), where),
        postpositions_against=[kk_lower(w) for w in (raw.get("postpositions", {}) or {}).get("against", [])],
        name_nouns={kk_lower(w) for w in raw.get("name_nouns", []) or []},
        idioms=[
            {**i, "parts": tuple(kk_lower(i["stem"]).split()), "abstain_objects": [kk_lower(w) for w in i.get("abstain_objects", [])]}
            for i in raw.get("idioms", []) or []
        ],
        negators={kk_lower(w) for w in raw.get("negators", []) or []},
        light_verbs=[kk_lower(w) for w in raw.get("light_verbs", []) or []],
        boundaries={kk_lower(w) for w in raw.get("boundaries", []) or []},
        location_types=set(raw.get("location_types", []) or []),
        epithets_favor={kk_lower(w) for w in (raw.get("epithets", {}) or {}).get("favor", []) or []},
        epithets_against={kk_lower(w) for w in (raw.get("epithets", {}) or {}).get("against", []) or []},
        epithet_window=int((raw.get("epithets", {}) or {}).get("window", 2)),
    )


# --------------------------------------------------------------------------- matching


@dataclass
class Match:
    start: int  # first token of the cue
    end: int  # exclusive
    negated: bool


def _is_cue_token(tokens: Sequence[str], i: int) -> bool:
    tok = tokens[i]
    return bool(tok) and (i == 0 or not tok[0].isupper())


def match_cue(tokens: Sequence[str], i: int, parts: Sequence[str], exclude=()) -> Match | None:
    """Does the cue start at token i? Negation is checked right after the stem."""
    if i + len(parts) > len(tokens):
        return None
    low = [kk_lower(t) for t in tokens[i : i + len(parts)]]
    if not _is_cue_token(tokens, i):
        return None
    for k, part in enumerate(parts):
        if not low[k].startswith(part):
            return None
    if any(p.fullmatch(low[0]) or p.fullmatch(low[-1]) for p in exclude):
        return None
    rest = low[-1][len(parts[-1]) :]
    return Match(i, i + len(parts), bool(_NEG_RE.match(rest)))


def negated_after(tokens: Sequence[str], m: Match, lex: Lexicon, window: int) -> bool:
    """Negation by a following word (емес, жоқ) or a negated light verb (көрсетпеді)."""
    if m.negated:
        return True
    for j in range(m.end, min(len(tokens), m.end + window)):
        low = kk_lower(tokens[j])
        if low in lex.boundaries:
            break
        if low in lex.negators:
            return True
        for verb in lex.light_verbs:
            if low.startswith(verb) and _NEG_RE.match(low[len(verb) :]):
                return True
    return False


def find_cues(tokens: Sequence[str], cues: Sequence[Cue], skip: range | None = None) -> list[Match]:
    found = []
    for i in range(len(tokens)):
        if skip is not None and i in skip:
            continue
        for cue in cues:
            m = match_cue(tokens, i, cue.parts, cue.exclude)
            if m:
                found.append(m)
                break
    return found


def clause_between(tokens: Sequence[str], a: int, b: int, lex: Lexicon) -> bool:
    """True when no clause boundary lies in tokens[a:b]."""
    return not any(kk_lower(t) in lex.boundaries for t in tokens[a:b])


# --------------------------------------------------------------------------- LFs


@dataclass
class LF:
    name: str
    fn: Callable[[Item], str | None]
    description: str = ""

    def __call__(self, item: Item) -> str | None:
        return self.fn(item)


def lf_options(cfg) -> dict:
    """window / negation_window / agent_window from a config node (defaults otherwise)."""
    out = {}
    for key in ("window", "negation_window", "agent_window"):
        try:
            value = cfg.get(key) if cfg is not None else None
        except AttributeError:
            value = None
        if value is not None:
            out[key] = int(value)
    return out


def make_lfs(lex: Lexicon, window: int = 6, negation_window: int = 2, agent_window: int = 10) -> list[LF]:
    """The labelling functions over one lexicon."""

    def target_case(it: Item) -> str:
        return case_of(it.tokens[it.end - 1])

    def after(it: Item, cues: Sequence[Cue], limit: int) -> list[Match]:
        """Cues after the target, within `limit` tokens, in the same clause."""
        out = []
        for m in find_cues(it.tokens, cues, skip=range(it.start, it.end)):
            if m.start >= it.end and m.start - it.end < limit and clause_between(it.tokens, it.end, m.start, lex):
                out.append(m)
        return out

    def idiom_at(tokens, i) -> dict | None:
        for idiom in lex.idioms:
            if match_cue(tokens, i, idiom["parts"]):
                return idiom
        return None

    def postposition_is_name(tokens, i) -> bool:
        nxt = kk_lower(tokens[i + 1]) if i + 1 < len(tokens) else ""
        return nxt in lex.name_nouns

    def object_cue(it: Item, active: Sequence[Cue], label: str, negated_label: str | None) -> str | None:
        if target_case(it) not in OBJECT_CASES:
            return None
        for m in after(it, active, window):
            if idiom_at(it.tokens, m.start):
                continue
            if negated_after(it.tokens, m, lex, negation_window):
                return negated_label
            return label
        return None

    def favor_cue(it: Item):
        return object_cue(it, lex.favor_active, "FAVOR", "AGAINST")

    def against_cue(it: Item):
        return object_cue(it, lex.against_active, "AGAINST", None)

    def passive_cue(it: Item):
        if target_case(it) != "NOM":
            return None
        fav = after(it, lex.favor_passive, agent_window)
        ag = after(it, lex.against_passive, agent_window)
        if fav and not ag:
            return None if negated_after(it.tokens, fav[0], lex, negation_window) else "FAVOR"
        if ag and not fav:
            return None if negated_after(it.tokens, ag[0], lex, negation_window) else "AGAINST"
        return None

    def postposition(it: Item):
        """«X-ға қарсы» (or «X-тың Y-на қарсы») -> AGAINST X; inside a name -> abstain."""
        toks = it.tokens
        i = it.end
        if target_case(it) == "GEN" and i < len(toks) and case_of(toks[i]) == "DAT":
            i += 1
        elif target_case(it) != "DAT":
            return None
        if i >= len(toks) or kk_lower(toks[i]) not in lex.postpositions_against:
            return None
        if idiom_at(toks, i) or postposition_is_name(toks, i):
            return None
        m = Match(i, i + 1, False)
        return None if negated_after(toks, m, lex, negation_window) else "AGAINST"

    def idiom(it: Item):
        """«X-ты қарсы алды» (welcomed X) -> FAVOR; «Жаңа жылды қарсы алу» -> abstain."""
        toks = it.tokens
        if target_case(it) not in ("ACC", "NOM"):
            return None
        for i in range(it.end, min(len(toks), it.end + window)):
            if not clause_between(toks, it.end, i, lex):
                break
            found = idiom_at(toks, i)
            if not found:
                continue
            obj = [kk_lower(t) for t in toks[it.start : i]]
            if any(w.startswith(stem) for w in obj for stem in found["abstain_objects"]):
                return None
            if target_case(it) == "NOM":
                return None  # the welcoming side, not the welcomed one
            m = Match(i, i + len(found["parts"]), False)
            m.negated = bool(_NEG_RE.match(kk_lower(toks[m.end - 1])[len(found["parts"][-1]) :]))
            return None if negated_after(toks, m, lex, negation_window) else found.get("label")
        return None

    def agent_none(it: Item):
        """A nominative target followed by an active cue is the one who supports/criticises:
        it is reported, not evaluated (rule 1)."""
        if target_case(it) != "NOM":
            return None
        if after(it, lex.favor_passive, agent_window) or after(it, lex.against_passive, agent_window):
            return None
        if after(it, lex.favor_active, agent_window) or after(it, lex.against_active, agent_window):
            return "NONE"
        for i in range(it.end, min(len(it.tokens), it.end + agent_window)):
            if kk_lower(it.tokens[i]) in lex.postpositions_against and not postposition_is_name(it.tokens, i):
                return "NONE"
        return None

    def epithet(it: Item):
        """An evaluative word just before the target: «ұлы Абай» -> FAVOR, «жемқор X» -> AGAINST."""
        for j in range(max(0, it.start - lex.epithet_window), it.start):
            tok = it.tokens[j]
            if j > 0 and tok[:1].isupper():
                continue  # part of a name («Ұлы Отан соғысы»)
            low = kk_lower(tok)
            if low in lex.epithets_favor:
                return "FAVOR"
            if low in lex.epithets_against:
                return "AGAINST"
        return None

    def location_none(it: Item):
        """A place in the locative/ablative is where something happens (rule 5)."""
        if it.type is not None and it.type not in lex.location_types:
            return None
        return "NONE" if target_case(it) in ("LOC", "ABL") else None

    def no_cue_none(it: Item):
        """No cue, postposition or idiom anywhere outside the target: NONE."""
        toks = it.tokens
        skip = range(it.start, it.end)
        for cues in (lex.favor_active, lex.favor_passive, lex.against_active, lex.against_passive):
            if find_cues(toks, cues, skip=skip):
                return None
        for i, tok in enumerate(toks):
            if i in skip:
                continue
            if kk_lower(tok) in lex.postpositions_against and not postposition_is_name(toks, i):
                return None
            if idiom_at(toks, i):
                return None
        if epithet(it):
            return None
        return "NONE"

    return [
        LF("favor_cue", favor_cue, "support/praise/thanks cue after the target (object case); negated -> AGAINST"),
        LF("against_cue", against_cue, "criticism/opposition cue after the target (object case); negated -> abstain"),
        LF("passive_cue", passive_cue, "honoured / criticised: passive cue after a nominative target"),
        LF("qarsy_postposition", postposition, "«X-ға қарсы» -> AGAINST X; name-internal -> abstain"),
        LF("welcome_idiom", idiom, "«X-ты қарсы алды» -> FAVOR; holidays -> abstain"),
        LF("epithet", epithet, "evaluative epithet right before the target («ұлы Абай») -> FAVOR/AGAINST"),
        LF("agent_none", agent_none, "nominative target followed by an active cue: the reported agent -> NONE"),
        LF("location_none", location_none, "place target in the locative/ablative -> NONE"),
        LF("no_cue_none", no_cue_none, "no cue anywhere in the sentence -> NONE"),
    ]


def apply_lfs(lfs: Sequence[LF], items: Sequence[Item]) -> list[list[str | None]]:
    """votes[i][j]: LF j on item i."""
    return [[lf(it) for lf in lfs] for it in items]


def majority_vote(votes: Sequence[str | None]) -> str | None:
    """The most frequent non-abstain label; a tie abstains."""
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return None
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]
