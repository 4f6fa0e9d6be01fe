"""Cross-lingual stance recipes: extra training data, the language- and class-balanced sampler,
the sequential start from a first-stage model, and the experiment configs."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.tasks import stance_mix
from kazakh_ner_stance.tasks.stance_mix import BalancedSampler, balanced_item_weights
from kazakh_ner_stance.training.train import run_train



def test_balanced_weights_split_languages_then_classes():
    langs = ["kk"] * 100 + ["ru"] * 20
    labels = [0] * 90 + [1] * 9 + [2] * 1 + [0] * 10 + [1] * 5 + [2] * 5
    for power in (0.0, 0.5, 1.0):
        w = balanced_item_weights(langs, labels, None, class_power=power)
        assert sum(w) == pytest.approx(1.0)
        share = Counter()
        for lang, lab, x in zip(langs, labels, w):
            share[(lang, lab)] += x
        assert share[("kk", 0)] + share[("kk", 1)] + share[("kk", 2)] == pytest.approx(0.5)
        if power == 0.0:  # languages balanced, classes as in the data
            assert share[("kk", 2)] == pytest.approx(0.5 * 1 / 100)
        if power == 1.0:  # every class of a language equally likely
            assert share[("kk", 2)] == pytest.approx(0.5 / 3) and share[("ru", 0)] == pytest.approx(0.5 / 3)
        if power == 0.5:  # n_c * (n_max / n_c) ** 0.5: 90 : 9 * sqrt(10) : 1 * sqrt(90)
            z = 90 + 9 * 10 ** 0.5 + 90 ** 0.5
            assert share[("kk", 2)] == pytest.approx(0.5 * 90 ** 0.5 / z)
        # Items of one language and class are equally likely.
        assert len({round(x, 12) for x, lg, lb in zip(w, langs, labels) if (lg, lb) == ("kk", 0)}) == 1
    w = balanced_item_weights(langs, labels, lang_weights={"kk": 3, "ru": 1}, class_power=0.0)
    assert sum(x for x, lg in zip(w, langs) if lg == "kk") == pytest.approx(0.75)


def test_augmented_items_keep_the_class_prior_and_their_cap():
    # kk: 90 real NONE + 10 made-up NONE, 10 real FAVOR + 40 made-up FAVOR, 0 real AGAINST + 5 made-up.
    labels = [0] * 100 + [1] * 50 + [2] * 5
    augmented = [False] * 90 + [True] * 10 + [False] * 10 + [True] * 40 + [True] * 5
    langs = ["kk"] * len(labels)
    plain = balanced_item_weights(langs, labels, None, 0.5)
    capped = balanced_item_weights(langs, labels, None, 0.5, augmented, 0.25)
    assert sum(capped) == pytest.approx(1.0)

    def share(w, pick):
        return sum(x for i, x in enumerate(w) if pick(i))

    # The class prior comes from the real items only (90 : 10 : 5, the made-up-only AGAINST cell
    # by its own count), as if the edits were not there.
    real_only = balanced_item_weights(langs[:90] + langs[100:110] + langs[150:],
                                      labels[:90] + labels[100:110] + labels[150:], None, 0.5)
    assert share(capped, lambda i: labels[i] == 1) == pytest.approx(sum(real_only[90:100]))
    assert share(plain, lambda i: labels[i] == 1) > share(capped, lambda i: labels[i] == 1)
    # Within a cell, made-up items get their uniform share, capped: FAVOR 40/50 -> 0.25,
    # NONE 10/100 -> 0.10 (under the cap), AGAINST (no real item) -> all of it.
    fav = share(capped, lambda i: labels[i] == 1)
    assert share(capped, lambda i: labels[i] == 1 and augmented[i]) == pytest.approx(0.25 * fav)
    none = share(capped, lambda i: labels[i] == 0)
    assert share(capped, lambda i: labels[i] == 0 and augmented[i]) == pytest.approx(0.10 * none)
    assert share(capped, lambda i: labels[i] == 2) > 0
    # Items of one cell and one kind are equally likely.
    assert len({round(capped[i], 12) for i in range(100, 110)}) == 1
    assert len({round(capped[i], 12) for i in range(110, 150)}) == 1
    # No cap: the flags change nothing.
    assert balanced_item_weights(langs, labels, None, 0.5, augmented, None) == plain
    with pytest.raises(KnsError, match="augmented_share"):
        balanced_item_weights(langs, labels, None, 0.5, augmented, 1.5)


def test_contrast_items_get_their_floor_share_and_nothing_else_moves():
    from kazakh_ner_stance.tasks.stance_mix import contrast_flags

    # Sentence s1: NONE holder + FAVOR object; s2: two NONE; s3: AGAINST only; s4: NONE only.
    sent_ids = ["s1", "s1", "s2", "s2", "s3", "s4"]
    labels = [0, 1, 0, 0, 2, 0]
    assert contrast_flags(sent_ids, labels) == [True, False, False, False, False, False]

    langs = ["kk"] * 40
    labels = [0] * 30 + [1] * 10
    contrast = [True] * 3 + [False] * 27 + [True] * 2 + [False] * 8  # flags on FAVOR count too
    plain = balanced_item_weights(langs, labels, None, 0.5)
    floored = balanced_item_weights(langs, labels, None, 0.5, contrast=contrast, contrast_share=0.3)
    assert sum(floored) == pytest.approx(1.0)
    none_mass = sum(plain[:30])
    assert sum(floored[:30]) == pytest.approx(none_mass)  # the class prior is untouched
    assert sum(floored[:3]) == pytest.approx(0.3 * none_mass)  # 3/30 = 0.1 raised to 0.3
    assert len({round(x, 12) for x in floored[3:30]}) == 1
    assert sum(floored[30:32]) == pytest.approx(0.3 * sum(plain[30:]))  # any flagged cell is floored
    # A share already above the floor stays as it is; off (None) changes nothing.
    assert balanced_item_weights(langs, labels, None, 0.5, contrast=contrast, contrast_share=0.05) == pytest.approx(plain)
    assert balanced_item_weights(langs, labels, None, 0.5, contrast=contrast, contrast_share=None) == plain
    with pytest.raises(KnsError, match="contrast_share"):
        balanced_item_weights(langs, labels, None, 0.5, contrast=contrast, contrast_share=-0.1)


def test_counterfactual_edits_and_name_swaps_are_flagged_as_augmented():
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    features = Features({
        "id": Value("string"), "tokens": Sequence(Value("string")), "start": Value("int32"),
        "end": Value("int32"), "target": Value("string"), "target_type": Value("string"),
        "label": ClassLabel(names=["NONE", "FAVOR", "AGAINST"]), "origin": Value("string"),
    })
    rows = [
        {"id": "a", "tokens": ["Асқар", "келді", "."], "start": 0, "end": 1, "target": "Асқар",
         "target_type": "PERSON", "label": 0, "origin": "gold"},
        {"id": "b", "tokens": ["Бекзат", "сынға", "ұшырады", "."], "start": 0, "end": 1, "target": "Бекзат",
         "target_type": "PERSON", "label": 2, "origin": "counterfactual"},
    ]
    split = Dataset.from_list(rows, features=features)
    task_cfg = compose("train", overrides=["task=stance"]).task
    got = stance_mix.training_split(split, task_cfg)
    assert list(got["augmented"]) == [False, True]
    assert list(got["contrast"]) == [False, False]  # no sent_id column: no contrast items
    task_cfg.name_swap.enabled = True
    task_cfg.name_swap.share = 1.0
    swapped = stance_mix.training_split(split, task_cfg)
    assert len(swapped) > 2 and all(swapped["augmented"][2:])


def test_balanced_sampler_is_seeded_redrawn_each_epoch_and_length_grouped():
    langs = ["kk"] * 200 + ["ru"] * 800
    labels = [0] * 1000
    lengths = [i % 37 + 3 for i in range(1000)]
    w = balanced_item_weights(langs, labels, None, class_power=0.5)
    a = BalancedSampler(w, 4000, seed=1, lengths=lengths, batch_size=8)
    b = BalancedSampler(w, 4000, seed=1, lengths=lengths, batch_size=8)
    first = list(a)
    assert len(first) == len(a) == 4000 and first == list(b)
    assert list(a) != first  # the next epoch draws anew
    a.set_epoch(0)
    assert list(a) == first  # set_epoch replays an epoch exactly (resumption)
    kk = sum(1 for i in first if langs[i] == "kk") / len(first)
    assert 0.45 < kk < 0.55  # 20% of the items, half of the draws
    mega = 50 * 8
    for start in range(0, 4000, mega):
        chunk = [lengths[i] for i in first[start : start + mega]]
        assert chunk == sorted(chunk, reverse=True)


@pytest.fixture
def recipe_overrides(tiny_encoder, tmp_path, rusentne_tiny):
    from kazakh_ner_stance.testing import save_stance_dataset

    ds = save_stance_dataset(tmp_path / "kk")
    return [
        "model=local", f"model.path={tiny_encoder}", f"data.dataset_dir={ds}", "trainer=debug",
        f"paths.artifacts_dir={tmp_path / 'artifacts'}", "task.max_length=48", "task.bootstrap_n=20",
        f"task.extra_train.dir={rusentne_tiny}",
    ]


def _russian_train(rusentne_tiny):
    from datasets import load_from_disk

    return load_from_disk(str(rusentne_tiny))["train"]


def test_recipes_train_on_the_right_items(recipe_overrides, tmp_path, monkeypatch, rusentne_tiny):
    n_ru = len(_russian_train(rusentne_tiny))
    draws = []
    original = BalancedSampler.__iter__

    def spy(self):
        out = list(original(self))
        draws.append(out)
        return iter(out)

    monkeypatch.setattr(stance_mix.BalancedSampler, "__iter__", spy)
    # Zero-shot: the Russian train split only (the fixture's items left after the dev carve), Kazakh dev.
    zero = compose("train", [*recipe_overrides, "experiment=kaznerd_stance_e5_small_zeroshot",
                             f"run_dir={tmp_path / 'zero'}", "trainer=debug"])
    assert zero.task.train_on_target is False
    run_train(zero)
    meta = json.loads((tmp_path / "zero" / "model" / "kns_stance.json").read_text())
    assert sum(meta["train_counts"]) == n_ru and meta["training_data"]["train_on_target"] is False
    assert not draws  # no balanced sampler in this recipe
    summary = json.loads((tmp_path / "zero" / "summary.json").read_text())
    assert summary["train_sentences"] == 40  # the Kazakh split handed over, not trained on

    # Mixed: both, drawn by the balanced sampler (epoch = number of Kazakh items).
    mixed = compose("train", [*recipe_overrides, "experiment=kaznerd_stance_e5_small_mixed",
                              f"run_dir={tmp_path / 'mixed'}", "trainer=debug", "trainer.args.max_steps=-1",
                              "trainer.args.num_train_epochs=1", "trainer.args.eval_strategy=epoch",
                              "trainer.args.save_strategy=epoch", "task.sampler.lang_weights={kk:1,ru:1}",
                              "task.sampler.contrast_share=0.5", "task.sampler.augmented_share=0.25"])
    run_train(mixed)
    meta = json.loads((tmp_path / "mixed" / "model" / "kns_stance.json").read_text())
    assert sum(meta["train_counts"]) == 40 + n_ru and meta["class_weights"] is None
    assert meta["training_data"]["sampler"]["kind"] == "balanced"
    assert meta["training_data"]["sampler"]["lang_weights"] == {"kk": 1, "ru": 1}  # nested options saved as JSON
    assert meta["training_data"]["sampler"]["contrast_share"] == 0.5  # the flags reached the sampler
    assert len(draws) == 1 and len(draws[0]) == 40
    ru = sum(1 for i in draws[0] if i >= 40)  # the Russian rows follow the Kazakh ones
    assert 8 <= ru <= 32  # about half of the draws, from a fifth of the items

    # Sequential: starts from the zero-shot model's weights.
    seq = compose("train", [*recipe_overrides, "experiment=kaznerd_stance_e5_small_sequential",
                            f"task.init_from={tmp_path / 'zero' / 'model'}", f"run_dir={tmp_path / 'seq'}",
                            "trainer=debug", "task.extra_train.dir=null"])
    from transformers import AutoTokenizer

    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.tasks.stance import StanceTask, load_stance_checkpoint

    task = StanceTask(seq, load_built_dataset(seq.data.dataset_dir), AutoTokenizer.from_pretrained(seq.model.path))
    model = task.build_model(seq.model.path)
    first, _, _ = load_stance_checkpoint(tmp_path / "zero" / "model")
    head_now = [p for n, p in model.named_parameters() if n.startswith("head.")]
    head_then = [p for n, p in first.named_parameters() if n.startswith("head.")]
    assert head_now and all((a == b).all() for a, b in zip(head_now, head_then))
    run_train(seq)
    meta = json.loads((tmp_path / "seq" / "model" / "kns_stance.json").read_text())
    assert meta["training_data"]["init_from"].endswith("model") and sum(meta["train_counts"]) == 40

    pooler = compose("train", [*recipe_overrides, "task.head=pooler", f"task.init_from={tmp_path / 'zero' / 'model'}",
                               "task=stance", f"run_dir={tmp_path / 'p'}"])
    with pytest.raises(KnsError, match="markers head, this run task.head=pooler"):
        StanceTask(pooler, load_built_dataset(pooler.data.dataset_dir),
                   AutoTokenizer.from_pretrained(pooler.model.path)).build_model(pooler.model.path)


def test_recipe_errors(recipe_overrides, tmp_path, rusentne_tiny):
    from transformers import AutoTokenizer

    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.tasks.stance import StanceTask

    def task(*extra):
        cfg = compose("train", [*recipe_overrides, "task=stance", f"run_dir={tmp_path / 'r'}", *extra])
        return StanceTask(cfg, load_built_dataset(cfg.data.dataset_dir), AutoTokenizer.from_pretrained(cfg.model.path))

    with pytest.raises(KnsError, match="holds no built dataset"):
        task(f"task.extra_train.dir={tmp_path / 'nothing'}")
    with pytest.raises(KnsError, match="pick one"):
        task("task.sampler.kind=balanced", "task.class_balance=oversample")
    with pytest.raises(KnsError, match="nothing to train on"):
        task("task.train_on_target=false", "task.extra_train.dir=null")
    t = task("task.extra_train.exclude_types=[PROFESSION]")
    ru = _russian_train(rusentne_tiny)
    professions = sum(1 for x in ru["target_type"] if x == "PROFESSION")
    assert professions > 0 and sum(t.train_counts) == 40 + len(ru) - professions


@pytest.mark.parametrize("recipe", ["zeroshot", "sequential", "kazakh", "kazsandra"])
def test_recipe_experiments_compose(recipe):
    cfg = compose("train", [f"experiment=kaznerd_stance_e5_small_{recipe}"])
    assert cfg.task.name == "stance" and cfg.data.name == "kaznerd_stance" and cfg.task.head == "markers"
    assert cfg.run_name == f"kaznerd_stance_e5_small_{recipe}"
    # Only the default (mixed) recipe draws through the balanced sampler.
    assert (cfg.task.get("sampler") or {}).get("kind", "none") in (None, "none")


def test_the_mixed_recipe_is_the_kazakh_recipe_plus_rusentne():
    cfg = compose("train", ["experiment=kaznerd_stance_e5_small_mixed"])
    assert cfg.run_name == "kaznerd_stance_e5_small_mixed" and cfg.task.head == "markers"
    assert cfg.task.extra_train.dir.endswith("/rusentne") and cfg.task.extra_train.split == "train"
    assert cfg.task.sampler.kind == "balanced" and cfg.task.class_balance == "none"
    assert cfg.task.get("train_on_target", True) and not cfg.task.get("init_from")
    # Everything else is the Kazakh-only recipe's, but the schedule: 3 epochs, not 6 (issue 12's
    # 30-minute CPU aim; 3-fold CV 0.520 vs 0.502-0.530 for 6 epochs, README).
    kazakh = compose("train", ["experiment=kaznerd_stance_e5_small_kazakh"])
    assert kazakh.task.extra_train.dir is None and kazakh.task.class_balance == "weights"
    assert cfg.trainer.args.num_train_epochs == 3 and kazakh.trainer.args.num_train_epochs == 6
    assert {k: v for k, v in cfg.trainer.args.items() if k != "num_train_epochs"} == \
        {k: v for k, v in kazakh.trainer.args.items() if k != "num_train_epochs"}
    assert cfg.task.max_length == kazakh.task.max_length
    silver = compose("train", ["experiment=kaznerd_stance_e5_small_silver"])
    assert silver.trainer.args.num_train_epochs == 6  # the schedule its CV row was measured with


def test_the_default_stance_experiment_is_the_mixed_recipe_on_the_v2_data():
    cfg = compose("train", ["experiment=kaznerd_stance_e5_small"])
    mixed = compose("train", ["experiment=kaznerd_stance_e5_small_mixed"])
    assert cfg.run_name == "kaznerd_stance_e5_small" and cfg.data.name == "kazakh_stance"
    assert cfg.data.counterfactual.layer is None  # gold items only (issue 22's recipe table)
    # Its differences from the mixed recipe: the data, more Kazakh draws per Russian one, and a
    # fixed epoch (the mixed recipe's cost).
    assert dict(cfg.task.sampler.lang_weights) == {"kk": 3, "ru": 1} and cfg.task.sampler.epoch_size == 4000
    assert not cfg.task.name_swap.enabled and mixed.data.name == "kaznerd_stance"
    assert cfg.trainer.args == mixed.trainer.args and cfg.task.extra_train == mixed.task.extra_train
    # The counterfactual recipe: the default plus the pairs and name swaps.
    cf = compose("train", ["experiment=kaznerd_stance_e5_small_counterfactual"])
    assert cf.data.name == "kazakh_stance_cf" and cf.data.counterfactual.layer.endswith("kaznerd_counterfactual.jsonl")
    assert cf.task.name_swap.enabled and cf.task.name_swap.share == 0.5 and cf.task.sampler == cfg.task.sampler
    # The capped counterfactual recipe: the default's data plus the pairs, which the sampler keeps
    # from the class prior and caps at a quarter of a class's draws; no name swaps.
    capped = compose("train", ["experiment=kaznerd_stance_e5_small_cf_capped"])
    assert capped.data.name == "kazakh_stance_cf" and not capped.task.name_swap.enabled
    assert capped.task.sampler.augmented_share == 0.25 and cfg.task.sampler.augmented_share is None
    assert capped.trainer.args == cfg.trainer.args and capped.task.extra_train == cfg.task.extra_train


def test_model_card_names_the_cross_lingual_training_data():
    from kazakh_ner_stance.cards.model_card import _cross_lingual_note

    assert _cross_lingual_note({"config": {"task": {"extra_train": {"dir": None}}}}) == []
    mixed = " ".join(_cross_lingual_note({"config": {"task": {
        "extra_train": {"dir": "/a/datasets/rusentne", "split": "train"}, "sampler": {"kind": "balanced"}}}}))
    assert "RuSentNE-2023" in mixed and "MIT" in mixed and "balanced sampler" in mixed
    zero = " ".join(_cross_lingual_note({"config": {"task": {
        "train_on_target": False, "extra_train": {"dir": "/a/datasets/rusentne"}}}}))
    assert "no Kazakh training item" in zero
    joint = " ".join(_cross_lingual_note({"config": {"task": {"extra_train": {"dir": "/d/rusentne"}}}}, True))
    assert "train the stance head only" in joint and "stance head only" not in mixed
    seq = " ".join(_cross_lingual_note({"config": {"task": {"init_from": "/runs/zs/model"}}}))
    assert "Fine-tuned from the stance checkpoint `zs`" in seq
