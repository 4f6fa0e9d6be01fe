"""The target markers of the stance input: two added special tokens ([TGT], [/TGT]) around the
target span, their embedding rows (initialised from the mean word embedding), and, when the
word-embedding matrix is frozen, a small trainable offset for those rows (`kns_marker_delta`)
that is folded back into the saved weights."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import KnsError

MARKERS = ("[TGT]", "[/TGT]")
DELTA_KEY = "kns_marker_delta"


def add_marker_tokens(tokenizer, markers: Sequence[str] = MARKERS) -> list[int]:
    """Add the target markers as special tokens (no-op when present); their ids."""
    from tokenizers import AddedToken

    vocab = tokenizer.get_vocab()
    new = [m for m in markers if m not in vocab]
    if new:
        tokenizer.add_tokens(
            [AddedToken(m, special=True, normalized=False, single_word=False, lstrip=False, rstrip=False) for m in new],
            special_tokens=True,
        )
    return [int(tokenizer.convert_tokens_to_ids(m)) for m in markers]


def init_marker_embeddings(model, marker_ids: Sequence[int], n_real: int, seed: int = 0, noise: float = 0.1) -> None:
    """Grow the embedding matrix when needed and set the marker rows to the mean embedding of
    the real vocabulary plus `noise` x (per-dimension std) Gaussian noise (seeded)."""
    import torch

    emb = model.get_input_embeddings()
    need = max(marker_ids) + 1
    if emb.weight.shape[0] < need:
        model.resize_token_embeddings(need, mean_resizing=False)
        emb = model.get_input_embeddings()
    with torch.no_grad():
        w = emb.weight
        real = w[: min(n_real, w.shape[0])].float()
        mean, std = real.mean(0), real.std(0)
        gen = torch.Generator().manual_seed(int(seed))
        for mid in marker_ids:
            w[mid] = (mean + noise * std * torch.randn(mean.shape, generator=gen)).to(w.dtype)


def attach_marker_delta(model, marker_ids: Sequence[int]):
    """Trainable offsets for the marker rows when the embedding matrix itself is frozen."""
    import torch

    emb = model.get_input_embeddings()
    delta = torch.nn.Parameter(torch.zeros(len(marker_ids), emb.embedding_dim, dtype=emb.weight.dtype))
    model.register_parameter(DELTA_KEY, delta)
    ids = list(int(i) for i in marker_ids)

    def hook(module, inputs, output):
        input_ids = inputs[0]
        for j, mid in enumerate(ids):
            output = output + (input_ids == mid).unsqueeze(-1).to(output.dtype) * delta[j].to(output.dtype)
        return output

    emb.register_forward_hook(hook)
    return delta


def fold_marker_delta_file(folder: Path, marker_ids: Sequence[int]) -> bool:
    """Fold `kns_marker_delta` into the word-embedding rows of a saved model.safetensors."""
    from safetensors.torch import load_file, save_file

    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        return False
    tensors = load_file(str(path))
    if DELTA_KEY not in tensors:
        return False
    delta = tensors.pop(DELTA_KEY)
    key = next((k for k in tensors if k.endswith("word_embeddings.weight")), None)
    if key is None:
        raise KnsError(f"{path}: no word_embeddings.weight to fold the marker embeddings into")
    w = tensors[key].clone()
    for j, mid in enumerate(marker_ids):
        w[mid] += delta[j].to(w.dtype)
    tensors[key] = w
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "pt"})
    return True
