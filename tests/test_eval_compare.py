"""scripts/compare.py: leaderboard of runs with CIs, and the 'inside the CIs' verdicts."""

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "eval"))
import evalfix  # noqa: E402

from kazakh_ner_stance.config import compose  # noqa: E402
from kazakh_ner_stance.errors import KnsError  # noqa: E402
from kazakh_ner_stance.evaluation.compare import ci_overlap, run_compare  # noqa: E402


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    dirs = {
        "xlmr": evalfix.write_run(root, "xlmr", evalfix.fake_metrics("ner", 0.80, (0.78, 0.82), "xlm-roberta-base")),
        "mbert": evalfix.write_run(root, "mbert", evalfix.fake_metrics("ner", 0.79, (0.77, 0.81), "mbert")),
        "e5": evalfix.write_run(root, "e5", evalfix.fake_metrics("ner", 0.70, (0.68, 0.72), "e5-small")),
        "stance": evalfix.write_run(root, "stance", evalfix.fake_metrics("stance", 0.6, (0.5, 0.7), "e5-stance")),
    }
    return root, dirs


def test_ci_overlap():
    assert ci_overlap([0.1, 0.3], [0.25, 0.5]) is True
    assert ci_overlap([0.1, 0.2], [0.25, 0.5]) is False
    assert ci_overlap(None, [0.1, 0.2]) is None


def test_leaderboard_from_listed_runs(runs, tmp_path, capsys):
    root, d = runs
    out = tmp_path / "cmp"
    listed = ",".join(str(d[k]) for k in ("e5", "mbert", "xlmr", "stance"))
    board = run_compare(compose("compare", [f"runs=[{listed}]", f"out_dir={out}"]))
    ner = board["ner"]["rows"]
    assert [r["model"] for r in ner] == ["xlm-roberta-base", "mbert", "e5-small"]  # ranked by micro F1
    assert ner[0]["vs_next"].startswith("≈") and ner[1]["vs_next"].startswith(">")
    pairs = {(p["a"], p["b"]): p for p in board["ner"]["pairs"]}
    names = [r["name"] for r in ner]
    assert pairs[(names[0], names[1])]["inside_ci"] is True
    assert pairs[(names[0], names[1])]["difference"] == pytest.approx(0.01)
    assert pairs[(names[1], names[2])]["inside_ci"] is False
    assert board["stance"]["rows"][0]["f_avg"] == pytest.approx(0.59)
    assert board["ner"]["warnings"] == []
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "xlm-roberta-base" in md and "[0.7800, 0.8200]" in md and "123.0" in md and "dddddddddddd" in md
    assert "the difference is inside the CIs" in md and "the CIs do not overlap" in md
    page = (out / "leaderboard.html").read_text(encoding="utf-8")
    assert "<table>" in page and 'src="data:image/png;base64,' in page
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))["ner"]["rows"][0]["rank"] == 1
    assert "xlmr" in capsys.readouterr().out


def test_glob_and_different_eval_data_warning(runs, tmp_path):
    root, d = runs
    evalfix.write_run(root, "other", evalfix.fake_metrics("ner", 0.5, (0.4, 0.6), "other",
                                                          fingerprint="sha256:" + "c" * 64))
    out = tmp_path / "cmp"
    board = run_compare(compose("compare", [f"runs={root}/*", f"out_dir={out}"]))
    assert len(board["ner"]["rows"]) == 4 and len(board["stance"]["rows"]) == 1
    assert board["ner"]["warnings"] and "different data" in board["ner"]["warnings"][0]
    assert "different data" in (out / "leaderboard.md").read_text(encoding="utf-8")


def test_missing_runs_are_reported(tmp_path):
    with pytest.raises(KnsError, match="no metrics.json"):
        run_compare(compose("compare", [f"runs=[{tmp_path}]", f"out_dir={tmp_path / 'o'}"]))
    with pytest.raises(KnsError, match="no runs given"):
        run_compare(compose("compare", [f"out_dir={tmp_path / 'o'}"]))
