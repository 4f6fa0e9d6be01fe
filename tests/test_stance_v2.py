"""Kazakh stance data v2 (issue 22): the KazNERD layer, the news gold layer and the
counterfactual layer in one dataset; documents never split; counterfactual items training only,
in their source item's split and CV fold, never in a dev or test part."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.data.download import sha256_file

FIX = Path(__file__).parent / "fixtures"
NEWS = FIX / "kazakh_news"


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _cfg(root: Path, news_layer, cf_layer, out: Path, ner_layer=None):
    cfg = compose("build_dataset", [
        "data=kazakh_stance", f"data.source_dir={FIX / 'stance' / 'kaznerd'}",
        f"data.stance.gold_file={FIX / 'stance' / 'gold.jsonl'}", f"data.stance.double_file={FIX / 'stance' / 'gold_double.jsonl'}",
        f"paths.artifacts_dir={root}", "data.download.enabled=false", "progress=false",
        f"data.news.text.source_dir={NEWS}", "data.news.text.sources.ntrex.files.kaz=kaz.txt",
        "data.news.text.sources.ntrex.files.eng=eng.txt", "data.news.text.sources.ntrex.files.rus=rus.txt",
        "data.news.text.sources.flores.files.kaz=kaz.devtest", "data.news.text.sources.flores.files.eng=eng.devtest",
        "data.news.text.sources.flores.files.rus=rus.devtest", "data.news.text.sources.flores.files.metadata=metadata.tsv",
        "data.news.text.sources.akorda.file=akorda.tagged.txt", f"data.news.layer={news_layer}",
        f"data.counterfactual.layer={cf_layer or 'null'}", f"out_dir={out}", f"data.extra_dir={out}_extra",
        f"data.news.ner_layer={ner_layer or 'null'}",
        # four documents: two for train, one each for validation and test
        "data.news.split={train: 0.5, validation: 0.25, test: 0.25}",
    ])
    cfg.data.news.text.sha256 = {str(p.relative_to(NEWS)): sha256_file(p) for p in sorted(NEWS.rglob("*")) if p.is_file()}
    return cfg


NEWS_LAYER = [
    ("ntrex:2", 2, 4, "Асқар Ахметов", "PERSON", "NONE"),
    ("ntrex:3", 0, 1, "Сарапшылар", "NORP", "NONE"),
    ("ntrex:5", 0, 2, "Қала әкімдігі", "ORGANISATION", "NONE"),
    ("flores:1", 0, 1, "Мадрид", "GPE", "NONE"),
    ("flores:2", 1, 2, "Испания", "GPE", "FAVOR"),
    ("flores:3", 0, 1, "Париж", "GPE", "FAVOR"),
    ("akorda:1", 0, 2, "Дмитрий Медведевтің", "PERSON", "NONE"),
    ("akorda:1", 2, 3, "Астанаға", "GPE", "NONE"),
]


def _news_layer(path: Path) -> Path:
    docs = {"ntrex:2": "ntrex-doc001", "ntrex:3": "ntrex-doc001", "ntrex:5": "ntrex-doc002", "flores:1": "flores-doc001",
            "flores:2": "flores-doc001", "flores:3": "flores-doc002", "akorda:1": "akorda-doc001"}
    return _write(path, [{"id": f"{sid}:{s}-{e}", "sent_id": sid, "source": sid.split(":")[0], "doc_id": docs[sid],
                          "start": s, "end": e, "target": t, "type": ty, "label": lab, "annotator": "ann1"}
                         for sid, s, e, t, ty, lab in NEWS_LAYER])


def _cf(item_id, split_label, new_label, n):
    text = f"Депутаттар Асқар Ахметовты {'сынады' if new_label == 'AGAINST' else 'мақтады'} {n} ."
    return {"id": f"cf:cf{n:04d}", "source_id": item_id, "source_sent_id": item_id.split(":")[0],
            "source_label": split_label, "origin": "counterfactual", "kind": "verb_change", "text": text,
            "start_char": 11, "end_char": 26, "target": "Асқар Ахметовты", "type": "PERSON", "label": new_label,
            "editor": "ed1", "checker": "chk1", "checker_label": new_label, "fluency": "natural"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from datasets import load_from_disk

    from kazakh_ner_stance.data.stance_v2 import run_build_stance_v2

    root = tmp_path_factory.mktemp("v2")
    news = _news_layer(root / "news.jsonl")
    first = root / "first"
    run_build_stance_v2(_cfg(root, news, None, first))
    dsd = load_from_disk(str(first))
    names = dsd["train"].features["label"].names
    train = [r for r in dsd["train"] if r["source"] == "kaznerd"]
    test = [r for r in dsd["test"] if r["source"] == "kaznerd"]
    cf = [_cf(r["id"], names[r["label"]], "AGAINST" if names[r["label"]] != "AGAINST" else "FAVOR", k)
          for k, r in enumerate(train[:3] + test[:1], 1)]
    cf_path = _write(root / "cf.jsonl", cf)
    out = root / "v2"
    stats = run_build_stance_v2(_cfg(root, news, cf_path, out))
    return load_from_disk(str(out)), stats, {r["id"] for r in train[:3]}, out


def test_layers_join_with_their_columns_and_splits(built):
    dsd, stats, cf_sources, out = built
    rows = [r for s in ("train", "validation", "test") for r in dsd[s]]
    assert {"lang", "origin", "source", "group", "source_id"} <= set(dsd["train"].column_names)
    news = [r for r in rows if r["source"] != "kaznerd"]
    assert len(news) == len(NEWS_LAYER) and stats["news_documents"] == 5
    # a news document lies in one split
    split_of_group = defaultdict(set)
    for r in rows:
        split_of_group[r["group"]].add(r["split"])
    assert all(len(v) == 1 for v in split_of_group.values())
    # counterfactual items: in train only, from training sources; the one made from a test item is dropped
    cfs = [r for r in rows if r["origin"] == "counterfactual"]
    assert len(cfs) == 3 and all(r["split"] == "train" for r in cfs)
    assert {r["source_id"] for r in cfs} == cf_sources
    assert stats["counterfactual_dropped"] == {"source in test": 1}
    tok = cfs[0]["tokens"]
    assert " ".join(tok[cfs[0]["start"]:cfs[0]["end"]]) == cfs[0]["target"] == "Асқар Ахметовты"
    # the joint model's extra training items: the non-KazNERD train rows only
    from datasets import load_from_disk

    extra = load_from_disk(f"{out}_extra")
    assert list(extra) == ["train"]
    assert all(r["source"] != "kaznerd" or r["origin"] == "counterfactual" for r in extra["train"])
    assert "counterfactual" in (out / "README.md").read_text(encoding="utf-8")


def test_cv_plan_keeps_documents_and_counterfactual_sources_together(built):
    from kazakh_ner_stance.evaluation.stance_cv import _all_items, cv_plan, fold_parts

    dsd = built[0]
    items = _all_items(dsd)
    plan = cv_plan(items, 3, seed=42, variant_id_pattern=r"^[A-Z]ID(\d+)$")
    ids = items["id"]
    fold_of_group = defaultdict(set)
    for g, f, e in zip(plan.groups, plan.folds, plan.evaluated):
        if e:
            fold_of_group[g].add(f)
    assert all(len(v) == 1 for v in fold_of_group.values())  # no document or sentence group in two folds
    index = {x: i for i, x in enumerate(ids)}
    cf_rows = [i for i, e in enumerate(plan.evaluated) if not e]
    assert len(cf_rows) == 3
    for i in cf_rows:
        assert plan.folds[i] == plan.folds[index[items[i]["source_id"]]]  # in its source's fold
    labels = [items.features["label"].names[int(x)] for x in items["label"]]
    for f in range(3):
        train, dev, test = fold_parts(plan, labels, f, dev_share=0.34, seed=42)
        assert not set(cf_rows) & (set(dev) | set(test))  # never evaluated on
        for i in cf_rows:  # trains exactly when its source trains
            assert (i in train) == (plan.source_index[i] in train)
        assert not (set(train) & set(dev)) and not (set(train) & set(test))


def test_a_counterfactual_without_its_source_is_refused():
    from datasets import Dataset

    from kazakh_ner_stance.data.stance_v2 import v2_features
    from kazakh_ner_stance.errors import KnsError
    from kazakh_ner_stance.evaluation.stance_cv import cv_plan

    base = {"sent_id": "s", "tokens": ["a", "b"], "start": 0, "end": 1, "target": "a", "target_type": "PERSON",
            "split": "train", "annotator": "x", "lang": "kk", "source": "kaznerd", "source_id": ""}
    rows = [{**base, "id": f"r{i}", "group": f"g{i}", "label": "NONE", "origin": "gold"} for i in range(6)]
    rows.append({**base, "id": "cf:1", "group": "g0", "label": "AGAINST", "origin": "counterfactual",
                 "source_id": "missing"})
    with pytest.raises(KnsError, match="its source item 'missing' is not a real item"):
        cv_plan(Dataset.from_list(rows, features=v2_features()), 2, 0, None)


def test_ner_proposed_items_join_without_moving_earlier_items(built, tmp_path):
    """Items of the NER-proposed layer follow their document's split; a document only they cover is
    cut apart on its own; no item of the news layer changes split; an id clash is refused."""
    from datasets import load_from_disk

    from kazakh_ner_stance.data.stance_v2 import run_build_stance_v2
    from kazakh_ner_stance.errors import KnsError

    dsd, _, _, out = built
    before = {r["id"]: r["split"] for s in ("train", "validation", "test") for r in dsd[s] if r["source"] != "kaznerd"}
    root = out.parent
    added = _write(tmp_path / "ner.jsonl", [
        {"id": "ntrex:2:0-1", "sent_id": "ntrex:2", "source": "ntrex", "doc_id": "ntrex-doc001", "start": 0, "end": 1,
         "target": "X", "type": "ORGANISATION", "label": "NONE", "annotator": "ann9", "proposed_by": "ner"},
    ])
    sentence = load_from_disk(str(out))
    tokens = next(r["tokens"] for s in ("train", "validation", "test") for r in sentence[s] if r["sent_id"] == "ntrex:2")
    rows = [json.loads(l) for l in added.read_text().splitlines()]
    rows[0]["target"] = tokens[0]
    _write(added, rows)
    target = tmp_path / "with_ner"
    stats = run_build_stance_v2(_cfg(root, root / "news.jsonl", None, target, ner_layer=added))
    after = load_from_disk(str(target))
    rows_after = {r["id"]: r["split"] for s in ("train", "validation", "test") for r in after[s] if r["source"] != "kaznerd"}
    assert stats["news_ner_proposed_items"] == 1
    assert {k: v for k, v in rows_after.items() if k in before} == before
    assert rows_after["ntrex:2:0-1"] == before["ntrex:2:2-4"]  # its document's split
    clash = _write(tmp_path / "clash.jsonl", [{**json.loads(l), "id": "ntrex:2:2-4", "start": 2, "end": 4,
                                                "target": "Асқар Ахметов"} for l in added.read_text().splitlines()])
    with pytest.raises(KnsError, match="repeat an id"):
        run_build_stance_v2(_cfg(root, root / "news.jsonl", None, tmp_path / "clash", ner_layer=clash))


def test_the_shipped_layers_read_back():
    """The committed news and counterfactual layers validate against the shared text (when the
    shared data is here) and the counterfactual report's counts match the layer."""
    from kazakh_ner_stance.data.kazakh_news import read_sources
    from kazakh_ner_stance.stance_annotation import counterfactual, news_layer

    root = Path(__file__).resolve().parents[1] / "data" / "stance"
    cfg = compose("build_dataset", ["data=kazakh_news"])
    sentences = ({s.id: s for s in read_sources(cfg.data)} if Path(str(cfg.data.source_dir)).is_dir() else None)
    news = news_layer.read_layer(root / "kazakh_news_stance.jsonl", sentences)
    assert len(news) == 4494 and sum(r["label"] == "AGAINST" for r in news) == 240
    added = news_layer.read_layer(root / "kazakh_news_ner_targets.jsonl", sentences)
    assert len(added) == 8 and all(r["proposed_by"] == "ner" for r in added)
    assert not {r["id"] for r in added} & {r["id"] for r in news}
    cf = counterfactual.read_layer(root / "kaznerd_counterfactual.jsonl")
    report = json.loads((root / "kaznerd_counterfactual_report.json").read_text())
    assert len(cf) == report["kept"] == 1883
    assert all(r["label"] != r["source_label"] for r in cf)


