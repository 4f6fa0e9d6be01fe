"""Cross-lingual stance training data: extra stance datasets (RuSentNE) and a sampler that
balances languages and classes.

Recipes (configs/recipe/*.yaml, docs/recipes.md):

* zero-shot: ``task.train_on_target=false`` and ``task.extra_train.dir`` = the built RuSentNE
  dataset: trained on Russian only, model selection on the Kazakh dev split;
* sequential: ``task.init_from`` = the zero-shot model, then the Kazakh train split;
* mixed: both train splits at once, drawn by `BalancedSampler`.

The extra rows need the stance schema (tokens, start, end, label as NONE/FAVOR/AGAINST ids);
they get a ``lang`` column (the dataset's own, else ``extra_train.lang``), and the target
rows get ``task.target_lang``.

The functions here take the composed options (`task`, `task.extra_train`, `task.sampler`: every
key of StanceTaskOptions / ExtraTrainOptions / SamplerOptions in tasks/options.py is set), so
they read them plainly; the values live in configs/task/stance.yaml.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import KnsError
from ..labels import STANCE_LABELS

log = logging.getLogger(__name__)

TRAIN_COLUMNS = ("id", "tokens", "start", "end", "label", "target_type")


def _with_lang(split, lang: str):
    """The training columns, a `lang` column and two flags the balanced sampler can use:
    `augmented`, true for items whose `origin` is not gold (counterfactual edits, silver
    translations: `task.sampler.augmented_share`), and `contrast`, true for a NONE item whose
    sentence also holds a FAVOR or AGAINST target (`task.sampler.contrast_share`). A dataset
    without `origin` is gold throughout; one without `sent_id` has no contrast items."""
    cols = split.column_names
    augmented = [o != "gold" for o in split["origin"]] if "origin" in cols else [False] * len(split)
    contrast = contrast_flags(split["sent_id"], split["label"]) if "sent_id" in cols else [False] * len(split)
    keep = [c for c in cols if c in TRAIN_COLUMNS or c == "lang"]
    split = split.select_columns(keep)
    if "lang" not in split.column_names:
        split = split.add_column("lang", [lang] * len(split))
    split = split.add_column("augmented", augmented).add_column("contrast", contrast)
    return split.select_columns([*TRAIN_COLUMNS, "lang", "augmented", "contrast"])


def contrast_flags(sent_ids: Sequence[str], labels: Sequence[int]) -> list[bool]:
    """True for a NONE item whose sentence has a FAVOR or AGAINST target too: its sentence
    carries an attitude, but toward someone else, so the item teaches that the label belongs to
    the target and not to the sentence (a holder such as «Тоқаев» in «Тоқаев Бейбітшілік
    кеңесін қолдады», or a bystander)."""
    none = STANCE_LABELS.index("NONE")
    with_stance = {sid for sid, lab in zip(sent_ids, labels) if int(lab) != none}
    return [int(lab) == none and sid in with_stance for sid, lab in zip(sent_ids, labels)]


def extra_train_dirs(extra_cfg) -> list[str]:
    """`task.extra_train.dir` as a list: null, one folder, or a list of folders (e.g. RuSentNE
    and the silver Kazakh translations of it). Also reads the `extra_train` of a stored training
    record (cards/model_card.py), which an older run may lack or hold partly: hence `.get`."""
    folder = extra_cfg.get("dir") if extra_cfg is not None else None
    if not folder:
        return []
    if isinstance(folder, (str, Path)):
        return [str(folder)]
    return [str(f) for f in folder if f]


def extra_data_info(task_cfg) -> dict:
    """What a run's `task.extra_train` and `task.sampler` add to its training data, for the
    checkpoint's record (task=stance and task=joint): the extra folders and split, and the
    sampler's options (None when it is Trainer's own)."""
    from omegaconf import DictConfig, OmegaConf

    dirs = extra_train_dirs(task_cfg.extra_train)
    sampler = task_cfg.sampler
    if isinstance(sampler, DictConfig):  # its nested options (lang_weights) must become plain JSON
        sampler = OmegaConf.to_container(sampler, resolve=True)
    return {"extra_train": (dirs[0] if len(dirs) == 1 else dirs) if dirs else None,
            "extra_train_split": str(task_cfg.extra_train.split) if dirs else None,
            "sampler": dict(sampler) if str(task_cfg.sampler.kind) != "none" else None}


def load_extra_train(extra_cfg):
    """The extra training items named by `task.extra_train` (None when `dir` is unset): every
    listed folder's split, concatenated, each row keeping its own `lang`."""
    from datasets import concatenate_datasets

    parts = [_load_one_extra(folder, extra_cfg) for folder in extra_train_dirs(extra_cfg)]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else concatenate_datasets([p.cast(parts[0].features) for p in parts])


