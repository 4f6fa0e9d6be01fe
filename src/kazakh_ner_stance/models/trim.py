"""Vocabulary trimming: a copy of a prepared encoder that keeps only the pieces a corpus needs.

Why: e5-small carries XLM-R's 250k-piece vocabulary; 96M of its 118M parameters (384 MB of
the 470 MB safetensors) are embedding rows for scripts a Kazakh model never sees. Trimming
(Ushio et al., 2023, "An Efficient Multilingual Language Model Compression through Vocabulary
Trimming") keeps the rows a language uses and remaps the tokenizer; on that language the
model is the same function.

What is kept (:func:`select_pieces`):

* the special and added tokens (``<s> <pad> </s> <unk> <mask>``, stance markers, ...);
* every piece the *full* tokenizer produces on the corpus (so its segmentation stays
  available to the trimmed one);
* the single-character pieces of every character seen in the corpus plus ``keep_chars``
  (what a word falls back to when one of its pieces was dropped), and the word-start marker;
* for Unigram tokenizers, the lowest-scoring piece: tokenizers derives the unknown-piece score
  from the vocabulary's minimum, and keeping it keeps every lattice score unchanged.

Why that is exact on the corpus: a Unigram tokenizer picks the highest-scoring segmentation
among those its vocabulary allows; dropping pieces removes alternatives but never the chosen
one, so only an exact tie could flip (WordPiece's greedy longest match is likewise kept). It
is still verified, not assumed (:func:`verify_trim`): every corpus sentence must give the same
pieces, and the trimmed model the same hidden states on a sample. A character the corpus never
had and ``keep_chars`` does not list becomes ``<unk>`` in the trimmed tokenizer; the held-aside
report names such characters.

Modules: :mod:`.trim_corpus` reads the corpus, :mod:`.trim_vocab` selects the pieces and writes
the tokenizer, :mod:`.trim_verification` checks the copy; this module trims the weights and
ties them together (:func:`trim_model`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Iterable, Sequence

from ..data.download import sha256_file
from ..errors import KnsError
from .provenance import PROVENANCE_FILE, read_provenance
from .trim_corpus import read_corpora, with_normalized_variants
from .trim_verification import (
    check_transformers_tokenizer,
    compare_tokenization,
    held_aside_check,
    held_aside_estimate,
    held_aside_texts,
    max_hidden_state_difference,
    sample_sentences,
)
from .trim_vocab import encode_corpus, load_tokenizer_vocab, select_pieces, trimmed_tokenizer_json

log = logging.getLogger(__name__)

TRIM_SOURCE = "trim"
# Single characters kept even when the corpus lacks them (trim.keep_chars: null): the Kazakh and
# Russian alphabets, Latin, digits and common punctuation, so an unseen word in these scripts
# falls back to its letters, never to <unk>.
DEFAULT_KEEP_CHARS = (
    "АӘБВГҒДЕЁЖЗИЙКҚЛМНҢОӨПРСТУҰҮФХҺЦЧШЩЪЫІЬЭЮЯаәбвгғдеёжзийкқлмнңоөпрстуұүфхһцчшщъыіьэюя"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    ".,;:!?-–—«»()[]{}\"'%/\\&*+=<>@#$№§°…‘’“”"
)
# Slow-tokenizer vocabularies describe the untrimmed ids: a trimmed copy must not carry them.
SLOW_VOCAB_FILES = ("sentencepiece.bpe.model", "spiece.model", "tokenizer.model", "vocab.txt", "vocab.json",
                    "merges.txt", "bpe.codes")


# --------------------------------------------------------------------------- the trim


def _gather_state_dict(src_dir: Path, old_ids: Sequence[int], vocab_rows: int, dtype: str | None):
    """Weights with every vocabulary-indexed tensor (word embeddings, an LM head's decoder and
    bias) reduced to the rows `old_ids`; other tensors as they are (cast to `dtype` if given)."""
    import torch
    from safetensors import safe_open

    weights = src_dir / "model.safetensors"
    if not weights.is_file():
        raise KnsError(f"{src_dir}: vocabulary trimming needs model.safetensors (sharded or .bin weights are not read)")
    index = torch.tensor(list(old_ids), dtype=torch.long)
    cast = {None: None, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in cast:
        raise KnsError(f"trim.dtype={dtype!r}: use float32, float16, bfloat16 or null (as the source)")
    out, gathered = {}, []
    with safe_open(str(weights), framework="pt") as f:
        metadata = f.metadata() or {}
        for name in f.keys():
            t = f.get_tensor(name)
            vocab_indexed = t.dim() >= 1 and t.shape[0] == vocab_rows and (
                "word_embeddings" in name or "lm_head" in name or "predictions" in name or name.endswith("decoder.weight")
            )
            if vocab_indexed:
                if int(index.max()) >= t.shape[0]:
                    raise KnsError(f"{weights}: {name} has {t.shape[0]} rows; the tokenizer uses id {int(index.max())}")
                t = t.index_select(0, index)
                gathered.append(name)
            if cast[dtype] is not None and t.is_floating_point():
                t = t.to(cast[dtype])
            out[name] = t.contiguous()
    if not any("word_embeddings" in n for n in gathered):
        raise KnsError(f"{weights}: no word-embedding matrix with {vocab_rows} rows found (config vocab_size)")
    return out, gathered, metadata


def _set_vocab_size(config: dict, old: int, new: int) -> list[str]:
    """Every `vocab_size` equal to the old size (top level and nested encoder configs)."""
    changed = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "vocab_size" and v == old:
                    node[k] = new
                    changed.append(path + k)
                else:
                    walk(v, path + k + ".")

    walk(config, "")
    return changed


def trim_model(
    src_dir: str | Path,
    out_dir: str | Path,
    corpus: Iterable,
    *,
    keep_chars: str = "",
    held_aside: Iterable = (),
    held_aside_share: float = 0.05,
    verify_sentences: int = 64,
    dtype: str | None = None,
    seed: int = 0,
    extra_provenance: dict | None = None,
) -> dict:
    """Write a vocabulary-trimmed copy of the checkpoint `src_dir` into `out_dir` (which must
    exist and be empty), verify it and record kns_provenance.json. Returns the provenance."""
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    start = time.perf_counter()
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    tok_file = src_dir / "tokenizer.json"
    if not tok_file.is_file():
        raise KnsError(f"{src_dir}: vocabulary trimming needs a fast tokenizer (tokenizer.json)")
    config = json.loads((src_dir / "config.json").read_text(encoding="utf-8"))
    tv = load_tokenizer_vocab(tok_file)
    full_tok = Tokenizer.from_file(str(tok_file))
    corpora = read_corpora(corpus)
    for cf in corpora:
        cf.words = with_normalized_variants(cf.words)
    log.info("trim: %d corpus files, %d sentences", len(corpora), sum(c.n_sentences for c in corpora))

    full_ids = encode_corpus(full_tok, corpora)
    sel = select_pieces(tv, full_tok, corpora, keep_chars, full_ids)
    new_id = {old: new for new, old in enumerate(sel.old_ids)}
    tok_data = trimmed_tokenizer_json(tv, sel.old_ids, str(tok_file))
    trim_tok = Tokenizer.from_str(json.dumps(tok_data, ensure_ascii=False))

    vocab_rows = int(config.get("vocab_size") or 0)
    sd, gathered, metadata = _gather_state_dict(src_dir, sel.old_ids, vocab_rows, dtype)
    changed = _set_vocab_size(config, vocab_rows, len(sel.old_ids))

    # Everything but weights, tokenizer.json, config and provenance is copied as it is.
    import shutil

    dropped = []
    for p in sorted(src_dir.iterdir()):
        if p.is_file() and p.name not in ("model.safetensors", "tokenizer.json", "config.json", PROVENANCE_FILE):
            if p.name in SLOW_VOCAB_FILES or p.name.endswith((".bin", ".pt", ".pth", ".ckpt", ".onnx", ".safetensors")) \
                    or p.name.startswith("."):
                dropped.append(p.name)
                continue
            shutil.copy2(p, out_dir / p.name)
    save_file(sd, str(out_dir / "model.safetensors"), metadata={**metadata, "format": "pt"})
    (out_dir / "model.safetensors").chmod(0o644)  # safetensors writes 0600; the folder is meant to be shared
    (out_dir / "tokenizer.json").write_text(json.dumps(tok_data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    # ---- verification
    corpus_check = compare_tokenization(full_ids, trim_tok, new_id, corpora, tv.pieces)
    if corpus_check["different"]:
        ex = corpus_check["examples"][0]
        raise KnsError(
            f"trimmed tokenizer differs from the full one on {corpus_check['different']} of "
            f"{corpus_check['sentences']} corpus sentences (first in {ex['corpus']}: {ex['full']} vs "
            f"{ex['trimmed']}); the trimmed copy is not the same model"
        )
    loaded = check_transformers_tokenizer(out_dir, trim_tok, sample_sentences(corpora, 200, seed + 1))
    hidden = max_hidden_state_difference(src_dir, out_dir, full_tok, new_id,
                                         sample_sentences(corpora, verify_sentences, seed))
    estimate = held_aside_estimate(tv, full_tok, corpora, full_ids, keep_chars, held_aside_share, seed)
    held_texts = held_aside_texts(held_aside)
    held = held_aside_check(full_tok, trim_tok, new_id, held_texts, tv) if held_texts else None

    n_full = tv.size
    record = {
        "source": TRIM_SOURCE,
        "trimmed_from": {
            "path": str(src_dir.resolve()),
            "model_safetensors_sha256": sha256_file(src_dir / "model.safetensors"),
            "vocab_size": vocab_rows,
            "tokenizer_pieces": n_full,
            "provenance": read_provenance(src_dir),
        },
        "method": "vocabulary trimming (Ushio et al., 2023): pieces the full tokenizer uses on the corpora, "
                  "single-character fallbacks, special and added tokens",
        "corpora": [c.record() for c in corpora],
        "kept": len(sel.old_ids),
        "kept_breakdown": {
            "used_by_corpora": sel.used,
            "single_character_fallbacks": sel.single_chars,
            "special_and_added": len(tv.added) + (0 if tv.unk_id in tv.added else 1),
            "lowest_score_piece": sel.min_score_piece,
        },
        "keep_chars": keep_chars,
        "chars_without_piece": sel.chars_without_piece,
        "dtype": dtype or "as source",
        "gathered_tensors": gathered,
        "files_not_copied": dropped,
        "config_fields_changed": changed,
        "verification": {
            "corpus_tokenization": {k: corpus_check[k] for k in ("sentences", "different", "identical_share")},
            "transformers_tokenizer": loaded,
            "hidden_states": hidden,
            "held_aside_estimate": estimate,
            "held_aside": held,
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    for key in ("derived_from", "hub_id"):
        base = (read_provenance(src_dir) or {}).get(key)
        if base:
            record[key] = base
    if extra_provenance:
        record.update(extra_provenance)
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return record
