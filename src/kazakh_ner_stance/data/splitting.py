"""Splitting sentences into train / validation / test: a seeded hash order cut into shares,
groups (identical sentences, sentence-ID variants) that never straddle two splits, and the
exact duplicates and cross-split leakage removed afterwards (step 4 of `data.build`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..errors import KnsError
from .iob2 import Sentence

SPLITS = ("train", "validation", "test")


@dataclass
class _Record:
    sent: Sentence
    source_split: str
    key: str
    split: str = ""
    status: str = "kept"
    kept_sent_id: str = ""


def _seeded_order(keys: list[str], seed: int) -> list[str]:
    def rank(key: str) -> bytes:
        return hashlib.blake2b(f"{seed}\x1e{key}".encode(), digest_size=16).digest()

    return sorted(keys, key=rank)


def _cut(keys: list[str], shares: dict[str, float], seed: int) -> dict[str, str]:
    """Assign each unique key to a split: seeded order, then consecutive slices by share."""
    ordered = _seeded_order(keys, seed)
    total = sum(shares.values())
    names = list(shares)
    assignment: dict[str, str] = {}
    start = 0
    for i, name in enumerate(names):
        if i == len(names) - 1:
            stop = len(ordered)
        else:
            stop = start + round(len(ordered) * shares[name] / total)
        for key in ordered[start:stop]:
            assignment[key] = name
        start = stop
    return assignment


def split_groups(records: list[_Record], variant_id_pattern: str | None) -> dict[str, str]:
    """Map each record key to its group key: records with identical tokens, or whose sentence
    IDs are variants of one sentence (same `variant_id_pattern` group), form one group
    (union-find), and a group is never divided between splits."""
    import re

    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    pattern = re.compile(variant_id_pattern) if variant_id_pattern else None
    first_of_variant: dict[str, str] = {}
    for r in records:
        find(r.key)
        if pattern and r.sent.sent_id:
            m = pattern.match(r.sent.sent_id)
            if m:
                variant = m.group(1)
                if variant in first_of_variant:
                    union(first_of_variant[variant], r.key)
                else:
                    first_of_variant[variant] = r.key
    return {r.key: find(r.key) for r in records}


def assign_splits(records: list[_Record], present: list[str], ratios: dict, seed: int,
                  variant_id_pattern: str | None = None) -> str:
    """Fill `record.split`; returns a one-line description of how the splits were made."""
    if len(present) == 1:
        group = split_groups(records, variant_id_pattern)
        assignment = _cut(list(dict.fromkeys(group[r.key] for r in records)), dict(ratios), seed)
        for r in records:
            r.split = assignment[group[r.key]]
        shares = "/".join(f"{round(ratios[s] * 100):g}" for s in SPLITS)
        variants = (f"; sentence-ID variants (/{variant_id_pattern}/) share a split" if variant_id_pattern else "")
        return (f"seeded {shares} split (seed {seed}) of the {present[0]} source; identical sentences share a "
                f"split{variants}")
    if set(present) == set(SPLITS):
        for r in records:
            r.split = r.source_split
        return "train/validation/test as given by the source files"
    if "train" not in present:
        raise KnsError(
            f"found only the {' and '.join(present)} split files; give a train file, all three, or a single split "
            "to be divided"
        )
    missing = [s for s in SPLITS if s not in present]
    train = [r for r in records if r.source_split == "train"]
    group = split_groups(train, variant_id_pattern)
    assignment = _cut(list(dict.fromkeys(group[r.key] for r in train)), {s: ratios[s] for s in ("train", *missing)}, seed)
    for r in records:
        r.split = assignment[group[r.key]] if r.source_split == "train" else r.source_split
    return f"{' and '.join(missing)} carved out of train by a seeded split (seed {seed}); other splits as given"


def dedup_and_leakage(records: list[_Record], dedup: bool, remove_leakage: bool) -> dict:
    """Mark duplicates and leaked sentences (`record.status`); returns counts per split."""
    removed = {"duplicates": dict.fromkeys(SPLITS, 0), "leakage": dict.fromkeys(SPLITS, 0)}
    conflicting = 0
    first_in_split: dict[tuple[str, str], _Record] = {}
    owner: dict[str, _Record] = {}  # key -> first kept record in an earlier split
    for split in SPLITS:
        for r in (r for r in records if r.split == split):
            if remove_leakage and r.key in owner and owner[r.key].split != split:
                twin = owner[r.key]
                r.status, r.kept_sent_id, r.split = "leakage", twin.sent.sent_id or "", twin.split
                removed["leakage"][split] += 1
                continue
            seen = first_in_split.get((split, r.key))
            if seen is not None:
                if seen.sent.tags != r.sent.tags:
                    conflicting += 1
                if dedup:
                    r.status, r.kept_sent_id = "duplicate", seen.sent.sent_id or ""
                    removed["duplicates"][split] += 1
                    continue
            else:
                first_in_split[(split, r.key)] = r
            r.status, r.kept_sent_id = "kept", r.sent.sent_id or ""
            owner.setdefault(r.key, r)
    removed["duplicates_with_different_tags"] = conflicting
    removed["total"] = sum(removed["duplicates"].values()) + sum(removed["leakage"].values())
    return removed