def _load_one_extra(folder, extra_cfg):
    import datasets

    folder = Path(str(folder))
    if not (folder / "dataset_dict.json").is_file():
        raise KnsError(
            f"task.extra_train.dir={folder} holds no built dataset; build it first "
            "(python scripts/build_dataset.py data=rusentne)"
        )
    # Any split layout: RuSentNE has train/validation/test, the silver layer train only; the
    # columns this loader needs are checked below.
    dsd = datasets.load_from_disk(str(folder))
    if not isinstance(dsd, datasets.DatasetDict):
        raise KnsError(f"task.extra_train.dir={folder} is not a built dataset with splits; rebuild it")
    name = str(extra_cfg.split)
    if name not in dsd:
        raise KnsError(f"{folder} has no {name!r} split (it has {sorted(dsd)})")
    split = dsd[name]
    missing = [c for c in TRAIN_COLUMNS if c not in split.column_names]
    if missing:
        raise KnsError(f"{folder}/{name} lacks the stance column(s) {missing}")
    names = list(getattr(split.features["label"], "names", []))
    if names != ["NONE", "FAVOR", "AGAINST"]:
        raise KnsError(f"{folder}/{name}: stance labels {names}; expected ['NONE', 'FAVOR', 'AGAINST']")
    exclude = [str(t) for t in extra_cfg.exclude_types]
    if exclude:
        before = len(split)
        split = split.filter(lambda t: t not in exclude, input_columns="target_type")
        log.info("extra_train: %d of %d items left out (types %s)", before - len(split), before, exclude)
    limit = extra_cfg.max_items
    if limit is not None and int(limit) < len(split):
        split = split.shuffle(seed=int(extra_cfg.seed)).select(range(int(limit)))
    return _with_lang(split, str(extra_cfg.lang))


def with_name_swaps(split, swap_cfg):
    """`split` plus name-swapped copies of a seeded share of its items (label kept; the names
    drawn from the split's own targets of the same type: evaluation/name_swap.py)."""
    from datasets import Dataset, concatenate_datasets

    from ..evaluation.name_swap import NamePool, swapped_copies

    rows = split.to_list()
    copies = swapped_copies(rows, NamePool(rows), int(swap_cfg.seed), float(swap_cfg.share))
    for c in copies:
        c.pop("target", None)
        c["augmented"] = True  # a made-up sentence, whatever its original's origin
    log.info("name swaps: %d swapped copies added to %d training items", len(copies), len(rows))
    if not copies:
        return split
    return concatenate_datasets([split, Dataset.from_list(copies, features=split.features)])


