"""The dataset card written next to a built dataset."""

from __future__ import annotations

import re
from pathlib import Path

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.data.build import run_build_dataset
from kazakh_ner_stance.data.card import render_card

FIXTURES = Path(__file__).parent / "fixtures" / "iob2"


def test_card_content(tmp_path):
    out = tmp_path / "ds"
    stats = run_build_dataset(
        compose("build_dataset", [f"data.source_dir={FIXTURES / 'sentid'}", f"out_dir={out}", "progress=false"])
    )
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlanguage:\n- kk\nlicense: cc-by-4.0\n")
    # provenance: upstream, used and ignored files with their checksums
    assert "IS2AI/KazNERD" in card and "bd4333d" in card
    for src in stats["sources"] + stats["ignored_sources"]:
        assert src["file"] in card and src["sha256"] in card
    # licence and attribution
    assert "CC BY 4.0" in card
    assert "Yeshpanov" in card and "Khassanov" in card and "Varol" in card
    assert "LREC 2022" in card and "417–426" in card
    # statistics tables
    assert "| split | sentences | tokens | entities |" in card
    assert f"| train | {stats['splits']['train']['sentences']:,} |" in card
    assert "| type | train | validation | test |" in card and "| GPE |" in card
    assert "Exact duplicate sentences removed: 1" in card
    assert stats["fingerprint"] in card
    # deterministic: no dates or absolute paths
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", card)
    assert str(tmp_path) not in card and str(FIXTURES) not in card
    assert render_card({k: v for k, v in stats.items() if k != "timings"}) == card
