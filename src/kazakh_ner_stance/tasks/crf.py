"""A linear-chain CRF over the NER head's word scores (`task.head=crf`).

The trained version of constrained Viterbi decoding: besides each word's label scores (the
token classifier's logits at the word's first piece), the model learns a score for every
label-to-label transition and for the first and last label of a sequence, and is trained on the
likelihood of the whole gold tag sequence. IOB2's rules stay hard: a transition into I-X from
anything but B-X / I-X scores -1e4 in training (the partition function runs over valid
sequences only, the set decoding searches) and is forbidden outright at decoding.

Where the learned scores live:
- in training, a `CrfScores` module attached to the token classifier as `model.kns_crf`, so the
  Trainer's optimiser, checkpoints, best-model reload and resume all carry it;
- in every saved folder, `config.json` under `kns_crf` (labels, transitions, start, end; plain
  numbers), written by `write_crf_config`. The weights file stays an ordinary token classifier
  that `AutoModelForTokenClassification` loads; every decoder reads the scores back with
  `crf_potentials(model)`, from the live module or from the config.

Decoding adds the learned scores to the per-word log-probabilities (labels.viterbi_iob2). Using
log-softmax there instead of the raw logits changes no path: each word's scores shift by one
constant.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import KnsError
from ..labels import iob2_transitions

CONFIG_KEY = "kns_crf"
# A forbidden IOB2 transition in training: finite, so that log-sum-exp stays exact in float32.
FORBIDDEN = -1e4
# The transition scores are stored divided by this and multiplied back in `scores()`: Adam moves a
# parameter by about the learning rate each step whatever its gradient's size, so this makes the
# CRF's scores move LR_SCALE times faster than the encoder's weights (1.5e-4 a step would leave
# them within ±0.3 of zero after the default's 2,224 steps; BERT-CRF recipes give the CRF a
# learning rate 50-1000 times the encoder's for the same reason).
LR_SCALE = 50.0


@dataclass(frozen=True)
class CrfPotentials:
    """Learned sequence scores as numpy arrays over a label list: transitions[prev, next], and
    the score of each label first (start) and last (end) in a sentence."""

    labels: tuple[str, ...]
    transitions: object  # np.ndarray [n, n]
    start: object        # np.ndarray [n]
    end: object          # np.ndarray [n]

    def to_config(self) -> dict:
        return {
            "labels": list(self.labels),
            "transitions": [[float(x) for x in row] for row in self.transitions],
            "start": [float(x) for x in self.start],
            "end": [float(x) for x in self.end],
        }

    @classmethod
    def from_config(cls, value, where: str = "config.json") -> "CrfPotentials":
        import numpy as np

        try:
            labels = tuple(str(x) for x in value["labels"])
            n = len(labels)
            transitions = np.asarray(value["transitions"], dtype=np.float64)
            start = np.asarray(value["start"], dtype=np.float64)
            end = np.asarray(value["end"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as err:
            raise KnsError(f"{where}: `{CONFIG_KEY}` is not a CRF's scores ({err})") from None
        if transitions.shape != (n, n) or start.shape != (n,) or end.shape != (n,):
            raise KnsError(f"{where}: `{CONFIG_KEY}` holds {n} labels but transitions {transitions.shape}, "
                           f"start {start.shape}, end {end.shape}")
        if not (np.isfinite(transitions).all() and np.isfinite(start).all() and np.isfinite(end).all()):
            raise KnsError(f"{where}: `{CONFIG_KEY}` holds a score that is not a finite number")
        return cls(labels, transitions, start, end)


def _torch_module():
    import torch
    from torch import nn

    class CrfScores(nn.Module):
        """Learned transition, start and end scores, zero at first (plain constrained Viterbi)."""

        def __init__(self, labels: Sequence[str]):
            super().__init__()
            self.labels = tuple(labels)
            n = len(self.labels)
            self.transitions_raw = nn.Parameter(torch.zeros(n, n))
            self.start_raw = nn.Parameter(torch.zeros(n))
            self.end_raw = nn.Parameter(torch.zeros(n))
            allowed, _ = iob2_transitions(self.labels)
            self.register_buffer("forbidden", torch.from_numpy(~allowed), persistent=False)

        def scores(self):
            """(transitions with IOB2's forbidden moves at FORBIDDEN, start, end), float32."""
            trans = (self.transitions_raw * LR_SCALE).float().masked_fill(self.forbidden, FORBIDDEN)
            return trans, (self.start_raw * LR_SCALE).float(), (self.end_raw * LR_SCALE).float()

        def potentials(self) -> CrfPotentials:
            with torch.no_grad():
                trans = (self.transitions_raw * LR_SCALE).double().cpu().numpy()
                start = (self.start_raw * LR_SCALE).double().cpu().numpy()
                end = (self.end_raw * LR_SCALE).double().cpu().numpy()
            return CrfPotentials(self.labels, trans, start, end)

        def nll(self, emissions, tags, mask):
            """The negative log-likelihood of each gold sequence: emissions [B, W, n] (word
            scores), tags [B, W] (label ids, any value where masked), mask [B, W] bool with each
            row's words first. Rows without a word give 0."""
            emissions = emissions.float()
            trans, start, end = self.scores()
            b, w, _ = emissions.shape
            rows = torch.arange(b, device=emissions.device)
            tags = tags.masked_fill(~mask, 0)
            # The gold path's score.
            gold = start[tags[:, 0]] + emissions[rows, 0, tags[:, 0]]
            # The partition function, by the forward algorithm.
            alpha = start[None, :] + emissions[:, 0]
            for i in range(1, w):
                on = mask[:, i]
                step = trans[tags[:, i - 1], tags[:, i]] + emissions[rows, i, tags[:, i]]
                gold = gold + step * on
                nxt = torch.logsumexp(alpha[:, :, None] + trans[None], dim=1) + emissions[:, i]
                alpha = torch.where(on[:, None], nxt, alpha)
            last = (mask.sum(dim=1) - 1).clamp(min=0)
            gold = gold + end[tags[rows, last]]
            log_z = torch.logsumexp(alpha + end[None, :], dim=1)
            return (log_z - gold) * mask[:, 0]

    return CrfScores


def attach_crf(model, labels: Sequence[str]):
    """Give a token classifier a fresh CRF (`model.kns_crf`); returns the module. Its scores are
    kept out of the weights file (they go to config.json, see write_crf_config).

    Training calls the model with one more input, `word_starts` (1 at each word's first piece):
    a pre-hook takes it off the inputs and the forward hook adds the CRF's negative log-likelihood
    per word to the pieces' cross-entropy in `outputs.loss`. The CRF thus runs inside the model's
    forward, where DDP sees its parameters used. Calls without `word_starts` or labels
    (prediction) are left as they are."""
    module = _torch_module()(labels)
    model.kns_crf = module
    ignore = set(getattr(model, "_keys_to_ignore_on_save", None) or ())
    model._keys_to_ignore_on_save = ignore | {f"kns_crf.{name}" for name, _ in module.named_parameters()}
    pending = {}

    def take_word_starts(_model, args, kwargs):
        pending["word_starts"] = kwargs.pop("word_starts", None)
        return args, kwargs

    def add_crf_loss(_model, _args, kwargs, output):
        starts = pending.pop("word_starts", None)
        labels = kwargs.get("labels")
        if starts is None or labels is None or getattr(output, "loss", None) is None:
            return output
        emissions, tags, mask = word_level(output.logits, labels, starts)
        nll = module.nll(emissions, tags, mask)
        output.loss = output.loss + nll.sum() / mask.sum().clamp(min=1)
        return output

    model.register_forward_pre_hook(take_word_starts, with_kwargs=True)
    model.register_forward_hook(add_crf_loss, with_kwargs=True)
    return module


def word_level(logits, labels, word_starts):
    """(emissions [B, W, n], tags [B, W], mask [B, W]): each window's first-piece scores and
    labels in word order, padded to the batch's most words."""
    import torch

    starts = word_starts.bool()
    counts = starts.sum(dim=1)
    width = max(int(counts.max()), 1) if counts.numel() else 1
    positions = torch.arange(starts.shape[1], device=starts.device).expand_as(starts)
    # Word starts sort first, in order; the rest after them.
    key = torch.where(starts, positions, positions + starts.shape[1])
    picked = key.argsort(dim=1)[:, :width]
    mask = torch.arange(width, device=starts.device)[None, :] < counts[:, None]
    emissions = logits.gather(1, picked[:, :, None].expand(-1, -1, logits.shape[-1]))
    tags = labels.gather(1, picked)
    if bool(((tags < 0) & mask).any()):
        raise KnsError("internal: a word's first piece has no label (CRF training needs every word's tag)")
    return emissions, tags, mask


def crf_potentials(model, labels: Sequence[str]) -> CrfPotentials | None:
    """The model's learned CRF scores over `labels` (the live module's while training, else
    config.json's), or None for a model without a CRF."""
    module = getattr(model, "kns_crf", None)
    if module is not None and hasattr(module, "potentials"):
        found = module.potentials()
    else:
        value = getattr(getattr(model, "config", None), CONFIG_KEY, None)
        if value is None:
            return None
        found = CrfPotentials.from_config(value)
    if list(found.labels) != list(labels):
        raise KnsError(f"the checkpoint's CRF scores are over labels {list(found.labels)[:5]}... but its "
                       f"label map is {list(labels)[:5]}...: the CRF does not belong to this model")
    return found


def write_crf_config(folder: Path, potentials: CrfPotentials) -> None:
    """Put the CRF's scores into `folder/config.json` (written whole, then renamed over it), and
    nothing else of the file changes."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise KnsError(f"{path}: no config.json to record the CRF's scores in")
    config = json.loads(path.read_text(encoding="utf-8"))
    config[CONFIG_KEY] = potentials.to_config()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def load_crf_into(module, folder: Path) -> bool:
    """Set a live CRF's scores from `folder/config.json` (the Trainer's best-model reload and
    resume read the weights file, which does not hold them). False when the folder has none."""
    import torch

    path = Path(folder) / "config.json"
    if not path.is_file():
        return False
    value = json.loads(path.read_text(encoding="utf-8")).get(CONFIG_KEY)
    if value is None:
        return False
    found = CrfPotentials.from_config(value, str(path))
    if list(found.labels) != list(module.labels):
        raise KnsError(f"{path}: its CRF scores are over other labels than the model being trained")
    with torch.no_grad():
        module.transitions_raw.copy_(torch.as_tensor(found.transitions / LR_SCALE))
        module.start_raw.copy_(torch.as_tensor(found.start / LR_SCALE))
        module.end_raw.copy_(torch.as_tensor(found.end / LR_SCALE))
    return True
