"""Target stance classification: (target, sentence with the target span marked) -> NONE/FAVOR/AGAINST.

Input (``input_format: pair``, the default): the target's words as the first sequence and the
sentence as the second, with the target span wrapped in two added special tokens::

    <s> Тоқаев </s></s> ... [TGT] Тоқаевты [/TGT] қолдады ... </s>

The markers (tasks/stance_markers.py) are added to the tokenizer as special tokens (never
split, saved with it), their embedding rows are initialised from the mean word embedding
(plus a small seeded perturbation, so that the opening and closing marker differ from the
first step) and trained. With a frozen
word-embedding matrix (``trainer.freeze_word_embeddings``, the CPU preset) the marker rows are
trained through a small separate parameter (``kns_marker_delta``) that is folded back into the
embedding matrix of the final model, so the release checkpoint is a plain
``AutoModelForSequenceClassification`` folder.

Rare classes: weighted cross-entropy (``class_balance: weights``) or oversampling of the rare
training items (``oversample``), both with weights ``(n_max / n_c) ** balance_power``.
Sentences longer than the window are cut to the words around the target, never past it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import KnsError
from ..labels import STANCE_LABELS  # ClassLabel ids 0, 1, 2 everywhere
from .base import Task
from .ner import check_checkpoint, pieces_per_word, ready_for_inference
from .stance_markers import (
    DELTA_KEY, MARKERS, add_marker_tokens, attach_marker_delta, fold_marker_delta_file, init_marker_embeddings,
)

log = logging.getLogger(__name__)

ID2LABEL = dict(enumerate(STANCE_LABELS))
STANCE_HEADS = ("pooler", "markers")  # task.head; markers: tasks/stance_model.py


# --------------------------------------------------------------------------- encoding


def _context_window(counts: Sequence[int], start: int, end: int, budget: int) -> tuple[int, int]:
    """Words [lo, hi) around the span [start, end) with at most `budget` pieces (the span is
    always kept; context is added alternately left and right)."""
    total = sum(counts)
    if total <= budget:
        return 0, len(counts)
    lo, hi = start, end
    used = sum(counts[start:end])
    left_ok = right_ok = True
    while left_ok or right_ok:
        left_ok = lo > 0 and used + counts[lo - 1] <= budget
        if left_ok:
            lo -= 1
            used += counts[lo]
        right_ok = hi < len(counts) and used + counts[hi] <= budget
        if right_ok:
            used += counts[hi]
            hi += 1
    return lo, hi


def encode_stance(
    tokenizer,
    tokens_list: Sequence[Sequence[str]],
    starts: Sequence[int],
    ends: Sequence[int],
    max_length: int = 256,
    markers: Sequence[str] = MARKERS,
    input_format: str = "pair",
) -> dict[str, list]:
    """Encode (target, marked sentence) items; returns input_ids, attention_mask (and
    token_type_ids when the tokenizer makes them) and length."""
    if input_format not in ("pair", "marked"):
        raise KnsError(f"unknown stance input_format {input_format!r}; choose pair or marked")
    for i, (toks, s, e) in enumerate(zip(tokens_list, starts, ends)):
        if not (0 <= int(s) < int(e) <= len(toks)):
            raise KnsError(f"stance item {i}: target span {s}:{e} is not inside its {len(toks)} tokens")
    pair = input_format == "pair"
    counts = pieces_per_word(tokenizer, tokens_list)
    specials = tokenizer.num_special_tokens_to_add(pair=pair)
    firsts, seconds = [], []
    for toks, c, s, e in zip(tokens_list, counts, starts, ends):
        s, e = int(s), int(e)
        target = list(toks[s:e])
        t_pieces = sum(c[s:e]) if pair else 0
        budget = max(sum(c[s:e]), max_length - specials - t_pieces - len(markers))
        lo, hi = _context_window(c, s, e, budget)
        marked = [*toks[lo:s], markers[0], *toks[s:e], markers[1], *toks[e:hi]]
        firsts.append(target)
        seconds.append(marked)
    if pair:
        enc = tokenizer(firsts, seconds, is_split_into_words=True, truncation="longest_first", max_length=max_length)
    else:
        enc = tokenizer(seconds, is_split_into_words=True, truncation=True, max_length=max_length)
    out = {k: list(v) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    out["length"] = [len(x) for x in out["input_ids"]]
    return out


def class_balance_weights(counts: Sequence[int], power: float = 0.5, max_weight: float | None = None) -> list[float]:
    """(n_max / n_c) ** power per class (1.0 for the majority; classes with no item get 1.0)."""
    n_max = max(counts) if counts else 1
    out = []
    for c in counts:
        w = (n_max / c) ** float(power) if c > 0 else 1.0
        if max_weight is not None:
            w = min(w, float(max_weight))
        out.append(float(w))
    return out


# --------------------------------------------------------------------------- inference


def _marker_settings(model) -> tuple[tuple[str, ...], str, int]:
    meta = getattr(model.config, "kns_stance", None) or {}
    return tuple(meta.get("markers", MARKERS)), str(meta.get("input_format", "pair")), int(meta.get("max_length", 256))


def predict_stance_probs(model, tokenizer, items: Sequence[Mapping], batch_size: int = 32,
                         max_length: int = 256):
    """(n_items, 3) numpy probabilities in STANCE_LABELS order, input order kept."""
    import numpy as np
    import torch

    n = len(items)
    probs = np.zeros((n, len(STANCE_LABELS)), dtype=np.float32)
    if n == 0:
        return probs
    markers, input_format, _ = _marker_settings(model)
    enc = encode_stance(
        tokenizer, [list(it["tokens"]) for it in items], [it["start"] for it in items],
        [it["end"] for it in items], max_length=max_length, markers=markers, input_format=input_format,
    )
    lengths = enc["length"]
    order = sorted(range(n), key=lambda k: lengths[k])
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    label_index = _label_index(model)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for b in range(0, n, batch_size):
            batch = order[b : b + batch_size]
            width = max(lengths[k] for k in batch)
            tensors = {}
            for key in keys:
                fill = pad_id if key == "input_ids" else 0
                t = torch.full((len(batch), width), fill, dtype=torch.long)
                for r, k in enumerate(batch):
                    seq = enc[key][k]
                    t[r, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                tensors[key] = t.to(device)
            logits = model(**tensors).logits.float()
            p = torch.softmax(logits, dim=-1).cpu().numpy()
            for r, k in enumerate(batch):
                probs[k] = p[r, label_index]
    if was_training:
        model.train()
    return probs


def _label_index(model) -> list[int]:
    """Model output column of each of STANCE_LABELS (the config's id2label decides)."""
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    label2id = {v: k for k, v in id2label.items()}
    missing = [lab for lab in STANCE_LABELS if lab not in label2id]
    if missing:
        raise KnsError(f"the model's id2label {id2label} lacks stance label(s) {missing}")
    return [label2id[lab] for lab in STANCE_LABELS]


def predict_stance(model, tokenizer, items: Sequence[Mapping], batch_size: int = 32, max_length: int = 256) -> list[dict]:
    """One {"label", "probs": {NONE, FAVOR, AGAINST}} per item ({"tokens", "start", "end"}),
    in input order (batched by length under inference mode)."""
    probs = predict_stance_probs(model, tokenizer, items, batch_size, max_length)
    out = []
    for row in probs:
        best = int(row.argmax())
        out.append({"label": STANCE_LABELS[best], "probs": {lab: float(row[j]) for j, lab in enumerate(STANCE_LABELS)}})
    return out


def load_stance_checkpoint(path, device: str | None = None, cpu_linear: str = "torch"):
    """(model, tokenizer, id2label) from a stance checkpoint folder (safetensors only);
    `device` and `cpu_linear` as in `tasks.ner.ready_for_inference`."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from . import stance_model  # noqa: F401  registers the kns_stance (marker head) model type

    path, info = check_checkpoint(path, "stance")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True)
    markers, _, _ = _marker_settings(model)
    vocab = tokenizer.get_vocab()
    missing = [m for m in markers if m not in vocab]
    if missing:
        raise KnsError(f"{path}: the tokenizer lacks the stance marker token(s) {missing}")
    # An intermediate checkpoint of a frozen-embedding run still holds the marker offsets.
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        if DELTA_KEY in f.keys():
            delta = f.get_tensor(DELTA_KEY)
            with torch.no_grad():
                w = model.get_input_embeddings().weight
                for j, m in enumerate(markers):
                    w[vocab[m]] += delta[j].to(w.dtype)
    ready_for_inference(model, device, cpu_linear)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    return model, tokenizer, id2label


# --------------------------------------------------------------------------- the task


def stance_scores(gold: Sequence[str], pred: Sequence[str], probs=None, target_types=None,
                  bootstrap_n: int = 1000, seed: int = 0) -> dict:
    """Flat numbers for logging/selection plus the stance metrics module's full report."""
    from ..evaluation.stance_metrics import compute_stance_metrics

    report = compute_stance_metrics(
        list(gold), list(pred), probs=probs, target_types=target_types, bootstrap_n=bootstrap_n, seed=seed
    )
    out = {
        "macro_f1": report["macro"]["f1"],
        "macro_f1_ci": report["macro"]["f1_ci"],
        "f_avg": report["f_avg"]["value"],
        "f_avg_ci": report["f_avg"]["ci"],
        "accuracy": report["accuracy"],
        "n_items": report["n_items"],
    }
    for lab, v in report["per_class"].items():
        out[f"f1_{lab}"] = v["f1"]
    if report.get("calibration"):
        out["ece"] = report["calibration"]["ece"]
    out["report"] = report
    return out


def custom_model_type(task_cfg) -> str | None:
    """The package-defined model_type of a checkpoint trained with this task config (the markers
    head is our `kns_stance` architecture; the pooler head is transformers' own). `task_cfg` is a
    stored training record's (cards/model_card.py), which may be empty or predate `head`: hence
    `.get`, and the pooler head, the only one before `head` existed."""
    return "kns_stance" if (task_cfg or {}).get("head", "pooler") == "markers" else None


class StanceTask(Task):
    """Everything train.py needs to know about target stance classification."""

    name = "stance"
    metric_name = "macro_f1"  # dev macro-F1 over NONE/FAVOR/AGAINST

    def __init__(self, cfg, dataset, tokenizer):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.dataset = dataset
        feature = dataset["train"].features.get("label")
        names = list(getattr(feature, "names", STANCE_LABELS))
        if names != list(STANCE_LABELS):
            raise KnsError(f"the stance dataset's labels are {names}; expected {list(STANCE_LABELS)}")
        if {int(k): v for k, v in cfg.task.id2label.items()} != ID2LABEL:
            raise KnsError(f"task.id2label must be {ID2LABEL} (the dataset's ClassLabel order)")
        self.id2label = dict(ID2LABEL)
        self.label2id = {v: k for k, v in self.id2label.items()}
        self.max_length = int(cfg.task.max_length)
        self.input_format = str(cfg.task.input_format)
        self.markers = tuple(cfg.task.markers)
        self.bootstrap_n = int(cfg.task.bootstrap_n)
        self.head = str(cfg.task.head)
        if self.head not in STANCE_HEADS:
            raise KnsError(f"task.head must be one of {STANCE_HEADS}, not {self.head!r}")
        if self.head == "markers" and self.input_format not in ("pair", "marked"):
            raise KnsError("task.head=markers needs the marked target span (input_format pair or marked)")
        self.balance = str(cfg.task.class_balance)
        if self.balance not in ("weights", "oversample", "none"):
            raise KnsError(f"task.class_balance must be weights, oversample or none, not {self.balance!r}")
        self.n_real_vocab = len(tokenizer)
        self.marker_ids = add_marker_tokens(tokenizer, self.markers)
        # Cross-lingual recipes: extra training items (tasks/stance_mix.py), a balanced sampler,
        # a first-stage model to start from. Class counts are those of what is trained on.
        self.sampler_kind = str(cfg.task.sampler.kind)
        if self.sampler_kind != "none" and self.balance == "oversample":
            raise KnsError("task.class_balance=oversample and task.sampler both resample the training items; "
                           "pick one (the balanced sampler balances classes itself: class_power)")
        from .stance_mix import training_split

        counts = [0] * len(STANCE_LABELS)
        for lab in training_split(dataset["train"], cfg.task)["label"]:
            counts[int(lab)] += 1
        self.train_counts = counts
        self._train_index = None  # langs, labels, lengths and sampler flags of the encoded training items
        explicit = cfg.task.class_weights
        if explicit is not None:
            self.class_weights = [float(x) for x in explicit]
        elif self.balance == "weights":
            self.class_weights = class_balance_weights(
                counts, float(cfg.task.balance_power), cfg.task.max_class_weight
            )
        else:
            self.class_weights = None
        self.model = None
        self._delta = False
        self.warm_start_info = None

    # ---- model

    def build_model(self, model_dir):
        from transformers import AutoModelForSequenceClassification

        noise = float(self.cfg.task.marker_init_noise)
        init_from = self.cfg.task.init_from
        if init_from:
            model = self._load_first_stage(init_from)
        elif self.head == "pooler":
            import torch

            model = AutoModelForSequenceClassification.from_pretrained(
                model_dir, num_labels=len(STANCE_LABELS), id2label=self.id2label, label2id=self.label2id,
                use_safetensors=True, dtype=torch.float32,  # float32 master weights (load_pretrained_encoder)
            )
            init_marker_embeddings(model, self.marker_ids, self.n_real_vocab, seed=int(self.cfg.seed), noise=noise)
        else:
            from .encoder_heads import load_pretrained_encoder
            from .stance_model import KnsStanceModel

            encoder = load_pretrained_encoder(model_dir)
            # Rows for the markers first, so the wrapped config records the grown vocabulary.
            init_marker_embeddings(encoder, self.marker_ids, self.n_real_vocab, seed=int(self.cfg.seed), noise=noise)
            model = KnsStanceModel.from_encoder(
                encoder, self.marker_ids, num_labels=len(STANCE_LABELS), id2label=self.id2label,
                label2id=self.label2id, use_cls=bool(self.cfg.task.head_use_cls),
                head_hidden=self.cfg.task.head_hidden, head_dropout=float(self.cfg.task.head_dropout),
            )
        model.config.kns_stance = {
            "markers": list(self.markers), "marker_ids": list(self.marker_ids),
            "input_format": self.input_format, "max_length": self.max_length,
            "class_weights": self.class_weights, "class_balance": self.balance, "head": self.head,
        }
        # compute_loss below returns a mean loss: let Trainer divide it by the accumulation steps.
        model.accepts_loss_kwargs = False
        frozen = bool(self.cfg.trainer.get("freeze_word_embeddings", False))
        ws = self.cfg.task.warm_start
        if ws.enabled:
            from .kazsandra import warm_start_stance

            warm_start_stance(model, self.tokenizer, ws, self, freeze_embeddings=frozen, seed=int(self.cfg.seed))
        if frozen:
            # train.py freezes the embedding matrix after this; the markers train through offsets.
            attach_marker_delta(model, self.marker_ids)
            self._delta = True
        self.model = model
        return model

    def _load_first_stage(self, path):
        """A trained stance checkpoint (sequential recipe: the RuSentNE stage) to go on from;
        its markers, head and labels must be the ones this run uses."""
        from transformers import AutoModelForSequenceClassification

        from . import stance_model  # noqa: F401  registers the kns_stance model type

        import torch

        folder, _ = check_checkpoint(path, "stance")
        model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True, dtype=torch.float32)
        meta = getattr(model.config, "kns_stance", None) or {}
        problems = []
        if list(meta.get("marker_ids", [])) != list(self.marker_ids) or tuple(meta.get("markers", ())) != self.markers:
            problems.append(f"its markers {meta.get('markers')} / ids {meta.get('marker_ids')} are not this run's "
                            f"{list(self.markers)} / {list(self.marker_ids)} (another base model or tokenizer?)")
        head = "markers" if model.config.model_type == "kns_stance" else "pooler"
        if head != self.head:
            problems.append(f"it has the {head} head, this run task.head={self.head}")
        if {int(k): v for k, v in model.config.id2label.items()} != self.id2label:
            problems.append(f"its labels {model.config.id2label} are not {self.id2label}")
        if problems:
            raise KnsError(f"task.init_from={folder}: " + "; ".join(problems))
        log.info("starting from the stance checkpoint %s (task.init_from)", folder)
        return model

    def encode_items(self, tokens_list, starts, ends):
        return encode_stance(self.tokenizer, tokens_list, starts, ends, self.max_length, self.markers, self.input_format)

    def encode_train(self, split):
        from .stance_mix import training_split

        split = training_split(split, self.cfg.task)
        if self.balance == "oversample":
            split = self._oversample(split)
        langs = list(split["lang"])

        def encode(batch):
            enc = self.encode_items(batch["tokens"], batch["start"], batch["end"])
            enc["labels"] = [int(x) for x in batch["label"]]
            return enc

        features = split.map(encode, batched=True, batch_size=1000, remove_columns=split.column_names,
                             desc="encoding stance items (marked target spans)")
        self._train_index = {"langs": langs, "labels": list(features["labels"]), "lengths": list(features["length"]),
                             "augmented": list(split["augmented"]), "contrast": list(split["contrast"])}
        return features

    def train_sampler(self, batch_size: int):
        """The balanced language/class sampler of `task.sampler` (None: Trainer's own)."""
        from .stance_mix import make_sampler

        if self._train_index is None or self.sampler_kind == "none":
            return None
        ix = self._train_index
        return make_sampler(self.cfg.task.sampler, ix["langs"], ix["labels"], ix["lengths"], int(self.cfg.seed),
                            batch_size, str(self.cfg.task.target_lang), ix["augmented"], ix["contrast"])

    def _oversample(self, split):
        import random

        power = float(self.cfg.task.balance_power)
        factors = [max(1, round(w)) for w in class_balance_weights(self.train_counts, power)]
        rng = random.Random(int(self.cfg.seed))
        index = []
        for i, lab in enumerate(split["label"]):
            index.extend([i] * factors[int(lab)])
        rng.shuffle(index)
        log.info("oversampling rare stance classes by %s: %d -> %d items", factors, len(split), len(index))
        return split.select(index)

    def data_collator(self, pad_to_multiple_of=None):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(self.tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def compute_loss(self, model, inputs, return_outputs=False):
        import torch

        inputs = dict(inputs)
        labels = inputs.pop("labels")
        inputs.pop("length", None)
        outputs = model(**inputs)
        logits = outputs.logits.float()
        weight = None
        if self.class_weights is not None:
            weight = torch.tensor(self.class_weights, dtype=logits.dtype, device=logits.device)
        loss = torch.nn.functional.cross_entropy(logits, labels.to(logits.device), weight=weight)
        return (loss, outputs) if return_outputs else loss

    # ---- evaluation

    def evaluate(self, model, split, batch_size=64) -> dict:
        items = [{"tokens": t, "start": s, "end": e} for t, s, e in zip(split["tokens"], split["start"], split["end"])]
        probs = predict_stance_probs(model, self.tokenizer, items, batch_size, self.max_length)
        pred = [STANCE_LABELS[int(i)] for i in probs.argmax(axis=1)] if len(items) else []
        gold = [STANCE_LABELS[int(x)] for x in split["label"]]
        types = split["target_type"] if "target_type" in split.column_names else None
        return stance_scores(gold, pred, probs, types, bootstrap_n=self.bootstrap_n, seed=int(self.cfg.seed))

    def training_data_info(self) -> dict:
        from .stance_mix import extra_data_info

        t = self.cfg.task
        return {"train_on_target": bool(t.train_on_target), **extra_data_info(t),
                "init_from": str(t.init_from) if t.init_from else None}

    def save_extra(self, folder: Path):
        folder = Path(folder)
        # The release folder (not checkpoint-N, which resume must read back unchanged) gets the
        # marker offsets folded into the embedding matrix: a plain AutoModel checkpoint.
        if self._delta and not folder.name.startswith("checkpoint-"):
            fold_marker_delta_file(folder, self.marker_ids)
        meta = {"labels": list(STANCE_LABELS), "markers": list(self.markers), "marker_ids": list(self.marker_ids),
                "input_format": self.input_format, "max_length": self.max_length, "head": self.head,
                "class_weights": self.class_weights, "train_counts": self.train_counts,
                "warm_start": self.warm_start_info, "training_data": self.training_data_info()}
        (folder / "kns_stance.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
