"""The results table of `docs/results.md`, generated from the results file (`docs/results.json`)
that `scripts/benchmarks.py` writes.

The table sits between `<!-- results:begin -->` and `<!-- results:end -->`. A row belongs to a
benchmark when its first cell is that benchmark's title: the command rewrites such rows in
place (appending rows it has no place for) and keeps every other row (a figure measured by hand)
as it is. Every row names the machine and commit it was measured on, and a figure measured
under code that has changed since is marked "earlier code"; a generated row's last cell gives
the tolerance `--check` allows each of its figures, a hand-measured row's says it has none.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import KnsError

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
HEADER = ["what", "command", "result", "measured on (machine; code)", "`--check` tolerance"]
NOT_REMEASURED = "not re-measured by `scripts/benchmarks.py` (source: the command; commit not recorded)"
NO_TOLERANCE = "none: measured by hand"


def split_row(line: str) -> list[str]:
    """Cells of a Markdown table row; `|` inside backticks or escaped as `\\|` stays in its cell."""
    text = line.strip()
    if not (text.startswith("|") and text.endswith("|")):
        raise ValueError(f"not a table row: {line!r}")
    cells, cell, in_code, i = [], [], False, 1
    while i < len(text) - 1:
        ch = text[i]
        if ch == "\\" and text[i + 1] == "|":
            cell.append("\\|")
            i += 2
            continue
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append("".join(cell).strip())
            cell = []
        else:
            cell.append(ch)
        i += 1
    cells.append("".join(cell).strip())
    return cells


def join_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("\n", " ") for c in cells) + " |"


def table_block(page: str) -> tuple[int, int]:
    """Character offsets of the text between the markers."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < 0 or end < start:
        raise KnsError(f"the results page has no results table between {BEGIN} and {END}")
    return start + len(BEGIN), end


def existing_rows(page: str) -> list[list[str]]:
    start, end = table_block(page)
    rows = []
    for line in page[start:end].splitlines():
        if not line.strip().startswith("|"):
            continue
        cells = split_row(line)
        if cells[:3] == HEADER[:3] or all(set(c) <= set("-: ") for c in cells):
            continue  # header (of this or an earlier column set) or separator
        rows.append(cells)
    return rows


def machine_cell(entry: dict, code_changed: Callable[[dict], bool]) -> str:
    prov = entry.get("provenance") or {}
    mach, git = prov.get("machine") or {}, prov.get("git") or {}
    threads = mach.get("threads")
    where = (f"{mach.get('cpu_model', 'unknown CPU')}, {mach.get('cpu_count', '?')} cores, "
             f"{threads if threads is not None else '?'} thread{'s' if threads != 1 else ''}")
    sha = (git.get("commit") or "")[:7] or "unknown commit"
    code = f"commit {sha}" + (" + uncommitted code changes" if git.get("dirty") else "")
    when = (entry.get("measured_at") or "")[:10]
    if git.get("commit") and code_changed(git):
        code = f"**earlier code**: {code} (the code has changed since)"
    return f"{where}; {code}" + (f", {when}" if when else "")


def _tolerance_text(kind: str, value: float) -> str:
    return "exact" if kind == "exact" else f"±{100 * value:g}%" if kind == "rel" else f"±{value:g}"


def tolerance_cell(entry: dict) -> str:
    """The figures of a row grouped by the tolerance `--check` allows them, e.g.
    `±25%: build_s, command_s; exact: sentences`."""
    groups: dict[str, list[str]] = {}
    for figure, (kind, value) in (entry.get("tolerances") or {}).items():
        groups.setdefault(_tolerance_text(kind, value), []).append(figure)
    return "; ".join(f"{tol}: {', '.join(figures)}" for tol, figures in groups.items()) or "none stated"


def render(page: str, results: dict, titles: dict[str, str],
           code_changed: Callable[[dict], bool] = lambda git: False) -> str:
    """The page with its results table regenerated: rows of benchmarks in `results`
    (`titles`: benchmark id -> title, in table order) replaced or appended, the others kept
    (a row missing its machine or tolerance cell gets one saying it was not re-measured);
    `code_changed(git record)` says whether a row's code has changed since it was measured."""
    start, end = table_block(page)
    produced = {}
    for bench_id, title in titles.items():
        entry = (results.get("benchmarks") or {}).get(bench_id)
        if entry:
            produced[title] = [title, entry["command"], entry["result"], machine_cell(entry, code_changed),
                               tolerance_cell(entry)]
    rows, placed = [], set()
    for cells in existing_rows(page):
        title = cells[0]
        if title in produced:
            rows.append(produced[title])
            placed.add(title)
        else:
            missing = [NOT_REMEASURED, NO_TOLERANCE][max(0, len(cells) - 3):]
            rows.append(cells + missing if len(cells) >= 3 else cells)
    rows += [cells for title, cells in produced.items() if title not in placed]
    lines = ["", join_row(HEADER), "|" + "---|" * len(HEADER), *map(join_row, rows), ""]
    return page[:start] + "\n".join(lines) + page[end:]