def training_split(target_split, task_cfg):
    """The items a stance run trains on: the target (Kazakh) train split unless
    `train_on_target` is false, plus `extra_train`, as one dataset with a `lang` column."""
    from datasets import concatenate_datasets

    parts = []
    if bool(task_cfg.train_on_target):
        target = _with_lang(target_split, str(task_cfg.target_lang))
        if bool(task_cfg.name_swap.enabled):
            target = with_name_swaps(target, task_cfg.name_swap)
        parts.append(target)
    extra = load_extra_train(task_cfg.extra_train)
    if extra is not None:
        # Same ClassLabel feature as the target rows, so the two concatenate.
        parts.append(extra.cast(parts[0].features) if parts else extra)
    if not parts:
        raise KnsError("task.train_on_target=false needs task.extra_train.dir (nothing to train on)")
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def balanced_item_weights(langs: Sequence[str], labels: Sequence[int], lang_weights: dict | None,
                          class_power: float, augmented: Sequence[bool] | None = None,
                          augmented_share: float | None = None, contrast: Sequence[bool] | None = None,
                          contrast_share: float | None = None) -> list[float]:
    """Draw probability of every item: a language is drawn with probability `lang_weights`
    (equal when None), then a class c within it with probability proportional to
    n_c * (n_max / n_c) ** class_power (0: as the data has them, 1: all classes equally),
    then an item of that language and class uniformly.

    With `augmented_share` (and `augmented`, one flag per item), made-up items cannot move the
    class prior: n_c counts only the real items of a cell (all of them where it has no real
    item), and the augmented items of a cell get their uniform share of its draws, at most
    `augmented_share`. Without it every item counts alike: 983 counterfactual AGAINST edits
    beside 215 gold AGAINST items would nearly double AGAINST's draws and leave 4 in 5 of them
    to edits (issue 22: the counterfactual recipe then predicted AGAINST 107 times for 31).

    With `contrast_share` (and `contrast`, one flag per item), the flagged items of a cell get
    at least that share of its draws (more if they already had it), the cell's other items the
    rest; the cell's and class's shares stay as they were."""
    _check_share("augmented_share", augmented_share, augmented, len(labels))
    _check_share("contrast_share", contrast_share, contrast, len(labels))
    real_flags = None if augmented_share is None else [not a for a in augmented]
    weights = _class_balanced_weights(langs, labels, lang_weights, class_power, real_flags)
    if augmented_share is not None:
        weights = _reshare_cells(weights, langs, labels, augmented, lambda natural: min(float(augmented_share), natural))
    if contrast_share is not None:
        weights = _reshare_cells(weights, langs, labels, contrast, lambda natural: max(float(contrast_share), natural))
    return weights


def _check_share(key: str, share, flags, n: int) -> None:
    if share is None:
        return
    if flags is None or len(flags) != n:
        raise KnsError(f"internal: sampler.{key} needs one flag per item")
    if not 0.0 <= float(share) <= 1.0:
        raise KnsError(f"task.sampler.{key} must lie in [0, 1], got {share}")


def _class_balanced_weights(langs, labels, lang_weights, class_power, real_flags) -> list[float]:
    """Uniform weights within each (language, class) cell, the cell's mass from its size: the
    number of its items, or of its real ones (`real_flags`) where it has any."""
    groups = Counter(zip(langs, labels))
    real = groups if real_flags is None else Counter(k for k, r in zip(zip(langs, labels), real_flags) if r)
    per_lang = Counter(langs)
    shares = {lang: float((lang_weights or {}).get(lang, 1.0)) for lang in per_lang}
    total = sum(shares.values())
    if total <= 0:
        raise KnsError(f"sampler.lang_weights must give some language a positive weight, got {shares}")
    class_mass: dict[tuple[str, int], float] = {}
    for lang in per_lang:
        counts = {c: (real[(lg, c)] or n) for (lg, c), n in groups.items() if lg == lang}
        n_max = max(counts.values())
        mass = {c: n * (n_max / n) ** float(class_power) for c, n in counts.items()}
        z = sum(mass.values())
        for c, m in mass.items():
            class_mass[(lang, c)] = shares[lang] / total * m / z
    return [class_mass[(lg, c)] / groups[(lg, c)] for lg, c in zip(langs, labels)]


def _reshare_cells(weights, langs, labels, flags, new_share) -> list[float]:
    """Within each (language, class) cell holding flagged and unflagged items, give the flagged
    ones `new_share(natural)` of the cell's mass (natural: the share they hold now), scaling each
    side uniformly; a cell's mass does not change."""
    cell_mass, flagged_mass = Counter(), Counter()
    for key, flag, w in zip(zip(langs, labels), flags, weights):
        cell_mass[key] += w
        if flag:
            flagged_mass[key] += w
    out = []
    for key, flag, w in zip(zip(langs, labels), flags, weights):
        total, flagged = cell_mass[key], flagged_mass[key]
        if flagged == 0 or flagged >= total:
            out.append(w)
            continue
        share = new_share(flagged / total)
        out.append(w * (share * total / flagged if flag else (1 - share) * total / (total - flagged)))
    return out


