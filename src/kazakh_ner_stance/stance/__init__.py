"""Stance toward named-entity targets: dataset join/build, candidates, weak labels, annotation.

Label definition: /work/shared/docs/stance-labels.md (copied into every dataset card).
"""

from __future__ import annotations

# The exact order matters: ClassLabel ids 0, 1, 2 are NONE, FAVOR, AGAINST everywhere.
STANCE_LABELS: list[str] = ["NONE", "FAVOR", "AGAINST"]
# Entity types a stance target may have (stance-labels.md).
TARGET_TYPES: list[str] = [
    "PERSON",
    "ORGANISATION",
    "GPE",
    "NORP",
    "EVENT",
    "PROJECT",
    "LAW",
    "FACILITY",
    "LOCATION",
    "PRODUCT",
]
ABSTAIN = None  # what a labelling function returns when it has no opinion

__all__ = ["STANCE_LABELS", "TARGET_TYPES", "ABSTAIN"]
