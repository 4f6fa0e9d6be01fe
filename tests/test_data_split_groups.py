"""Sentence-ID variants (KazNERD's AID…/BID… pairs) never straddle a split."""

import collections
import re

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.data.built_dataset import load_built_dataset
from kazakh_ner_stance.data.build import run_build_dataset


def _write_variants(path, n=60):
    lines = []
    for i in range(n):
        for prefix, number in (("AID", "жиырма"), ("BID", "20")):
            lines += [f"{prefix}{5000 + i} O", f"Сөйлем{i} O", f"{number} B-CARDINAL", "жыл O", ". O", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _where(ds):
    where = collections.defaultdict(set)
    for split in ds:
        for sid in ds[split]["sent_id"]:
            where[re.sub(r"^[A-Z]ID", "", sid)].add(split)
    return where


def test_variants_share_a_split(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _write_variants(src / "IOB2_valid.txt")
    out = tmp_path / "out"
    run_build_dataset(compose("build_dataset", [f"data.source_dir={src}", f"out_dir={out}", "progress=false"]))
    where = _where(load_built_dataset(out))
    assert len(where) == 60 and all(len(splits) == 1 for splits in where.values())
    assert set().union(*where.values()) == {"train", "validation", "test"}


def test_variant_grouping_can_be_turned_off(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _write_variants(src / "IOB2_valid.txt")
    out = tmp_path / "out"
    run_build_dataset(compose("build_dataset", [
        f"data.source_dir={src}", f"out_dir={out}", "progress=false", "data.split.variant_id_pattern=null"]))
    where = _where(load_built_dataset(out))
    assert any(len(splits) > 1 for splits in where.values())  # without grouping, variants straddle splits
