"""A frozen-encoder probe for target stance, on the folds of the stance cross-validation.

    kns-bench stance_probe --folds 3

Why it exists (issue 12): fine-tuning e5-small on the Kazakh stance layer (5,056 items, 38 of
them AGAINST) with or without Russian news stays near macro-F1 0.5 in cross-validation. A
probe tells whether that limit is the training recipe or the data: the encoder is never
trained, each sentence is read once, and a logistic regression over the target's vectors
decides. If it scores like the fine-tuned recipes, more training tricks will not find what the
labels do not teach. It is also a cheap CPU check of an encoder: one forward pass per
sentence, no backward pass.

* Features: every item's sentence goes through the frozen encoder (a sentence longer than
  `max_length` pieces keeps the words around the target, as `encode_stance` does; items that
  share a sentence and window share the pass). An item's vector is the mean of its target's
  pieces at each of `layers`, concatenated.
* Classifier: scikit-learn's multinomial logistic regression on standardised features, items
  weighted (n_max / n_c) ** `class_power` within their source, and the extra (e.g. Russian)
  source's weights scaled by `extra_weight`.
* Folds: `stance_cv.stance_groups` and `grouped_folds` with the same seed, so they are the
  folds `train.py ... cv.folds=K` uses; pooled predictions scored by `stance_scores` (per-class
  P/R/F1, macro-F1, F_avg, bootstrap CIs).
* `tune_bias`: per fold, a grouped dev part of the training folds picks additive log-probability
  offsets for FAVOR and AGAINST that maximise dev macro-F1; the model refit on all training
  folds predicts with them. It measures whether moving the decision threshold (for macro-F1 on
  rare classes) survives the small dev parts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import KnsError
from ..labels import STANCE_LABELS

BIAS_GRID = np.arange(-2.0, 2.0001, 0.25)


@dataclass
class ProbeVariant:
    """One row of the probe table."""

    name: str
    extra: bool = False          # add the extra source's items to every fold's training data
    extra_weight: float = 0.25   # their weights relative to the Kazakh items'
    class_power: float = 0.75
    C: float = 0.01
    tune_bias: bool = False


@dataclass
class ItemFeatures:
    """Features of one stance dataset part: [items, len(layers) * hidden], labels as strings."""

    x: np.ndarray
    labels: list[str]
    encode_s: float
    passes: int = 0
    extra: dict = field(default_factory=dict)


def load_frozen_encoder(model_cfg):
    """(model folder, tokenizer, encoder) of a config's `model`, loaded for reading hidden
    states: the e5 checkpoints carry no pooler, and the probe needs none."""
    from transformers import AutoModel, AutoTokenizer

    from ..training.train import resolve_model_dir

    model_dir = resolve_model_dir(model_cfg)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    return model_dir, tokenizer, AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False)


def encode_items(model, tokenizer, tokens_list: Sequence[Sequence[str]], starts: Sequence[int], ends: Sequence[int],
                 layers: Sequence[int], max_length: int = 256, batch_size: int = 32) -> tuple[np.ndarray, int]:
    """Mean of each item's target pieces at every layer in `layers` (hidden_states index: 0 is
    the embeddings, the last is the output), concatenated; returns (features, forward passes)."""
    import torch

    from ..tasks.ner import pieces_per_word
    from ..tasks.stance import _context_window

    n_layers = int(model.config.num_hidden_layers)
    bad = [L for L in layers if not 0 <= int(L) <= n_layers]
    if bad or not layers:
        raise KnsError(f"probe layers {list(layers)}: each must be within 0..{n_layers} (this encoder's layers)")
    counts = pieces_per_word(tokenizer, tokens_list)
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    passes: dict[tuple, list[int]] = {}
    windows = []
    for i, (toks, c, s, e) in enumerate(zip(tokens_list, counts, starts, ends)):
        s, e = int(s), int(e)
        if not 0 <= s < e <= len(toks):
            raise KnsError(f"stance item {i}: target span {s}:{e} is not inside its {len(toks)} tokens")
        lo, hi = _context_window(c, s, e, max(budget, sum(c[s:e])))
        windows.append((lo, hi))
        passes.setdefault(tuple(toks[lo:hi]), []).append(i)
    hidden = int(model.config.hidden_size)
    feats = np.zeros((len(windows), len(layers) * hidden), dtype=np.float32)
    keys = sorted(passes, key=len)  # similar lengths in a batch: less padding
    model.eval()
    for b in range(0, len(keys), batch_size):
        chunk = keys[b:b + batch_size]
        enc = tokenizer([list(k) for k in chunk], is_split_into_words=True, truncation=True,
                        max_length=max_length, padding=True, return_tensors="pt")
        with torch.no_grad():
            states = model(**enc, output_hidden_states=True).hidden_states
        for j, key in enumerate(chunk):
            word_ids = enc.word_ids(j)
            for i in passes[key]:
                lo = windows[i][0]
                s, e = int(starts[i]) - lo, int(ends[i]) - lo
                pos = [p for p, w in enumerate(word_ids) if w is not None and s <= w < e]
                if not pos:
                    raise KnsError(f"stance item {i}: its target lost every piece to truncation at "
                                   f"max_length={max_length}")
                feats[i] = torch.cat([states[int(L)][j, pos].mean(0) for L in layers]).numpy()
    return feats, len(keys)


def featurize(model, tokenizer, split, layers, max_length: int, batch_size: int) -> ItemFeatures:
    names = split.features["label"].names
    start = time.time()
    x, passes = encode_items(model, tokenizer, split["tokens"], split["start"], split["end"], layers,
                             max_length, batch_size)
    return ItemFeatures(x=x, labels=[names[int(v)] for v in split["label"]], encode_s=time.time() - start,
                        passes=passes)


def class_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """(n_max / n_c) ** power for each item's class (labels as class indices): the stance task's
    `class_balance_weights`, spread over the items."""
    from ..tasks.stance import class_balance_weights

    counts = np.bincount(labels, minlength=len(STANCE_LABELS)).tolist()
    return np.asarray(class_balance_weights(counts, power), dtype=float)[labels]


def fit_probe(x: np.ndarray, y: np.ndarray, w: np.ndarray, C: float, seed: int = 0):
    """A standardised multinomial logistic regression; returns f(features) -> log-probabilities
    over all of STANCE_LABELS (a class absent from training gets -inf)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=C, max_iter=3000, random_state=seed).fit(scaler.transform(x), y, sample_weight=w)

    def log_probs(z: np.ndarray) -> np.ndarray:
        out = np.full((len(z), len(STANCE_LABELS)), -np.inf)
        out[:, clf.classes_] = clf.predict_log_proba(scaler.transform(z))
        return out

    return log_probs


