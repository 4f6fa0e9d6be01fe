"""Encoding for the joint NER + stance model: the NER windows of tasks/ner.py plus, per window,
the target spans it reads (piece ranges and stance labels), and the collator that pads both."""

from __future__ import annotations

from typing import Sequence

import torch

from ..errors import KnsError
from .ner import IGNORE_INDEX, encode_windows


def _span_in_window(word_ids: Sequence[int], start: int, end: int) -> tuple[int, int] | None:
    """Piece range [ps, pe) of words [start, end) in a window, or None if the window lacks
    the span's first or last word."""
    ps = pe = None
    for p, w in enumerate(word_ids):
        if w == start and ps is None:
            ps = p
        if start <= w < end:
            pe = p + 1
    if ps is None or pe is None or (end - 1) not in set(word_ids):
        return None
    return ps, pe


def assign_spans(enc: dict, spans_per_example: Sequence[Sequence[tuple[int, int]]]) -> list[list[tuple[int, int, int, int]]]:
    """For each window, the spans it reads: (span index in its sentence, ps, pe, ok) with the
    window that owns the span's first word (and holds its last) preferred, else the first
    window holding the whole span, else the owner of its first word with the span cut."""
    by_example: dict[int, list[int]] = {}
    for k, ex in enumerate(enc["example"]):
        by_example.setdefault(ex, []).append(k)
    out: list[list[tuple[int, int, int, int]]] = [[] for _ in enc["example"]]
    for ex, spans in enumerate(spans_per_example):
        windows = by_example.get(ex, [])
        for j, (s, e) in enumerate(spans):
            chosen = None
            owner = None
            for k in windows:
                wids = enc["word_ids"][k]
                owns_start = any(w == s and o for w, o in zip(wids, enc["owned"][k]))
                if owns_start:
                    owner = k
                rng = _span_in_window(wids, s, e)
                if rng is not None and owns_start:
                    chosen = (k, *rng)
                    break
                if rng is not None and chosen is None:
                    chosen = (k, *rng)
            if chosen is None and owner is not None:
                wids = enc["word_ids"][owner]
                ps = next(p for p, w in enumerate(wids) if w == s)
                pe = max(p for p, w in enumerate(wids) if s <= w < e) + 1
                chosen = (owner, ps, pe)
            if chosen is None:
                raise KnsError(f"sentence {ex}: target span {s}:{e} is in no window")
            k, ps, pe = chosen
            out[k].append((j, ps, pe, 1))
    return out


def encode_joint(tokenizer, tokens_list, max_length: int, overlap: int, ner_tags=None, targets=None,
                 id2label=None, label_all_subwords: bool = True) -> dict[str, list]:
    """NER windows (tasks/ner.py `encode_windows`, with its sub-word labelling) plus each window's spans: span_starts, span_ends,
    stance_labels (when targets carry labels), span_index (the span's index in its sentence)."""
    enc = encode_windows(tokenizer, tokens_list, max_length, overlap, labels_batch=ner_tags, id2label=id2label,
                         label_all_subwords=label_all_subwords)
    targets = targets if targets is not None else [[] for _ in tokens_list]
    spans = [[(int(t["start"]), int(t["end"])) for t in ts] for ts in targets]
    for ex, (toks, sp) in enumerate(zip(tokens_list, spans)):
        for s, e in sp:
            if not (0 <= s < e <= len(toks)):
                raise KnsError(f"sentence {ex}: target span {s}:{e} is not inside its {len(toks)} tokens")
    per_window = assign_spans(enc, spans)
    enc["span_starts"], enc["span_ends"], enc["span_index"], enc["stance_labels"] = [], [], [], []
    for k, items in enumerate(per_window):
        ex = enc["example"][k]
        enc["span_index"].append([j for j, _, _, _ in items])
        enc["span_starts"].append([ps for _, ps, _, _ in items])
        enc["span_ends"].append([pe for _, _, pe, _ in items])
        labels = []
        for j, _, _, _ in items:
            lab = targets[ex][j].get("label")
            labels.append(IGNORE_INDEX if lab is None else int(lab))
        enc["stance_labels"].append(labels)
    return enc


class JointCollator:
    """Pads NER windows like DataCollatorForTokenClassification and span lists to the batch's
    largest span count (padding spans: 0..1 with label -100)."""

    def __init__(self, tokenizer, pad_to_multiple_of=None):
        from transformers import DataCollatorForTokenClassification

        self.token_collator = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, features):
        spans = [(list(f.get("span_starts", [])), list(f.get("span_ends", [])), list(f.get("stance_labels", [])))
                 for f in features]
        rest = [{k: v for k, v in f.items() if k not in ("span_starts", "span_ends", "stance_labels", "length")}
                for f in features]
        batch = self.token_collator(rest)
        width = max([len(s) for s, _, _ in spans] + [1])
        starts = torch.zeros((len(features), width), dtype=torch.long)
        ends = torch.ones((len(features), width), dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        for r, (s, e, lab) in enumerate(spans):
            if s:
                starts[r, : len(s)] = torch.tensor(s)
                ends[r, : len(e)] = torch.tensor(e)
                labels[r, : len(lab)] = torch.tensor(lab)
        batch["span_starts"], batch["span_ends"], batch["stance_labels"] = starts, ends, labels
        return batch
