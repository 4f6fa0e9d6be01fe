"""Stance metrics over NONE / FAVOR / AGAINST (pure: label lists in, JSON-ready dict out).

Label order is the project's ClassLabel order ``("NONE", "FAVOR", "AGAINST")`` (ids 0, 1, 2,
as in ``labels.STANCE_LABELS``); probability columns, the confusion matrix and the
per-class tables follow it. ``probs`` may also be a list of ``{label: p}`` mappings (the
output of ``tasks.stance.predict_stance``), which is order-proof.

* per class: P, R, F1 (0 where a denominator is 0), support, number predicted;
* ``macro``: unweighted mean over the three classes (always all three, like scikit-learn
  with ``labels=[FAVOR, AGAINST, NONE]``);
* ``f_avg``: mean of the FAVOR and AGAINST F1 (SemEval-2016 Task 6 definition: NONE is a
  class for the counts but not averaged);
* ``accuracy``; ``per_target_type``: macro-F1, F_avg and accuracy within each target's
  entity type; ``confusion``: rows gold, columns predicted, in ``labels`` order;
* ``calibration`` (when class probabilities are given): expected calibration error over
  ``n_bins`` equal-width confidence bins, the confidence of an item being the probability
  the model gave to the label it predicted: ``ECE = sum_b n_b/n * |acc_b - conf_b|``;
* bootstrap CIs (items resampled, seeded) for macro-F1, F_avg, accuracy, each class's F1 and
  each target type's macro-F1 and F_avg.

The stance metrics.json holds these keys next to the shared ones documented in
``ner_metrics`` (``task: "stance"``, ``n_sentences`` = number of items).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..labels import STANCE_LABELS  # ClassLabel ids 0, 1, 2
from .bootstrap import ci_list, percentile_ci, prf, resampled_sums


def _onehot(idx: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(idx), k), dtype=np.int64)
    out[np.arange(len(idx)), idx] = 1
    return out


def _summary(tp, npred, ngold, favor: int, against: int):
    """From summed counts (..., k): per-class P/R/F, macro P/R/F, F_avg, accuracy."""
    p, r, f = prf(tp, npred, ngold)
    macro = (p.mean(-1), r.mean(-1), f.mean(-1))
    f_avg = (f[..., favor] + f[..., against]) / 2.0
    total = ngold.sum(-1)
    acc = np.divide(tp.sum(-1), total, out=np.zeros_like(total, dtype=np.float64), where=total > 0)
    return (p, r, f), macro, f_avg, acc


def calibration(conf: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict:
    """Expected calibration error and reliability-diagram bins."""
    conf = np.asarray(conf, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin b holds (edges[b], edges[b+1]]; confidence 0 goes to the first bin.
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    bins, ece, n = [], 0.0, len(conf)
    for b in range(n_bins):
        m = which == b
        cnt = int(m.sum())
        acc_b = float(correct[m].mean()) if cnt else None
        conf_b = float(conf[m].mean()) if cnt else None
        if cnt:
            ece += cnt / n * abs(acc_b - conf_b)
        bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": cnt, "accuracy": acc_b, "confidence": conf_b})
    return {"ece": float(ece) if n else None, "n_bins": n_bins, "bins": bins}


def compute_stance_metrics(
    gold_labels: Sequence[str],
    pred_labels: Sequence[str],
    probs: Sequence[Sequence[float]] | np.ndarray | None = None,
    target_types: Sequence[str] | None = None,
    *,
    labels: Sequence[str] = STANCE_LABELS,
    bootstrap_n: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    n_bins: int = 10,
) -> dict:
    """Stance metrics; `probs`: (n_items, len(labels)) in `labels` order, a list of
    {label: probability} mappings, or None."""
    labels = list(labels)
    if len(gold_labels) != len(pred_labels):
        raise ValueError(f"{len(gold_labels)} gold labels but {len(pred_labels)} predicted")
    index = {lab: j for j, lab in enumerate(labels)}
    for name, seq in (("gold", gold_labels), ("predicted", pred_labels)):
        unknown = sorted({x for x in seq if x not in index})
        if unknown:
            raise ValueError(f"unknown {name} stance label(s) {unknown}; expected {labels}")
    favor, against = index["FAVOR"], index["AGAINST"]
    k = len(labels)
    g = np.array([index[x] for x in gold_labels], dtype=np.int64)
    q = np.array([index[x] for x in pred_labels], dtype=np.int64)
    G, Q = _onehot(g, k), _onehot(q, k)
    TP = G * Q
    (p, r, f), macro, f_avg, acc = _summary(TP.sum(0), Q.sum(0), G.sum(0), favor, against)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (g, q), 1)

    out: dict = {
        "n_items": len(g),
        "labels": labels,
        "accuracy": float(acc),
        "accuracy_ci": None,
        "macro": {"precision": float(macro[0]), "recall": float(macro[1]), "f1": float(macro[2]), "f1_ci": None},
        "f_avg": {"value": float(f_avg), "ci": None},
        "per_class": {
            lab: {
                "precision": float(p[j]),
                "recall": float(r[j]),
                "f1": float(f[j]),
                "support": int(G[:, j].sum()),
                "n_pred": int(Q[:, j].sum()),
                "f1_ci": None,
            }
            for j, lab in enumerate(labels)
        },
        "confusion": {"labels": labels, "matrix": matrix.tolist()},
        "per_target_type": {},
        "calibration": None,
        "bootstrap": {"n": int(bootstrap_n), "seed": int(seed), "confidence": float(confidence)},
    }
    stacked = np.concatenate([TP, Q, G], axis=1)

    def boot(rows: np.ndarray):
        sums = resampled_sums(stacked[rows], bootstrap_n, seed)
        return _summary(sums[:, :k], sums[:, k : 2 * k], sums[:, 2 * k :], favor, against)

    if bootstrap_n > 0 and len(g):
        (_, _, bf), bmacro, bfavg, bacc = boot(np.arange(len(g)))
        out["macro"]["f1_ci"] = ci_list(percentile_ci(bmacro[2], confidence))
        out["f_avg"]["ci"] = ci_list(percentile_ci(bfavg, confidence))
        out["accuracy_ci"] = ci_list(percentile_ci(bacc, confidence))
        per_ci = percentile_ci(bf, confidence)
        for j, lab in enumerate(labels):
            out["per_class"][lab]["f1_ci"] = ci_list(per_ci[:, j])

    if target_types is not None:
        if len(target_types) != len(g):
            raise ValueError(f"{len(target_types)} target types for {len(g)} items")
        tt = np.array([str(t) for t in target_types])
        for t in sorted(set(tt.tolist())):
            rows = np.flatnonzero(tt == t)
            s = stacked[rows].sum(0)
            (_, _, tf), tmacro, tfavg, tacc = _summary(s[:k], s[k : 2 * k], s[2 * k :], favor, against)
            entry = {
                "n": int(len(rows)),
                "macro_f1": float(tmacro[2]),
                "f_avg": float(tfavg),
                "accuracy": float(tacc),
                "f1": {lab: float(tf[j]) for j, lab in enumerate(labels)},
                "macro_f1_ci": None,
                "f_avg_ci": None,
            }
            if bootstrap_n > 0:
                _, bm, bfa, _ = boot(rows)
                entry["macro_f1_ci"] = ci_list(percentile_ci(bm[2], confidence))
                entry["f_avg_ci"] = ci_list(percentile_ci(bfa, confidence))
            out["per_target_type"][t] = entry

    if probs is not None:
        rows = list(probs)
        if rows and isinstance(rows[0], Mapping):
            P = np.array([[float(r[lab]) for lab in labels] for r in rows], dtype=np.float64)
        else:
            P = np.asarray(rows, dtype=np.float64)
        if P.shape != (len(g), k):
            raise ValueError(f"probs has shape {P.shape}, expected ({len(g)}, {k}) in label order {labels}")
        conf = P[np.arange(len(q)), q]
        out["calibration"] = calibration(conf, (g == q), n_bins=n_bins)
    return out
