"""Checkpoint weight averaging (issue 25, lever 3).

The mean of the weights of a run's last few epoch checkpoints often scores a little better
than any one of them (Izmailov et al., 2018; the checkpoint averaging of machine translation):
the late checkpoints sit on one side or another of a flat region of the loss, and their mean
lies nearer its middle. It costs nothing at prediction time (the averaged model has the same
size and speed) and little at training time (reading k checkpoints once).

`trainer.average_last_checkpoints=K` makes train.py average the last K epoch checkpoints of a
run and keep the mean when it scores at least as well on dev as the best single checkpoint
(dev decides, as it decides the best checkpoint). `average_state_dicts` is the primitive; the
weights are read from safetensors only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..errors import KnsError

WEIGHTS_FILE = "model.safetensors"


def _mean(sources: Iterable[tuple[str, Mapping[str, object]]]) -> dict:
    """The element-wise mean of (name, state dict) pairs, read one at a time (a running float64
    sum: memory holds two models' worth, not K). Floating-point tensors are averaged in float64 and
    cast back to their own dtype (so the mean of identical checkpoints is exactly each of them);
    integer and boolean tensors (position ids, counters) must be equal everywhere and are kept.
    KnsError when the keys, shapes or dtypes differ: those are checkpoints of different models."""
    import torch

    first_name, first, sums, n = None, None, None, 0
    for name, sd in sources:
        n += 1
        if first is None:
            first_name, first = name, sd
            sums = {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in sd.items()}
            continue
        if set(sd) != set(first):
            raise KnsError(f"{name} has other weights than {first_name} ({sorted(set(sd) ^ set(first))[:5]})")
        for k, v in sd.items():
            if v.shape != first[k].shape or v.dtype != first[k].dtype:
                raise KnsError(f"{name}: weight {k!r} has shape/dtype {tuple(v.shape)} {v.dtype}, {first_name} "
                               f"{tuple(first[k].shape)} {first[k].dtype}")
            if v.is_floating_point():
                sums[k] += v.to(torch.float64)
            elif not torch.equal(v, first[k]):
                raise KnsError(f"{name}: weight {k!r} is not a floating-point tensor and differs from {first_name}'s: "
                               "it cannot be averaged")
    if first is None:
        raise KnsError("no checkpoints to average")
    return {k: (v / n).to(first[k].dtype) if first[k].is_floating_point() else v.clone() for k, v in sums.items()}


def average_state_dicts(state_dicts: Sequence[Mapping[str, object]]) -> dict:
    """The element-wise mean of several state dicts of one architecture (see `_mean`)."""
    return _mean((f"checkpoint {k}", sd) for k, sd in enumerate(state_dicts, start=1))


def read_weights(folder: str | Path) -> dict:
    """A checkpoint folder's weights, from its safetensors file only (never a pickle)."""
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise KnsError(f"{folder} has no {WEIGHTS_FILE}: only single-file safetensors checkpoints can be averaged")
    return load_file(str(path))


def average_checkpoints(folders: Sequence[str | Path]) -> dict:
    """The averaged state dict of checkpoint folders, each read when its turn comes."""
    return _mean((str(folder), read_weights(folder)) for folder in folders)


def load_averaged_into(model, folders: Sequence[str | Path]) -> None:
    """Replace `model`'s weights by the mean of the checkpoints' (strict: every weight present).
    Tied weights (the checkpoint stores one copy) load through the model's own tying; weights kept
    out of the file on purpose (`_keys_to_ignore_on_save`: a CRF's scores, which live in
    config.json) keep the model's values."""
    averaged = average_checkpoints(folders)
    device = next(model.parameters()).device
    missing, unexpected = model.load_state_dict({k: v.to(device) for k, v in averaged.items()}, strict=False)
    not_in_files = set(getattr(model, "_tied_weights_keys", None) or []) | set(
        getattr(model, "_keys_to_ignore_on_save", None) or [])
    missing = [k for k in missing if k not in not_in_files]
    if missing or unexpected:
        raise KnsError(f"the averaged checkpoints do not fit the model: missing {missing[:5]}, "
                       f"unexpected {unexpected[:5]}")
