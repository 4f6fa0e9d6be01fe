"""Label alignment and windowing: every gold word labelled once, never truncated."""

import pytest

from kazakh_ner_stance.tasks.ner import IGNORE_INDEX, encode_windows, pieces_per_word, repair_iob2
from kazakh_ner_stance.tasks.windows import word_windows
from kazakh_ner_stance.testing import build_tiny_tokenizer

ID2LABEL = {0: "O", 1: "B-PERSON", 2: "I-PERSON", 3: "B-GPE", 4: "I-GPE"}


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


def test_first_subword_alignment_marks_only_first_pieces(tok):
    words = [["Қасым-Жомарт", "Тоқаев", "Астанада", "."]]
    labels = [[1, 2, 3, 0]]
    enc = encode_windows(tok, words, max_length=64, overlap=8, labels_batch=labels, id2label=ID2LABEL,
                         label_all_subwords=False)
    assert len(enc["input_ids"]) == 1
    counts = pieces_per_word(tok, words)[0]
    assert counts == [12, 6, 8, 1]  # character-level pieces (hyphen is its own piece)
    got = [l for l in enc["labels"][0] if l != IGNORE_INDEX]
    assert got == [1, 2, 3, 0]
    # the label sits on each word's first piece
    first_positions = [i for i, l in enumerate(enc["labels"][0]) if l != IGNORE_INDEX]
    assert first_positions == [1, 1 + 12, 1 + 12 + 6, 1 + 12 + 6 + 8]


def test_label_all_subwords_turns_b_into_i_on_later_pieces(tok):
    words = [["Тоқаев", "Астана"]]
    enc = encode_windows(tok, words, 64, 8, labels_batch=[[1, 3]], id2label=ID2LABEL, label_all_subwords=True)
    labels = enc["labels"][0][1:-1]
    assert labels == [1] + [2] * 5 + [3] + [4] * 5


def test_long_sentence_is_windowed_and_every_word_owned_once(tok):
    words = [[f"сөз{i}" for i in range(40)]]  # 4 pieces each = 160 pieces
    labels = [[(i % 5) for i in range(40)]]
    enc = encode_windows(tok, words, max_length=34, overlap=8, labels_batch=labels, id2label=ID2LABEL,
                         label_all_subwords=False)
    assert len(enc["input_ids"]) > 4
    assert all(n <= 34 for n in enc["length"])
    owned_words = []
    for wids, owned in zip(enc["word_ids"], enc["owned"]):
        owned_words += [w for w, o in zip(wids, owned) if o]
    assert sorted(owned_words) == list(range(40))  # each word exactly once
    # every word is labelled in at least one window (no gold word lost to truncation)
    labelled = set()
    for wids, labs in zip(enc["word_ids"], enc["labels"]):
        labelled |= {w for w, l in zip(wids, labs) if l != IGNORE_INDEX}
    assert labelled == set(range(40))


@pytest.mark.parametrize("counts,budget,overlap", [
    ([3] * 10, 7, 3), ([1] * 50, 8, 4), ([20, 1, 1, 20], 10, 5), ([5], 3, 1), ([2, 9, 2, 2], 9, 4),
])
def test_word_windows_tile_the_sentence(counts, budget, overlap):
    wins = word_windows(counts, budget, overlap)
    assert wins[0].start == 0 and wins[-1].end == len(counts)
    assert wins[0].owned_start == 0 and wins[-1].owned_end == len(counts)
    for a, b in zip(wins, wins[1:]):
        assert a.owned_end == b.owned_start
        assert b.start > a.start
    for w in wins:
        assert w.start <= w.owned_start <= w.owned_end <= w.end
        # a window exceeds the budget only when it is a single oversized word
        assert sum(counts[w.start:w.end]) <= budget or w.end - w.start == 1


def test_empty_sentence_gives_one_empty_window(tok):
    enc = encode_windows(tok, [[]], 16, 4)
    assert enc["input_ids"] == [[tok.cls_token_id, tok.sep_token_id]]


def test_repair_iob2():
    assert repair_iob2(["I-PER", "I-PER", "O", "I-GPE", "B-GPE", "I-PER"]) == [
        "B-PER", "I-PER", "O", "B-GPE", "B-GPE", "B-PER"]


def test_encoders_default_to_the_task_configs_sub_word_labels():
    """encode_windows / encode_joint label sub-words as configs/task/{ner,joint}.yaml do by default."""
    import inspect
    from pathlib import Path

    from omegaconf import OmegaConf

    from kazakh_ner_stance.tasks.joint_encoding import encode_joint

    configs = Path(__file__).resolve().parents[1] / "configs" / "task"
    for fn, task in ((encode_windows, "ner"), (encode_joint, "joint")):
        default = inspect.signature(fn).parameters["label_all_subwords"].default
        assert default is bool(OmegaConf.load(configs / f"{task}.yaml").label_all_subwords), (fn.__name__, task)
