"""`scripts/compare.py runs=[DIR,...]`: one leaderboard of evaluated runs.

Reads each run's ``metrics.json`` (see ``ner_metrics``' docstring), writes
``leaderboard.md``, ``leaderboard.html`` (self-contained), ``leaderboard.json`` and
``plots/leaderboard.png`` into out_dir. Rows are ranked by the headline metric (NER: micro
F1; stance: macro-F1) and every pair of runs is labelled: when the two bootstrap intervals
overlap, the difference is *inside the CIs* and the leaderboard says the runs are not
distinguishable at that confidence (a conservative rule). Runs evaluated on different data
(another evaluation fingerprint) are flagged: their numbers are not comparable.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, ListConfig

from ..atomic import write_text_atomic
from ..errors import KnsError
from ..tasks.registry import METRIC_KINDS, headline, load_object, metric_kind, metric_value
from .report import fmt, fmt_ci, to_html, to_markdown


@dataclass(frozen=True)
class LeaderboardColumns:
    """What one metric kind's leaderboard rows hold and show (a MetricKind's `leaderboard`)."""

    fields: tuple[tuple[str, tuple[str, ...]], ...]  # (row key, its path in metrics.json), in row order
    table: tuple[tuple[str, str, Callable], ...]  # (header, row key, cell formatter) of the score columns


NER_COLUMNS = LeaderboardColumns(
    fields=(
        ("precision", ("micro", "precision")), ("recall", ("micro", "recall")),
        ("micro_f1", ("micro", "f1")), ("micro_f1_ci", ("micro", "f1_ci")),
        ("macro_f1", ("macro", "f1")), ("macro_f1_ci", ("macro", "f1_ci")),
        ("token_accuracy", ("token_accuracy",)),
    ),
    table=(
        ("micro F1", "micro_f1", fmt), ("micro F1 CI", "micro_f1_ci", fmt_ci),
        ("macro F1", "macro_f1", fmt), ("macro F1 CI", "macro_f1_ci", fmt_ci),
        ("P", "precision", fmt), ("R", "recall", fmt), ("token acc.", "token_accuracy", fmt),
    ),
)

STANCE_COLUMNS = LeaderboardColumns(
    fields=(
        ("macro_f1", ("macro", "f1")), ("macro_f1_ci", ("macro", "f1_ci")),
        ("f_avg", ("f_avg", "value")), ("f_avg_ci", ("f_avg", "ci")),
        ("accuracy", ("accuracy",)),
    ),
    table=(
        ("macro-F1", "macro_f1", fmt), ("macro-F1 CI", "macro_f1_ci", fmt_ci),
        ("F_avg", "f_avg", fmt), ("F_avg CI", "f_avg_ci", fmt_ci), ("accuracy", "accuracy", fmt),
    ),
)


def _columns(kind: str) -> LeaderboardColumns:
    return load_object(METRIC_KINDS[kind].leaderboard)


def _expand(entry: str) -> list[Path]:
    entry = str(entry)
    if any(c in entry for c in "*?["):
        return [Path(p) for p in sorted(glob.glob(entry, recursive=True))]
    return [Path(entry)]


def find_metrics(runs) -> list[Path]:
    """metrics.json files named by `runs` (paths, folders or globs), in the order given."""
    if runs is None or (isinstance(runs, str) and runs in ("", "???")):
        raise KnsError("no runs given: pass runs=[DIR,...] or runs='artifacts/runs/*'")
    if isinstance(runs, (str, Path)):
        runs = [runs]
    found: list[Path] = []
    for entry in runs:
        paths = _expand(entry)
        hits: list[Path] = []
        for p in paths:
            if p.is_file() and p.name == "metrics.json":
                hits.append(p)
            elif p.is_dir() and (p / "metrics.json").is_file():
                hits.append(p / "metrics.json")
            elif p.is_dir():
                hits.extend(q for q in sorted(p.rglob("metrics.json")) if not any(part.startswith(".staging") for part in q.parts))
        if not hits:
            raise KnsError(f"runs: {entry} holds no metrics.json (evaluate the run first: scripts/evaluate.py)")
        found.extend(h for h in hits if h.resolve() not in {f.resolve() for f in found})
    return found


def load_run(path: Path) -> dict:
    try:
        m = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise KnsError(f"{path}: cannot read metrics.json: {err}") from err
    if not isinstance(m, dict) or "task" not in m:
        raise KnsError(f"{path}: not an evaluation metrics.json (no 'task')")
    m["_path"] = str(path)
    return m


def run_names(paths: list[Path]) -> list[str]:
    """Short unique names: the smallest path suffix that is unique. For the default layout
    ``<run>/model/eval/<split>/metrics.json`` the name starts at the run folder
    (``<run>/model/<split>``), so that a lone run is not just called ``test``."""
    parts, min_depth = [], []
    for p in paths:
        pp = Path(p).resolve().parent.parts
        depth = 1
        if len(pp) >= 3 and pp[-2] == "eval":
            pp = pp[:-2] + pp[-1:]
            generic = pp[-2] == "model" or pp[-2].startswith("checkpoint-")
            depth = 3 if generic else 2
        parts.append(pp)
        min_depth.append(depth)
    longest = max((len(p) for p in parts), default=1)
    for extra in range(longest + 1):
        names = ["/".join(p[-min(len(p), d + extra):]) for p, d in zip(parts, min_depth)]
        if len(set(names)) == len(names):
            return names
    return ["/".join(p) for p in parts]


def ci_overlap(a: list | None, b: list | None) -> bool | None:
    """True when two intervals overlap, None when either is missing."""
    if not a or not b or None in a or None in b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def _short(fp) -> str:
    if not fp:
        return "–"
    s = str(fp)
    return s.split(":", 1)[-1][:12] if len(s) > 16 else s


def build_leaderboard(runs: list[dict], names: list[str]) -> dict:
    """Per metric kind: ranked rows, pairwise CI verdicts and data warnings (JSON-ready)."""
    out: dict = {}
    kinds = [metric_kind(m) for m in runs]
    for task in sorted({k.name for k in kinds}):
        kind = METRIC_KINDS[task]
        columns = _columns(task)
        idx = [i for i, k in enumerate(kinds) if k is kind]
        idx.sort(key=lambda i: -headline(runs[i])[0])
        rows = []
        for rank, i in enumerate(idx, 1):
            m = runs[i]
            f, ci = headline(m)
            row = {
                "rank": rank,
                "name": names[i],
                "path": m["_path"],
                "model": m.get("model"),
                "data_fingerprint": m.get("data_fingerprint"),
                "eval_fingerprint": (m.get("eval_data") or {}).get("fingerprint"),
                "split": m.get("split"),
                "train_time_s": m.get("train_time_s"),
                "n": m.get("n_sentences"),
                "headline": f,
                "headline_ci": ci,
            }
            row.update({key: metric_value(m, path) for key, path in columns.fields})
            rows.append(row)
        pairs = []
        for a in range(len(rows)):
            for b in range(a + 1, len(rows)):
                ra, rb = rows[a], rows[b]
                ov = ci_overlap(ra["headline_ci"], rb["headline_ci"])
                pairs.append(
                    {"a": ra["name"], "b": rb["name"], "difference": ra["headline"] - rb["headline"],
                     "inside_ci": ov, "same_eval_data": ra["eval_fingerprint"] == rb["eval_fingerprint"]}
                )
        for a, r in enumerate(rows):
            nxt = rows[a + 1] if a + 1 < len(rows) else None
            if nxt is None:
                r["vs_next"] = ""
            else:
                ov = ci_overlap(r["headline_ci"], nxt["headline_ci"])
                r["vs_next"] = "no CI" if ov is None else ("≈ (inside CIs)" if ov else "> (CIs apart)")
        fps = {r["eval_fingerprint"] for r in rows}
        warnings = []
        if len(fps) > 1:
            warnings.append(
                "These runs were evaluated on different data (evaluation fingerprints differ); "
                "their numbers are not directly comparable."
            )
        out[task] = {"metric": kind.headline_label, "rows": rows, "pairs": pairs, "warnings": warnings}
    return out


def _plot(board: dict, path: Path) -> Path | None:
    from .report import _plt, _save

    items = [(task, r) for task, t in board.items() for r in t["rows"]]
    if not items:
        return None
    plt = _plt()
    n = len(items)
    fig, ax = plt.subplots(figsize=(7.5, max(2.0, 0.4 * n + 1.0)))
    for y, (task, r) in enumerate(items):
        f, ci = r["headline"], r["headline_ci"]
        xerr = None
        if ci and None not in ci:
            xerr = [[max(f - ci[0], 0)], [max(ci[1] - f, 0)]]
        ax.errorbar([f], [y], xerr=xerr, fmt="o", color=METRIC_KINDS[task].plot_color, capsize=3)
    ax.set_yticks(range(n), labels=[f"{r['name']} ({board[t]['metric']})" for t, r in items], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("score with bootstrap CI")
    ax.set_title("Leaderboard")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def leaderboard_blocks(board: dict, plot: Path | None) -> list:
    blocks: list = [("h", 1, "Leaderboard")]
    for task, t in board.items():
        blocks.append(("h", 2, f"{task.upper()} (ranked by {t['metric']})"))
        for w in t["warnings"]:
            blocks.append(("p", "Warning: " + w))
        columns = _columns(task)
        headers = ["#", "run", *(h for h, _, _ in columns.table), "vs next", "model", "train data", "eval data",
                   "train time (s)"]
        rows = [
            [r["rank"], r["name"], *(cell(r[key]) for _, key, cell in columns.table), r["vs_next"], r["model"] or "–",
             _short(r["data_fingerprint"]), f"{r['split']} {_short(r['eval_fingerprint'])}", fmt(r["train_time_s"], 1)]
            for r in t["rows"]
        ]
        blocks.append(("table", headers, rows))
        lines = []
        for p in t["pairs"]:
            if p["inside_ci"] is None:
                verdict = "no confidence intervals to compare"
            elif p["inside_ci"]:
                verdict = "the difference is inside the CIs (intervals overlap): not distinguishable"
            else:
                verdict = "the CIs do not overlap"
            extra = "" if p["same_eval_data"] else " [different evaluation data]"
            lines.append(f"{p['a']} vs {p['b']}: {t['metric']} difference {p['difference']:+.4f}; {verdict}{extra}")
        if lines:
            blocks.append(("h", 3, "Pairwise"))
            blocks.append(("ul", lines))
    if plot is not None:
        blocks.append(("img", plot, "leaderboard", f"plots/{plot.name}"))
    blocks.append(("p", "CIs: percentile bootstrap over sentences (items for stance), as recorded in each metrics.json."))
    return blocks


def expand_parts(runs: list[dict], names: list[str], paths: list[Path]) -> tuple[list[dict], list[str]]:
    """A joint checkpoint's evaluation (metrics.json with `parts`) becomes one run per part,
    named `<run> [<part>]`, so its NER ranks among NER runs and its stance among stance runs;
    the parts' own metrics.json files under it are then not listed twice."""
    joint_dirs = {Path(p).resolve().parent for p, m in zip(paths, runs) if m.get("parts")}
    out_runs, out_names = [], []
    for p, m, n in zip(paths, runs, names):
        if not m.get("parts"):
            if Path(p).resolve().parent.parent in joint_dirs:
                continue
            out_runs.append(m)
            out_names.append(n)
            continue
        for part, pm in m["parts"].items():
            pm = dict(pm)
            pm["_path"] = f"{m['_path']}#{part}"
            for key in ("model", "data_fingerprint", "train_time_s", "checkpoint"):
                pm.setdefault(key, m.get(key))
            out_runs.append(pm)
            out_names.append(f"{n} [{part}]")
    return out_runs, out_names


