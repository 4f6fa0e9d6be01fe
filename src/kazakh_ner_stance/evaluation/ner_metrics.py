"""Strict IOB2 entity-level NER metrics, bootstrap confidence intervals and error analysis.

Pure functions: lists of gold and predicted tag sequences in, a JSON-ready dict out. The
training loop calls ``compute_ner_metrics(gold, pred)`` for dev F1; ``run_evaluate`` adds
bootstrap CIs and example sentences.

Definitions (identical to ``seqeval`` with ``mode="strict", scheme=IOB2``; the tests check
it on random and adversarial sequences):

* an entity is a maximal run ``B-X I-X ... I-X``; an ``I-X`` that does not continue a
  ``B-X``/``I-X`` run (an "orphan") starts no entity and is ignored (``labels.iob2_spans``
  in strict mode; spans are ``(start, end, type)`` tuples, end exclusive);
* a predicted entity is correct only when type, start and end all equal a gold entity's;
* per type: P = TP/pred, R = TP/gold, F1 = 2PR/(P+R), 0 where a denominator is 0;
* micro: the same over all types pooled; macro: unweighted mean of the per-type P, R and F1
  over the types that occur in the gold or the prediction;
* token accuracy: the share of words whose predicted tag equals the gold tag.

Confidence intervals: sentences are resampled with replacement (``bootstrap.n`` resamples,
numpy Generator seeded with ``bootstrap.seed``), all metrics are recomputed on each resample
from per-sentence counts, and the interval is the (1-c)/2 and (1+c)/2 percentiles.

Error analysis (each gold and each predicted entity is used at most once, per sentence):

1. gold/pred pairs with the same start and end are *matched*: same type -> ``correct``,
   different type -> ``type_confusion``. These pairs form the type-by-type confusion
   matrix (rows gold type, columns predicted type);
2. remaining gold entities, in order, are paired with the first remaining overlapping
   prediction: same type -> ``boundary``, different type -> ``boundary_and_type``;
3. gold entities left over are ``missed``; predictions left over are ``spurious``.

So ``gold entities = correct + type_confusion + boundary + boundary_and_type + missed`` and
``predicted entities = correct + type_confusion + boundary + boundary_and_type + spurious``.

metrics.json (written by ``run_evaluate``; read by ``compare.py``, the results notebook and
the release card)::

    {
      "task": "ner" | "stance",
      "split": "test" | "<file name>",
      "n_sentences": int,            # stance: number of (sentence, target) items
      "micro": {"precision", "recall", "f1", "f1_ci": [lo, hi] | null, "support"},
      "macro": {"precision", "recall", "f1", "f1_ci": [lo, hi] | null},
      "per_type": {TYPE: {"precision", "recall", "f1", "support", "n_pred", "f1_ci"}},
      "token_accuracy": float,
      "n_tokens": int,
      "errors": {"counts": {...}, "by_type": {...}, "confusion": {"labels", "matrix"},
                 "top_confusions": [{"gold", "pred", "count", "examples": [...]}],
                 "examples": {"boundary"|"boundary_and_type"|"missed"|"spurious": [...]},
                 # each example's "gold_span"/"pred_span": [type, start, end] (end exclusive)
                 "ill_formed_pred_tags": int},
      "checkpoint": str, "model": str | null, "data_fingerprint": str | null,
      "train_time_s": float | null,
      "eval_data": {"kind": "built" | "file", "path", "split", "fingerprint"},
      "bootstrap": {"n", "seed", "confidence"},
      "metric_module": "kns_seqeval",
      # stance only (see stance_metrics.py): "f_avg", "per_class", "per_target_type",
      # "accuracy", "confusion", "calibration"
    }
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..labels import Span, count_orphans, iob2_spans, spans_overlap
from .bootstrap import ci_list, percentile_ci, prf, resampled_sums


def extract_spans(tags: Sequence[str]) -> list[Span]:
    """Strict IOB2 entities of one sentence as (start, end, type): orphan I- tags start
    nothing, a non-IOB2 tag raises ValueError (``labels.iob2_spans`` in strict mode)."""
    return iob2_spans(tags, "strict")


def _check_shapes(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")


def sentence_counts(gold_spans, pred_spans, types: list[str]):
    """Per-sentence (n_sent, n_types) arrays of TP, predicted and gold entity counts."""
    index = {t: j for j, t in enumerate(types)}
    n, k = len(gold_spans), len(types)
    tp = np.zeros((n, k), dtype=np.int64)
    npred = np.zeros((n, k), dtype=np.int64)
    ngold = np.zeros((n, k), dtype=np.int64)
    for i, (gs, ps) in enumerate(zip(gold_spans, pred_spans)):
        gset = set(gs)
        for s in gs:
            ngold[i, index[s[2]]] += 1
        for s in ps:
            j = index[s[2]]
            npred[i, j] += 1
            if s in gset:
                tp[i, j] += 1
    return tp, npred, ngold


def entity_counts(gold_spans: list, pred: list[list[str]]):
    """[n_sentences, 3] numpy array of (true positive, predicted, gold) entities per sentence, all
    types together: the evaluation's own strict-IOB2 counts (sentence_counts); bootstrap-ready."""
    import numpy as np

    pred_spans = [extract_spans(p) for p in pred]
    types = sorted({s[2] for spans in (*gold_spans, *pred_spans) for s in spans})
    tp, npred, ngold = sentence_counts(gold_spans, pred_spans, types)
    return np.stack([tp.sum(1), npred.sum(1), ngold.sum(1)], axis=1)


