"""Tiny, offline building blocks for tests and smoke runs: a character-level WordPiece
tokenizer and a 2-layer BERT built from a config (random weights, no download).

Character-level pieces make every multi-letter word split into many sub-words, which is
exactly what the label-alignment and windowing code must get right."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_BASE_CHARS = (
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяәғқңөұүһі"
    "abcdefghijklmnopqrstuvwxyz0123456789"
    ".,;:!?-–—«»()[]\"'%/"
)


def tiny_vocab(extra_text: Iterable[str] = ()) -> list[str]:
    chars = set(_BASE_CHARS) | set(_BASE_CHARS.upper())
    for text in extra_text:
        chars.update(ch for ch in text if not ch.isspace())
    chars = sorted(chars)
    return SPECIALS + chars + ["##" + c for c in chars]


def build_tiny_tokenizer(vocab: list[str] | None = None, model_max_length: int = 128):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = vocab or tiny_vocab()
    ids = {tok: i for i, tok in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=200))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        model_max_length=model_max_length,
    )


def save_tiny_encoder(out_dir: str | Path, extra_text: Iterable[str] = (), hidden: int = 32,
                      layers: int = 2, heads: int = 2, max_positions: int = 128, seed: int = 0) -> Path:
    """Write a tiny random BERT encoder plus tokenizer, loadable like a prepared model."""
    import torch
    from transformers import BertConfig, BertModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(tiny_vocab(extra_text), model_max_length=max_positions)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=hidden * 2, max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


UNIGRAM_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
# Pieces no Kazakh fixture uses: trimming must drop them (and "中" tests the <unk> fallback).
_FOREIGN_PIECES = ["▁中国", "中", "国", "▁東京", "東", "京", "ä", "▁über", "▁ελλάδα", "λ"]


def build_tiny_unigram_tokenizer(text: Iterable[str], model_max_length: int = 128, seed: int = 0):
    """An XLM-R-shaped SentencePiece Unigram tokenizer (<s> <pad> </s> <unk> first, <mask>
    last, Metaspace, <s> A </s>) whose pieces are the words of `text` with "▁", their prefixes
    and suffixes, every character, and a few foreign pieces, with distinct seeded scores."""
    import random

    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(seed)
    words = sorted({w for t in text for w in t.split()})
    pieces: dict[str, float] = {}
    for ch in sorted(set(_BASE_CHARS) | {c for w in words for c in w}):
        pieces.setdefault(ch, -9.0 - rng.random())
    pieces["▁"] = -6.0
    for w in words:
        pieces.setdefault("▁" + w, -2.0 - len(w) * 0.05 - rng.random())
        for k in range(1, len(w)):
            pieces.setdefault("▁" + w[:k], -4.0 - rng.random())
            pieces.setdefault(w[k:], -5.0 - rng.random())
    for p in _FOREIGN_PIECES:
        pieces.setdefault(p, -3.0 - rng.random())
    vocab = [(s, 0.0) for s in UNIGRAM_SPECIALS] + sorted(pieces.items(), key=lambda kv: -kv[1]) + [("<mask>", 0.0)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        cls_token="<s>", sep_token="</s>",
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
        model_max_length=model_max_length,
    )


def save_tiny_unigram_encoder(out_dir: str | Path, text: Iterable[str], hidden: int = 32, layers: int = 2,
                              heads: int = 2, max_positions: int = 128, seed: int = 0, extra_rows: int = 3) -> Path:
    """A tiny random BERT with the Unigram tokenizer above; like e5-small it has a few more
    embedding rows than tokenizer pieces (`extra_rows`)."""
    import torch
    from transformers import BertConfig, BertModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_unigram_tokenizer(list(text), model_max_length=max_positions, seed=seed)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer) + extra_rows, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=hidden * 2, max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=0, eos_token_id=2,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


# --------------------------------------------------------------------------- a tiny stance dataset

NAMES = ["Тоқаев", "Астана", "Алматы", "Назарбаев", "Ресей", "Қытай", "Парламент", "ЕАЭО"]
TYPES = {"Тоқаев": "PERSON", "Назарбаев": "PERSON", "Астана": "GPE", "Алматы": "GPE", "Ресей": "GPE",
         "Қытай": "GPE", "Парламент": "ORGANISATION", "ЕАЭО": "ORGANISATION"}
CUES = {"FAVOR": ["қолдады", "мақтады"], "AGAINST": ["сынады", "айыптады"], "NONE": ["барды", "айтты"]}
FILLER = ["бүгін", "жаңа", "жоба", "туралы", "жиналыс", "өтті", "және", "елде"]


def make_items(n: int, seed: int) -> list[dict]:
    """Invented stance items: a cue verb after the target decides the label."""
    rng = random.Random(seed)
    labels = ["NONE"] * 6 + ["FAVOR"] * 3 + ["AGAINST"]
    items = []
    for i in range(n):
        label = labels[i % len(labels)]
        name, other = rng.sample(NAMES, 2)
        left = rng.sample(FILLER, rng.randint(0, 3))
        right = rng.sample(FILLER, rng.randint(1, 4))
        tokens = [*left, name, rng.choice(CUES[label]), *right, other, "."]
        start = len(left)
        items.append({
            "id": f"S{seed}-{i}:{start}-{start + 1}", "sent_id": f"S{seed}-{i}", "tokens": tokens,
            "start": start, "end": start + 1, "target": name, "target_type": TYPES[name], "label": label,
            "split": "", "annotator": "test",
        })
    return items


def save_stance_dataset(out: Path, sizes=(40, 12, 12)) -> Path:
    from datasets import Dataset, DatasetDict

    from kazakh_ner_stance.data.stance_rows import stance_features

    splits = {}
    for k, (name, n) in enumerate(zip(("train", "validation", "test"), sizes)):
        rows = [{**r, "split": name} for r in make_items(n, seed=k)]
        splits[name] = Dataset.from_list(rows, features=stance_features())
    DatasetDict(splits).save_to_disk(str(out))
    return out
