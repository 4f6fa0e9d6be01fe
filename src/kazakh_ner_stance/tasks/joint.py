"""Joint NER + target stance: one shared encoder, a token-classification head and a span
stance head, in one checkpoint (`KnsJointModel`, model_type "kns_joint").

NER uses the same sub-word labels (`task.label_all_subwords`) and overlapping windows as
tasks/ner.py (its functions are reused; the windows and spans: tasks/joint_encoding.py). The stance head classifies a target span of a window from its piece
representations: the span vector (mean of its pieces, or first+last piece) concatenated with
the window's first-token ([CLS]/<s>) vector, through a small MLP. A span is read from the
window that owns its first word and also holds its last word (else the first window holding
the whole span). Loss = NER cross-entropy + `stance_loss_weight` x (class-weighted) stance
cross-entropy.

Prediction (`predict_joint`): pass 1 tags every word (windows merged as for NER); the entities
of stance target types become targets; pass 2 classifies them. Reloading with
`KnsJointModel.from_pretrained(dir)` (or AutoModel after importing this module) gives the
same predictions.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import KnsError
from ..labels import STANCE_LABELS, TARGET_TYPES, iob2_spans
from .base import Task
from .joint_encoding import JointCollator, encode_joint
from .joint_mix import JointMix
from .ner import IGNORE_INDEX, entity_scores, predict_word_tags
from .stance import class_balance_weights, stance_scores

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- model

import torch
from torch import nn
from transformers import AutoConfig, AutoModel
from transformers.utils import ModelOutput

from .encoder_heads import EncoderHeadsConfig, EncoderWithHeads, encoder_from_config, load_pretrained_encoder, mlp_head


class KnsJointConfig(EncoderHeadsConfig):
    """The encoder's config (as a dict) plus both heads' settings; `id2label` is the NER map."""

    model_type = "kns_joint"

    def __init__(self, encoder: dict | None = None, stance_labels: Sequence[str] = STANCE_LABELS,
                 span_pooling: str = "mean", use_cls: bool = True, stance_hidden: int | None = None,
                 stance_dropout: float = 0.1, stance_loss_weight: float = 1.0,
                 stance_class_weights: Sequence[float] | None = None,
                 stance_types: Sequence[str] = TARGET_TYPES, window_max_length: int = 256, window_overlap: int = 32,
                 **kwargs):
        self.stance_labels = list(stance_labels)
        if span_pooling not in ("mean", "first_last", "mean_first_last"):
            raise ValueError(f"span_pooling must be mean, first_last or mean_first_last, not {span_pooling!r}")
        self.span_pooling = span_pooling
        self.use_cls = bool(use_cls)
        self.stance_hidden = stance_hidden
        self.stance_dropout = float(stance_dropout)
        self.stance_loss_weight = float(stance_loss_weight)
        self.stance_class_weights = list(stance_class_weights) if stance_class_weights is not None else None
        self.stance_types = list(stance_types)
        # (not `max_length`: transformers reserves that name for generation settings)
        self.window_max_length = int(window_max_length)
        self.window_overlap = int(window_overlap)
        super().__init__(encoder=encoder, **kwargs)


@dataclass
class KnsJointOutput(ModelOutput):
    loss: "torch.FloatTensor | None" = None
    logits: "torch.FloatTensor | None" = None  # NER, [batch, pieces, n_ner_labels]
    stance_logits: "torch.FloatTensor | None" = None  # [batch, max_spans, n_stance_labels]
    ner_loss: "torch.FloatTensor | None" = None
    stance_loss: "torch.FloatTensor | None" = None


class KnsJointModel(EncoderWithHeads):
    config_class = KnsJointConfig

    def __init__(self, config: KnsJointConfig, encoder=None):
        super().__init__(config)
        enc_cfg = config.encoder_config()
        self.encoder = encoder if encoder is not None else encoder_from_config(enc_cfg)
        h = int(enc_cfg.hidden_size)
        dropout = getattr(enc_cfg, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(dropout if dropout is not None else 0.1)
        self.ner_head = nn.Linear(h, config.num_labels)
        n_span = {"mean": 1, "first_last": 2, "mean_first_last": 3}[config.span_pooling]
        in_dim = h * (n_span + (1 if config.use_cls else 0))
        hidden = int(config.stance_hidden or h)
        self.stance_head = mlp_head(in_dim, hidden, len(config.stance_labels), config.stance_dropout)
        self.post_init()

    @classmethod
    def from_encoder(cls, model_dir, **config_kwargs) -> "KnsJointModel":
        """A new joint model around a pretrained encoder folder (heads randomly initialised)."""
        pretrained = load_pretrained_encoder(model_dir)
        config_kwargs.setdefault("pad_token_id", pretrained.config.pad_token_id)
        config = KnsJointConfig(encoder=pretrained.config.to_dict(), **config_kwargs)
        model = cls(config)
        model.copy_encoder_weights(pretrained)
        return model

    def span_vectors(self, hidden, span_starts, span_ends):
        """[batch, spans, dim] pooled span (+ first token) vectors; spans are piece ranges."""
        b, length, h = hidden.shape
        pos = torch.arange(length, device=hidden.device).view(1, 1, -1)
        starts = span_starts.clamp(min=0, max=length - 1)
        ends = torch.maximum(span_ends.clamp(max=length), starts + 1)
        parts = []
        if self.config.span_pooling in ("mean", "mean_first_last"):
            mask = ((pos >= starts.unsqueeze(-1)) & (pos < ends.unsqueeze(-1))).to(hidden.dtype)
            parts.append(torch.bmm(mask, hidden) / mask.sum(-1, keepdim=True).clamp(min=1.0))
        if self.config.span_pooling in ("first_last", "mean_first_last"):
            idx_first = starts.unsqueeze(-1).expand(-1, -1, h)
            idx_last = (ends - 1).unsqueeze(-1).expand(-1, -1, h)
            parts.append(torch.gather(hidden, 1, idx_first))
            parts.append(torch.gather(hidden, 1, idx_last))
        if self.config.use_cls:
            parts.append(hidden[:, :1, :].expand(-1, starts.shape[1], -1))
        return torch.cat(parts, dim=-1)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                span_starts=None, span_ends=None, stance_labels=None, return_dict=None):
        enc_kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            enc_kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**enc_kwargs).last_hidden_state
        seq = self.dropout(hidden)
        logits = self.ner_head(seq)
        stance_logits = None
        if span_starts is not None and span_starts.numel() > 0:
            stance_logits = self.stance_head(self.span_vectors(hidden, span_starts, span_ends))
        loss = ner_loss = stance_loss = None
        if labels is not None:
            ner_loss = nn.functional.cross_entropy(
                logits.float().view(-1, logits.shape[-1]), labels.view(-1), ignore_index=IGNORE_INDEX
            )
            loss = ner_loss
        if stance_labels is not None and stance_logits is not None:
            flat_labels = stance_labels.reshape(-1)
            valid = flat_labels != IGNORE_INDEX
            if bool(valid.any()):
                weight = None
                if self.config.stance_class_weights is not None:
                    weight = torch.tensor(self.config.stance_class_weights, dtype=torch.float32,
                                          device=stance_logits.device)
                stance_loss = nn.functional.cross_entropy(
                    stance_logits.float().reshape(-1, stance_logits.shape[-1])[valid], flat_labels[valid], weight=weight
                )
            else:
                stance_loss = stance_logits.sum() * 0.0
            w = self.config.stance_loss_weight
            loss = w * stance_loss if loss is None else loss + w * stance_loss
        return KnsJointOutput(loss=loss, logits=logits, stance_logits=stance_logits, ner_loss=ner_loss,
                              stance_loss=stance_loss)


AutoConfig.register("kns_joint", KnsJointConfig, exist_ok=True)
AutoModel.register(KnsJointConfig, KnsJointModel, exist_ok=True)


# ----------------------------------------------------------------------------- inference


def _pad(seqs, fill):
    width = max(len(s) for s in seqs)
    t = torch.full((len(seqs), width), fill, dtype=torch.long)
    for r, s in enumerate(seqs):
        if s:
            t[r, : len(s)] = torch.tensor(s, dtype=torch.long)
    return t


def predict_span_probs(model, tokenizer, tokens_list, spans_list, batch_size: int = 32,
                       max_length: int | None = None, overlap: int | None = None):
    """Stance probabilities (numpy [n_spans, n_labels], model label order) for the given word
    spans of each sentence; length-sorted batches under inference mode, input order kept."""
    import numpy as np

    cfg = model.config
    max_length = int(max_length or cfg.window_max_length)
    overlap = int(cfg.window_overlap if overlap is None else overlap)
    n_labels = len(cfg.stance_labels)
    results = [np.zeros((len(sp), n_labels), dtype=np.float32) for sp in spans_list]
    todo = [i for i, sp in enumerate(spans_list) if sp]
    if not todo:
        return results
    sub_tokens = [tokens_list[i] for i in todo]
    sub_targets = [[{"start": s, "end": e} for s, e in spans_list[i]] for i in todo]
    enc = encode_joint(tokenizer, sub_tokens, max_length, overlap, targets=sub_targets)
    windows = [k for k in range(len(enc["example"])) if enc["span_starts"][k]]
    windows.sort(key=lambda k: enc["length"][k])
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for b in range(0, len(windows), batch_size):
            batch = windows[b : b + batch_size]
            ids = _pad([enc["input_ids"][k] for k in batch], pad_id).to(device)
            mask = _pad([enc["attention_mask"][k] for k in batch], 0).to(device)
            starts = _pad([enc["span_starts"][k] for k in batch], 0).to(device)
            ends = _pad([enc["span_ends"][k] for k in batch], 1).to(device)
            out = model(input_ids=ids, attention_mask=mask, span_starts=starts, span_ends=ends)
            probs = torch.softmax(out.stance_logits.float(), dim=-1).cpu().numpy()
            for r, k in enumerate(batch):
                ex = todo[enc["example"][k]]
                for c, j in enumerate(enc["span_index"][k]):
                    results[ex][j] = probs[r, c]
    if was_training:
        model.train()
    return results


def predict_joint(model, tokenizer, tokens_list, batch_size: int = 32, stance_types=TARGET_TYPES,
                  max_length: int | None = None, overlap: int | None = None) -> list[dict]:
    """Per sentence: {"tags": one IOB2 tag per word, "scores": their probabilities,
    "targets": [{"start", "end", "type", "label", "probs"}]} for predicted entities of
    `stance_types`, in input order."""
    cfg = model.config
    max_length = int(max_length or cfg.window_max_length)
    overlap = int(cfg.window_overlap if overlap is None else overlap)
    id2label = {int(k): v for k, v in cfg.id2label.items()}
    tokens_list = [list(t) for t in tokens_list]
    tags, scores = predict_word_tags(model, tokenizer, tokens_list, batch_size=batch_size, max_length=max_length,
                                     overlap=overlap, id2label=id2label, return_scores=True)
    wanted = set(stance_types)
    ents = [[sp for sp in iob2_spans(t, "lenient") if sp[2] in wanted] for t in tags]
    probs = predict_span_probs(model, tokenizer, tokens_list, [[(s, e) for s, e, _ in es] for es in ents],
                               batch_size=batch_size, max_length=max_length, overlap=overlap)
    labels = list(cfg.stance_labels)
    out = []
    for t, sc, es, pr in zip(tags, scores, ents, probs):
        targets = []
        for (s, e, typ), p in zip(es, pr):
            best = int(p.argmax())
            targets.append({"start": s, "end": e, "type": typ, "label": labels[best],
                            "probs": {lab: float(p[j]) for j, lab in enumerate(labels)}})
        out.append({"tags": t, "scores": sc, "targets": targets})
    return out


def gold_target_stance(model, tokenizer, tokens, targets, pred, batch_size: int = 32,
                       max_length: int | None = None, overlap: int | None = None):
    """Stance on the gold targets of each sentence (`targets`: the joint dataset's column) and
    end to end, where a gold target gets the stance `pred` (predict_joint's output) gave the
    entity its NER found with exactly that span, NONE when it found none. Returns (gold,
    predicted, probabilities in STANCE_LABELS order, target types, end-to-end predicted)."""
    spans = [[(int(x["start"]), int(x["end"])) for x in ts] for ts in targets]
    probs = predict_span_probs(model, tokenizer, tokens, spans, batch_size, max_length, overlap)
    order = [list(model.config.stance_labels).index(lab) for lab in STANCE_LABELS]
    gold, predicted, plist, types, e2e = [], [], [], [], []
    for ts, pr, pj in zip(targets, probs, pred):
        found = {(t["start"], t["end"]): t["label"] for t in pj["targets"]}
        for x, row in zip(ts, pr):
            row = row[order]
            gold.append(STANCE_LABELS[int(x["label"])])
            predicted.append(STANCE_LABELS[int(row.argmax())])
            plist.append(row.tolist())
            types.append(x["type"])
            e2e.append(found.get((int(x["start"]), int(x["end"])), "NONE"))
    return gold, predicted, plist, types, e2e


def load_joint_checkpoint(path, device: str | None = None, cpu_linear: str = "torch"):
    """(model, tokenizer, info) from a joint checkpoint folder (safetensors only); info holds
    ner_id2label, stance_labels, stance_types, max_length, window_overlap and kns_training.json."""
    from transformers import AutoTokenizer

    from .ner import check_checkpoint, ready_for_inference

    path, training = check_checkpoint(path, "joint")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = ready_for_inference(KnsJointModel.from_pretrained(path, use_safetensors=True), device, cpu_linear)
    cfg = model.config
    info = {
        "ner_id2label": {int(k): v for k, v in cfg.id2label.items()},
        "stance_labels": list(cfg.stance_labels),
        "stance_types": list(cfg.stance_types),
        "max_length": int(cfg.window_max_length),
        "window_overlap": int(cfg.window_overlap),
        "training": training,
    }
    return model, tokenizer, info


# ----------------------------------------------------------------------------- the task


def custom_model_type(task_cfg) -> str:
    """The joint model is always this package's `kns_joint` architecture."""
    return "kns_joint"


class JointTask(Task):
    """Everything train.py needs to know about joint NER + stance."""

    name = "joint"

    def __init__(self, cfg, dataset, tokenizer):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.dataset = dataset
        feats = dataset["train"].features
        if "ner_tags" not in feats or "targets" not in feats:
            raise KnsError("the joint task needs the joint dataset (columns tokens, ner_tags, targets): "
                           "data=kaznerd_joint")
        self.label_names = list(feats["ner_tags"].feature.names)
        self.id2label = dict(enumerate(self.label_names))
        self.label2id = {v: k for k, v in self.id2label.items()}
        targets_feat = feats["targets"]
        stance_feat = (targets_feat.feature if hasattr(targets_feat, "feature") else targets_feat[0])["label"]
        if list(stance_feat.names) != list(STANCE_LABELS):
            raise KnsError(f"the joint dataset's stance labels are {stance_feat.names}; expected {list(STANCE_LABELS)}")
        t = cfg.task
        self.max_length = int(t.max_length)
        self.overlap = int(t.window_overlap)
        self.metric_name = str(t.selection_metric)
        self.bootstrap_n = int(t.bootstrap_n)
        self.stance_types = list(t.stance_types)
        counts = [0] * len(STANCE_LABELS)
        for ts in dataset["train"]["targets"]:
            for x in ts:
                counts[int(x["label"])] += 1
        # task.extra_train / task.sampler (tasks/joint_mix.py): extra stance targets count too.
        self.mix = JointMix(cfg, tokenizer, self.max_length, self.overlap)
        counts = self.mix.counts_with_extra(counts)
        self.train_counts = counts
        explicit = t.class_weights
        balance = str(t.class_balance)
        if explicit is not None:
            self.class_weights = [float(x) for x in explicit]
        elif balance == "weights":
            self.class_weights = class_balance_weights(counts, float(t.balance_power),
                                                       t.max_class_weight)
        elif balance == "none":
            self.class_weights = None
        else:
            raise KnsError(f"task.class_balance for joint must be weights or none, not {balance!r}")

    def build_model(self, model_dir):
        t = self.cfg.task
        return KnsJointModel.from_encoder(
            model_dir,
            num_labels=len(self.label_names), id2label=self.id2label, label2id=self.label2id,
            stance_labels=list(STANCE_LABELS), span_pooling=str(t.span_pooling),
            use_cls=bool(t.use_cls), stance_hidden=t.stance_hidden,
            stance_dropout=float(t.stance_dropout),
            stance_loss_weight=float(t.stance_loss_weight),
            stance_class_weights=self.class_weights, stance_types=self.stance_types,
            window_max_length=self.max_length, window_overlap=self.overlap,
        )

    def encode_train(self, split):
        label_all = bool(self.cfg.task.label_all_subwords)
        keep = ("input_ids", "attention_mask", "labels", "length", "span_starts", "span_ends", "stance_labels")

        def encode(batch):
            enc = encode_joint(self.tokenizer, batch["tokens"], self.max_length, self.overlap,
                               ner_tags=batch["ner_tags"], targets=batch["targets"], id2label=self.id2label,
                               label_all_subwords=label_all)
            return {k: enc[k] for k in keep}

        features = split.map(encode, batched=True, batch_size=1000, remove_columns=split.column_names,
                             desc="encoding (windows, NER labels, target spans)")
        return self.mix.extend(features, self.train_counts)

    def train_sampler(self, batch_size: int):
        """The balanced language/class sampler of `task.sampler` (None: Trainer's own)."""
        return self.mix.sampler(batch_size, int(self.cfg.seed))

    def training_data_info(self) -> dict:
        return self.mix.info()

    def data_collator(self, pad_to_multiple_of=None):
        return JointCollator(self.tokenizer, pad_to_multiple_of)

    def evaluate(self, model, split, batch_size=64) -> dict:
        tokens = [list(t) for t in split["tokens"]]
        gold_tags = [[self.label_names[x] for x in tags] for tags in split["ner_tags"]]
        targets = split["targets"]
        # NER (entity F1) and end-to-end targets from the predicted entities
        pred = predict_joint(model, self.tokenizer, tokens, batch_size=batch_size, stance_types=self.stance_types,
                             max_length=self.max_length, overlap=self.overlap)
        ner = entity_scores(gold_tags, [p["tags"] for p in pred])
        # Stance on the gold target spans (comparable with task=stance)
        gold, predicted, plist, types, e2e_pred = gold_target_stance(model, self.tokenizer, tokens, targets, pred,
                                                                     batch_size, self.max_length, self.overlap)
        out = stance_scores(gold, predicted, plist if plist else None, types, self.bootstrap_n, int(self.cfg.seed))
        e2e = stance_scores(gold, e2e_pred, None, None, 0, int(self.cfg.seed)) if gold else {}
        out["ner_f1"] = ner["f1"]
        out["ner_precision"] = ner["precision"]
        out["ner_recall"] = ner["recall"]
        out["ner_report"] = ner
        out["e2e_macro_f1"] = e2e.get("macro_f1", 0.0)
        out["e2e_f_avg"] = e2e.get("f_avg", 0.0)
        out["mean_ner_f1_stance_macro_f1"] = (ner["f1"] + out["macro_f1"]) / 2
        return out

    def save_extra(self, folder: Path):
        meta = {"ner_labels": self.label_names, "stance_labels": list(STANCE_LABELS), "stance_types": self.stance_types,
                "max_length": self.max_length, "window_overlap": self.overlap, "class_weights": self.class_weights,
                "train_counts": self.train_counts, "selection_metric": self.metric_name,
                "training_data": self.training_data_info()}
        (Path(folder) / "kns_joint.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
