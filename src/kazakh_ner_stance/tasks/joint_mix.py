"""Extra stance items (RuSentNE) as joint NER + stance training examples, and the balanced
language/class sampler for the joint task: `task.extra_train` and `task.sampler` of
configs/task/joint.yaml, with the keys and meaning of task=stance's (tasks/stance_mix.py).

* The extra rows are loaded by `stance_mix.load_extra_train` (folders, split, exclude_types,
  max_items, seed, `lang`). Rows of one language whose token lists are identical are one
  sentence and become one joint example holding all their targets (span, type, label); every
  other row is an example with its one target. (Token identity, not `sent_id`: RuSentNE's
  sent_id is one per row, i.e. per target, and the loader keeps only the stance columns. A
  sentence that an entity cuts differently tokenises differently, so such rows stay apart.)
* They carry no NER supervision: every NER label of their windows is IGNORE_INDEX (-100), so
  the NER head learns from the Kazakh sentences only and the stance head from both. Their
  windows follow the Kazakh ones in the training features.
* Class counts (and so the stance class weights) count the extra targets too, as task=stance
  counts what it trains on.
* The sampler draws training windows (what the Trainer batches): a language (lang_weights),
  then a class within it, then a window. A window's class is the rarest class, by the training
  target counts, among the targets it reads (ties: the later label, AGAINST before FAVOR); a
  window with no target (a Kazakh sentence without targets, or a window of a long sentence
  whose targets another window reads) is NONE. For the usual one-window sentence this is the
  sentence's rarest target class.

With `extra_train.dir` null nothing changes: the Kazakh features are returned as they are.
Model selection is the task's evaluation on the Kazakh dev split either way.
"""

from __future__ import annotations

import logging
from typing import Sequence

from ..labels import STANCE_LABELS
from .joint_encoding import encode_joint
from .ner import IGNORE_INDEX

log = logging.getLogger(__name__)

NONE_ID = list(STANCE_LABELS).index("NONE")


def extra_joint_examples(extra) -> dict[str, list]:
    """Columns tokens, targets ([{start, end, type, label}]) and lang of the joint examples made
    from extra stance rows (`stance_mix.load_extra_train`'s dataset): rows with the same
    language and identical tokens are grouped into one example (first-seen order)."""
    groups: dict[tuple, int] = {}
    out: dict[str, list] = {"tokens": [], "targets": [], "lang": []}
    for toks, s, e, typ, lab, lang in zip(extra["tokens"], extra["start"], extra["end"], extra["target_type"],
                                          extra["label"], extra["lang"]):
        key = (str(lang), tuple(toks))
        k = groups.get(key)
        if k is None:
            k = groups[key] = len(out["tokens"])
            out["tokens"].append(list(toks))
            out["targets"].append([])
            out["lang"].append(str(lang))
        out["targets"][k].append({"start": int(s), "end": int(e), "type": str(typ), "label": int(lab)})
    return out


def encode_extra_joint(tokenizer, tokens_list, targets, max_length: int, overlap: int) -> dict[str, list]:
    """`encode_joint` windows of extra examples with their target spans and stance labels,
    and NER labels that are all IGNORE_INDEX (no NER supervision)."""
    enc = encode_joint(tokenizer, tokens_list, max_length, overlap, targets=targets)
    enc["labels"] = [[IGNORE_INDEX] * len(ids) for ids in enc["input_ids"]]
    return enc


def window_class(stance_labels: Sequence[int], counts: Sequence[int]) -> int:
    """The sampler class of one training window: the rarest (by `counts`) of the stance
    classes of the targets it reads, the later label on a tie; NONE when it reads none."""
    labels = {int(x) for x in stance_labels if int(x) != IGNORE_INDEX}
    if not labels:
        return NONE_ID
    return min(labels, key=lambda c: (counts[c], -c))


class JointMix:
    """`task.extra_train` and `task.sampler` of one joint run: loads the extra rows once, adds
    their targets to the class counts, appends their windows to the Kazakh features, builds the
    sampler and describes the training data for the checkpoint."""

    def __init__(self, cfg, tokenizer, max_length: int, overlap: int):
        from .stance_mix import load_extra_train

        t = cfg.task
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.overlap = int(overlap)
        self.target_lang = str(t.target_lang)
        self.sampler_cfg = t.sampler
        self.sampler_kind = str(t.sampler.kind)
        extra = load_extra_train(t.extra_train)
        self.examples = extra_joint_examples(extra) if extra is not None else None
        self.n_extra_rows = len(extra) if extra is not None else 0
        self._index = None  # (langs, window classes, lengths) of the training features

    def counts_with_extra(self, counts: Sequence[int]) -> list[int]:
        """Target counts per stance class of the Kazakh train split plus the extra targets."""
        out = list(counts)
        for ts in (self.examples or {}).get("targets", []):
            for x in ts:
                out[int(x["label"])] += 1
        return out

    def extend(self, features, counts: Sequence[int]):
        """The Kazakh training features, followed by the extra examples' windows (unchanged
        without extra_train); records each window's language and class for the sampler."""
        langs = [self.target_lang] * len(features)
        if self.examples is not None and self.examples["tokens"]:
            from datasets import Dataset, concatenate_datasets

            keep = list(features.column_names)
            ex = self.examples
            enc = encode_extra_joint(self.tokenizer, ex["tokens"], ex["targets"], self.max_length, self.overlap)
            extra = Dataset.from_dict({k: enc[k] for k in keep})
            extra = extra.cast(features.features)
            langs += [ex["lang"][i] for i in enc["example"]]
            log.info("extra_train: %d rows -> %d joint examples -> %d windows (no NER labels)",
                     self.n_extra_rows, len(ex["tokens"]), len(extra))
            features = concatenate_datasets([features, extra])
        if self.sampler_kind != "none":
            classes = [window_class(labs, counts) for labs in features["stance_labels"]]
            self._index = (langs, classes, list(features["length"]))
        return features

    def sampler(self, batch_size: int, seed: int):
        """The BalancedSampler of `task.sampler` over the windows `extend` returned (None:
        kind none, or nothing encoded yet)."""
        from .stance_mix import make_sampler

        if self._index is None or self.sampler_kind == "none":
            return None
        langs, classes, lengths = self._index
        return make_sampler(self.sampler_cfg, langs, classes, lengths, int(seed), batch_size, self.target_lang)

    def info(self) -> dict:
        """What the run trained on besides the Kazakh joint dataset (kns_joint.json)."""
        from .stance_mix import extra_data_info

        info = extra_data_info(self.cfg.task)
        extra = bool(info["extra_train"])
        return {**info,
                "extra_train_rows": self.n_extra_rows if extra else None,
                "extra_train_examples": len(self.examples["tokens"]) if self.examples is not None else None,
                "extra_ner_supervision": False if extra else None}