def test_the_joint_model_gets_the_same_extra_stance_data():
    cfg = compose("train", ["experiment=kaznerd_joint_e5_small_v2"])
    stance = compose("build_dataset", ["data=kazakh_stance"])
    assert cfg.task.name == "joint" and list(cfg.task.extra_train.dir)[1] == stance.data.extra_dir
    assert cfg.task.extra_train.split == "train" and dict(cfg.task.sampler.lang_weights) == {"kk": 3, "ru": 1}


def test_data_recipe_benchmark_runs_on_the_tiny_layers(built, rusentne_tiny, tiny_encoder, tmp_path, capsys):
    import shutil

    from kazakh_ner_stance.benchmarks import cli

    datasets = tmp_path / "datasets"
    shutil.copytree(built[3], datasets / "kazakh_stance")
    shutil.copytree(rusentne_tiny, datasets / "rusentne")
    out = tmp_path / "bench"
    rc = cli.run(["stance_data", "--folds", "2", "--layers", "1,2", "--threads", "1", "--out", str(out),
                  "model=local", f"model.path={tiny_encoder}", f"paths.datasets_dir={datasets}",
                  f"paths.artifacts_dir={tmp_path}"])
    assert rc == 0
    record = json.loads((out / "stance_data.json").read_text())
    assert list(record["rows"]) == ["default", "news", "reviews", "counterfactual", "name_swaps", "all"]
    per_fold = {k: sum(v["train_items_per_fold"]) for k, v in record["rows"].items()}
    # news adds the news items, the counterfactual row its training pairs, swaps a copy per real item
    assert per_fold["news"] > per_fold["default"] and per_fold["counterfactual"] > per_fold["default"]
    assert per_fold["all"] > max(per_fold["news"], per_fold["name_swaps"])
    assert per_fold["reviews"] == per_fold["news"]  # this dataset has no review layer
    out_text = capsys.readouterr().out
    assert "| data recipe (probe) |" in out_text and "reviews part" not in out_text


