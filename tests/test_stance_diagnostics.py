"""Stance diagnostics (issue 22): errors by the target's role, and the whole report on a tiny
trained checkpoint (scores, roles, name swaps, the README example)."""

from __future__ import annotations

import json

from kazakh_ner_stance.evaluation.stance_diagnostics import errors_by_role, none_beside_stance


def test_errors_by_role_counts_false_polar_holders_and_missed_objects():
    items = [{"id": "a", "label": "NONE"}, {"id": "b", "label": "NONE"}, {"id": "c", "label": "FAVOR"},
             {"id": "d", "label": "AGAINST"}, {"id": "e", "label": "NONE"}]
    roles = {"a": "holder", "b": "holder", "c": "object", "d": "object", "e": "neither"}
    pred = ["AGAINST", "NONE", "NONE", "AGAINST", "FAVOR"]
    r = errors_by_role(items, pred, roles)
    assert r["holder"] == {"items": 2, "gold": {"NONE": 2}, "pred": {"AGAINST": 1, "NONE": 1}, "errors": 1,
                           "polar_for_gold_none": 1, "missed_polar": 0}
    assert r["object"]["missed_polar"] == 1 and r["object"]["errors"] == 1
    assert r["neither"]["polar_for_gold_none"] == 1
    assert r["_summary"] == {"errors": 3, "untagged_items": 0, "holder_share_of_false_polar": 0.5}


def test_none_items_beside_a_stance_target_are_counted_apart():
    # s1: a NONE holder beside a FAVOR object; s2: two NONE targets; s3: an AGAINST target alone.
    items = [{"sent_id": "s1", "label": "NONE"}, {"sent_id": "s1", "label": "FAVOR"},
             {"sent_id": "s2", "label": "NONE"}, {"sent_id": "s2", "label": "NONE"},
             {"sent_id": "s3", "label": "AGAINST"}]
    pred = ["FAVOR", "FAVOR", "NONE", "AGAINST", "NONE"]
    assert none_beside_stance(items, pred) == {"beside_stance": {"items": 1, "labelled": 1},
                                               "other": {"items": 2, "labelled": 1}}


def test_report_on_a_tiny_checkpoint(tiny_stance_checkpoint, tmp_path, capsys):
    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.evaluation.stance_diagnostics import main
    from kazakh_ner_stance.testing import save_stance_dataset

    data = save_stance_dataset(tmp_path / "stance")
    test = load_built_dataset(data)["test"]
    roles = tmp_path / "roles.jsonl"
    roles.write_text("".join(json.dumps({"id": i, "role": "holder" if k % 2 else "object"}) + "\n"
                             for k, i in enumerate(test["id"])), encoding="utf-8")
    out = tmp_path / "diag.json"
    assert main(["--checkpoint", str(tiny_stance_checkpoint), "--dataset", str(data), "--roles", str(roles),
                 "--swap-rounds", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["scores"]["n_items"] == len(test)
    assert report["roles"]["holder"]["items"] + report["roles"]["object"]["items"] == len(test)
    assert set(report["readme_example"]) == {"Тоқаев", "Бейбітшілік кеңесін"}
    assert "README example «Бейбітшілік кеңесін»" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "role": "subject"}\n', encoding="utf-8")
    assert main(["--checkpoint", str(tiny_stance_checkpoint), "--dataset", str(data), "--roles", str(bad)]) == 2
