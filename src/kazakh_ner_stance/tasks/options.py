"""Typed schemas of the `task` config group (configs/task/{ner,stance,joint}.yaml).

The YAML files hold every option's value (the one place a default lives); these dataclasses
hold only the set of keys and their types. Every field is MISSING here, so a composed task
config has each option exactly when its YAML sets it, a misspelt key (`task.maxlength=3`) or a
wrong type (`task.max_length=abc`) fails at composition, and code reads options plainly
(`cfg.task.bootstrap_n`) without re-stating a fallback.

Each task YAML names its schema first in its defaults list (Hydra's schema pattern):

    defaults:
      - ner_schema
      - _self_

so `register_task_schemas()` must run before Hydra composes; config.py calls it on import,
and every Hydra main (cli.py) and the tests' `compose` import config.py.

Import-light on purpose: dataclasses, typing, omegaconf and Hydra's ConfigStore only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from omegaconf import MISSING


@dataclass
class NerTaskOptions:
    """configs/task/ner.yaml: token classification over sliding windows."""

    name: str = MISSING
    max_length: int = MISSING          # window size in pieces, special tokens included
    window_overlap: int = MISSING      # overlap of consecutive windows, in pieces
    label_all_subwords: bool = MISSING  # every piece carries its word's label (else: first only)
    decoding: str = MISSING             # argmax | viterbi: how word tags are read off the scores
    head: str = MISSING                 # linear | crf: the token classifier alone, or with a trained CRF


@dataclass
class WarmStartOptions:
    """task.warm_start: the optional first stage on KazSAnDRA review polarity (tasks/kazsandra.py)."""

    enabled: bool = MISSING
    data_dir: str = MISSING
    train_files: List[str] = MISSING
    eval_files: List[str] = MISSING
    eval_rows: Optional[int] = MISSING    # null: every held-out row
    n_rows: Optional[int] = MISSING       # null: every training row
    balanced: bool = MISSING
    text_column: str = MISSING
    target_text: str = MISSING
    max_length: int = MISSING
    max_words: int = MISSING
    epochs: int = MISSING
    batch_size: int = MISSING
    learning_rate: float = MISSING
    weight_decay: float = MISSING


@dataclass
class ExtraTrainOptions:
    """task.extra_train: extra stance-schema training items (tasks/stance_mix.py)."""

    dir: Any = MISSING                    # null, one folder, or a list of folders
    split: str = MISSING
    lang: str = MISSING                   # for a dataset without a `lang` column
    exclude_types: List[str] = MISSING
    max_items: Optional[int] = MISSING
    seed: int = MISSING


@dataclass
class SamplerOptions:
    """task.sampler: the balanced language/class sampler (tasks/stance_mix.py)."""

    kind: str = MISSING                   # none | balanced
    # {lang: weight}, null: every language equally. Typed Any, not Optional[Dict[str, float]]:
    # OmegaConf 2.3 cannot merge a command-line map (task.sampler.lang_weights={kk:1,ru:1}) into
    # a typed map node whose value is null (AttributeError in DictConfig._get_node).
    lang_weights: Any = MISSING
    class_power: float = MISSING
    epoch_size: Optional[int] = MISSING   # null: as many draws as target-language items
    # null: every item counts alike; a share: made-up items (counterfactual, silver, name swaps)
    # leave the class prior to the real items and take at most this share of a class's draws.
    augmented_share: Optional[float] = MISSING
    # null: off; a share: NONE items whose sentence holds a FAVOR/AGAINST target (holders,
    # bystanders) get at least this share of their class's draws.
    contrast_share: Optional[float] = MISSING


@dataclass
class NameSwapOptions:
    """task.name_swap: name-swapped copies of the target-language training items (issue 22)."""

    enabled: bool = MISSING
    share: float = MISSING                # the seeded share of training items that get a copy
    seed: int = MISSING


@dataclass
class StanceTaskOptions:
    """configs/task/stance.yaml: (target, marked sentence) -> NONE / FAVOR / AGAINST."""

    name: str = MISSING
    id2label: Dict[int, str] = MISSING
    max_length: int = MISSING
    input_format: str = MISSING           # pair | marked | ...
    markers: List[str] = MISSING
    head: str = MISSING                   # pooler | markers
    head_use_cls: bool = MISSING
    head_hidden: Optional[int] = MISSING  # null: the encoder's hidden size
    head_dropout: float = MISSING
    marker_init_noise: float = MISSING
    class_balance: str = MISSING          # weights | oversample | none
    balance_power: float = MISSING
    max_class_weight: Optional[float] = MISSING
    class_weights: Optional[List[float]] = MISSING
    bootstrap_n: int = MISSING
    warm_start: WarmStartOptions = MISSING
    train_on_target: bool = MISSING
    target_lang: str = MISSING
    extra_train: ExtraTrainOptions = MISSING
    sampler: SamplerOptions = MISSING
    name_swap: NameSwapOptions = MISSING
    init_from: Optional[str] = MISSING


@dataclass
class JointTaskOptions:
    """configs/task/joint.yaml: one encoder, an NER head and a span stance head."""

    name: str = MISSING
    max_length: int = MISSING
    window_overlap: int = MISSING
    label_all_subwords: bool = MISSING
    span_pooling: str = MISSING           # mean | first_last | both
    use_cls: bool = MISSING
    stance_hidden: Optional[int] = MISSING
    stance_dropout: float = MISSING
    stance_loss_weight: float = MISSING
    class_balance: str = MISSING          # weights | none
    balance_power: float = MISSING
    max_class_weight: Optional[float] = MISSING
    class_weights: Optional[List[float]] = MISSING
    stance_types: List[str] = MISSING
    selection_metric: str = MISSING
    bootstrap_n: int = MISSING
    # Extra stance items (RuSentNE) for the stance head only, as in task=stance (tasks/joint_mix.py).
    target_lang: str = MISSING
    extra_train: ExtraTrainOptions = MISSING
    sampler: SamplerOptions = MISSING


# {ConfigStore name in group "task": schema}; configs/task/<task>.yaml lists "<task>_schema".
TASK_SCHEMAS = {
    "ner_schema": NerTaskOptions,
    "stance_schema": StanceTaskOptions,
    "joint_schema": JointTaskOptions,
}


def register_task_schemas() -> None:
    """Store the task schemas in Hydra's ConfigStore (group `task`). Idempotent: storing a
    name again replaces the same node."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, node in TASK_SCHEMAS.items():
        cs.store(group="task", name=name, node=node)
