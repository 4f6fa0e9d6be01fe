"""Weak stance labelling functions: cues, negation, idioms, names, scope; the evaluation."""

from __future__ import annotations

import pytest

from kazakh_ner_stance.stance_annotation.weak_label_evaluation import evaluate
from kazakh_ner_stance.stance_annotation.weak_labels import Item, case_of, load_lexicon, majority_vote, make_lfs


@pytest.fixture(scope="module")
def lfs():
    return make_lfs(load_lexicon("default"))


def votes(lfs, sentence, start, end, etype=None):
    item = Item(sentence.split(), start, end, etype)
    return {lf.name: v for lf in lfs if (v := lf(item)) is not None}


def mv(lfs, sentence, start, end, etype=None):
    return majority_vote(list(votes(lfs, sentence, start, end, etype).values()))


@pytest.mark.parametrize(
    "sentence,span,etype,expected",
    [
        # rule 1: the object of support is FAVOR, the reported supporter NONE
        ("Тоқаев Бейбітшілік кеңесін қолдады .", (1, 3), "ORGANISATION", "FAVOR"),
        ("Тоқаев Бейбітшілік кеңесін қолдады .", (0, 1), "PERSON", "NONE"),
        # negation flips support (-ма/-ме/-ба/-бе/-па/-пе) and light verbs with емес/жоқ
        ("Біз Ресейдің бастамасын қолдамаймыз .", (1, 2), "GPE", "AGAINST"),
        ("Олар Үкіметтің жобасын қолдаған жоқ .", (1, 2), "ORGANISATION", "AGAINST"),
        ("Депутаттар Үкіметке қолдау көрсетпеді .", (1, 2), "ORGANISATION", "AGAINST"),
        # criticism; negated criticism abstains (no FAVOR)
        ("Сарапшылар Үкіметтің жобасын қатты сынады .", (1, 2), "ORGANISATION", "AGAINST"),
        ("Сарапшылар Үкіметтің жобасын сынамады .", (1, 2), "ORGANISATION", None),
        # «X-ға қарсы»
        ("Депутаттар Ресейге қарсы шықты .", (1, 2), "GPE", "AGAINST"),
        ("Бұл Ресейге қарсы емес .", (1, 2), "GPE", None),
        # idioms: welcome = FAVOR; a welcomed holiday abstains
        ("Тұрғындар Президент Тоқаевты қошеметпен қарсы алды .", (2, 3), "PERSON", "FAVOR"),
        ("Біз Жаңа жылды қарсы алдық .", (1, 3), "EVENT", None),
        # «қарсы» inside a name is no stance
        ("Ол Сыбайлас жемқорлыққа қарсы іс-қимыл агенттігінде жұмыс істейді .", (1, 6), "ORGANISATION", "NONE"),
        ("Ресейде індетке қарсы вакцина жасалды .", (0, 1), "GPE", "NONE"),
        # rule 5: a place where something happens
        ("Шымкентте індетке қарсы жұмыстар күшейтіледі .", (0, 1), "GPE", "NONE"),
        # rule 4: honours (passive)
        ("Назарбаев Достық орденімен марапатталды .", (0, 1), "PERSON", "FAVOR"),
        # homograph: қолдану (use) is not қолдау (support)
        ("Қазақстан жаңа технологияны қолданды .", (0, 1), "GPE", "NONE"),
        # scope: a cue across a clause boundary does not reach the target
        ("Біз Астанаға бардық ; жобаны қолдадық .", (1, 2), "GPE", None),
    ],
)
def test_lfs(lfs, sentence, span, etype, expected):
    assert mv(lfs, sentence, *span, etype) == expected, votes(lfs, sentence, *span, etype)


def test_case_of():
    assert case_of("Тоқаевтың") == "GEN"
    assert case_of("Тоқаевты") == "ACC"
    assert case_of("Тоқаевқа") == "DAT"
    assert case_of("Астанада") == "LOC"
    assert case_of("Астанадан") == "ABL"
    assert case_of("Тоқаев") == "NOM"


def test_majority_vote_ties_abstain():
    assert majority_vote([None, None]) is None
    assert majority_vote(["FAVOR", "NONE"]) is None
    assert majority_vote(["FAVOR", "FAVOR", "NONE", None]) == "FAVOR"


def test_evaluate_report(lfs):
    items = [
        Item("Тоқаев Бейбітшілік кеңесін қолдады .".split(), 1, 3, "ORGANISATION"),
        Item("Тоқаев Бейбітшілік кеңесін қолдады .".split(), 0, 1, "PERSON"),
        Item("Алматыда жаңа саябақ ашылды .".split(), 0, 1, "GPE"),
        Item("Біз Жаңа жылды қарсы алдық .".split(), 1, 3, "EVENT"),
    ]
    gold = ["FAVOR", "NONE", "NONE", "NONE"]
    report = evaluate(lfs, items, gold)
    fav = report["lfs"]["favor_cue"]
    assert fav["coverage"] == 0.25 and fav["accuracy"] == 1.0
    assert fav["per_class"]["FAVOR"]["precision"] == 1.0 and fav["per_class"]["FAVOR"]["recall"] == 1.0
    loc = report["lfs"]["location_none"]
    assert loc["votes"] == 1 and loc["overlap"] == 0.25  # no_cue_none also votes there
    m = report["majority_vote"]
    assert m["coverage"] == 0.75 and m["accuracy"] == 1.0
    assert m["per_class"]["NONE"]["recall"] == pytest.approx(2 / 3)
    assert report["majority_vote_or_none"]["accuracy"] == 1.0


def test_custom_lexicon_and_errors(tmp_path):
    from kazakh_ner_stance.errors import KnsError

    lex = load_lexicon({"favor": {"active": [{"stem": "жақсы көр"}]}, "negators": ["емес"]})
    lfs = make_lfs(lex)
    assert mv(lfs, "Мен Алматыны жақсы көремін .", 1, 2, "GPE") == "FAVOR"
    assert mv(lfs, "Мен Алматыны жақсы көрмеймін .", 1, 2, "GPE") == "AGAINST"
    bad = tmp_path / "lex.yaml"
    bad.write_text("idioms:\n  - {name: x, stem: a b, label: PRO}\n", encoding="utf-8")
    with pytest.raises(KnsError, match="unknown label 'PRO'"):
        load_lexicon(bad)
