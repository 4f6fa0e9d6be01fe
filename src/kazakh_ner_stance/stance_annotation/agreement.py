"""Agreement between stance annotators: Cohen's kappa (overall and per class) for a pair,
Fleiss' kappa for more, over merged rows (`annotation.merge`) or double-annotated rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import combinations

from . import STANCE_LABELS


def cohen_kappa(a: Sequence[str], b: Sequence[str], labels: Sequence[str] | None = None) -> float | None:
    n = len(a)
    if n == 0:
        return None
    labels = list(labels or sorted(set(a) | set(b)))
    po = sum(1 for x, y in zip(a, b) if x == y) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[lab] * cb[lab] for lab in labels) / (n * n)
    if pe == 1.0:
        return 1.0 if po == 1.0 else 0.0
    return (po - pe) / (1 - pe)


def pair_agreement(a: Sequence[str], b: Sequence[str]) -> dict:
    """Observed agreement, Cohen's kappa overall and per class (one class vs the rest), and
    the confusion counts (rows: first annotator)."""
    n = len(a)
    per_class = {}
    for lab in STANCE_LABELS:
        per_class[lab] = cohen_kappa([x == lab for x in a], [y == lab for y in b], [True, False])
    confusion = {x: {y: sum(1 for p, q in zip(a, b) if p == x and q == y) for y in STANCE_LABELS} for x in STANCE_LABELS}
    return {
        "n": n,
        "observed": sum(1 for x, y in zip(a, b) if x == y) / n if n else None,
        "kappa": cohen_kappa(a, b, STANCE_LABELS),
        "kappa_per_class": per_class,
        "confusion": confusion,
    }


def fleiss_kappa(ratings: Sequence[Sequence[str]], labels: Sequence[str] = STANCE_LABELS) -> float | None:
    """Fleiss' kappa; every item must have the same number (>= 2) of ratings."""
    items = [r for r in ratings if r]
    if not items:
        return None
    m = len(items[0])
    if m < 2 or any(len(r) != m for r in items):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per item")
    n = len(items)
    counts = [[Counter(r)[lab] for lab in labels] for r in items]
    p_j = [sum(c[j] for c in counts) / (n * m) for j in range(len(labels))]
    p_i = [(sum(x * x for x in c) - m) / (m * (m - 1)) for c in counts]
    p_bar = sum(p_i) / n
    pe = sum(p * p for p in p_j)
    if pe == 1.0:
        return 1.0 if p_bar == 1.0 else 0.0
    return (p_bar - pe) / (1 - pe)


def agreement(rows: Sequence[Mapping]) -> dict:
    """From merged rows (`labels`: annotator -> label) or double rows (label_a/label_b):
    pairwise Cohen's kappa (overall, per class), and Fleiss' kappa over the items with the
    most common number of annotators when there are more than two annotators."""
    labelled = []
    for row in rows:
        if "labels" in row and isinstance(row["labels"], Mapping):
            labelled.append(dict(row["labels"]))
        elif "label_a" in row and "label_b" in row:
            labelled.append({"A": row["label_a"], "B": row["label_b"]})
    annotators = sorted({a for r in labelled for a in r})
    pairs = {}
    for x, y in combinations(annotators, 2):
        both = [r for r in labelled if x in r and y in r]
        if both:
            pairs[f"{x} vs {y}"] = pair_agreement([r[x] for r in both], [r[y] for r in both])
    out: dict = {"items": len(labelled), "annotators": annotators, "pairs": pairs}
    if len(pairs) == 1:
        out.update(next(iter(pairs.values())))
    if len(annotators) > 2:
        sizes = Counter(len(r) for r in labelled if len(r) >= 2)
        if sizes:
            m = max(sizes, key=lambda k: (sizes[k], k))
            use = [list(r.values()) for r in labelled if len(r) == m]
            out["fleiss"] = {"kappa": fleiss_kappa(use), "items": len(use), "raters_per_item": m}
    return out


def agreement_text(report: Mapping) -> str:
    lines = [f"agreement over {report['items']} items, annotators: {', '.join(report['annotators'])}"]
    head = ["pair", "n", "observed", "kappa", *(f"kappa {lab}" for lab in STANCE_LABELS)]
    rows = [head]
    for name, p in report["pairs"].items():
        f = lambda x: "—" if x is None else f"{x:.3f}"  # noqa: E731
        rows.append([name, str(p["n"]), f(p["observed"]), f(p["kappa"]), *(f(p["kappa_per_class"][lab]) for lab in STANCE_LABELS)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    if "fleiss" in report:
        fl = report["fleiss"]
        lines.append(f"Fleiss' kappa {fl['kappa']:.3f} over {fl['items']} items with {fl['raters_per_item']} annotators each")
    return "\n".join(lines)
