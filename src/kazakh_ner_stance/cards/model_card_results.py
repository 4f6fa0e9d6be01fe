"""The Evaluation section of a model card: one block of tables per evaluated head, drawn by the
renderer its metric kind names in the task registry (`MetricKind.card_tables`: `ner_tables`,
`stance_tables` here), and the release check."""

from __future__ import annotations

from ..tasks.registry import load_object, metric_kind, metric_parts, task_spec


def _fmt(x, digits: int = 4) -> str:
    return "n/a" if x is None else f"{float(x):.{digits}f}"


def _ci(ci) -> str:
    if not ci or len(ci) != 2 or ci[0] is None:
        return "n/a"
    return f"[{float(ci[0]):.4f}, {float(ci[1]):.4f}]"


def card_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table whose columns after the first are right-aligned (numbers)."""
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"
    return "\n".join(["| " + " | ".join(header) + " |", rule] + ["| " + " | ".join(r) + " |" for r in rows])


def part_results(m: dict, level: str) -> list[str]:
    """The metric tables of one evaluated head, drawn by its metric kind's `card_tables`
    renderer; `level`: heading marks."""
    kind = metric_kind(m)
    return load_object(kind.card_tables)(m, level)


def stance_tables(m: dict, level: str) -> list[str]:
    """The tables of a stance evaluation: macro F1, F_avg and accuracy, then per class."""
    rows = [
        ["macro F1", _fmt((m.get("macro") or {}).get("f1")), _ci((m.get("macro") or {}).get("f1_ci"))],
        ["F_avg", _fmt((m.get("f_avg") or {}).get("value")), _ci((m.get("f_avg") or {}).get("ci"))],
        ["accuracy", _fmt(m.get("accuracy")), _ci(m.get("accuracy_ci"))],
    ]
    per = [[k, _fmt(v.get("precision")), _fmt(v.get("recall")), _fmt(v.get("f1")), _ci(v.get("f1_ci")),
            str(v.get("support"))] for k, v in (m.get("per_class") or {}).items()]
    return [card_table(["metric", "value", "CI"], rows), "", f"{level} Per class", "",
            card_table(["class", "precision", "recall", "F1", "F1 CI", "support"], per)]


def ner_tables(m: dict, level: str) -> list[str]:
    """The tables of an NER evaluation: micro/macro scores, then per entity type."""
    micro, macro = m.get("micro") or {}, m.get("macro") or {}
    rows = [
        ["micro F1 (strict IOB2 entities)", _fmt(micro.get("f1")), _ci(micro.get("f1_ci"))],
        ["micro precision", _fmt(micro.get("precision")), "–"],
        ["micro recall", _fmt(micro.get("recall")), "–"],
        ["macro F1 over types", _fmt(macro.get("f1")), _ci(macro.get("f1_ci"))],
        ["token accuracy", _fmt(m.get("token_accuracy")), "–"],
    ]
    per_type = m.get("per_type") or {}
    per = [[t, _fmt(v.get("precision")), _fmt(v.get("recall")), _fmt(v.get("f1")), _ci(v.get("f1_ci")),
            str(v.get("support"))]
           for t, v in sorted(per_type.items(), key=lambda kv: (-int(kv[1].get("support") or 0), kv[0]))]
    return [
        card_table(["metric", "value", "CI"], rows),
        "",
        f"{level} Per entity type",
        "",
        "An entity counts as correct only when its type, first and last word all match (strict IOB2, "
        "`seqeval` mode=strict). Types with small support have wide intervals.",
        "",
        card_table(["type", "precision", "recall", "F1", "F1 CI", "support"], per) if per else "(no entities)",
    ]


def results_section(metrics: dict, task: str, dataset_name: str, verification: dict | None) -> str:
    """The card's Evaluation section: `metrics` (metrics.json) on `dataset_name`, and the release
    check when the release was `verification`-checked."""
    top = metrics
    parts = metric_parts(top, task)
    first = parts[0][2]
    boot = first.get("bootstrap") or {}
    conf = boot.get("confidence", 0.95)
    n_boot = boot.get("n")
    ci_text = (
        f"Brackets: {conf:.0%} bootstrap confidence intervals ({n_boot} resamples of sentences or items, seed "
        f"{boot.get('seed')})." if n_boot else "No confidence intervals were computed (bootstrap.n=0)."
    )
    split = top.get("split") or first.get("split")
    body = ["## Evaluation", ""]
    for _, title, m in parts:
        what = f"{m.get('n_sentences')} {metric_kind(m).unit}"
        if title is None:
            body += [f"On the `{split}` split of {dataset_name} ({what}), with `python scripts/evaluate.py`. "
                     f"{ci_text}", ""]
            body += part_results(m, "###")
        else:
            if m is first:
                body += [f"On the `{split}` split of {dataset_name}, with `python scripts/evaluate.py`; one "
                         f"table per head. {ci_text}", ""]
            body += [f"### {title[0].upper() + title[1:]} ({what})", ""] + part_results(m, "####") + [""]
    body += ["", "The full evaluation (error analysis, confusions) is in `metrics.json`."]
    if verification:
        v = verification
        # A single-kind task re-scores in its kind's unit; a multi-part one (joint) re-scores sentences.
        kind = task_spec(task).metric_kind
        body += [
            "",
            f"Release check: the uploaded folder was reloaded offline and re-scored on {v.get('n_sentences')} "
            f"{kind.unit if kind else 'sentences'} of `{v.get('split')}` (ids in "
            "`verification.json`); its predictions equal the "
            "source checkpoint's, and every file's SHA-256 is listed in `kns_manifest.json`.",
        ]
    return "\n".join(body)
