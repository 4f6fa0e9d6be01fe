"""Two stance models on the same items, with a paired bootstrap CI of their difference.

    kns-bench stance_pair --base BASE_RUN/model --other OTHER_RUN/model [--dataset DIR] [--split test]

Both checkpoints predict every real item of the split (counterfactual items are never scored),
each with the windows it was trained with. The table gives, overall and for each source (KazNERD,
NTREX, FLORES, Akorda, KazSAnDRA reviews), each model's macro-F1 and the difference other - base
with its 95% CI from a paired item-level bootstrap: one set of resamples, drawn once
(``evaluation.bootstrap``), scores both models, so each resample compares like with like. One
seed of each model, so the CI covers the choice of test items, not the seed. The README example's
two targets close the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..labels import STANCE_LABELS


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--base", required=True, help="the baseline stance model folder")
    ap.add_argument("--other", required=True, help="the stance model compared with it")
    ap.add_argument("--dataset", default=None, help="a built v2 stance dataset; default: the kazakh_stance one")
    ap.add_argument("--split", default="test")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=None, help="JSON record; default: artifacts/benchmarks/stance_pair.json")


def class_counts(gold: Sequence[str], pred: Sequence[str]) -> np.ndarray:
    """(n_items, 3 x classes): per item and class, [true positive, predicted, gold]."""
    out = np.zeros((len(gold), 3 * len(STANCE_LABELS)))
    for i, (g, p) in enumerate(zip(gold, pred)):
        for k, lab in enumerate(STANCE_LABELS):
            out[i, 3 * k] = float(g == lab and p == lab)
            out[i, 3 * k + 1] = float(p == lab)
            out[i, 3 * k + 2] = float(g == lab)
    return out


def macro_f1(sums: np.ndarray) -> np.ndarray:
    """Macro-F1 from summed class counts, one value per row (a class absent from both gold and
    prediction scores 0, as the evaluation does)."""
    from ..evaluation.bootstrap import prf

    sums = np.atleast_2d(sums)
    f1 = [np.nan_to_num(prf(sums[:, 3 * k], sums[:, 3 * k + 1], sums[:, 3 * k + 2])[2])
          for k in range(len(STANCE_LABELS))]
    return np.mean(f1, axis=0)


def paired(gold, base, other, n: int, seed: int) -> dict:
    from ..evaluation.bootstrap import percentile_ci, resampled_sums

    cb, co = class_counts(gold, base), class_counts(gold, other)
    both = resampled_sums(np.concatenate([cb, co], axis=1), n, seed)
    width = cb.shape[1]
    diff = macro_f1(both[:, width:]) - macro_f1(both[:, :width])
    lo, hi = percentile_ci(diff, 0.95)
    fb, fo = float(macro_f1(cb.sum(0))[0]), float(macro_f1(co.sum(0))[0])
    return {"items": len(gold), "base": fb, "other": fo, "difference": fo - fb, "ci": [float(lo), float(hi)]}


def run_benchmark(args: argparse.Namespace) -> int:
    from ..config import compose
    from ..data.built_dataset import load_built_dataset
    from ..evaluation.stance_diagnostics import checkpoint_predictor, readme_example, real_items

    cfg = compose("build_dataset", ["data=kazakh_stance"])
    folder = args.dataset or str(cfg.data.dataset_dir)
    items = real_items(load_built_dataset(folder), args.split, folder)
    gold = [x["label"] for x in items]
    preds, examples = {}, {}
    for role in ("base", "other"):
        predict = checkpoint_predictor(getattr(args, role), args.batch_size)
        preds[role] = predict(items)[0]
        examples[role] = {k: v["label"] for k, v in readme_example(predict).items()}
    sources = [x.get("source", "kaznerd") for x in items]
    rows = {"all": paired(gold, preds["base"], preds["other"], args.bootstrap, args.seed)}
    for src in sorted(set(sources)):
        idx = [i for i, s in enumerate(sources) if s == src]
        rows[src] = paired([gold[i] for i in idx], [preds["base"][i] for i in idx], [preds["other"][i] for i in idx],
                           args.bootstrap, args.seed)
    lines = ["| items | n | base macro-F1 | other macro-F1 | other - base [95% CI, paired] |", "|---|---:|---:|---:|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['items']} | {r['base']:.3f} | {r['other']:.3f} | {r['difference']:+.3f} "
                     f"[{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}] |")
    for role in ("base", "other"):
        lines.append(f"\nREADME example, {role}: " + ", ".join(f"«{k}» {v}" for k, v in examples[role].items()))
    text = "\n".join(lines)
    print(f"base {args.base}\nother {args.other}\n{folder}, split {args.split}\n\n{text}")
    out = Path(args.out or Path(str(cfg.paths.artifacts_dir)) / "benchmarks" / "stance_pair.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"base": str(args.base), "other": str(args.other), "dataset": folder,
                               "split": args.split, "rows": rows, "readme_example": examples}, indent=1,
                              ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