def micro_prf(counts) -> tuple[float, float, float]:
    """Micro (precision, recall, F1) of entity_counts' rows summed."""
    return tuple(float(x) for x in prf(*counts.sum(axis=0)))


def _scores(tp, npred, ngold):
    """From summed counts (..., n_types): per-type P/R/F, micro P/R/F, macro P/R/F.

    Macro averages over the types present (gold or pred > 0) in that (re)sample."""
    p, r, f = prf(tp, npred, ngold)
    mp, mr, mf = prf(tp.sum(-1), npred.sum(-1), ngold.sum(-1))
    present = (npred + ngold) > 0
    n_present = present.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        macro = [np.where(n_present > 0, (x * present).sum(-1) / np.maximum(n_present, 1), 0.0) for x in (p, r, f)]
    return (p, r, f), (mp, mr, mf), macro, present


def compute_ner_metrics(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    bootstrap_n: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    tokens: Sequence[Sequence[str]] | None = None,
    sent_ids: Sequence[str] | None = None,
    errors: bool = True,
    n_examples: int = 3,
    top_k: int = 5,
) -> dict:
    """Strict IOB2 metrics of `pred` against `gold` (lists of per-sentence tag lists).

    With ``bootstrap_n > 0`` every F1 gets an ``f1_ci``; otherwise ``f1_ci`` is None.
    `tokens`/`sent_ids` only feed the example sentences of the error analysis."""
    _check_shapes(gold, pred)
    gold_spans = [extract_spans(g) for g in gold]
    pred_spans = [extract_spans(p) for p in pred]
    types = sorted({s[2] for ss in gold_spans for s in ss} | {s[2] for ss in pred_spans for s in ss})
    tp, npred, ngold = sentence_counts(gold_spans, pred_spans, types)
    (p, r, f), (mp, mr, mf), macro, _ = _scores(tp.sum(0), npred.sum(0), ngold.sum(0))

    n_tokens = sum(len(g) for g in gold)
    n_correct = sum(a == b for g, q in zip(gold, pred) for a, b in zip(g, q))
    out: dict = {
        "n_sentences": len(gold),
        "n_tokens": n_tokens,
        "micro": {
            "precision": float(mp),
            "recall": float(mr),
            "f1": float(mf),
            "f1_ci": None,
            "support": int(ngold.sum()),
            "n_pred": int(npred.sum()),
        },
        "macro": {"precision": float(macro[0]), "recall": float(macro[1]), "f1": float(macro[2]), "f1_ci": None},
        "per_type": {
            t: {
                "precision": float(p[j]),
                "recall": float(r[j]),
                "f1": float(f[j]),
                "support": int(ngold[:, j].sum()),
                "n_pred": int(npred[:, j].sum()),
                "f1_ci": None,
            }
            for j, t in enumerate(types)
        },
        "token_accuracy": (n_correct / n_tokens) if n_tokens else 0.0,
    }
    if bootstrap_n > 0 and len(gold) > 0:
        k = len(types)
        stacked = np.concatenate([tp, npred, ngold], axis=1)
        sums = resampled_sums(stacked, bootstrap_n, seed)
        btp, bpred, bgold = sums[:, :k], sums[:, k : 2 * k], sums[:, 2 * k :]
        (_, _, bf), (_, _, bmf), bmacro, bpresent = _scores(btp, bpred, bgold)
        out["micro"]["f1_ci"] = ci_list(percentile_ci(bmf, confidence))
        out["macro"]["f1_ci"] = ci_list(percentile_ci(bmacro[2], confidence))
        if k:
            # A type absent from both sides of a resample has no F1 there: leave it out.
            per_ci = percentile_ci(np.where(bpresent, bf, np.nan), confidence)
            for j, t in enumerate(types):
                out["per_type"][t]["f1_ci"] = ci_list(per_ci[:, j])
    out["bootstrap"] = {"n": int(bootstrap_n), "seed": int(seed), "confidence": float(confidence)}
    if errors:
        out["errors"] = error_analysis(
            gold_spans, pred_spans, types, tokens=tokens, sent_ids=sent_ids, n_examples=n_examples, top_k=top_k
        )
        out["errors"]["ill_formed_pred_tags"] = int(sum(count_orphans(q) for q in pred))
    return out


