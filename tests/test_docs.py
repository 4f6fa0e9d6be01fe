"""The README and docs/ stay what a newcomer needs: a short README, links that resolve, and an
architecture diagram that names every verb and sub-package and nothing that does not exist."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "kazakh_ner_stance"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250
MAX_PROSE_LINE = 200


def _mermaid(text: str) -> str:
    blocks = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "docs/architecture.md holds one mermaid diagram"
    return blocks[0]


def _prose_lines(text: str):
    """(line number, line) of the lines outside fenced code blocks and tables."""
    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if not in_code and not line.lstrip().startswith("|"):
            yield number, line


def _relative_links(text: str) -> list[str]:
    """Targets of Markdown links and images that point into the checkout (not URLs or anchors)."""
    in_code, targets = False, []
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        line = re.sub(r"`[^`]*`", "", line)  # code spans are not links
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#"):
                targets.append(target.split("#", 1)[0])
    return targets


def test_readme_is_short_with_no_long_prose_lines():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES
    long = [f"README.md:{n} ({len(line)} characters)" for n, line in _prose_lines(text) if len(line) > MAX_PROSE_LINE]
    assert not long, f"prose lines over {MAX_PROSE_LINE} characters: {long}"


def test_readme_opens_with_the_two_commands_and_a_prediction():
    """What it does, how to run it and how to predict on one's own sentence: in the first 60 lines."""
    head = "\n".join(README.read_text(encoding="utf-8").splitlines()[:60])
    for needed in ("make run", "make test", "Predictor.from_pretrained", "scripts/predict.py"):
        assert needed in head, f"{needed!r} is not in the README's first 60 lines"


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    missing = [t for t in _relative_links(page.read_text(encoding="utf-8")) if t and not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_readme_lists_every_console_script():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    text = README.read_text(encoding="utf-8")
    missing = [name for name in scripts if f"`{name}`" not in text]
    assert not missing, f"console scripts missing from the README's verbs table: {missing}"


def test_architecture_diagram_names_every_verb_and_sub_package():
    diagram = _mermaid((DOCS / "architecture.md").read_text(encoding="utf-8"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    missing_verbs = [name for name in scripts if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", diagram)]
    assert not missing_verbs, f"console scripts missing from the architecture diagram: {missing_verbs}"
    sub_packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    missing_packages = [name for name in sub_packages if f"{name}/" not in diagram]
    assert not missing_packages, f"sub-packages missing from the architecture diagram: {missing_packages}"


def test_architecture_diagram_names_only_modules_that_exist():
    diagram = _mermaid((DOCS / "architecture.md").read_text(encoding="utf-8"))
    paths = set(re.findall(r"(?<![\w/.-])([a-z_][a-z0-9_]*(?:/[a-z_][a-z0-9_]*)*(?:/|\.py))(?![\w])", diagram))
    assert paths, "the diagram names no module"
    missing = sorted(p for p in paths if not (PACKAGE / p).exists())
    assert not missing, f"the architecture diagram names modules that do not exist under src/kazakh_ner_stance: {missing}"


def test_results_page_is_generated_from_results_json():
    """docs/results.md's generated rows carry docs/results.json's command and figures (whether a
    row is marked "earlier code" depends on the checkout, so that cell is not compared)."""
    from kazakh_ner_stance.benchmarks import results_page, suite

    rows = {cells[0]: cells for cells in results_page.existing_rows((DOCS / "results.md").read_text(encoding="utf-8"))}
    for bench_id, entry in suite.load_results(DOCS / "results.json")["benchmarks"].items():
        cells = rows.get(suite.TITLES[bench_id])
        assert cells, f"docs/results.md has no row for {bench_id!r}: run `kns-bench suite --render`"
        assert cells[1:3] == [entry["command"], entry["result"]], (
            f"docs/results.md's {bench_id!r} row is not what docs/results.json gives: run `kns-bench suite --render`")
        assert cells[4] == results_page.tolerance_cell(entry)
