"""Two NER models on the same split, with a paired bootstrap CI of their F1 difference.

    kns-bench ner_pair --base BASE_RUN/model --other OTHER_RUN/model [--other ...]
                       [--dataset-dir artifacts/datasets/kaznerd] [--splits test] [--json OUT.json]

Every model tags every gold word of the split with the windows and decoding its own run was
scored with (as evaluate.py does), and is scored with the evaluation's strict IOB2 entity counts.
The table gives each model's micro P/R/F1, the difference other - base with its 95% CI from one set
of sentence resamples drawn once for both (like with like), and the prediction time. One trained
model of each: the CI covers the choice of test sentences, not the seed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..config import project_root
from .provenance import provenance


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--base", type=Path, required=True, help="the baseline NER model folder")
    ap.add_argument("--other", type=Path, nargs="+", required=True, help="NER model folder(s) compared with it")
    ap.add_argument("--dataset-dir", type=Path, help="a built NER dataset (default: artifacts/datasets/kaznerd)")
    ap.add_argument("--splits", nargs="+", default=["test"])
    ap.add_argument("--bootstrap", type=int, default=1000, help="paired resamples of sentences")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")


def run_benchmark(args: argparse.Namespace) -> int:
    from ..data.built_dataset import load_built_dataset
    from ..errors import KnsError
    from ..evaluation.ner_metrics import entity_counts, extract_spans, micro_prf
    from ..tasks.ner import load_ner_checkpoint, predict_word_tags
    from ..training.checkpoints import trained_inference
    from .decoding import paired_difference_ci

    root = project_root()
    data_dir = args.dataset_dir or root / "artifacts" / "datasets" / "kaznerd"
    dataset = load_built_dataset(data_dir)
    names = dataset["train"].features["ner_tags"].feature.names
    models = [("base", args.base)] + [(f"other{k + 1}" if len(args.other) > 1 else "other", p)
                                      for k, p in enumerate(args.other)]
    for _, path in models:
        if not Path(path).is_dir():
            raise KnsError(f"no NER model at {path}")
    results = {"benchmark": "ner_pair", "dataset": str(data_dir), "models": {r: str(p) for r, p in models},
               "splits": {}, "provenance": provenance(root)}
    for split in args.splits:
        if split not in dataset:
            raise KnsError(f"{data_dir} has no split {split!r} (it has {sorted(dataset)})")
        tokens = dataset[split]["tokens"]
        gold_spans = [extract_spans([names[t] for t in tags]) for tags in dataset[split]["ner_tags"]]
        counts, rows = {}, {}
        for role, path in models:
            model, tokenizer, id2label = load_ner_checkpoint(path, cpu_linear="auto")
            how = trained_inference(path)
            started = time.perf_counter()
            tags = predict_word_tags(model, tokenizer, tokens, args.batch_size, how["max_length"],
                                     how["overlap"] if how["overlap"] is not None else 32, id2label,
                                     decoding=how["decoding"])
            seconds = time.perf_counter() - started
            counts[role] = entity_counts(gold_spans, tags)
            p, r, f1 = micro_prf(counts[role])
            rows[role] = {"model": str(path), "precision": p, "recall": r, "f1": f1, "decoding": how["decoding"],
                          "predict_s": round(seconds, 2), "sentences_per_s": round(len(tokens) / seconds, 1)}
            del model
        for role, row in rows.items():
            if role != "base":
                lo, hi = paired_difference_ci(counts["base"], counts[role], args.bootstrap, args.seed)
                row["f1_diff"], row["f1_diff_ci"] = row["f1"] - rows["base"]["f1"], [lo, hi]
        results["splits"][split] = {"sentences": len(tokens), **rows}
        print(f"\n{split}: {len(tokens)} sentences, {data_dir}")
        print("| model | P | R | F1 | F1 - base [95% CI, paired] | sentences/s |\n|---|---:|---:|---:|---|---:|")
        for role, row in rows.items():
            diff = "" if role == "base" else (f"{row['f1_diff']:+.4f} [{row['f1_diff_ci'][0]:+.4f}, "
                                              f"{row['f1_diff_ci'][1]:+.4f}]")
            print(f"| {role}: {row['model']} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | "
                  f"{diff} | {row['sentences_per_s']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
