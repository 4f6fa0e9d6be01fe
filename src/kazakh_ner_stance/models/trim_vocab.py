"""Tokenizer surgery for a vocabulary trim: which pieces to keep (:func:`select_pieces`) and
the tokenizer.json that holds only them, renumbered (:func:`trimmed_tokenizer_json`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import KnsError
from .trim_corpus import CorpusFile

METASPACE = "\u2581"


# --------------------------------------------------------------------------- tokenizer.json


@dataclass
class TokenizerVocab:
    """The parts of a tokenizer.json that trimming rewrites."""

    data: dict
    kind: str  # Unigram | WordPiece
    pieces: list[str]  # id -> piece (model vocabulary)
    scores: list[float] | None
    unk_id: int | None
    added: dict[int, str]  # id -> content of every added token

    @property
    def size(self) -> int:
        return max([len(self.pieces) - 1, *self.added]) + 1


def load_tokenizer_vocab(tokenizer_json: Path) -> TokenizerVocab:
    try:
        data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise KnsError(f"{tokenizer_json}: cannot read the fast tokenizer ({err})") from None
    model = data.get("model") or {}
    kind = model.get("type")
    added = {int(t["id"]): t["content"] for t in data.get("added_tokens") or []}
    if kind == "Unigram":
        pieces = [p for p, _ in model["vocab"]]
        scores = [float(s) for _, s in model["vocab"]]
        unk = model.get("unk_id")
    elif kind == "WordPiece":
        vocab = model["vocab"]
        pieces = [None] * len(vocab)
        for piece, i in vocab.items():
            if i >= len(pieces) or pieces[i] is not None:
                raise KnsError(f"{tokenizer_json}: WordPiece ids are not 0..{len(vocab) - 1}")
            pieces[i] = piece
        scores = None
        unk = vocab.get(model.get("unk_token"))
    else:
        raise KnsError(
            f"{tokenizer_json}: a {kind} tokenizer; vocabulary trimming supports SentencePiece Unigram "
            "(XLM-R, e5) and WordPiece (BERT) tokenizers"
        )
    return TokenizerVocab(data, kind, pieces, scores, unk, added)


def _remap_post_processor(node, new_id: dict[int, int], where: str):
    """Special-token ids inside a post-processor (TemplateProcessing, Roberta/Bert, Sequence)."""
    if node is None:
        return None
    node = json.loads(json.dumps(node))

    def remap(i):
        if int(i) not in new_id:
            raise KnsError(f"{where}: the post-processor uses token id {i}, which the trimmed vocabulary lacks")
        return new_id[int(i)]

    kind = node.get("type")
    if kind == "TemplateProcessing":
        for spec in (node.get("special_tokens") or {}).values():
            spec["ids"] = [remap(i) for i in spec.get("ids", [])]
    elif kind in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            if key in node:
                node[key] = [node[key][0], remap(node[key][1])]
    elif kind == "Sequence":
        node["processors"] = [_remap_post_processor(p, new_id, where) for p in node.get("processors", [])]
    elif kind not in ("ByteLevel",):
        raise KnsError(f"{where}: post-processor {kind} is not supported by vocabulary trimming")
    return node


def trimmed_tokenizer_json(tv: TokenizerVocab, old_ids: Sequence[int], where: str = "tokenizer.json") -> dict:
    """tokenizer.json for the vocabulary `old_ids` (new id i = old id old_ids[i]); everything
    else (normalizer, pre-tokenizer, decoder, added-token flags) is kept as it is."""
    new_id = {old: new for new, old in enumerate(old_ids)}
    data = json.loads(json.dumps(tv.data))
    model = data["model"]
    n_model = len(tv.pieces)
    in_model = [i for i in old_ids if i < n_model]
    if in_model != list(old_ids[: len(in_model)]):
        raise KnsError(f"{where}: added tokens beyond the model vocabulary must come last")
    if tv.kind == "Unigram":
        model["vocab"] = [[tv.pieces[i], tv.scores[i]] for i in in_model]
        if tv.unk_id is not None:
            model["unk_id"] = new_id[tv.unk_id]
    else:
        model["vocab"] = {tv.pieces[i]: new_id[i] for i in in_model}
    for tok in data.get("added_tokens") or []:
        tok["id"] = new_id[int(tok["id"])]
    data["post_processor"] = _remap_post_processor(data.get("post_processor"), new_id, where)
    return data


# --------------------------------------------------------------------------- piece selection


def encode_all(tokenizer, corpora: Sequence[CorpusFile], batch: int = 2048):
    """Yield (corpus index, encoding) for every sentence, without special tokens."""
    for ci, cf in enumerate(corpora):
        for start in range(0, len(cf.texts), batch):
            for enc in tokenizer.encode_batch(cf.texts[start : start + batch], add_special_tokens=False):
                yield ci, enc
        for start in range(0, len(cf.words), batch):
            chunk = cf.words[start : start + batch]
            for enc in tokenizer.encode_batch(chunk, is_pretokenized=True, add_special_tokens=False):
                yield ci, enc


def _corpus_chars(tokenizer, corpora: Sequence[CorpusFile]) -> set[str]:
    """Characters of the corpus after the tokenizer's normaliser (what pieces are made of)."""
    norm = tokenizer.normalizer
    chars: set[str] = set()
    for cf in corpora:
        for t in cf.texts:
            chars.update(norm.normalize_str(t) if norm else t)
        for ws in cf.words:
            for w in ws:
                chars.update(norm.normalize_str(w) if norm else w)
    chars.discard(" ")
    return chars


