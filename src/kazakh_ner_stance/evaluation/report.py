"""Evaluation reports: plots (PNG), Markdown, and a self-contained HTML page.

A report is a list of blocks rendered twice: to Markdown (images linked as relative files)
and to HTML (images embedded as base64 data URIs, inline CSS, no external resources), so
``report.html`` can be mailed or attached on its own.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..tasks.registry import load_object, metric_kind

# Block kinds: ("h", level, text) ("p", text) ("table", headers, rows) ("img", path, alt)
# ("pre", text) ("ul", [items])
Block = tuple


def fmt(x, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and np.isnan(x):
        return "–"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    return f"{float(x):.{digits}f}"


def fmt_ci(ci, digits: int = 4) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "–"
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


# ---------------------------------------------------------------------------- rendering


def _md_cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append("#" * b[1] + " " + b[2])
        elif kind == "p":
            out.append(b[1])
        elif kind == "table":
            headers, rows = b[1], b[2]
            out.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            out.append("|" + "|".join("---" for _ in headers) + "|")
            out.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows)
        elif kind == "img":
            out.append(f"![{b[2]}]({b[3] if len(b) > 3 else b[1]})")
        elif kind == "pre":
            out.append("```\n" + b[1] + "\n```")
        elif kind == "ul":
            out.extend(f"- {item}" for item in b[1])
        out.append("")
    return "\n".join(out)


_CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{border-bottom:2px solid #446;padding-bottom:.2em}h2{margin-top:1.6em;color:#335}
table{border-collapse:collapse;margin:.6em 0;font-size:14px}
th,td{border:1px solid #ccd;padding:3px 8px;text-align:left}
th{background:#eef}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:nth-child(even) td{background:#f8f8fc}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}
.muted{color:#666;font-size:13px}
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


_NUMERIC = re.compile(r"^(?:[-+]?\d[\d.,]*|–|\[[-+\d., ]+\])$")


def _td(cell) -> str:
    text = str(cell)
    cls = ' class="n"' if _NUMERIC.match(text) else ""
    return f"<td{cls}>{html.escape(text)}</td>"


def to_html(blocks: Sequence[Block], title: str) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
        elif kind == "p":
            out.append(f"<p>{html.escape(b[1])}</p>")
        elif kind == "table":
            out.append("<table><thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in b[1]) + "</tr></thead><tbody>")
            for row in b[2]:
                out.append("<tr>" + "".join(_td(c) for c in row) + "</tr>")
            out.append("</tbody></table>")
        elif kind == "img":
            out.append(f'<figure><img src="{_data_uri(b[1])}" alt="{html.escape(b[2])}"></figure>')
        elif kind == "pre":
            out.append(f"<pre>{html.escape(b[1])}</pre>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in b[1]) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)


# ---------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def plot_f1_bars(names, f1, cis, support, path: Path, title: str, xlabel: str = "F1") -> Path:
    """Horizontal bars of F1 with CI whiskers, support written next to each bar."""
    plt = _plt()
    n = len(names)
    fig, ax = plt.subplots(figsize=(7.5, max(2.0, 0.32 * n + 1.0)))
    y = np.arange(n)
    f1 = np.asarray(f1, dtype=float)
    lo = np.array([c[0] if c and c[0] is not None else v for c, v in zip(cis, f1)], dtype=float)
    hi = np.array([c[1] if c and c[1] is not None else v for c, v in zip(cis, f1)], dtype=float)
    ax.barh(y, f1, color="#5b7db8", xerr=[np.clip(f1 - lo, 0, None), np.clip(hi - f1, 0, None)], ecolor="#333", capsize=2)
    ax.set_yticks(y, labels=list(names), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    for i, s in enumerate(support):
        ax.text(1.01, i, f"n={s}", va="center", fontsize=7, color="#555")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_confusion(labels, matrix, path: Path, title: str, xlabel="predicted", ylabel="gold") -> Path:
    """Heat map (log colour scale so off-diagonal counts stay visible), counts annotated."""
    plt = _plt()
    m = np.asarray(matrix, dtype=float)
    n = len(labels)
    size = max(3.5, 0.36 * n + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(np.log1p(m), cmap="Blues")
    ax.set_xticks(range(n), labels=list(labels), rotation=90, fontsize=7 if n > 10 else 9)
    ax.set_yticks(range(n), labels=list(labels), fontsize=7 if n > 10 else 9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    vmax = np.log1p(m.max()) if m.size else 1.0
    for i in range(n):
        for j in range(n):
            if m[i, j] > 0:
                color = "white" if np.log1p(m[i, j]) > 0.6 * vmax else ("#b00" if i != j else "black")
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6 if n > 10 else 9, color=color)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("log(1 + count)")
    return _save(fig, path)


def plot_counts(counts: dict, path: Path, title: str) -> Path:
    plt = _plt()
    names = list(counts)
    vals = [counts[k] for k in names]
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    colors = ["#4a9a5b" if k == "correct" else "#c0504d" for k in names]
    ax.bar(range(len(names)), vals, color=colors)
    ax.set_xticks(range(len(names)), labels=[k.replace("_", " ") for k in names], fontsize=8)
    for i, v in enumerate(vals):
        ax.text(i, v, str(v), ha="center", va="bottom", fontsize=8)
    ax.set_title(title)
    ax.set_ylabel("entities")
    ax.margins(y=0.15)
    return _save(fig, path)


def plot_reliability(cal: dict, path: Path) -> Path:
    plt = _plt()
    bins = cal["bins"]
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    centers = [(b["lo"] + b["hi"]) / 2 for b in bins]
    width = bins[0]["hi"] - bins[0]["lo"]
    acc = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins]
    ax.bar(centers, acc, width=width * 0.95, color="#5b7db8", edgecolor="#335", label="accuracy")
    conf = [(c, b["confidence"]) for c, b in zip(centers, bins) if b["confidence"] is not None]
    if conf:
        ax.plot([c for c, _ in conf], [v for _, v in conf], "o", color="#c0504d", ms=4, label="mean confidence")
    ax.plot([0, 1], [0, 1], "--", color="#888", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability diagram (ECE = {cal['ece']:.4f})" if cal.get("ece") is not None else "Reliability diagram")
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


# ---------------------------------------------------------------------------- summaries


def _header_blocks(m: dict) -> list[Block]:
    kind = metric_kind(m)
    b: list[Block] = [("h", 1, kind.report_title)]
    ev = m.get("eval_data") or {}
    rows = [
        ["checkpoint", m.get("checkpoint") or "–"],
        ["model", m.get("model") or "–"],
        ["evaluated on", f"{ev.get('kind', '–')}: {ev.get('path', '–')}" + (f" [{ev['split']}]" if ev.get("split") else "")],
        ["evaluation data fingerprint", ev.get("fingerprint") or "–"],
        ["training data fingerprint", m.get("data_fingerprint") or "–"],
        ["training time (s)", fmt(m.get("train_time_s"), 1)],
        [kind.unit, str(m.get("n_sentences", "–"))],
    ]
    bs = m.get("bootstrap") or {}
    if bs.get("n"):
        rows.append(
            ["confidence intervals", f"{int(round(100 * bs['confidence']))}% bootstrap, {bs['n']} resamples of "
            f"{kind.unit}, seed {bs['seed']}"]
        )
    b.append(("table", ["", ""], rows))
    return b


def ner_summary_rows(m: dict) -> list[list[str]]:
    mi, ma = m["micro"], m["macro"]
    return [
        ["micro", fmt(mi["precision"]), fmt(mi["recall"]), fmt(mi["f1"]), fmt_ci(mi.get("f1_ci")), str(mi.get("support", ""))],
        ["macro", fmt(ma["precision"]), fmt(ma["recall"]), fmt(ma["f1"]), fmt_ci(ma.get("f1_ci")), ""],
    ]


def summary_text(m: dict) -> str:
    """The short table printed at the end of an evaluation (the metric kind's `summary`)."""
    return load_object(metric_kind(m).summary)(m)


def stance_summary_text(m: dict) -> str:
    """summary_text of a stance metrics.json: macro-F1, F_avg, accuracy (and ECE)."""
    lines = [
        f"stance: {m['n_sentences']} {metric_kind(m).unit}",
        f"  macro-F1  {fmt(m['macro']['f1'])}  {fmt_ci(m['macro'].get('f1_ci'))}",
        f"  F_avg     {fmt(m['f_avg']['value'])}  {fmt_ci(m['f_avg'].get('ci'))}",
        f"  accuracy  {fmt(m['accuracy'])}",
    ]
    if m.get("calibration"):
        lines.append(f"  ECE       {fmt(m['calibration']['ece'])}")
    return "\n".join(lines)


def ner_summary_text(m: dict) -> str:
    """summary_text of a NER metrics.json: micro/macro and per-type P, R, F1 with CIs."""
    w = max([5] + [len(t) for t in m["per_type"]])
    head = f"{'':<{w}}  {'P':>6}  {'R':>6}  {'F1':>6}  {'F1 95% CI':>17}  {'support':>7}"
    lines = [f"NER: {m['n_sentences']} {metric_kind(m).unit}, token accuracy {fmt(m['token_accuracy'])}", head]
    for name, row in (("micro", m["micro"]), ("macro", m["macro"])):
        lines.append(
            f"{name:<{w}}  {fmt(row['precision']):>6}  {fmt(row['recall']):>6}  {fmt(row['f1']):>6}  "
            f"{fmt_ci(row.get('f1_ci')):>17}  {str(row.get('support', '')):>7}"
        )
    lines.append("-" * len(head))
    for t, row in sorted(m["per_type"].items(), key=lambda kv: -kv[1]["support"]):
        lines.append(
            f"{t:<{w}}  {fmt(row['precision']):>6}  {fmt(row['recall']):>6}  {fmt(row['f1']):>6}  "
            f"{fmt_ci(row.get('f1_ci')):>17}  {row['support']:>7}"
        )
    return "\n".join(lines)


def _example_lines(examples: list[dict]) -> str:
    out = []
    for ex in examples:
        out.append(f"[{ex['sent_id']}]")
        if "gold" in ex:
            out.append(f"  gold: {ex['gold']}")
            out.append(f"  pred: {ex['pred']}")
        else:
            out.append(f"  gold span: {ex.get('gold_span')}  predicted span: {ex.get('pred_span')}")
    return "\n".join(out)


def ner_blocks(m: dict, plots_dir: Path, rel: str = "plots") -> list[Block]:
    b = _header_blocks(m)
    b.append(("h", 2, "Summary (strict IOB2, entity level)"))
    b.append(("table", ["average", "precision", "recall", "F1", "F1 CI", "support"], ner_summary_rows(m)))
    b.append(("p", f"Token accuracy: {fmt(m['token_accuracy'])} over {m.get('n_tokens', '–')} words."))
    types = sorted(m["per_type"], key=lambda t: -m["per_type"][t]["support"])
    b.append(("h", 2, "Per entity type"))
    b.append(
        (
            "table",
            ["type", "precision", "recall", "F1", "F1 CI", "support", "predicted"],
            [
                [t, fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"]), fmt_ci(r.get("f1_ci")), r["support"], r.get("n_pred", "")]
                for t in types
                for r in [m["per_type"][t]]
            ],
        )
    )
    if types:
        p = plot_f1_bars(
            types,
            [m["per_type"][t]["f1"] for t in types],
            [m["per_type"][t].get("f1_ci") for t in types],
            [m["per_type"][t]["support"] for t in types],
            plots_dir / "per_type_f1.png",
            "F1 per entity type (whiskers: bootstrap CI)",
        )
        b.append(("img", p, "F1 per entity type", f"{rel}/{p.name}"))
    err = m.get("errors")
    if err:
        c = err["counts"]
        b.append(("h", 2, "Error analysis"))
        b.append(
            (
                "p",
                "Each gold and predicted entity is used once per sentence: same boundaries -> correct or type "
                "confusion; otherwise overlapping -> boundary error (same type) or boundary+type error; the rest "
                "are missed (gold) or spurious (predicted). Ill-formed predicted I- tags (no entity): "
                f"{err.get('ill_formed_pred_tags', 0)}.",
            )
        )
        b.append(("table", ["category", "entities"], [[k.replace("_", " "), v] for k, v in c.items()]))
        p = plot_counts(c, plots_dir / "error_counts.png", "Entity-level outcomes")
        b.append(("img", p, "error counts", f"{rel}/{p.name}"))
        bt = err.get("by_type", {})
        if bt:
            b.append(("h", 3, "Errors per type"))
            b.append(
                (
                    "table",
                    ["type"] + [k.replace("_", " ") for k in c],
                    [[t] + [bt[t].get(k, 0) for k in c] for t in types if t in bt],
                )
            )
        conf = err.get("confusion")
        if conf and conf["labels"]:
            b.append(("h", 3, "Type confusion matrix (entities with exact boundaries)"))
            p = plot_confusion(conf["labels"], conf["matrix"], plots_dir / "confusion.png", "Gold type vs predicted type")
            b.append(("img", p, "type confusion heat map", f"{rel}/{p.name}"))
        top = err.get("top_confusions") or []
        b.append(("h", 3, "Most frequent type confusions"))
        if not top:
            b.append(("p", "No type confusions."))
        for item in top:
            b.append(("p", f"{item['gold']} -> {item['pred']}: {item['count']}"))
            if item.get("examples"):
                b.append(("pre", _example_lines(item["examples"])))
        for cat, exs in (err.get("examples") or {}).items():
            if exs:
                b.append(("h", 3, f"Examples: {cat.replace('_', ' ')}"))
                b.append(("pre", _example_lines(exs)))
    return b


def stance_blocks(m: dict, plots_dir: Path, rel: str = "plots") -> list[Block]:
    b = _header_blocks(m)
    b.append(("h", 2, "Summary"))
    b.append(
        (
            "table",
            ["metric", "value", "CI"],
            [
                ["macro-F1 (FAVOR, AGAINST, NONE)", fmt(m["macro"]["f1"]), fmt_ci(m["macro"].get("f1_ci"))],
                ["F_avg (mean F1 of FAVOR, AGAINST)", fmt(m["f_avg"]["value"]), fmt_ci(m["f_avg"].get("ci"))],
                ["accuracy", fmt(m["accuracy"]), fmt_ci(m.get("accuracy_ci"))],
                ["expected calibration error", fmt((m.get("calibration") or {}).get("ece")), ""],
            ],
        )
    )
    labels = m["labels"]
    pc = m["per_class"]
    b.append(("h", 2, "Per class"))
    b.append(
        (
            "table",
            ["class", "precision", "recall", "F1", "F1 CI", "support", "predicted"],
            [[lab, fmt(pc[lab]["precision"]), fmt(pc[lab]["recall"]), fmt(pc[lab]["f1"]), fmt_ci(pc[lab].get("f1_ci")), pc[lab]["support"], pc[lab]["n_pred"]] for lab in labels],
        )
    )
    p = plot_f1_bars(labels, [pc[x]["f1"] for x in labels], [pc[x].get("f1_ci") for x in labels], [pc[x]["support"] for x in labels], plots_dir / "stance_f1.png", "F1 per stance class")
    b.append(("img", p, "F1 per class", f"{rel}/{p.name}"))
    ptt = m.get("per_target_type") or {}
    if ptt:
        b.append(("h", 2, "Per target type"))
        b.append(
            (
                "table",
                ["target type", "items", "macro-F1", "macro-F1 CI", "F_avg", "F_avg CI", "accuracy"],
                [[t, r["n"], fmt(r["macro_f1"]), fmt_ci(r.get("macro_f1_ci")), fmt(r["f_avg"]), fmt_ci(r.get("f_avg_ci")), fmt(r["accuracy"])] for t, r in ptt.items()],
            )
        )
    b.append(("h", 2, "Confusion matrix"))
    conf = m["confusion"]
    b.append(("table", ["gold \\ predicted"] + conf["labels"], [[lab] + row for lab, row in zip(conf["labels"], conf["matrix"])]))
    p = plot_confusion(conf["labels"], conf["matrix"], plots_dir / "stance_confusion.png", "Stance: gold vs predicted")
    b.append(("img", p, "stance confusion heat map", f"{rel}/{p.name}"))
    cal = m.get("calibration")
    if cal:
        b.append(("h", 2, "Calibration"))
        b.append(
            (
                "table",
                ["confidence bin", "items", "accuracy", "mean confidence"],
                [[f"({x['lo']:.1f}, {x['hi']:.1f}]", x["count"], fmt(x["accuracy"]), fmt(x["confidence"])] for x in cal["bins"]],
            )
        )
        p = plot_reliability(cal, plots_dir / "reliability.png")
        b.append(("img", p, "reliability diagram", f"{rel}/{p.name}"))
    return b


def write_report(metrics: dict, out_dir: Path, plots_subdir: str = "plots") -> dict[str, Path]:
    """Write plots/*.png, report.md and report.html into out_dir; return their paths."""
    out_dir = Path(out_dir)
    plots_dir = out_dir / plots_subdir
    plots_dir.mkdir(parents=True, exist_ok=True)
    kind = metric_kind(metrics)
    blocks = load_object(kind.report_blocks)(metrics, plots_dir, plots_subdir)
    md = out_dir / "report.md"
    md.write_text(to_markdown(blocks), encoding="utf-8")
    page = out_dir / "report.html"
    page.write_text(to_html(blocks, kind.report_title), encoding="utf-8")
    return {"report.md": md, "report.html": page, "plots": plots_dir}
