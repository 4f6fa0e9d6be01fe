"""Round-trip benchmark of kazakh_ner_stance.data.tokenize on KazNERD sentences.

Each sentence's tokens are joined as natural text (`detokenize`: no space before closing
punctuation, none after an opening « or bracket), tokenised back with `tokenize_words`, and
compared with the original tokens. Also checks that offsets slice the text exactly, and how
many KazNERD sentence ends `split_sentences` finds when sentences are run together.

    kns-bench tokenizer [--file ../shared/data/kaznerd/IOB2_valid_sentid.txt] [--show 10] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from ..config import compose, project_root
from .provenance import provenance


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--file", type=Path, help="an IOB2 file (default: the shared KazNERD validation split)")
    ap.add_argument("--show", type=int, default=10, help="mismatches to print")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")


def run_benchmark(args: argparse.Namespace) -> int:
    from ..data.ner_sources import discover_sources
    from ..data.iob2 import read_iob2
    from ..data.tokenize import detokenize, split_sentences, tokenize_words

    cfg = compose("build_dataset")
    path = args.file
    if path is None:
        found, _ = discover_sources(Path(str(cfg.data.source_dir)))
        path = found.get("validation") or next(iter(found.values()), None)
        if path is None:
            print(f"no IOB2 file in {cfg.data.source_dir}; pass --file", file=sys.stderr)
            return 2
    sentences, _ = read_iob2(path, list(cfg.data.entity_types), orphan_inside="repair")

    started = time.perf_counter()
    exact = tokens_total = tokens_recovered = offsets_ok = 0
    mismatches = []
    kinds = Counter()
    for sent in sentences:
        text = detokenize(sent.tokens)
        got = tokenize_words(text)
        offsets_ok += all(text[s:e] == tok for tok, s, e in got)
        words = [tok for tok, _, _ in got]
        tokens_total += len(sent.tokens)
        tokens_recovered += len(set(_spans(sent.tokens)) & set(_spans(words)))
        if words == sent.tokens:
            exact += 1
        else:
            mismatches.append((sent, text, words))
            kinds[_kind(sent.tokens, words)] += 1
    elapsed = time.perf_counter() - started

    # sentence splitting: run the sentences together and look for their ends
    texts = [detokenize(s.tokens) for s in sentences]
    joined, ends, pos = [], set(), 0
    for text in texts:
        joined.append(text)
        pos += len(text)
        ends.add(pos)
        pos += 1
    spans = split_sentences(" ".join(joined))
    found_ends = {e for _, e in spans}
    hit = len(ends & found_ends)

    n = len(sentences)
    rows = [
        ("file", os.path.relpath(path, project_root())),
        ("sentences", f"{n:,}"),
        ("round-trip exact (sentences)", f"{exact:,} / {n:,} = {exact / n:.2%}"),
        ("tokens recovered (same span)", f"{tokens_recovered:,} / {tokens_total:,} = {tokens_recovered / tokens_total:.2%}"),
        ("offsets slice the text", f"{offsets_ok:,} / {n:,}"),
        ("tokenise time", f"{elapsed:.2f} s ({tokens_total / elapsed:,.0f} tokens/s)"),
        ("sentence ends found (recall)", f"{hit:,} / {len(ends):,} = {hit / len(ends):.2%}"),
        ("extra sentence breaks", f"{len(found_ends - ends):,} (KazNERD 'sentences' may hold several)"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'metric'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    if kinds:
        print("\nmismatch kinds: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
    for sent, text, words in mismatches[: args.show]:
        print(f"\n{path.name}:{sent.line}\n  text: {text}\n  gold: {sent.tokens}\n  got:  {words}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "file": os.path.relpath(path, project_root()), "sentences": n, "exact": exact,
            "tokens": tokens_total, "tokens_recovered": tokens_recovered, "offsets_ok": offsets_ok,
            "tokenise_s": elapsed, "tokens_per_s": tokens_total / elapsed, "sentence_ends": len(ends),
            "sentence_ends_found": hit, "extra_breaks": len(found_ends - ends),
            "provenance": provenance(project_root()),
        }, indent=2) + "\n", encoding="utf-8")
    return 0


def _spans(tokens):
    out, pos = [], 0
    for tok in tokens:
        out.append((pos, tok))
        pos += len(tok)
    return out


def _kind(gold, got) -> str:
    if "".join(gold) != "".join(got):
        return "text changed"
    return "merged" if len(got) < len(gold) else "split" if len(got) > len(gold) else "regrouped"