def test_data_recipes_train_on_the_layers_they_name():
    import numpy as np

    from kazakh_ner_stance.benchmarks.stance_data import recipe_mask

    source = np.array(["kaznerd", "ntrex", "kazsandra", "kaznerd"])
    origin = np.array(["gold", "gold", "gold", "counterfactual"])
    real = {r: recipe_mask(r, source, origin)["real"].tolist() for r in ("default", "news", "reviews", "all")}
    assert real == {"default": [True, False, False, False], "news": [True, True, False, False],
                    "reviews": [True, True, True, False], "all": [True, True, True, False]}
    assert recipe_mask("counterfactual", source, origin)["counterfactual"].tolist() == [False, False, False, True]


def test_stance_pair_scores_both_models_on_the_same_resamples():
    import numpy as np

    from kazakh_ner_stance.benchmarks.stance_pair import class_counts, macro_f1, paired

    gold = ["NONE", "FAVOR", "AGAINST", "NONE", "FAVOR"]
    pred = ["NONE", "FAVOR", "NONE", "FAVOR", "FAVOR"]
    # NONE P 1/2 R 1/2, FAVOR P 2/3 R 1, AGAINST 0 -> (0.5 + 0.8 + 0) / 3
    assert float(macro_f1(class_counts(gold, pred).sum(0))[0]) == pytest.approx(1.3 / 3)
    same = paired(gold, pred, pred, 200, 0)
    assert same["difference"] == 0 and same["ci"] == [0.0, 0.0]
    better = paired(gold, pred, gold, 200, 0)
    assert better["other"] == 1.0 and better["difference"] > 0 and better["ci"][0] >= 0 - 1e-12
    assert np.isfinite(better["ci"]).all()