def align_sentence(gold: list[Span], pred: list[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """Pair one sentence's gold and predicted spans (see the module docstring).

    Returns (category, gold_span, pred_span) triples."""
    out: list[tuple[str, Span | None, Span | None]] = []
    free_pred = list(pred)
    rest_gold = []
    by_bounds = {}
    for s in free_pred:
        by_bounds.setdefault((s[0], s[1]), s)
    used: set[Span] = set()
    for g in gold:
        q = by_bounds.get((g[0], g[1]))
        if q is not None and q not in used:
            used.add(q)
            out.append(("correct" if q[2] == g[2] else "type_confusion", g, q))
        else:
            rest_gold.append(g)
    free_pred = [s for s in free_pred if s not in used]
    for g in rest_gold:
        q = next((s for s in free_pred if spans_overlap(g, s)), None)
        if q is None:
            out.append(("missed", g, None))
        else:
            free_pred.remove(q)
            out.append(("boundary" if q[2] == g[2] else "boundary_and_type", g, q))
    out.extend(("spurious", None, s) for s in free_pred)
    return out


CATEGORIES = ("correct", "type_confusion", "boundary", "boundary_and_type", "missed", "spurious")


def _render(tokens: Sequence[str], spans: list[Span], focus: tuple[int, int] | None, window: int = 15) -> str:
    """Tokens with entities bracketed as [w1 w2]TYPE, cut to a window around `focus`."""
    lo, hi = 0, len(tokens)
    if focus is not None:
        lo, hi = max(0, focus[0] - window), min(len(tokens), focus[1] + window)
    starts = {s[0]: s for s in spans}
    ends: dict[int, list[str]] = {}
    for s in spans:
        ends.setdefault(s[1] - 1, []).append(s[2])
    words = []
    for i in range(lo, hi):
        w = tokens[i]
        if i in starts:
            w = "[" + w
        for t in ends.get(i, []):
            w = w + "]" + t
        words.append(w)
    text = " ".join(words)
    return ("… " if lo > 0 else "") + text + (" …" if hi < len(tokens) else "")


def _span_json(s: Span) -> list:
    """A span as metrics.json writes it: [type, start, end] (the file's format predates the
    package's (start, end, type) tuples; compare.py, report.py and the notebooks read it)."""
    start, end, typ = s
    return [typ, start, end]


def _example(i, tokens, sent_ids, gold_spans, pred_spans, g, q) -> dict:
    focus_spans = [s for s in (g, q) if s is not None]
    focus = (min(s[0] for s in focus_spans), max(s[1] for s in focus_spans))
    ex: dict = {"sentence": i, "sent_id": (str(sent_ids[i]) if sent_ids is not None else str(i))}
    ex["gold_span"] = _span_json(g) if g else None
    ex["pred_span"] = _span_json(q) if q else None
    if tokens is not None:
        toks = tokens[i]
        ex["gold"] = _render(toks, gold_spans[i], focus)
        ex["pred"] = _render(toks, pred_spans[i], focus)
    return ex


def error_analysis(
    gold_spans: list[list[Span]],
    pred_spans: list[list[Span]],
    types: list[str],
    *,
    tokens=None,
    sent_ids=None,
    n_examples: int = 3,
    top_k: int = 5,
) -> dict:
    counts: Counter = Counter({c: 0 for c in CATEGORIES})
    by_type = {t: {c: 0 for c in CATEGORIES} for t in types}
    index = {t: j for j, t in enumerate(types)}
    matrix = np.zeros((len(types), len(types)), dtype=np.int64)
    pair_examples: dict[tuple[str, str], list[dict]] = {}
    examples: dict[str, list[dict]] = {c: [] for c in ("boundary", "boundary_and_type", "missed", "spurious")}
    for i, (gs, ps) in enumerate(zip(gold_spans, pred_spans)):
        for cat, g, q in align_sentence(gs, ps):
            counts[cat] += 1
            by_type[(g or q)[2]][cat] += 1  # gold type, or the predicted type if spurious
            if cat in ("correct", "type_confusion"):
                matrix[index[g[2]], index[q[2]]] += 1
            if cat == "type_confusion":
                lst = pair_examples.setdefault((g[2], q[2]), [])
                if len(lst) < n_examples:
                    lst.append(_example(i, tokens, sent_ids, gold_spans, pred_spans, g, q))
            elif cat in examples and len(examples[cat]) < n_examples:
                examples[cat].append(_example(i, tokens, sent_ids, gold_spans, pred_spans, g, q))
    off = [
        (int(matrix[a, b]), types[a], types[b])
        for a in range(len(types))
        for b in range(len(types))
        if a != b and matrix[a, b] > 0
    ]
    off.sort(key=lambda x: (-x[0], x[1], x[2]))
    top = [
        {"gold": ga, "pred": pb, "count": c, "examples": pair_examples.get((ga, pb), [])} for c, ga, pb in off[:top_k]
    ]
    return {
        "counts": dict(counts),
        "by_type": by_type,
        "confusion": {"labels": list(types), "matrix": matrix.tolist()},
        "top_confusions": top,
        "examples": examples,
    }
