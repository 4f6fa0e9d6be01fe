"""Split a sentence's words into overlapping windows that fit the encoder.

Sentences whose sub-word pieces exceed the model window are never truncated: each window
holds whole words, consecutive windows overlap by at least `overlap` pieces of context, and
every word is *owned* by exactly one window (the one where it sits farthest from an edge),
so prediction yields exactly one tag per gold word.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    start: int  # first word (inclusive)
    end: int  # last word (exclusive)
    owned_start: int  # words [owned_start, owned_end) take their prediction from this window
    owned_end: int


def word_windows(pieces_per_word: list[int], budget: int, overlap: int) -> list[Window]:
    """Greedy windows of whole words with at most `budget` pieces each.

    A single word longer than `budget` pieces gets a window of its own (its first pieces
    still fit, and only the first piece carries the word's label)."""
    n = len(pieces_per_word)
    if n == 0:
        return [Window(0, 0, 0, 0)]
    if budget < 1:
        raise ValueError("window budget must be at least one piece")
    overlap = max(0, min(overlap, budget // 2))
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        used, end = 0, start
        while end < n and (used + pieces_per_word[end] <= budget or end == start):
            used += pieces_per_word[end]
            end += 1
        spans.append((start, end))
        if end >= n:
            break
        # Step back over whole words until `overlap` pieces of left context are repeated,
        # but always advance by at least one word.
        nxt, back = end, 0
        while nxt - 1 > start and back + pieces_per_word[nxt - 1] <= overlap:
            nxt -= 1
            back += pieces_per_word[nxt]
        start = max(nxt, start + 1)
    # Ownership: each word goes to the window where it has the most context on both sides;
    # with greedy windows that is the split point halfway through each overlap.
    windows = []
    for i, (s, e) in enumerate(spans):
        owned_s = s if i == 0 else (s + spans[i - 1][1] + 1) // 2
        owned_e = e if i == len(spans) - 1 else (spans[i + 1][0] + e + 1) // 2
        windows.append(Window(s, e, owned_s, owned_e))
    # Repair ownership so that the owned ranges tile [0, n) exactly.
    fixed = []
    cursor = 0
    for i, w in enumerate(windows):
        owned_end = n if i == len(windows) - 1 else max(min(w.owned_end, w.end), cursor)
        fixed.append(Window(w.start, w.end, cursor, owned_end))
        cursor = owned_end
    return fixed
