"""Evaluation: pure metric functions, bootstrap CIs, reports, `evaluate` and `compare` verbs.

Training imports the pure functions only (no plotting, no `evaluate` import):

    from kazakh_ner_stance.evaluation import compute_ner_metrics, compute_stance_metrics
"""

from .ner_metrics import compute_ner_metrics, extract_spans
from .stance_metrics import STANCE_LABELS, compute_stance_metrics

__all__ = ["compute_ner_metrics", "compute_stance_metrics", "extract_spans", "STANCE_LABELS"]
