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
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..data.download import sha256_file
from ..errors import KnsError

log = logging.getLogger(__name__)

TRIM_SOURCE = "trim"
METASPACE = "\u2581"
# Columns read as text from CSV/TSV corpora (KazSAnDRA: text, text_cleaned; RuSentNE: sentence, entity).
TEXT_COLUMNS = ("text", "text_cleaned", "sentence", "entity", "target", "target_text")
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
SKIPPED_NAMES = ("license", "licence", "readme", "sources", "notice", "copying")


# --------------------------------------------------------------------------- corpora


@dataclass
class CorpusFile:
    """One corpus file (or built dataset folder): what was read from it and its fingerprint."""

    path: str
    kind: str
    sha256: str
    texts: list[str] = field(default_factory=list)  # raw text, tokenized as a string
    words: list[list[str]] = field(default_factory=list)  # pre-split words (NER-style input)

    @property
    def n_sentences(self) -> int:
        return len(self.texts) + len(self.words)

    def record(self) -> dict:
        # sentences: as tokenized, i.e. with the NFC / Latin-look-alike-fixed variants of word lists
        return {"path": self.path, "kind": self.kind, "sha256": self.sha256, "sentences": self.n_sentences}


def _skip(p: Path) -> bool:
    stem = p.name.lower()
    return p.name.startswith(".") or stem.endswith(".md") or any(stem.startswith(s) for s in SKIPPED_NAMES)


def expand_corpus_paths(paths: Iterable) -> list[Path]:
    """Files and built-dataset folders named by `paths` (a plain folder: the files in it)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(str(raw)).expanduser()
        if not p.exists():
            raise KnsError(f"trim corpus {p} does not exist (pass trim.corpus=[...] with existing files or folders)")
        if p.is_dir() and not _is_dataset_dir(p):
            found = sorted(c for c in p.iterdir() if (c.is_file() or _is_dataset_dir(c)) and not _skip(c))
            if not found:
                raise KnsError(f"trim corpus folder {p} holds no corpus files")
            out.extend(found)
        else:
            out.append(p)
    seen, unique = set(), []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _is_dataset_dir(p: Path) -> bool:
    return p.is_dir() and ((p / "dataset_dict.json").is_file() or (p / "dataset_info.json").is_file())


def _dir_sha256(p: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(str(f.relative_to(p)).encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise KnsError(f"{where}:{line}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _looks_like_iob2(lines: Sequence[str]) -> bool:
    from ..data.iob2 import _SEP_RE

    body = [ln for ln in lines[:2000] if ln.strip()]
    if not body:
        return False
    hits = 0
    for ln in body:
        parts = _SEP_RE.split(ln.strip())
        if len(parts) == 2 and (parts[1] == "O" or parts[1][:2] in ("B-", "I-")):
            hits += 1
    return hits >= 0.9 * len(body)


def _read_iob2_words(lines: Sequence[str]) -> list[list[str]]:
    """Sentences (word lists) of an IOB2 file; sentence-ID lines (`AID283875 O`) are not text."""
    from ..data.iob2 import _SEP_RE, _blocks, _looks_like_id_line, detect_sent_ids

    blocks = _blocks([ln if ln.strip() else "" for ln in lines])
    has_ids = detect_sent_ids(blocks)
    out = []
    for block in blocks:
        if has_ids and block and _looks_like_id_line(block[0][1]):
            block = block[1:]
        words = [_SEP_RE.split(line.strip())[0] for _, line in block]
        if words:
            out.append(words)
    return out


def _read_table(text: str, where: str) -> list[str]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first else ","
    csv.field_size_limit(1 << 24)
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    columns = [c for c in TEXT_COLUMNS if c in (reader.fieldnames or [])]
    if not columns:
        raise KnsError(
            f"{where}: a table without a text column (has {reader.fieldnames}; expected one of {list(TEXT_COLUMNS)})"
        )
    out = []
    for row in reader:
        for c in columns:
            value = (row.get(c) or "").strip()
            if value:
                out.append(value)
    return out


def _is_table(text: str) -> bool:
    first = text.split("\n", 1)[0].lower()
    cells = [c.strip().strip('"') for c in (first.split("\t") if "\t" in first else first.split(","))]
    return len(cells) > 1 and any(c in TEXT_COLUMNS for c in cells)


def _read_text_file(path: Path, text: str, where: str) -> CorpusFile:
    lines = text.splitlines()
    if _looks_like_iob2(lines):
        return CorpusFile(where, "iob2", "", words=_read_iob2_words(lines))
    if _is_table(text) or path.suffix.lower() in (".csv", ".tsv"):
        return CorpusFile(where, "table", "", texts=_read_table(text, where))
    return CorpusFile(where, "text", "", texts=[ln.strip() for ln in lines if ln.strip()])


def _read_dataset_dir(path: Path) -> CorpusFile:
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    splits = ds.values() if isinstance(ds, DatasetDict) else [ds]
    cf = CorpusFile(str(path), "dataset", "")
    for split in splits:
        # The words (NER, stance and joint datasets) and plain text columns; never tag lists or ids.
        for name, feature in split.features.items():
            if name == "tokens":
                cf.words.extend([list(w) for w in split[name] if w])
            elif name in TEXT_COLUMNS and getattr(feature, "dtype", None) == "string":
                cf.texts.extend([t for t in split[name] if t])
    return cf


def read_corpus_file(path: Path) -> CorpusFile:
    """Text of one corpus file: IOB2 (word lists), CSV/TSV with a text column, a zip of such
    files, a built dataset folder, or plain text (one sentence per line)."""
    path = Path(path)
    if _is_dataset_dir(path):
        cf = _read_dataset_dir(path)
        cf.sha256 = _dir_sha256(path)
    elif path.suffix.lower() == ".zip":
        cf = CorpusFile(str(path), "zip", "")
        try:
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if not n.endswith("/") and not _skip(Path(n))]
                for name in members:
                    where = f"{path}:{name}"
                    inner = _read_text_file(Path(name), _decode(zf.read(name), where), where)
                    cf.texts.extend(inner.texts)
                    cf.words.extend(inner.words)
        except zipfile.BadZipFile as err:
            raise KnsError(f"{path}: not a readable zip file ({err})") from None
        cf.sha256 = sha256_file(path)
    else:
        try:
            data = path.read_bytes()
        except OSError as err:
            raise KnsError(f"{path}: cannot read the corpus file ({err.strerror or err})") from None
        cf = _read_text_file(path, _decode(data, str(path)), str(path))
        cf.sha256 = sha256_file(path)
    if not cf.n_sentences:
        raise KnsError(f"{path}: no text found in this corpus file")
    return cf


def read_corpora(paths: Iterable) -> list[CorpusFile]:
    return [read_corpus_file(p) for p in expand_corpus_paths(paths)]


def with_normalized_variants(words: list[list[str]]) -> list[list[str]]:
    """The dataset builder stores words NFC-normalised with Latin look-alikes fixed; the
    trimmed vocabulary must cover those forms as well as the raw file's."""
    from ..data.normalize import fix_latin_in_cyrillic, nfc

    out = list(words)
    for ws in words:
        fixed = [fix_latin_in_cyrillic(nfc(w)) for w in ws]
        if fixed != ws:
            out.append(fixed)
    return out


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


