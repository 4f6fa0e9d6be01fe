"""NONE/FAVOR/AGAINST stance metrics via scikit-learn, as an offline `evaluate` module.

Output: ``macro_f1`` (over the three classes), ``f_avg`` (mean F1 of FAVOR and AGAINST,
SemEval-2016), ``accuracy`` and, per class ``LABEL``, ``{"precision", "recall", "f1",
"number"}``. Zero division gives 0.
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from kazakh_ner_stance.labels import STANCE_LABELS

LABELS = list(STANCE_LABELS)  # the project's ClassLabel order


class KnsStance(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Stance macro-F1, F_avg (SemEval-2016) and per-class P/R/F1.",
            citation="Mohammad et al., SemEval-2016 Task 6: Detecting Stance in Tweets, 2016.",
            inputs_description="predictions: list of labels; references: list of labels.",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        p, r, f, s = precision_recall_fscore_support(
            references, predictions, labels=LABELS, average=None, zero_division=0
        )
        out = {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "number": int(s[i])}
            for i, lab in enumerate(LABELS)
        }
        out["macro_f1"] = float(f.mean())
        out["f_avg"] = float((f[LABELS.index("FAVOR")] + f[LABELS.index("AGAINST")]) / 2)
        out["accuracy"] = float(accuracy_score(references, predictions)) if references else 0.0
        return out
