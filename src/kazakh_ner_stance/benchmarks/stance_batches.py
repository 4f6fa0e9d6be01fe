"""How wide the training batches of stance experiments are, without a model.

One epoch of each experiment's own sampler (the balanced sampler of the mixed recipes,
transformers' length-grouped sampler otherwise) over its encoded training items. Padding is what a step's cost
follows on CPU, so the ratio of mean padded widths bounds what padding explains of a step-time
difference.

    kns-bench stance_batches [EXPERIMENT ...] [--batch-size 32]

Default experiments: kaznerd_stance_e5_small_kazakh (the baseline of the ratio) and
kaznerd_stance_e5_small. Needs the built datasets and the prepared encoder.
"""

from __future__ import annotations

import argparse
import statistics

from ..config import compose


DEFAULT_EXPERIMENTS = ("kaznerd_stance_e5_small_kazakh", "kaznerd_stance_e5_small")


def batch_widths(experiment: str, batch_size: int) -> dict:
    import torch
    from transformers import AutoTokenizer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from ..data.built_dataset import load_built_dataset
    from ..models.prepare import resolve_model_dir
    from ..tasks.stance import StanceTask

    cfg = compose("train", [f"experiment={experiment}"])
    ds = load_built_dataset(cfg.data.dataset_dir)
    task = StanceTask(cfg, ds, AutoTokenizer.from_pretrained(resolve_model_dir(cfg.model)))
    enc = task.encode_train(ds["train"])
    lengths = enc["length"]
    sampler = task.train_sampler(batch_size)
    if sampler is None:
        sampler = LengthGroupedSampler(batch_size, lengths=lengths, generator=torch.Generator().manual_seed(int(cfg.seed)))
    idx = list(iter(sampler))
    batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    return {"items": len(enc), "sampler": type(sampler).__name__, "batches": len(batches),
            "padded": statistics.mean(max(lengths[k] for k in b) for b in batches),
            "real": statistics.mean(statistics.mean(lengths[k] for k in b) for b in batches)}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("experiments", nargs="*", metavar="EXPERIMENT", default=list(DEFAULT_EXPERIMENTS),
                    help="stance experiments, the first the baseline of the ratio "
                         f"(default: {' '.join(DEFAULT_EXPERIMENTS)})")
    ap.add_argument("--batch-size", type=int, default=32)


def run_benchmark(args: argparse.Namespace) -> int:
    rows = [(e, batch_widths(e, args.batch_size)) for e in args.experiments]
    base = rows[0][1]["padded"]
    print("| experiment | training items | sampler | batches per epoch | mean padded width | mean real length | "
          f"padded width vs {rows[0][0]} |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['items']:,} | {r['sampler']} | {r['batches']} | {r['padded']:.1f} | {r['real']:.1f} | "
              f"{r['padded'] / base:.2f}x |")
    return 0
