"""Token classification: label alignment, windowing, word-level prediction, checkpoints.

In training every sub-word piece of a word carries its label, B-X on the first piece and I-X
on the rest (`label_all_subwords`, the default here and in configs/task/ner.yaml); with it off,
only the first piece does (run_ner.py's `word_ids` alignment) and the others get -100.
Prediction and scoring read each word's first piece either way.
Sentences longer than the model window become several overlapping windows (see windows.py),
so no gold word is ever lost to truncation, in training or in prediction.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from ..errors import KnsError
from ..labels import iob2_transitions, repair_iob2, viterbi_iob2
# check_checkpoint: also what the stance and joint loaders import from here.
from ..training.checkpoints import check_checkpoint
from .base import Task
from .crf import attach_crf, crf_potentials, load_crf_into, write_crf_config
from .windows import word_windows

IGNORE_INDEX = -100


def pieces_per_word(tokenizer, words_batch: Sequence[Sequence[str]]) -> list[list[int]]:
    """How many sub-word pieces each word becomes (0 for words the tokenizer drops)."""
    enc = tokenizer(
        [list(w) for w in words_batch], is_split_into_words=True, add_special_tokens=False, verbose=False
    )
    out = []
    for i, words in enumerate(words_batch):
        counts = [0] * len(words)
        for wid in enc.word_ids(i):
            if wid is not None:
                counts[wid] += 1
        out.append(counts)
    return out


def effective_max_length(tokenizer, requested: int) -> int:
    """The window size actually used: the requested one, capped by what the model takes."""
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 100_000:
        return min(requested, limit)
    return requested


def _window_budget(tokenizer, max_length: int) -> int:
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    return max(1, max_length - specials)


def encode_windows(
    tokenizer,
    words_batch: Sequence[Sequence[str]],
    max_length: int,
    overlap: int,
    labels_batch: Sequence[Sequence[int]] | None = None,
    id2label: dict[int, str] | None = None,
    label_all_subwords: bool = True,
) -> dict[str, list]:
    """Encode sentences as model windows.

    Returns columns: input_ids, attention_mask, word_ids (piece -> sentence word index or
    -1), owned (1 where the piece is the first piece of a word this window predicts),
    example (index of the source sentence), length, and labels when labels are given.
    With `label_all_subwords` (the default, as configs/task/ner.yaml) every piece of a word
    carries its label (B-X on the first piece, I-X on the rest, which needs id2label); without
    it only the first piece does and the rest are IGNORE_INDEX."""
    budget = _window_budget(tokenizer, max_length)
    counts_batch = pieces_per_word(tokenizer, words_batch)
    # Pieces of all words at once, then sliced per window: one tokenizer call per batch.
    enc = tokenizer(
        [list(w) for w in words_batch], is_split_into_words=True, add_special_tokens=False, verbose=False
    )
    b_to_i = None
    if label_all_subwords and labels_batch is not None:
        if id2label is None:
            raise ValueError("label_all_subwords needs id2label")
        label2id = {v: k for k, v in id2label.items()}
        b_to_i = {
            k: label2id.get("I-" + v[2:], k) if v.startswith("B-") else k for k, v in id2label.items()
        }
    out: dict[str, list] = {k: [] for k in ("input_ids", "attention_mask", "word_ids", "owned", "example", "length")}
    if labels_batch is not None:
        out["labels"] = []
    for i, words in enumerate(words_batch):
        ids = enc["input_ids"][i]
        wids = enc.word_ids(i)
        # first piece index of each word
        starts = [0] * (len(words) + 1)
        acc = 0
        for w, c in enumerate(counts_batch[i]):
            starts[w] = acc
            acc += c
        starts[len(words)] = acc
        for win in word_windows(counts_batch[i], budget, overlap):
            lo, hi = starts[win.start], starts[win.end]
            piece_ids = ids[lo:hi][:budget]
            piece_words = list(wids[lo:hi][:budget])
            input_ids = [tokenizer.cls_token_id, *piece_ids, tokenizer.sep_token_id]
            word_ids = [-1, *piece_words, -1]
            owned, labels = [0], [IGNORE_INDEX]
            prev = None
            for w in piece_words:
                first = w != prev
                prev = w
                owned.append(1 if first and win.owned_start <= w < win.owned_end else 0)
                if labels_batch is not None:
                    tag = labels_batch[i][w]
                    if first:
                        labels.append(tag)
                    elif b_to_i is not None:
                        labels.append(b_to_i[tag])
                    else:
                        labels.append(IGNORE_INDEX)
            owned.append(0)
            labels.append(IGNORE_INDEX)
            out["input_ids"].append(input_ids)
            out["attention_mask"].append([1] * len(input_ids))
            out["word_ids"].append(word_ids)
            out["owned"].append(owned)
            out["example"].append(i)
            out["length"].append(len(input_ids))
            if labels_batch is not None:
                out["labels"].append(labels)
    return out


def _batches(order: list[int], lengths: list[int], max_tokens: int, max_batch: int) -> Iterable[list[int]]:
    batch: list[int] = []
    longest = 0
    for idx in order:
        longest_new = max(longest, lengths[idx])
        if batch and (len(batch) + 1 > max_batch or longest_new * (len(batch) + 1) > max_tokens):
            yield batch
            batch, longest_new = [], lengths[idx]
        batch.append(idx)
        longest = longest_new
    if batch:
        yield batch


def predict_word_logits(
    model,
    tokenizer,
    tokens_list: Sequence[Sequence[str]],
    batch_size: int = 32,
    max_length: int | None = None,
    overlap: int = 32,
    max_tokens: int | None = None,
):
    """Per-word logits (numpy arrays, one [n_words, n_labels] per sentence), length-sorted
    batches under inference mode, results returned in input order."""
    import numpy as np
    import torch

    max_length = effective_max_length(tokenizer, int(max_length or 512))
    n_labels = model.config.num_labels
    enc = encode_windows(tokenizer, tokens_list, max_length, overlap)
    lengths = enc["length"]
    order = sorted(range(len(lengths)), key=lambda k: lengths[k])
    max_tokens = max_tokens or batch_size * max_length
    results = [np.zeros((len(t), n_labels), dtype=np.float32) for t in tokens_list]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.inference_mode():
        for batch in _batches(order, lengths, max_tokens, batch_size):
            width = max(lengths[k] for k in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, k in enumerate(batch):
                seq = enc["input_ids"][k]
                ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            logits = logits.float().cpu().numpy()
            for r, k in enumerate(batch):
                ex = enc["example"][k]
                for p, (w, own) in enumerate(zip(enc["word_ids"][k], enc["owned"][k])):
                    if own:
                        results[ex][w] = logits[r, p]
    if was_training:
        model.train()
    return results


DECODINGS = ("argmax", "viterbi")
HEADS = ("linear", "crf")


def predict_word_tags(
    model,
    tokenizer,
    tokens_list: Sequence[Sequence[str]],
    batch_size: int = 32,
    max_length: int | None = None,
    overlap: int = 32,
    id2label: dict[int, str] | None = None,
    return_scores: bool = False,
    decoding: str = "argmax",
):
    """One IOB2 tag per gold word for every sentence (and optionally its softmax score).

    decoding="argmax": each word's most probable tag, orphan I-X then repaired to B-X;
    "viterbi": the most probable valid IOB2 sequence (labels.viterbi_iob2), with the model's
    learned transition scores added when it has a CRF (task.head=crf, tasks/crf.py)."""
    if decoding not in DECODINGS:
        raise KnsError(f"decoding must be one of {DECODINGS}, not {decoding!r}")
    id2label = id2label or {int(k): v for k, v in model.config.id2label.items()}
    crf = crf_potentials(model, [id2label[i] for i in range(len(id2label))]) if decoding == "viterbi" else None
    logits = predict_word_logits(model, tokenizer, tokens_list, batch_size, max_length, overlap)
    tags, scores = decode_word_logits(logits, id2label, decoding, crf)
    return (tags, scores) if return_scores else tags


def decode_word_logits(logits, id2label: dict[int, str], decoding: str = "argmax", crf=None):
    """(tags, scores) from predict_word_logits' per-word logits: one valid IOB2 tag per word and
    the softmax probability of the tag chosen (see predict_word_tags for `decoding`; `crf`: a
    CRF's learned scores, tasks/crf.py `crf_potentials`, used by viterbi)."""
    import numpy as np

    if decoding not in DECODINGS:
        raise KnsError(f"decoding must be one of {DECODINGS}, not {decoding!r}")
    labels = [id2label[i] for i in range(len(id2label))]
    transitions = iob2_transitions(labels) if decoding == "viterbi" else None
    tags, scores = [], []
    for sent_logits in logits:
        if len(sent_logits) == 0:
            tags.append([])
            scores.append([])
            continue
        z = sent_logits - sent_logits.max(axis=1, keepdims=True)
        exp_z = np.exp(z)
        norm = exp_z.sum(axis=1, keepdims=True)
        probs = exp_z / norm
        if decoding == "viterbi":
            best = viterbi_iob2(z - np.log(norm), labels, transitions, crf)
        else:
            best = probs.argmax(axis=1)
        tags.append(repair_iob2([id2label[int(b)] for b in best]))
        scores.append([float(probs[i, b]) for i, b in enumerate(best)])
    return tags, scores


def ready_for_inference(model, device: str | None = None, cpu_linear: str = "torch"):
    """What every checkpoint loader does last: move to `device`, eval mode, and the CPU linear
    kernels (`cpu_linear`: auto/onednn route the linear layers through oneDNN on CPU, see
    cpu_kernels.py; torch, the loaders' default and what ONNX export needs, leaves them)."""
    from ..cpu_kernels import apply_cpu_linear

    if device:
        model.to(device)
    model.eval()
    apply_cpu_linear(model, cpu_linear, device)
    return model


def load_ner_checkpoint(path, device: str | None = None, cpu_linear: str = "torch"):
    """Load (model, tokenizer, id2label) from a checkpoint folder, safetensors only;
    `device` and `cpu_linear` as in `ready_for_inference`."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    path, _ = check_checkpoint(path, "ner")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = ready_for_inference(AutoModelForTokenClassification.from_pretrained(path, use_safetensors=True),
                                device, cpu_linear)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    return model, tokenizer, id2label


def entity_scores(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Strict IOB2 entity-level micro P/R/F1 (flat keys, as the Trainer logs them) plus
    macro F1 and per-type scores, from the one metric implementation the reports use."""
    from ..evaluation.ner_metrics import compute_ner_metrics

    m = compute_ner_metrics(gold, pred, errors=False)
    return {
        "precision": m["micro"]["precision"],
        "recall": m["micro"]["recall"],
        "f1": m["micro"]["f1"],
        "macro_f1": m["macro"]["f1"],
        "token_accuracy": m["token_accuracy"],
        "per_type": {t: {k: v[k] for k in ("precision", "recall", "f1", "support")} for t, v in m["per_type"].items()},
        "n_sentences": m["n_sentences"],
    }


class _WordStartCollator:
    """DataCollatorForTokenClassification, plus the CRF's word-start column padded with 0."""

    def __init__(self, pad):
        self.pad = pad

    def __call__(self, features):
        import torch

        starts = [f["word_starts"] for f in features]
        batch = self.pad([{k: v for k, v in f.items() if k != "word_starts"} for f in features])
        width = batch["input_ids"].shape[1]
        left = self.pad.tokenizer.padding_side == "left"
        rows = [([0] * (width - len(s)) + list(s)) if left else (list(s) + [0] * (width - len(s))) for s in starts]
        batch["word_starts"] = torch.tensor(rows, dtype=torch.long)
        return batch


class NerTask(Task):
    """Everything train.py needs to know about token classification."""

    name = "ner"
    metric_name = "f1"  # dev entity F1, strict IOB2, micro

    def __init__(self, cfg, dataset, tokenizer):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.dataset = dataset
        feature = dataset["train"].features["ner_tags"].feature
        self.label_names = list(feature.names)
        self.id2label = dict(enumerate(self.label_names))
        self.label2id = {v: k for k, v in self.id2label.items()}
        self.max_length = effective_max_length(tokenizer, int(cfg.task.max_length))
        self.overlap = int(cfg.task.window_overlap)
        self.head = str(cfg.task.head)
        if self.head not in HEADS:
            raise KnsError(f"task.head must be one of {HEADS}, not {self.head!r}")
        self.crf = None  # the live CRF scores (task.head=crf), set by build_model

    def build_model(self, model_dir):
        import torch
        from transformers import AutoModelForTokenClassification

        # float32 master weights whatever the stored dtype (see load_pretrained_encoder).
        model = AutoModelForTokenClassification.from_pretrained(
            model_dir,
            num_labels=len(self.label_names),
            id2label=self.id2label,
            label2id=self.label2id,
            use_safetensors=True,
            dtype=torch.float32,
        )
        if self.head == "crf":
            self.crf = attach_crf(model, self.label_names)
        return model

    def encode_train(self, split):
        label_all = bool(self.cfg.task.label_all_subwords)

        def encode(batch):
            enc = encode_windows(
                self.tokenizer, batch["tokens"], self.max_length, self.overlap,
                labels_batch=batch["ner_tags"], id2label=self.id2label, label_all_subwords=label_all,
            )
            out = {k: enc[k] for k in ("input_ids", "attention_mask", "labels", "length")}
            if self.head == "crf":
                # The CRF runs over words: it reads each word's first piece.
                out["word_starts"] = [
                    [int(w >= 0 and (p == 0 or row[p - 1] != w)) for p, w in enumerate(row)] for row in enc["word_ids"]
                ]
            return out

        return split.map(
            encode, batched=True, batch_size=1000, remove_columns=split.column_names,
            desc=f"encoding (windows, {'every-sub-word' if label_all else 'first-sub-word'} labels)",
        )

    def data_collator(self, pad_to_multiple_of=None):
        from transformers import DataCollatorForTokenClassification

        pad = DataCollatorForTokenClassification(self.tokenizer, pad_to_multiple_of=pad_to_multiple_of)
        return pad if self.head != "crf" else _WordStartCollator(pad)

    def feature_columns(self) -> tuple[str, ...]:
        return ("word_starts",) if self.head == "crf" else ()

    def save_extra(self, folder) -> None:
        if self.crf is not None:
            write_crf_config(folder, self.crf.potentials())

    def load_extra(self, folder) -> None:
        if self.crf is not None and not load_crf_into(self.crf, folder):
            raise KnsError(f"{folder}: the checkpoint has no CRF scores in config.json (task.head=crf)")

    def predict(self, model, split, batch_size=64):
        return predict_word_tags(
            model, self.tokenizer, split["tokens"], batch_size=batch_size,
            max_length=self.max_length, overlap=self.overlap, id2label=self.id2label,
            decoding=str(self.cfg.task.decoding),
        )

    def evaluate(self, model, split, batch_size=64) -> dict:
        gold = [[self.label_names[t] for t in tags] for tags in split["ner_tags"]]
        pred = self.predict(model, split, batch_size)
        return entity_scores(gold, pred)
