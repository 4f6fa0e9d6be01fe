"""Name swaps (issue 22): the target replaced by another name of its type, the sentence
otherwise unchanged.

Two uses of one primitive:

* **the check** (``scripts/stance_diagnostics.py``, and ``cv.name_swap_check=true`` per CV
  fold): a stance model that judges the sentence, not the name, gives the swapped item the
  label it gave the original. ``name_swap_check`` reports how often the predicted
  label changes, over all items and over the items predicted FAVOR or AGAINST (a model that
  has learnt that «Тоқаев» is FAVOR changes those most);
* **the augmentation**: swapped copies of training items, label kept
  (``task.name_swap``), so that a name alone cannot carry the label.

Kazakh marks case on the name itself («Тоқаевты», «Қазақстанға»), so a replacement is drawn
from the names of the same type whose last word ends like the original's (its last three
letters, else two, else any), which keeps most case endings: «Тоқаевты» -> «Назарбаевты».
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Callable, Mapping, Sequence

from ..labels import STANCE_LABELS


def _ending(words: Sequence[str], n: int) -> str:
    return words[-1][-n:].lower() if words else ""


def _same_name(words: Sequence[str], own: str) -> bool:
    """The same name in another case form: the two differ only in their last three letters."""
    other = " ".join(words).lower()
    common = 0
    for a, b in zip(other, own):
        if a != b:
            break
        common += 1
    return common >= 3 and common >= min(len(other), len(own)) - 3


class NamePool:
    """Distinct target names per type (token tuples), indexed by their last letters."""

    def __init__(self, items: Sequence[Mapping]):
        names: dict[str, set] = defaultdict(set)
        for it in items:
            words = tuple(it["tokens"][it["start"]:it["end"]])
            if words:
                names[str(it["target_type"])].add(words)
        self.names = {t: sorted(v) for t, v in names.items()}
        self.by_end = {n: defaultdict(list) for n in (3, 2)}
        for t, lst in self.names.items():
            for w in lst:
                for n in (3, 2):
                    self.by_end[n][(t, _ending(w, n))].append(w)

    def replacement(self, words: Sequence[str], target_type: str, rng: random.Random) -> tuple[str, ...] | None:
        """Another name of the type, ending like `words` where one does; None when the type has
        no other name. A form of the same name («Тоқаев» / «Тоқаевты») is not another name."""
        own = " ".join(words).lower()
        for n in (3, 2):
            cands = [w for w in self.by_end[n].get((target_type, _ending(words, n)), []) if not _same_name(w, own)]
            if cands:
                return rng.choice(cands)
        cands = [w for w in self.names.get(target_type, []) if not _same_name(w, own)]
        return rng.choice(cands) if cands else None


def swap_item(item: Mapping, pool: NamePool, rng: random.Random) -> dict | None:
    """A copy of `item` with its target replaced (tokens, start, end, target updated)."""
    s, e = int(item["start"]), int(item["end"])
    tokens = list(item["tokens"])
    new = pool.replacement(tokens[s:e], str(item["target_type"]), rng)
    if new is None:
        return None
    out = dict(item)
    out["tokens"] = tokens[:s] + list(new) + tokens[e:]
    out["start"], out["end"] = s, s + len(new)
    out["target"] = " ".join(new)
    return out


def swapped_copies(items: Sequence[Mapping], pool: NamePool, seed: int, share: float = 1.0) -> list[dict]:
    """Swapped copies of a seeded `share` of `items` (items whose type has no other name are
    left out); each copy's id is the original's plus ``~swap``."""
    rng = random.Random(seed)
    out = []
    for it in items:
        if share < 1.0 and rng.random() >= share:
            continue
        c = swap_item(it, pool, rng)
        if c is not None:
            if "id" in c:
                c["id"] = f"{c['id']}~swap"
            out.append(c)
    return out


def name_swap_check(predict: Callable[[Sequence[Mapping]], Sequence[str]], items: Sequence[Mapping],
                    pool: NamePool, seed: int = 0, rounds: int = 1,
                    original: Sequence[str] | None = None) -> dict:
    """How often the predicted label changes when the target's name is swapped.

    `predict` maps items to labels; `original` are its labels for `items` when the caller has
    them already (else they are predicted here). Each round swaps every item once (seeded, a
    different replacement per round). Reported: the share of changed labels over all swapped
    items, over those whose original prediction was FAVOR or AGAINST, and per original
    prediction and type."""
    original = list(predict(items) if original is None else original)
    if len(original) != len(items):
        raise ValueError(f"{len(original)} original labels for {len(items)} items")
    changed = Counter()
    total = Counter()
    by_type = defaultdict(Counter)
    examples = []
    for r in range(rounds):
        rng = random.Random(seed + r)
        pairs = [(i, swap_item(it, pool, rng)) for i, it in enumerate(items)]
        pairs = [(i, c) for i, c in pairs if c is not None]
        swapped = list(predict([c for _, c in pairs]))
        for (i, c), lab in zip(pairs, swapped):
            was = original[i]
            total[was] += 1
            by_type[str(items[i]["target_type"])]["n"] += 1
            if lab != was:
                changed[was] += 1
                by_type[str(items[i]["target_type"])]["changed"] += 1
                if len(examples) < 20:
                    examples.append({"id": items[i].get("id"), "target": items[i].get("target"),
                                     "swapped_to": c["target"], "before": was, "after": lab})
    n = sum(total.values())
    n_polar = total["FAVOR"] + total["AGAINST"]
    return {
        "items": len(items), "swaps": n, "rounds": rounds,
        "changed": (sum(changed.values()) / n) if n else None,
        "changed_of_favor_against": ((changed["FAVOR"] + changed["AGAINST"]) / n_polar) if n_polar else None,
        "favor_against_predictions": n_polar,
        "by_original_prediction": {lab: {"n": total[lab], "changed": changed[lab]} for lab in STANCE_LABELS},
        "by_type": {t: dict(v) for t, v in sorted(by_type.items())},
        "examples": examples,
    }