class BalancedSampler:
    """`num_samples` indices per epoch drawn with replacement by `weights` (seeded, a new draw
    each epoch), then grouped by length like transformers' LengthGroupedSampler: mega-batches of
    50 x batch size, each sorted longest first, so padding stays as low as with the default
    sampler."""

    def __init__(self, weights: Sequence[float], num_samples: int, seed: int, lengths: Sequence[int] | None = None,
                 batch_size: int = 32):
        if num_samples <= 0:
            raise KnsError(f"sampler.epoch_size must be positive, got {num_samples}")
        self.weights = [float(w) for w in weights]
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.lengths = list(lengths) if lengths is not None else None
        self.batch_size = int(batch_size)
        self.epoch = 0

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        import torch

        gen = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch)
        self.epoch += 1  # the next pass draws anew even when nobody calls set_epoch
        w = torch.tensor(self.weights, dtype=torch.float64)
        idx = torch.multinomial(w, self.num_samples, replacement=True, generator=gen).tolist()
        if self.lengths is None:
            return iter(idx)
        mega = max(1, 50 * self.batch_size)
        out: list[int] = []
        for b in range(0, len(idx), mega):
            out.extend(sorted(idx[b : b + mega], key=lambda i: -self.lengths[i]))
        return iter(out)


def make_sampler(sampler_cfg, langs: Sequence[str], labels: Sequence[int], lengths: Sequence[int], seed: int,
                 batch_size: int, target_lang: str, augmented: Sequence[bool] | None = None,
                 contrast: Sequence[bool] | None = None):
    """The BalancedSampler of `task.sampler` (None for kind none). epoch_size: draws per epoch;
    null = the number of target-language items (an epoch costs what a target-only epoch costs).
    `augmented` flags made-up items for `sampler.augmented_share` (none: every item is real),
    `contrast` the NONE items of sentences with a stance for `sampler.contrast_share`."""
    kind = str(sampler_cfg.kind)
    if kind == "none":
        return None
    if kind != "balanced":
        raise KnsError(f"task.sampler.kind must be none or balanced, not {kind!r}")
    lang_weights = sampler_cfg.lang_weights
    share = sampler_cfg.get("augmented_share")
    c_share = sampler_cfg.get("contrast_share")
    weights = balanced_item_weights(langs, labels, dict(lang_weights) if lang_weights else None,
                                    float(sampler_cfg.class_power),
                                    augmented if augmented is not None else [False] * len(labels),
                                    None if share is None else float(share),
                                    contrast if contrast is not None else [False] * len(labels),
                                    None if c_share is None else float(c_share))
    size = sampler_cfg.epoch_size
    if size is None:
        size = sum(1 for lang in langs if lang == target_lang) or len(langs)
    n = int(size)
    expected = Counter()
    for lang, lab, w in zip(langs, labels, weights):
        expected[(lang, lab)] += w
    log.info("balanced sampler: %d draws per epoch; expected share per (lang, class): %s", n,
             {f"{k[0]}/{k[1]}": round(v, 3) for k, v in sorted(expected.items())})
    if augmented is not None and any(augmented):
        made_up = Counter()
        for lab, w, a in zip(labels, weights, augmented):
            if a:
                made_up[lab] += w
        log.info("balanced sampler: expected share of augmented items per class (of all draws): %s",
                 {int(k): round(v, 3) for k, v in sorted(made_up.items())})
    if contrast is not None and any(contrast):
        log.info("balanced sampler: expected share of NONE items beside a stance target (of all draws): %.3f",
                 sum(w for w, flag in zip(weights, contrast) if flag))
    if not math.isclose(sum(weights), 1.0, rel_tol=1e-6):
        raise KnsError("internal: sampler weights do not sum to 1")
    return BalancedSampler(weights, n, seed, lengths, batch_size)