def _macro_f1(gold: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, labels=list(range(len(STANCE_LABELS))), average="macro", zero_division=0))


def tune_bias(log_probs: np.ndarray, gold: np.ndarray) -> tuple[float, float, float]:
    """FAVOR and AGAINST log-probability offsets (BIAS_GRID each) with the best macro-F1 on
    these items; ties keep the offset closest to none. Returns (favor, against, macro-F1)."""
    best = (-1.0, 0.0, 0.0)
    cands = sorted(((a, b) for a in BIAS_GRID for b in BIAS_GRID), key=lambda ab: abs(ab[0]) + abs(ab[1]))
    for a, b in cands:
        m = _macro_f1(gold, (log_probs + np.array([0.0, a, b])).argmax(1))
        if m > best[0] + 1e-12:
            best = (m, float(a), float(b))
    return best[1], best[2], best[0]


def cross_validate_probe(kk: ItemFeatures, groups: Sequence[str], folds: Sequence[int], variant: ProbeVariant,
                         extra: ItemFeatures | None = None, seed: int = 42) -> dict:
    """Pooled out-of-fold predictions of one probe variant: labels, probabilities, per-fold
    offsets and fit seconds."""
    from .stance_cv import grouped_folds

    if variant.extra and extra is None:
        raise KnsError(f"probe variant {variant.name!r} needs the extra dataset's features")
    index = {lab: i for i, lab in enumerate(STANCE_LABELS)}
    y = np.array([index[lab] for lab in kk.labels])
    folds = np.asarray(folds)
    k = int(folds.max()) + 1
    pred = np.zeros(len(y), dtype=int)
    probs = np.zeros((len(y), len(STANCE_LABELS)))
    offsets = []
    start = time.time()

    def data(idx):
        xs, ys, ws = [kk.x[idx]], [y[idx]], [class_weights(y[idx], variant.class_power)]
        if variant.extra:
            ye = np.array([index[lab] for lab in extra.labels])
            xs.append(extra.x)
            ys.append(ye)
            ws.append(class_weights(ye, variant.class_power) * variant.extra_weight)
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)

    for f in range(k):
        test = np.where(folds == f)[0]
        rest = np.where(folds != f)[0]
        bias = np.zeros(len(STANCE_LABELS))
        if variant.tune_bias:
            sub = np.asarray(grouped_folds([groups[i] for i in rest], [kk.labels[i] for i in rest], 5, seed + 1 + f))
            dev, train = rest[sub == 0], rest[sub != 0]
            lp_dev = fit_probe(*data(train), C=variant.C, seed=seed)(kk.x[dev])
            a, b, m = tune_bias(lp_dev, y[dev])
            bias = np.array([0.0, a, b])
            offsets.append({"fold": f, "FAVOR": a, "AGAINST": b, "dev_macro_f1": round(m, 4)})
        lp = fit_probe(*data(rest), C=variant.C, seed=seed)(kk.x[test])
        pred[test] = (lp + bias).argmax(1)
        probs[test] = np.exp(lp)
    return {"pred": [STANCE_LABELS[i] for i in pred], "probs": probs, "offsets": offsets,
            "fit_s": time.time() - start}