def run_compare(cfg: DictConfig) -> dict:
    runs_cfg = cfg.get("runs")
    if isinstance(runs_cfg, ListConfig):
        runs_cfg = [str(x) for x in runs_cfg]
    paths = find_metrics(runs_cfg)
    runs, names = expand_parts([load_run(p) for p in paths], run_names(paths), paths)
    board = build_leaderboard(runs, names)
    out_dir = Path(str(cfg.get("out_dir") or "compare"))
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    plot = _plot(board, out_dir / "plots" / "leaderboard.png")
    blocks = leaderboard_blocks(board, plot)
    for name, text in (
        ("leaderboard.md", to_markdown(blocks)),
        ("leaderboard.html", to_html(blocks, "Leaderboard")),
        ("leaderboard.json", json.dumps(board, indent=2, ensure_ascii=False) + "\n"),
    ):
        write_text_atomic(out_dir / name, text)
    for task, t in board.items():
        print(f"{task}: ranked by {t['metric']}")
        for r in t["rows"]:
            print(f"  {r['rank']:>2}. {r['name']:<40} {fmt(r['headline'])} {fmt_ci(r['headline_ci'])}  {r['vs_next']}")
        for w in t["warnings"]:
            print(f"  warning: {w}")
    print(f"wrote {out_dir / 'leaderboard.md'}, leaderboard.html")
    return board
