"""Strict IOB2 entity-level NER metrics via seqeval, as an offline `evaluate` module.

Output (flat, like the Hub's ``seqeval`` module): for each entity type ``TYPE`` a dict
``{"precision", "recall", "f1", "number"}``; ``overall_precision``, ``overall_recall``,
``overall_f1`` (micro), ``macro_precision``, ``macro_recall``, ``macro_f1`` (0 when there is no entity at all),
``overall_accuracy`` (token accuracy) and ``number`` (gold entities).
"""

import math
import warnings

import datasets
import evaluate
from seqeval.metrics import accuracy_score, classification_report
from seqeval.scheme import IOB2

_DESCRIPTION = "Strict IOB2 entity-level precision/recall/F1 (seqeval mode='strict', scheme=IOB2)."
_CITATION = "Nakayama, seqeval: A Python framework for sequence labeling evaluation, 2018."
_KWARGS = "predictions: list of tag lists; references: list of tag lists (same shapes)."


class KnsSeqeval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references):
        with warnings.catch_warnings():
            # seqeval's macro average over zero types warns (mean of an empty slice)
            warnings.simplefilter("ignore", RuntimeWarning)
            report = classification_report(
                references, predictions, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
            )
        out = {}
        for name, row in report.items():
            if name in ("micro avg", "macro avg", "weighted avg"):
                continue
            out[name] = {
                "precision": float(row["precision"]),
                "recall": float(row["recall"]),
                "f1": float(row["f1-score"]),
                "number": int(row["support"]),
            }
        micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
        macro = report.get("macro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
        out["overall_precision"] = float(micro["precision"])
        out["overall_recall"] = float(micro["recall"])
        out["overall_f1"] = float(micro["f1-score"])
        out["number"] = int(micro["support"])
        # seqeval's macro average over no entity type at all is NaN; report 0 like every
        # other zero division here.
        for key, name in (("precision", "macro_precision"), ("recall", "macro_recall"), ("f1-score", "macro_f1")):
            value = float(macro[key])
            out[name] = 0.0 if math.isnan(value) else value
        out["overall_accuracy"] = (
            float(accuracy_score(references, predictions)) if any(len(r) for r in references) else 0.0
        )
        return out