@dataclass
class Selection:
    old_ids: list[int]
    used: int  # pieces the full tokenizer used on the corpus (specials excluded)
    single_chars: int  # single-character pieces kept that the corpus did not use
    min_score_piece: str | None
    chars_without_piece: list[str]  # corpus characters the full vocabulary has no piece for


def encode_corpus(tokenizer, corpora: Sequence[CorpusFile]) -> list[list[int]]:
    """Piece ids of every corpus sentence (texts, then word lists, corpus by corpus)."""
    return [enc.ids for _, enc in encode_all(tokenizer, corpora)]


def select_pieces(tv: TokenizerVocab, tokenizer, corpora: Sequence[CorpusFile], keep_chars: str = "",
                  full_ids: Sequence[Sequence[int]] | None = None) -> Selection:
    """The kept ids (old numbering, in new order). `full_ids`: encode_corpus(tokenizer, corpora)
    when the caller already has it."""
    used: set[int] = set()
    for ids in full_ids if full_ids is not None else encode_corpus(tokenizer, corpora):
        used.update(ids)
    index = {p: i for i, p in enumerate(tv.pieces)}
    keep = set(used)
    keep.update(tv.added)
    if tv.unk_id is not None:
        keep.add(tv.unk_id)
    chars = _corpus_chars(tokenizer, corpora) | set(keep_chars)
    char_pieces = set()
    no_piece = []
    for ch in sorted(chars):
        forms = [ch, "##" + ch] if tv.kind == "WordPiece" else [ch, METASPACE + ch]
        found = [index[f] for f in forms if f in index]
        char_pieces.update(found)
        if not found and not ch.isspace():
            no_piece.append(ch)
    if tv.kind == "Unigram" and METASPACE in index:
        char_pieces.add(index[METASPACE])
    single_extra = len(char_pieces - keep)
    keep |= char_pieces
    min_piece = None
    if tv.kind == "Unigram":
        # The unknown-piece score is min(vocabulary scores) - 10 in tokenizers' Unigram.
        lowest = min(range(len(tv.scores)), key=lambda i: tv.scores[i])
        keep.add(lowest)
        min_piece = tv.pieces[lowest]
    n_model = len(tv.pieces)
    old_ids = sorted(i for i in keep if i < n_model) + sorted(i for i in keep if i >= n_model)
    used_real = len(used - set(tv.added) - {tv.unk_id})
    return Selection(old_ids, used_real, single_extra, min_piece, no_piece)
