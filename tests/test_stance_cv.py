"""Stance cross-validation: folds grouped like the NER splits (no sentence, identical sentence
or sentence-ID variant in two folds), rare classes spread, pooled predictions scored."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.evaluation.stance_cv import grouped_folds, run_stance_cv, stance_groups

PATTERN = r"^[A-Z]ID(\d+)$"


def _variant_items(n_sent: int = 60):
    """Items over invented sentences: several targets per sentence, AID/BID variants of one
    sentence (different tokens), and exact copies under another ID."""
    sent_ids, tokens, labels = [], [], []
    for s in range(n_sent):
        words = [f"w{s}", "бір", "екі", "."]
        for prefix, toks in (("A", words), ("B", [*words[:-1], "2", "."])):
            if prefix == "B" and s % 3:
                continue
            for t in range(2):
                sent_ids.append(f"{prefix}ID{1000 + s}")
                tokens.append(toks)
                labels.append("AGAINST" if s % 10 == 0 and t == 0 else "FAVOR" if s % 4 == 0 else "NONE")
        if s % 7 == 0:  # an exact copy under an unrelated ID
            sent_ids.append(f"CID{9000 + s}")
            tokens.append(words)
            labels.append("NONE")
    return sent_ids, tokens, labels


def test_folds_never_split_a_variant_group():
    sent_ids, tokens, labels = _variant_items()
    groups = stance_groups(sent_ids, tokens, PATTERN)
    assert len(set(groups)) == 60  # variants and copies joined to their sentence
    folds = grouped_folds(groups, labels, 5, seed=3)
    by_variant = defaultdict(set)
    by_text = defaultdict(set)
    for sid, toks, f in zip(sent_ids, tokens, folds):
        by_variant[sid[1:]].add(f)
        by_text[tuple(toks)].add(f)
    assert all(len(v) == 1 for v in by_variant.values()) and all(len(v) == 1 for v in by_text.values())
    # The 6 AGAINST sentences are spread over the 5 folds (at most 2 in one), every fold is used.
    against = Counter(f for f, lab in zip(folds, labels) if lab == "AGAINST")
    assert len(against) == 5 and max(against.values()) == 2
    assert set(folds) == set(range(5))
    assert grouped_folds(groups, labels, 5, seed=3) == folds  # seeded
    assert grouped_folds(groups, labels, 5, seed=4) != folds
    # Without the variant pattern, AID/BID variants are separate groups (the grouping is the pattern's).
    assert len(set(stance_groups(sent_ids, tokens, None))) > 60


def test_too_few_groups_is_a_clear_error():
    from kazakh_ner_stance.errors import KnsError

    with pytest.raises(KnsError, match="cannot fill 5 folds"):
        grouped_folds(["a", "a", "b"], ["NONE"] * 3, 5, 0)


def test_run_stance_cv_pools_every_item(tiny_encoder, tmp_path):
    from datasets import Dataset, DatasetDict

    from kazakh_ner_stance.data.stance_rows import stance_features
    from kazakh_ner_stance.testing import make_items

    rows = make_items(60, seed=0)
    for i, r in enumerate(rows):  # pairs of sentence-ID variants
        r["sent_id"] = f"{'AB'[i % 2]}ID{500 + i // 2}"
        r["id"] = f"{r['sent_id']}:{r['start']}-{r['end']}"
    data = tmp_path / "kk"
    DatasetDict({"train": Dataset.from_list(rows[:40], features=stance_features()),
                 "validation": Dataset.from_list(rows[40:50], features=stance_features()),
                 "test": Dataset.from_list(rows[50:], features=stance_features())}).save_to_disk(str(data))
    out = tmp_path / "cv"
    base = ["task=stance", "data=kaznerd_stance", "model=local", f"model.path={tiny_encoder}",
            f"data.dataset_dir={data}", "trainer=debug", "trainer.args.max_steps=3", f"run_dir={tmp_path / 'run'}",
            f"paths.artifacts_dir={tmp_path / 'artifacts'}", "task.max_length=48", "cv.folds=3",
            f"cv.out_dir={out}", "cv.bootstrap_n=50", "cv.dev_share=0.25"]
    macro = run_stance_cv(compose("train", base))
    result = json.loads((out / "cv.json").read_text())
    assert result["items"] == 60 and result["folds"] == 3 and result["groups"] == 30
    assert result["pooled"]["macro"]["f1"] == pytest.approx(macro)
    assert result["pooled"]["macro"]["f1_ci"][0] is not None
    assert sum(p["items"] for p in result["per_fold"]) == 60 and result["train_time_s"] > 0
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 60 and all(p["pred"] in ("NONE", "FAVOR", "AGAINST") for p in preds)
    fold_of = json.loads((out / "folds.json").read_text())["fold_of_item"]
    pair = defaultdict(set)
    for item_id, f in fold_of.items():
        pair[item_id.split(":")[0][1:]].add(f)
    assert all(len(v) == 1 for v in pair.values())
    assert not (out / "fold-0" / "run").exists()  # fold models are not kept by default

    # A fixed model (zero-shot) is scored on every fold without training; resume reuses folds.
    fixed_out = tmp_path / "cv_fixed"
    model = tmp_path / "model_run"
    from kazakh_ner_stance.training.train import run_train

    run_train(compose("train", [*base[:-4], f"run_dir={model}", "evaluate_test=false"]))
    cfg = compose("train", [*base, f"cv.out_dir={fixed_out}", f"cv.fixed_model={model / 'model'}"])
    run_stance_cv(cfg)
    fixed = json.loads((fixed_out / "cv.json").read_text())
    assert fixed["fixed_model"].endswith("model") and fixed["items"] == 60
    assert all(p["train_time_s"] == 0 for p in fixed["per_fold"])
    run_stance_cv(compose("train", [*base, f"cv.out_dir={fixed_out}", f"cv.fixed_model={model / 'model'}",
                                    "cv.resume=true"]))
    assert json.loads((fixed_out / "cv.json").read_text())["pooled"] == fixed["pooled"]

    # The name-swap check per fold: each fold's own predictions are the originals.
    swap_out = tmp_path / "cv_swap"
    run_stance_cv(compose("train", [*base, f"cv.out_dir={swap_out}", f"cv.fixed_model={model / 'model'}",
                                    "cv.name_swap_check=true"]))
    swap = json.loads((swap_out / "cv.json").read_text())["name_swap"]
    assert swap["swaps"] == 60 and 0.0 <= swap["changed"] <= 1.0
    for f in range(3):
        report = json.loads((swap_out / f"fold-{f}" / "name_swap.json").read_text())
        fold_pred = json.loads((swap_out / f"fold-{f}" / "predictions.json").read_text())["pred"]
        assert {lab: v["n"] for lab, v in report["by_original_prediction"].items() if v["n"]} == \
            dict(Counter(fold_pred))


def test_cv_option_composes_with_the_stance_experiment():
    cfg = compose("train", ["experiment=kaznerd_stance_e5_small", "cv.folds=5"])
    assert cfg.cv.folds == 5 and cfg.cv.out_dir.endswith("cv/kaznerd_stance_e5_small")


def test_benchmark_stance_recipes_smoke(tiny_encoder, rusentne_tiny, tmp_path, capsys):
    """The recipe benchmark runs every recipe's CV on tiny data and prints one table."""
    import shutil

    from kazakh_ner_stance.benchmarks import cli
    from kazakh_ner_stance.testing import save_stance_dataset

    datasets = tmp_path / "datasets"
    shutil.copytree(rusentne_tiny, datasets / "rusentne")  # where paths.datasets_dir puts it
    kk = save_stance_dataset(tmp_path / "kk")
    rc = cli.run(["stance_recipes", "--folds", "2", "--epochs", "1", "--out", str(tmp_path / "cv"), "model=local",
                  f"model.path={tiny_encoder}", f"data.dataset_dir={kk}", "trainer=debug",
                  f"paths.datasets_dir={datasets}", f"paths.artifacts_dir={tmp_path / 'artifacts'}",
                  "task.max_length=48", "cv.bootstrap_n=20", "trainer.args.max_steps=2", "cv.dev_share=0.25"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| recipe | Kazakh CV macro-F1 |" in text
    for recipe in ("kazakh", "zeroshot", "mixed", "sequential"):
        assert f"| {recipe} | " in text
        assert (tmp_path / "cv" / recipe / "cv.json").is_file()
    assert "x kazakh)" in text and (tmp_path / "cv" / "recipes.md").is_file()
    assert cli.run(["stance_recipes", "--table-only", "--out", str(tmp_path / "cv"), "--recipes", "kazakh,mixed"]) == 0
    assert "| mixed | " in capsys.readouterr().out