def _encode_all(tokenizer, corpora: Sequence[CorpusFile], batch: int = 2048):
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
    return [enc.ids for _, enc in _encode_all(tokenizer, corpora)]


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


# --------------------------------------------------------------------------- verification


def compare_tokenization(full_ids: Sequence[Sequence[int]], trim_tok, new_id: dict[int, int],
                         corpora: Sequence[CorpusFile], pieces: Sequence[str], max_examples: int = 10) -> dict:
    """Sentences whose trimmed-tokenizer ids differ from the full tokenizer's ids remapped (the
    same ids mean the same pieces: new id i is old id old_ids[i])."""
    n = diff = 0
    examples = []
    per_corpus: dict[int, int] = {}
    for ids, (ci, b) in zip(full_ids, _encode_all(trim_tok, corpora)):
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


def _sample_sentences(corpora: Sequence[CorpusFile], n: int, seed: int) -> list:
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

    from .prepare import PROVENANCE_FILE, read_provenance

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
    loaded = check_transformers_tokenizer(out_dir, trim_tok, _sample_sentences(corpora, 200, seed + 1))
    hidden = max_hidden_state_difference(src_dir, out_dir, full_tok, new_id,
                                         _sample_sentences(corpora, verify_sentences, seed))
    estimate = _held_aside_estimate(tv, full_tok, corpora, full_ids, keep_chars, held_aside_share, seed)
    held_texts = _held_aside_texts(held_aside)
    held = _held_aside_check(full_tok, trim_tok, new_id, held_texts, tv) if held_texts else None

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


def _held_aside_texts(paths: Iterable) -> list:
    out: list = []
    for cf in read_corpora(list(paths)) if paths else []:
        out.extend(cf.texts)
        out.extend(cf.words)
    return out


def _held_aside_estimate(tv: TokenizerVocab, full_tok, corpora: Sequence[CorpusFile], full_ids, keep_chars: str,
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
    rep = _held_aside_check(full_tok, tok, new_id, held, tv)
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


def _held_aside_check(full_tok, trim_tok, new_id, texts: list, tv: TokenizerVocab) -> dict:
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
