"""Checks that a trimmed copy is the same model: the corpus tokenizes to the same pieces, the
tokenizer transformers loads agrees, the encoders give the same hidden states on a sample, and
an estimate of how the trim does on text it was not made from (held aside)."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import KnsError
from .trim_corpus import CorpusFile, read_corpora
from .trim_vocab import TokenizerVocab, encode_all, select_pieces, trimmed_tokenizer_json

# --------------------------------------------------------------------------- verification


def compare_tokenization(full_ids: Sequence[Sequence[int]], trim_tok, new_id: dict[int, int],
                         corpora: Sequence[CorpusFile], pieces: Sequence[str], max_examples: int = 10) -> dict:
    """Sentences whose trimmed-tokenizer ids differ from the full tokenizer's ids remapped (the
    same ids mean the same pieces: new id i is old id old_ids[i])."""
    n = diff = 0
    examples = []
    per_corpus: dict[int, int] = {}
    for ids, (ci, b) in zip(full_ids, encode_all(trim_tok, corpora)):
        n += 1
        if [new_id.get(i, -1) for i in ids] != b.ids:
            diff += 1
            per_corpus[ci] = per_corpus.get(ci, 0) + 1
            if len(examples) < max_examples:
                examples.append({"corpus": corpora[ci].path, "full": [pieces[i] if i < len(pieces) else f"<id {i}>" for i in ids][:40],
                                 "trimmed": [trim_tok.id_to_token(i) for i in b.ids][:40]})
    if n != len(full_ids):
        raise KnsError(f"internal error: {len(full_ids)} full encodings for {n} sentences")
    return {"sentences": n, "different": diff, "identical_share": (n - diff) / n if n else 1.0,
            "different_by_corpus": {corpora[k].path: v for k, v in per_corpus.items()}, "examples": examples}


def check_transformers_tokenizer(model_dir: Path, trim_tok, sentences: list) -> dict:
    """The tokenizer transformers loads from `model_dir` (what training and prediction use)
    must encode like the trimmed tokenizer.json, special tokens included."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    bad = 0
    for s in sentences:
        pre = not isinstance(s, str)
        want = trim_tok.encode(s, is_pretokenized=pre).ids
        got = tok(s, is_split_into_words=pre)["input_ids"]
        bad += got != want
    if bad:
        raise KnsError(
            f"{model_dir}: transformers' {type(tok).__name__} encodes {bad} of {len(sentences)} sentences unlike the "
            "trimmed tokenizer.json; the trimmed checkpoint would not be the same model"
        )
    specials = {name: getattr(tok, f"{name}_token_id") for name in ("bos", "eos", "pad", "unk", "mask", "cls", "sep")
                if getattr(tok, f"{name}_token_id", None) is not None}
    return {"class": type(tok).__name__, "sentences": len(sentences), "special_ids": specials}


def sample_sentences(corpora: Sequence[CorpusFile], n: int, seed: int) -> list:
    pool = [(ci, "t", i) for ci, cf in enumerate(corpora) for i in range(len(cf.texts))]
    pool += [(ci, "w", i) for ci, cf in enumerate(corpora) for i in range(len(cf.words))]
    rng = random.Random(seed)
    picked = rng.sample(pool, min(n, len(pool)))
    return [corpora[ci].texts[i] if k == "t" else corpora[ci].words[i] for ci, k, i in picked]


