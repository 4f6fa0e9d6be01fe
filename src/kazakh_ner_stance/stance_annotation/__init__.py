"""Making the stance layer: target candidates, weak labels, annotation (Label Studio, agreement)
and the silver translations. Reading the layer, joining it to KazNERD and building the stance
datasets live beside the NER builder in `kazakh_ner_stance.data` (stance_layer, stance_join,
stance_dataset); the model code of the stance task is `tasks/stance.py`.

Label definition: /work/shared/docs/stance-labels.md (copied into every dataset card).
"""

from __future__ import annotations

# The label order (ClassLabel ids 0, 1, 2 = NONE, FAVOR, AGAINST) and the entity types a
# stance target may have: one definition for the package, in kazakh_ner_stance.labels.
from ..labels import STANCE_LABELS, TARGET_TYPES

ABSTAIN = None  # what a labelling function returns when it has no opinion

__all__ = ["STANCE_LABELS", "TARGET_TYPES", "ABSTAIN"]
