"""The weak labelling functions scored against gold labels: coverage, overlap, conflicts and
precision/recall per LF and for the majority vote, as a dict and as a table (markdown for the
dataset card, plain text for the console)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..data.markdown import markdown_table
from . import STANCE_LABELS
from .weak_labels import LF, Item, apply_lfs, majority_vote


def _prf(pred: Sequence[str | None], gold: Sequence[str]) -> dict:
    per = {}
    for lab in STANCE_LABELS:
        tp = sum(1 for p, g in zip(pred, gold) if p == lab and g == lab)
        npred = sum(1 for p in pred if p == lab)
        ngold = sum(1 for g in gold if g == lab)
        prec = tp / npred if npred else None
        rec = tp / ngold if ngold else None
        f1 = 2 * prec * rec / (prec + rec) if prec and rec else (0.0 if npred and ngold else None)
        per[lab] = {"precision": prec, "recall": rec, "f1": f1, "predicted": npred, "gold": ngold, "correct": tp}
    return per


def evaluate(lfs: Sequence[LF], items: Sequence[Item], gold: Sequence[str]) -> dict:
    """Coverage, overlap, conflict and precision/recall (vs gold) per LF and for the
    majority vote (abstaining on ties), plus the majority vote with abstain -> NONE."""
    if len(items) != len(gold):
        raise ValueError("items and gold labels differ in length")
    n = len(items)
    votes = apply_lfs(lfs, items)
    report: dict = {"items": n, "gold": {lab: sum(1 for g in gold if g == lab) for lab in STANCE_LABELS}, "lfs": {}}
    for j, lf in enumerate(lfs):
        col = [row[j] for row in votes]
        covered = [i for i, v in enumerate(col) if v is not None]
        overlap = sum(1 for i in covered if any(v is not None for k, v in enumerate(votes[i]) if k != j))
        conflict = sum(
            1 for i in covered if any(v is not None and v != col[i] for k, v in enumerate(votes[i]) if k != j)
        )
        correct = sum(1 for i in covered if col[i] == gold[i])
        report["lfs"][lf.name] = {
            "description": lf.description,
            "coverage": len(covered) / n if n else 0.0,
            "votes": len(covered),
            "overlap": overlap / n if n else 0.0,
            "conflict": conflict / n if n else 0.0,
            "accuracy": correct / len(covered) if covered else None,
            "per_class": _prf(col, gold),
        }
    mv = [majority_vote(row) for row in votes]
    covered = [i for i, v in enumerate(mv) if v is not None]
    any_conflict = sum(1 for row in votes if len({v for v in row if v is not None}) > 1)

    def combo(pred):
        cov = [i for i, v in enumerate(pred) if v is not None]
        per = _prf(pred, gold)
        f1s = [per[lab]["f1"] or 0.0 for lab in STANCE_LABELS if per[lab]["gold"]]
        return {
            "coverage": len(cov) / n if n else 0.0,
            "votes": len(cov),
            "accuracy": (sum(1 for i in cov if pred[i] == gold[i]) / len(cov)) if cov else None,
            "macro_f1": sum(f1s) / len(f1s) if f1s else None,
            "per_class": per,
        }

    report["majority_vote"] = combo(mv)
    report["majority_vote"]["conflict"] = any_conflict / n if n else 0.0
    report["majority_vote"]["covered_items"] = len(covered)
    report["majority_vote_or_none"] = combo([v if v is not None else "NONE" for v in mv])
    report["all_none_baseline"] = combo(["NONE"] * n)
    return report


def _f(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def _rows(report: Mapping):
    rows = []
    for name, r in report["lfs"].items():
        pc = r["per_class"]
        rows.append(
            [name, str(r["votes"]), _f(r["coverage"]), _f(r["overlap"]), _f(r["conflict"]), _f(r["accuracy"])]
            + [f"{_f(pc[lab]['precision'])}/{_f(pc[lab]['recall'])}" for lab in STANCE_LABELS]
            + ["—"]
        )
    for name, key in (
        ("majority vote", "majority_vote"),
        ("majority vote, abstain→NONE", "majority_vote_or_none"),
        ("all NONE (baseline)", "all_none_baseline"),
    ):
        r = report[key]
        pc = r["per_class"]
        rows.append(
            [name, str(r["votes"]), _f(r["coverage"]), "—", _f(r.get("conflict")), _f(r["accuracy"])]
            + [f"{_f(pc[lab]['precision'])}/{_f(pc[lab]['recall'])}" for lab in STANCE_LABELS]
            + [_f(r["macro_f1"])]
        )
    return rows


HEADER = ["LF", "votes", "coverage", "overlap", "conflict", "accuracy", *(f"{lab} P/R" for lab in STANCE_LABELS), "macro-F1"]


def report_markdown(report: Mapping) -> str:
    gold = ", ".join(f"{k} {v}" for k, v in report["gold"].items())
    return (
        f"Labelling functions of `kazakh_ner_stance.stance_annotation.weak_labels` (default cue lexicon) on the "
        f"{report['items']} gold items ({gold}). Coverage/overlap/conflict are fractions of all items; "
        "accuracy is over the items an LF labels; P/R per class against gold (recall over all gold "
        "items of the class). The majority vote abstains on ties.\n\n" + markdown_table(HEADER, _rows(report))
    )


def report_text(report: Mapping) -> str:
    rows = [HEADER] + _rows(report)
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(HEADER))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return f"weak labels vs gold: {report['items']} items\n" + "\n".join(lines)
