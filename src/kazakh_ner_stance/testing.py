"""Tiny, offline building blocks for tests and smoke runs: a character-level WordPiece
tokenizer and a 2-layer BERT built from a config (random weights, no download).

Character-level pieces make every multi-letter word split into many sub-words, which is
exactly what the label-alignment and windowing code must get right."""

from __future__ import annotations

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