def max_hidden_state_difference(full_dir: Path, trim_dir: Path, full_tok, new_id: dict[int, int], sentences: list,
                                max_tokens: int = 128, batch: int = 16) -> dict:
    """Largest absolute difference between the last hidden states of the full and trimmed
    encoders on `sentences` (the trimmed model fed the remapped ids)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    def load(d):
        # No pooler for BERT-style encoders (e5 has none; a random one would only add noise to the logs).
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            try:
                return AutoModel.from_pretrained(d, use_safetensors=True, add_pooling_layer=False).eval()
            except TypeError:
                return AutoModel.from_pretrained(d, use_safetensors=True).eval()
        finally:
            hf_logging.set_verbosity(verbosity)
            hf_logging.enable_progress_bar()

    full, trimmed = load(full_dir), load(trim_dir)
    pad_old = full.config.pad_token_id if full.config.pad_token_id is not None else 0
    pad_new = new_id.get(pad_old, 0)
    worst, positions = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(sentences), batch):
            chunk = sentences[start : start + batch]
            encs = [full_tok.encode(s, is_pretokenized=not isinstance(s, str)) for s in chunk]
            ids = [e.ids[:max_tokens] for e in encs]
            width = max(len(x) for x in ids)
            a = torch.full((len(ids), width), pad_old, dtype=torch.long)
            b = torch.full((len(ids), width), pad_new, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for r, x in enumerate(ids):
                a[r, : len(x)] = torch.tensor(x)
                b[r, : len(x)] = torch.tensor([new_id[i] for i in x])
                mask[r, : len(x)] = 1
            ha = full(input_ids=a, attention_mask=mask).last_hidden_state.float()
            hb = trimmed(input_ids=b, attention_mask=mask).last_hidden_state.float()
            m = mask.bool()
            worst = max(worst, float((ha[m] - hb[m]).abs().max()))
            positions += int(m.sum())
    return {"sentences": len(sentences), "token_positions": positions, "max_abs_difference": worst}


def held_aside_texts(paths: Iterable) -> list:
    out: list = []
    for cf in read_corpora(list(paths)) if paths else []:
        out.extend(cf.texts)
        out.extend(cf.words)
    return out


def held_aside_estimate(tv: TokenizerVocab, full_tok, corpora: Sequence[CorpusFile], full_ids, keep_chars: str,
                         share: float, seed: int) -> dict | None:
    """How a trim generalises to unseen text of the same kind: hold `share` of the corpus
    sentences out, select pieces from the rest, and count held-out sentences that tokenize
    identically with that smaller vocabulary."""
    if not share or share <= 0:
        return None
    it = iter(full_ids)
    keep_parts, keep_ids, held = [], [], []
    # _encode_all yields, corpus by corpus, its texts then its word lists: full_ids is in that order.
    for cf in corpora:
        k = CorpusFile(cf.path, cf.kind, cf.sha256)
        for items, kept in ((cf.texts, k.texts), (cf.words, k.words)):
            for item in items:
                ids = next(it)
                if _held_out(item, share, seed):
                    held.append(item)
                else:
                    kept.append(item)
                    keep_ids.append(ids)
        keep_parts.append(k)
    if not held:
        return None
    from tokenizers import Tokenizer

    sel = select_pieces(tv, full_tok, keep_parts, keep_chars, keep_ids)
    new_id = {old: new for new, old in enumerate(sel.old_ids)}
    tok = Tokenizer.from_str(json.dumps(trimmed_tokenizer_json(tv, sel.old_ids)))
    rep = held_aside_check(full_tok, tok, new_id, held, tv)
    rep["share_held_out"] = share
    rep["seed"] = seed
    rep["kept_without_them"] = len(sel.old_ids)
    rep.pop("examples", None)
    return rep


def _held_out(item, share: float, seed: int) -> bool:
    """Hold a sentence out by a hash of its text, so duplicates (KazNERD ships each sentence in
    two files) fall on the same side."""
    import zlib

    key = (item if isinstance(item, str) else " ".join(item)).encode("utf-8")
    return zlib.crc32(key, seed) % 1_000_000 < share * 1_000_000


def held_aside_check(full_tok, trim_tok, new_id, texts: list, tv: TokenizerVocab) -> dict:
    """Identical-tokenization share on `texts`, and characters that became <unk> only in the trim."""
    unk_id_new = new_id.get(tv.unk_id) if tv.unk_id is not None else None
    n = same = 0
    fallback: dict[str, int] = {}
    examples = []
    for t in texts:
        pre = not isinstance(t, str)
        a = full_tok.encode(t, is_pretokenized=pre, add_special_tokens=False)
        b = trim_tok.encode(t, is_pretokenized=pre, add_special_tokens=False)
        n += 1
        if a.tokens == b.tokens and [new_id.get(i, -1) for i in a.ids] == b.ids:
            same += 1
            continue
        if len(examples) < 5:  # pieces by id: an <unk> token's string is the input text
            examples.append({"full": [full_tok.id_to_token(i) for i in a.ids][:30],
                             "trimmed": [trim_tok.id_to_token(i) for i in b.ids][:30]})
        if unk_id_new is None:
            continue
        full_unk = {(a.word_ids[j], a.offsets[j]) for j, i in enumerate(a.ids) if i == tv.unk_id}
        for j, i in enumerate(b.ids):
            if i == unk_id_new and (b.word_ids[j], b.offsets[j]) not in full_unk:
                source = t if isinstance(t, str) else t[b.word_ids[j]] if b.word_ids[j] is not None else ""
                for ch in source[b.offsets[j][0] : b.offsets[j][1]]:
                    if not ch.isspace():
                        fallback[ch] = fallback.get(ch, 0) + 1
    return {
        "sentences": n,
        "identical": same,
        "identical_share": same / n if n else 1.0,
        "unk_fallback_chars": [
            {"char": ch, "codepoint": f"U+{ord(ch):04X}", "name": unicodedata.name(ch, "?"), "count": c}
            for ch, c in sorted(fallback.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "examples": examples,
    }
