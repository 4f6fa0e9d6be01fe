"""Name swaps (issue 22): the target replaced by another name of its type, the sentence
unchanged; the check measures how often a model's label follows the name; the augmentation
adds swapped copies with the label kept."""

from __future__ import annotations

import random

from kazakh_ner_stance.evaluation.name_swap import NamePool, name_swap_check, swap_item, swapped_copies


def _item(i, words, target_words, typ, label="NONE"):
    tokens = [*words[:1], *target_words, *words[1:]]
    return {"id": f"s{i}", "tokens": tokens, "start": 1, "end": 1 + len(target_words), "target": " ".join(target_words),
            "target_type": typ, "label": label}


ITEMS = [
    _item(0, ["Бүгін", "елді", "мақтады", "."], ["Тоқаев"], "PERSON", "NONE"),
    _item(1, ["Депутаттар", "сынады", "."], ["Назарбаевты"], "PERSON", "AGAINST"),
    _item(2, ["Депутаттар", "қолдады", "."], ["Тоқаевты"], "PERSON", "FAVOR"),
    _item(3, ["Біз", "бардық", "."], ["Қазақстанға"], "GPE", "NONE"),
    _item(4, ["Біз", "бардық", "."], ["Ресейге"], "GPE", "NONE"),
    _item(5, ["Біз", "бардық", "."], ["Қытайға"], "GPE", "NONE"),
]


def test_swap_keeps_the_sentence_and_the_type_and_prefers_the_same_ending():
    pool = NamePool(ITEMS)
    rng = random.Random(0)
    out = swap_item(ITEMS[1], pool, rng)
    # «Назарбаевты» -> «Тоқаевты» (same type, same -евты ending), the rest of the sentence unchanged
    assert out["tokens"] == ["Депутаттар", "Тоқаевты", "сынады", "."] and out["target"] == "Тоқаевты"
    assert (out["start"], out["end"], out["label"]) == (1, 2, "AGAINST")
    swapped = swap_item(ITEMS[3], pool, rng)
    assert swapped["target"] in {"Қытайға"}  # -айға: the ending shared with «Қазақстанға» is -ға; -йға wins
    # A type with one name has nothing to swap to.
    assert swap_item(_item(9, ["А", "б"], ["Алаш"], "ORGANISATION"), NamePool([*ITEMS, _item(9, ["А", "б"], ["Алаш"],
                                                                                                 "ORGANISATION")]),
                     rng) is None


def test_multiword_names_move_the_span():
    items = [_item(0, ["Бүгін", "келді", "."], ["Дональд", "Трамп"], "PERSON"), _item(1, ["Бүгін", "келді", "."],
                                                                                     ["Байден"], "PERSON")]
    out = swap_item(items[1], NamePool(items), random.Random(0))
    assert out["tokens"] == ["Бүгін", "Дональд", "Трамп", "келді", "."] and (out["start"], out["end"]) == (1, 3)


def test_check_counts_label_changes_of_a_name_model_and_none_of_a_sentence_model():
    pool = NamePool(ITEMS)

    def by_name(items):  # «learnt names»: FAVOR for Тоқаев whatever the sentence says
        return ["FAVOR" if "Тоқаев" in x["tokens"][x["start"]] else "NONE" for x in items]

    def by_sentence(items):
        return ["AGAINST" if "сынады" in x["tokens"] else "FAVOR" if "қолдады" in x["tokens"] else "NONE" for x in items]

    names = name_swap_check(by_name, ITEMS, pool, seed=0)
    sentence = name_swap_check(by_sentence, ITEMS, pool, seed=0)
    # Originals the caller already has are used as given, not predicted again.
    calls = []
    known = name_swap_check(lambda items: calls.append(len(items)) or by_name(items), ITEMS, pool, seed=0,
                            original=by_name(ITEMS))
    assert known == names and calls == [6]  # one call: the swapped copies only
    assert sentence["changed"] == 0.0 and sentence["changed_of_favor_against"] == 0.0
    assert names["changed"] > 0.3 and names["changed_of_favor_against"] == 1.0
    assert names["swaps"] == 6 and names["by_type"]["PERSON"]["n"] == 3


def test_augmentation_adds_swapped_copies_with_labels_kept():
    copies = swapped_copies(ITEMS, NamePool(ITEMS), seed=1)
    assert len(copies) == len(ITEMS)
    assert all(c["id"].endswith("~swap") for c in copies)
    assert [c["label"] for c in copies] == [x["label"] for x in ITEMS]
    assert all(c["target"] != x["target"] for c, x in zip(copies, ITEMS))
    assert len(swapped_copies(ITEMS, NamePool(ITEMS), seed=1, share=0.0)) == 0