def test_stance_pair_benchmark_on_a_built_dataset(built, tiny_stance_checkpoint, tmp_path, capsys):
    from kazakh_ner_stance.benchmarks import cli

    out = tmp_path / "pair.json"
    rc = cli.run(["stance_pair", "--base", str(tiny_stance_checkpoint), "--other", str(tiny_stance_checkpoint),
                  "--dataset", str(built[3]), "--bootstrap", "50", "--out", str(out)])
    assert rc == 0
    record = json.loads(out.read_text())
    assert record["rows"]["all"]["difference"] == 0
    assert {"all", "kaznerd"} <= set(record["rows"]) and len(record["rows"]) > 2  # every source a row
    assert "README example, base" in capsys.readouterr().out


def test_stance_posthoc_offsets_move_decisions_and_class_f1_counts():
    import numpy as np

    from kazakh_ner_stance.benchmarks.stance_posthoc import decide
    from kazakh_ner_stance.evaluation.stance_metrics import compute_stance_metrics

    probs = np.array([[0.6, 0.3, 0.1], [0.5, 0.1, 0.4], [0.2, 0.7, 0.1]])
    assert decide(probs) == ["NONE", "NONE", "FAVOR"]
    # log(0.3) + 1 > log(0.6) and log(0.4) + 0.5 > log(0.5): offsets favour the rare classes
    assert decide(probs, (1.0, 0.5)) == ["FAVOR", "AGAINST", "FAVOR"]
    assert decide(probs, (-2.0, 0.0)) == ["NONE", "NONE", "NONE"]
    # the per-class F1 of its rows comes from the project's stance metrics
    per_class = compute_stance_metrics(["FAVOR", "AGAINST", "NONE"], ["FAVOR", "NONE", "FAVOR"])["per_class"]
    f1 = {lab: per_class[lab]["f1"] for lab in ("FAVOR", "AGAINST")}
    assert f1 == {"FAVOR": pytest.approx(2 / 3), "AGAINST": 0.0}


def test_stance_posthoc_benchmark_on_a_built_dataset(built, tiny_stance_checkpoint, tmp_path, capsys):
    from kazakh_ner_stance.benchmarks import cli

    out = tmp_path / "posthoc.json"
    rc = cli.run(["stance_posthoc", "--models", str(tiny_stance_checkpoint), str(tiny_stance_checkpoint),
                  "--dataset", str(built[3]), "--bootstrap", "50", "--out", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())["rows"]
    # two copies of one model: each alone and their ensemble decide exactly as the base does
    for name in ("model 1", "model 2", "ensemble of 2"):
        assert rows[name]["all"]["difference"] == 0 and rows[name]["kaznerd"]["difference"] == 0
    tuned = [name for name in rows if "dev offsets" in name]
    assert len(tuned) == 2 and all(len(rows[n]["offsets"]) == 2 for n in tuned)
    assert "README example" in capsys.readouterr().out
    with pytest.raises(Exception, match="at least two"):
        cli.run(["stance_posthoc", "--models", str(tiny_stance_checkpoint), "--dataset", str(built[3])])
