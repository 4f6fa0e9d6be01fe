"""Training speed and time-to-quality: run_ner.py-style baseline vs the project's CPU preset.

Both train the same encoder on the same built dataset in separate processes, evaluating dev
entity F1 (strict IOB2, every gold word) every `--eval-every` training sentences. The table
gives throughput, peak memory, final dev F1, and the training time (net of evaluation) each
needs to reach the baseline's final dev F1.

    python scripts/benchmark_train.py                       # 3,000 train sentences, 2 (baseline) / 6 epochs
    python scripts/benchmark_train.py --max-train-samples 0 --epochs 3   # the full train split

baseline (a): Trainer defaults as run_ner.py uses them: lr 5e-5, batch 8, no warm-up, no
weight decay, random order with dynamic padding, every parameter trained, PyTorch's default
GEMM kernels.
project  (b): trainer=cpu (lr 1.5e-4, batch 32, 6% warm-up, length-grouped batches, frozen
word-embedding matrix, oneDNN linear layers). Checkpoint saving is off in both, so it does not count as training.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BASELINE = [
    "trainer.args.learning_rate=5e-5", "trainer.args.per_device_train_batch_size=8",
    "trainer.args.warmup_steps=0", "trainer.args.weight_decay=0.0",
    "trainer.args.train_sampling_strategy=random", "trainer.freeze_word_embeddings=false",
    "trainer.cpu_linear=torch",  # PyTorch's default (MKL) GEMMs, as run_ner.py gets them
]
PROJECT: list[str] = []  # the cpu preset as it is


def run(name: str, overrides: list[str], args, out: Path) -> dict:
    batch = 8 if name == "baseline" else 32
    run_dir = out / name
    cmd = [
        sys.executable, str(ROOT / "scripts" / "train.py"), f"model={args.model}", "trainer=cpu",
        f"run_dir={run_dir}", "overwrite=true", "evaluate_test=false", f"seed={args.seed}",
        f"trainer.args.num_train_epochs={args.epochs if name == 'baseline' else args.project_epochs}",
        "trainer.args.save_strategy=no",
        "trainer.args.eval_strategy=steps", f"++trainer.args.eval_steps={max(1, args.eval_every // batch)}",
        "trainer.args.disable_tqdm=true", "trainer.early_stopping_patience=null", "trainer.args.logging_steps=50",
        *([f"max_train_samples={args.max_train_samples}"] if args.max_train_samples else []),
        *overrides, *args.override,
    ]
    print(f"[{name}] {' '.join(cmd[1:])}", flush=True)
    started = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"[{name}] failed:\n{proc.stderr[-4000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    curve = [(t, f1) for t, _step, f1 in summary["dev_curve"]]
    net = summary["train_time_s"] - summary["eval_time_s"]  # training only, evaluations excluded
    epochs = summary["epochs_run"]
    return {
        "name": name, "wall_s": round(time.time() - started, 1), "train_time_s": summary["train_time_s"],
        "net_train_s": round(net, 1), "sentences_per_s": summary["train_sentences"] * epochs / max(net, 1e-9),
        "tokens_per_s": summary["train_tokens_per_epoch"] * epochs / max(net, 1e-9),
        "peak_rss_mb": summary["peak_rss_mb"], "final_dev_f1": curve[-1][1] if curve else summary["best_dev"],
        "curve": curve, "sentences": summary["train_sentences"], "epochs": epochs,
    }


def time_to_reach(curve, target):
    for t, f1 in curve:
        if f1 >= target - 1e-12:
            return t
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="e5_small_offline")
    ap.add_argument("--max-train-samples", type=int, default=3000, help="0 = the whole train split")
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--project-epochs", type=float, default=6,
                    help="epochs for the project preset: its epochs are cheap, and the question is the time "
                         "each setup needs to reach the baseline's final dev F1")
    ap.add_argument("--reuse-baseline", action="store_true",
                    help="take the baseline's result from an earlier run's benchmark_train.json (same settings)")
    ap.add_argument("--eval-every", type=int, default=800, help="training sentences between dev evaluations")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--override", nargs="*", default=[], help="extra train.py overrides for both runs")
    ap.add_argument("--out", default=str(ROOT / "artifacts" / "benchmarks" / "train"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "benchmark_train.json"
    baseline = None
    if args.reuse_baseline and previous.is_file():
        old = json.loads(previous.read_text())
        same = all(old["args"].get(k) == getattr(args, k) for k in ("model", "max_train_samples", "epochs",
                                                                      "eval_every", "seed"))
        baseline = old["results"][0] if same else None
        print("reusing the baseline of", previous if same else "nothing (settings differ)")
    results = [baseline or run("baseline", BASELINE, args, out), run("project", PROJECT, args, out)]
    target = results[0]["final_dev_f1"]
    for r in results:
        r["time_to_baseline_f1_s"] = time_to_reach(r["curve"], target)
    base_t = results[0]["time_to_baseline_f1_s"]
    print(f"\ntraining benchmark: {results[0]['sentences']} train sentences, baseline {args.epochs:g} epochs, "
          f"project {args.project_epochs:g} epochs, model {args.model}; target = baseline's final dev F1 "
          f"{target:.4f}\n")
    head = f"{'setup':<10} {'sent/s':>8} {'tok/s':>8} {'peak MB':>8} {'dev F1':>7} {'t(target) s':>12} {'speed-up':>9}"
    print(head)
    print("-" * len(head))
    for r in results:
        t = r["time_to_baseline_f1_s"]
        ratio = f"{base_t / t:.2f}x" if t and base_t else "n/a"
        print(f"{r['name']:<10} {r['sentences_per_s']:>8.1f} {r['tokens_per_s']:>8.0f} {r['peak_rss_mb']:>8.0f} "
              f"{r['final_dev_f1']:>7.4f} {t if t is not None else float('nan'):>12.1f} {ratio:>9}")
    (out / "benchmark_train.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"\nfull results: {out / 'benchmark_train.json'}")


if __name__ == "__main__":
    main()
