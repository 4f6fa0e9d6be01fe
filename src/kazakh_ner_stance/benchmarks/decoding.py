"""NER decoding on one checkpoint: constrained Viterbi against argmax with orphan repair (the baseline).

Both decodings read the same per-word logits (one forward pass per split), so the difference is the
decoding alone. Prints, per split, strict IOB2 micro P/R/F1 of each and the F1 difference with a
paired bootstrap 95% CI over sentences (resampling the same sentences for both). For a checkpoint
with a CRF head (task.head=crf), `viterbi` adds its learned transition scores and one more row,
`iob2-only`, decodes the same logits with IOB2's rules alone: what the learned scores add.

    kns-bench decoding [--checkpoint artifacts/runs/kaznerd_ner_e5_small/model]
                       [--dataset-dir artifacts/datasets/kaznerd] [--splits validation test] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..config import project_root
from .provenance import provenance

BASELINE = "argmax"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--checkpoint", type=Path, help="a NER model folder (default: the main job's NER model)")
    ap.add_argument("--dataset-dir", type=Path, help="a built NER dataset (default: artifacts/datasets/kaznerd)")
    ap.add_argument("--splits", nargs="+", default=["validation", "test"])
    ap.add_argument("--bootstrap", type=int, default=1000, help="paired resamples of sentences")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")


def paired_difference_ci(base, other, n: int, seed: int = 0) -> tuple[float, float]:
    """95% CI of F1(other) - F1(base) over resampled sentences: the same seed gives both the same
    draws (evaluation.bootstrap.resampled_sums), so each resample compares like with like."""
    from ..evaluation.bootstrap import percentile_ci, prf, resampled_sums

    f1_base = prf(*resampled_sums(base, n, seed).T)[2]
    f1_other = prf(*resampled_sums(other, n, seed).T)[2]
    lo, hi = percentile_ci(f1_other - f1_base, 0.95)
    return float(lo), float(hi)


def run_benchmark(args: argparse.Namespace) -> int:
    from ..data.built_dataset import load_built_dataset
    from ..errors import KnsError
    from ..evaluation.ner_metrics import entity_counts, extract_spans, micro_prf
    from ..tasks.crf import crf_potentials
    from ..tasks.ner import DECODINGS, decode_word_logits, load_ner_checkpoint, predict_word_logits
    from ..training.checkpoints import trained_inference

    root = project_root()
    ckpt = args.checkpoint or root / "artifacts" / "runs" / "kaznerd_ner_e5_small" / "model"
    data_dir = args.dataset_dir or root / "artifacts" / "datasets" / "kaznerd"
    if not Path(ckpt).is_dir():
        raise KnsError(f"no NER model at {ckpt}: run `make run` first or pass --checkpoint DIR")
    model, tokenizer, id2label = load_ner_checkpoint(ckpt)
    trained = trained_inference(ckpt)
    dataset = load_built_dataset(data_dir)
    names = dataset["train"].features["ner_tags"].feature.names
    crf = crf_potentials(model, [id2label[i] for i in range(len(id2label))])
    # (row name, decoding, learned CRF scores or None)
    ways = [(BASELINE, BASELINE, None), *[(d, d, crf) for d in DECODINGS if d != BASELINE]]
    if crf is not None:
        ways.append(("iob2-only", "viterbi", None))
    results = {"benchmark": "decoding", "checkpoint": str(ckpt), "dataset": str(data_dir), "baseline": BASELINE,
               "splits": {}, "provenance": provenance(root)}
    results["crf_head"] = crf is not None
    print(f"checkpoint {ckpt}; windows {trained['max_length']}/{trained['overlap']}; baseline: {BASELINE}"
          + ("; CRF head: viterbi adds its learned scores" if crf is not None else ""))
    print(f"{'split':<11} {'decoding':<9} {'P':>6} {'R':>6} {'F1':>6}  {'F1 - baseline [95% CI]':<28} {'decode s':>8}")
    for split in args.splits:
        if split not in dataset:
            raise KnsError(f"{data_dir} has no split {split!r} (it has {sorted(dataset)})")
        tokens = dataset[split]["tokens"]
        gold_spans = [extract_spans([names[t] for t in tags]) for tags in dataset[split]["ner_tags"]]
        logits = predict_word_logits(model, tokenizer, tokens, args.batch_size, trained["max_length"],
                                     trained["overlap"] if trained["overlap"] is not None else 32)
        counts, rows = {}, {}
        for decoding, how, learned in ways:
            started = time.perf_counter()
            tags, _ = decode_word_logits(logits, id2label, how, learned)
            seconds = time.perf_counter() - started
            counts[decoding] = entity_counts(gold_spans, tags)
            p, r, f1 = micro_prf(counts[decoding])
            rows[decoding] = {"precision": p, "recall": r, "f1": f1, "decode_s": round(seconds, 3)}
        for decoding, row in rows.items():
            note = ""
            if decoding != BASELINE:
                lo, hi = paired_difference_ci(counts[BASELINE], counts[decoding], args.bootstrap)
                row["f1_diff"] = row["f1"] - rows[BASELINE]["f1"]
                row["f1_diff_ci"] = [lo, hi]
                note = f"{row['f1_diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]"
            print(f"{split:<11} {decoding:<9} {row['precision']:6.4f} {row['recall']:6.4f} {row['f1']:6.4f}  "
                  f"{note:<28} {row['decode_s']:8.2f}")
        results["splits"][split] = {"sentences": len(tokens), **rows}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
