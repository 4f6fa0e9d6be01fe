"""The frozen-encoder stance probe: features from the target's pieces, one pass per sentence,
windows that keep the target, bias offsets, cross-validation and `kns-bench stance_probe`."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from kazakh_ner_stance.benchmarks import cli
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.evaluation.stance_probe import (
    ItemFeatures, ProbeVariant, class_weights, cross_validate_probe, encode_items, tune_bias,
)


@pytest.fixture(scope="module")
def encoder(tiny_encoder):
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(str(tiny_encoder), add_pooling_layer=False).eval(), AutoTokenizer.from_pretrained(str(tiny_encoder))


def test_features_are_the_mean_of_the_target_pieces(encoder):
    import torch

    model, tok = encoder
    sent = ["Асқар", "Тоқаевты", "қолдады", "."]
    feats, passes = encode_items(model, tok, [sent, sent], [1, 0], [2, 1], layers=[1, 2])
    assert passes == 1  # two targets of one sentence: one forward pass
    enc = tok([sent], is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**enc, output_hidden_states=True).hidden_states
    pos = [p for p, w in enumerate(enc.word_ids(0)) if w == 1]
    want = torch.cat([states[1][0, pos].mean(0), states[2][0, pos].mean(0)]).numpy()
    np.testing.assert_allclose(feats[0], want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(feats[0], feats[1])
    # Padding in a batch with a longer sentence does not change an item's vector.
    longer = [*sent[:-1], "және", "тағы", "басқа", "сөздер", "."]
    feats2, passes2 = encode_items(model, tok, [sent, longer], [1, 1], [2, 2], layers=[1, 2])
    assert passes2 == 2
    np.testing.assert_allclose(feats2[0], feats[0], rtol=1e-4, atol=1e-4)


def test_a_long_sentence_keeps_its_target(encoder):
    model, tok = encoder
    words = [f"сөз{i}" for i in range(200)]
    feats, passes = encode_items(model, tok, [words, words], [190, 3], [192, 4], layers=[2], max_length=32)
    assert passes == 2 and np.isfinite(feats).all() and np.abs(feats).sum(1).min() > 0  # two windows
    with pytest.raises(KnsError, match="layers"):
        encode_items(model, tok, [words], [0], [1], layers=[99])
    with pytest.raises(KnsError, match="target span 5:3"):
        encode_items(model, tok, [words], [5], [3], layers=[1])


def test_class_weights_and_bias_tuning():
    y = np.array([0] * 8 + [1] * 2 + [2])
    w = class_weights(y, 1.0)
    assert w[0] == 1.0 and w[8] == 4.0 and w[10] == 8.0
    assert class_weights(y, 0.0).tolist() == [1.0] * 11
    # FAVOR items score just below NONE: an offset of +0.5 on FAVOR recovers them all.
    lp = np.log(np.array([[0.8, 0.15, 0.05]] * 8 + [[0.5, 0.4, 0.1]] * 2 + [[0.1, 0.1, 0.8]]))
    fav, against, m = tune_bias(lp, y)
    assert 0.25 <= fav <= 2.0 and m == pytest.approx(1.0)
    assert against == 0.0  # nothing to gain: the offset closest to none is kept
    assert tune_bias(np.log(np.eye(3)[y] * 0.9 + 0.05), y)[:2] == (0.0, 0.0)


def test_cross_validation_learns_separable_classes_and_uses_extra_items():
    rng = np.random.default_rng(0)
    labels = ["NONE"] * 60 + ["FAVOR"] * 24 + ["AGAINST"] * 12
    centre = {"NONE": 0.0, "FAVOR": 3.0, "AGAINST": -3.0}
    x = np.stack([rng.normal(centre[lab], 0.5, 8) for lab in labels]).astype(np.float32)
    groups = [f"g{i // 2}" for i in range(len(labels))]
    folds = [i % 3 for i in range(len(labels))]
    kk = ItemFeatures(x=x, labels=labels, encode_s=0.0)
    res = cross_validate_probe(kk, groups, folds, ProbeVariant("p", C=1.0))
    assert res["pred"] == labels and res["probs"].shape == (96, 3) and res["offsets"] == []
    np.testing.assert_allclose(res["probs"].sum(1), 1.0, rtol=1e-6)
    tuned = cross_validate_probe(kk, groups, folds, ProbeVariant("p", C=1.0, tune_bias=True))
    assert len(tuned["offsets"]) == 3 and tuned["pred"] == labels
    # Extra items whose labels contradict the Kazakh ones pull the probe when weighted heavily.
    flipped = ItemFeatures(x=x.copy(), labels=[{"FAVOR": "AGAINST", "AGAINST": "FAVOR"}.get(lab, lab)
                                               for lab in labels], encode_s=0.0)
    heavy = cross_validate_probe(kk, groups, folds, ProbeVariant("p", C=1.0, extra=True, extra_weight=20.0),
                                 extra=flipped)
    assert sum(p != g for p, g in zip(heavy["pred"], labels)) >= 30
    with pytest.raises(KnsError, match="extra dataset"):
        cross_validate_probe(kk, groups, folds, ProbeVariant("p", extra=True))


def test_benchmark_stance_probe_smoke(tiny_encoder, rusentne_tiny, tmp_path, capsys):
    from kazakh_ner_stance.testing import save_stance_dataset

    datasets = tmp_path / "datasets"
    shutil.copytree(rusentne_tiny, datasets / "rusentne")
    kk = save_stance_dataset(tmp_path / "kk")
    out = tmp_path / "probe"
    rc = cli.run(["stance_probe", "--folds", "2", "--layers", "1,2", "--C", "1.0", "--out", str(out),
                  "model=local", f"model.path={tiny_encoder}", f"data.dataset_dir={kk}",
                  f"paths.datasets_dir={datasets}", f"paths.artifacts_dir={tmp_path / 'artifacts'}"])
    assert rc == 0
    text = capsys.readouterr().out
    for name in ("probe-kazakh", "probe-mixed", "probe-kazakh+bias", "probe-mixed+bias"):
        assert f"| {name} |" in text
    assert "x probe-kazakh)" in text and (out / "probe.md").is_file()
    import json

    saved = json.loads((out / "probe.json").read_text())
    assert saved["layers"] == [1, 2] and saved["rows"]["probe-kazakh"]["report"]["n_items"] == 64
    assert len(saved["rows"]["probe-mixed+bias"]["offsets"]) == 2
    assert "git" in saved["provenance"] and saved["provenance"]["machine"]["threads"] >= 1
    # The script refuses to start without the RuSentNE dataset, naming the build command.
    assert cli.run(["stance_probe", "--out", str(out), "model=local", f"model.path={tiny_encoder}",
                    f"paths.datasets_dir={tmp_path / 'none'}", f"paths.artifacts_dir={tmp_path / 'a2'}"]) == 2
    assert "data=rusentne" in capsys.readouterr().err
