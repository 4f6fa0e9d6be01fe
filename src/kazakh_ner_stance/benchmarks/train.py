"""Training speed and time-to-quality: the run_ner.py-style baseline vs the project's CPU preset.

Both train the same encoder on the same built dataset in separate processes, evaluating dev
entity F1 (strict IOB2, every gold word) every `--eval-every` training sentences. The table
gives throughput, peak memory, final dev F1, and the training time (net of evaluation) each
needs to reach the baseline's final dev F1.

    kns-bench train                       # 3,000 train sentences, 2 (baseline) / 6 epochs
    kns-bench train --max-train-samples 0 --epochs 3   # the full train split
    kns-bench train --reuse-baseline      # the baseline of the last run, if nothing changed
    kns-bench train trainer.args.learning_rate=1e-4   # trailing train.py overrides apply to both runs

baseline: run_ner.py as it runs, pinned in kazakh_ner_stance.benchmarks.baseline whatever the
project's defaults are: first sub-word labelled, lr 5e-5, batch 8, no warm-up, no weight decay,
random order with dynamic padding, every weight trained, PyTorch's default GEMM kernels.
project:  trainer=cpu as it is (the cpu preset and task=ner defaults of this checkout).
Checkpoint saving is off in both, so it does not count as training.

The result file (`OUT/benchmark_train.json`) records the provenance of each run: git commit,
dirty flag and diff hash, package versions, CPU model and threads, the train.py overrides and
the full config they resolve to. `--reuse-baseline` takes the earlier baseline only when all of
that is identical, and otherwise stops naming every field that differs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from ..config import project_root
from ..errors import KnsError
from .baseline import PROJECT_OVERRIDES, baseline_overrides
from .provenance import ReuseRefused, check_reusable, provenance, resolved_train_config

# The benchmark's own settings that change what the baseline measures (not --out, not the
# project's epochs).
BASELINE_ARGS = ("model", "max_train_samples", "max_eval_samples", "epochs", "eval_every", "seed", "override")


def run_overrides(name: str, args, run_dir: str) -> list[str]:
    """Every train.py override of one run, in order (later ones win)."""
    batch = 8 if name == "baseline" else None
    own = baseline_overrides() if name == "baseline" else list(PROJECT_OVERRIDES)
    if batch is None:  # the preset's batch size decides how many steps make `eval_every` sentences
        from ..config import compose

        batch = int(compose("train", [f"model={args.model}", "trainer=cpu", *own])
                    .trainer.args.per_device_train_batch_size)
    epochs = args.epochs if name == "baseline" else args.project_epochs
    return [
        f"model={args.model}", "trainer=cpu", f"run_dir={run_dir}", "overwrite=true", "evaluate_test=false",
        f"seed={args.seed}", "trainer.args.save_strategy=no", "trainer.args.eval_strategy=steps",
        f"++trainer.args.eval_steps={max(1, args.eval_every // batch)}", "trainer.args.disable_tqdm=true",
        "trainer.early_stopping_patience=null", "trainer.args.logging_steps=50",
        *own,
        f"trainer.args.num_train_epochs={epochs}",
        *([f"max_train_samples={args.max_train_samples}"] if args.max_train_samples else []),
        *([f"max_eval_samples={args.max_eval_samples}"] if args.max_eval_samples else []),
        *args.override,
    ]


def run_provenance(name: str, args) -> dict:
    """What a run's figure depends on: code, packages, machine, the benchmark's settings, and the
    run's overrides with the config they resolve to (run folder written as a placeholder)."""
    keys = BASELINE_ARGS + (("project_epochs",) if name == "project" else ())
    overrides = run_overrides(name, args, f"BENCHMARK_OUT/{name}")
    root = project_root()
    record = provenance(root)
    record["benchmark"] = {k: getattr(args, k) for k in keys}
    config = resolved_train_config(overrides, root)
    record["run"] = {"overrides": overrides, "config": config, "data_fingerprint": _fingerprint(config)}
    return record


def _fingerprint(config: dict) -> str | None:
    """The built dataset's content hash (the config only names its folder)."""
    from ..data.built_dataset import dataset_fingerprint

    try:
        return dataset_fingerprint(str(config["data"]["dataset_dir"]).replace("<root>", str(project_root())))
    except Exception:  # not built yet: train.py will say so
        return None


def reusable_baseline(previous: Path, args) -> dict:
    """The baseline result of an earlier run, if its provenance equals this run's; else
    ReuseRefused naming the fields that differ."""
    if not previous.is_file():
        raise ReuseRefused(f"--reuse-baseline: {previous} does not exist; run without it first")
    old = json.loads(previous.read_text(encoding="utf-8"))
    base = next((r for r in old.get("results", []) if r.get("name") == "baseline"), None)
    if base is None:
        raise ReuseRefused(f"{previous} holds no baseline result")
    check_reusable(base.get("provenance"), run_provenance("baseline", args), str(previous))
    return base


def run_training(name: str, args, out: Path) -> dict:
    run_dir = out / name
    record = run_provenance(name, args)
    root = project_root()
    cmd = [sys.executable, str(root / "scripts" / "train.py"), *run_overrides(name, args, str(run_dir))]
    print(f"[{name}] {' '.join(cmd[1:])}", flush=True)
    started = time.time()
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KnsError(f"the {name} training run failed (exit code {proc.returncode}):\n{proc.stderr[-4000:]}")
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
        "provenance": record,
    }


def time_to_reach(curve, target):
    for t, f1 in curve:
        if f1 >= target - 1e-12:
            return t
    return None


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--model", default="e5_small_offline")
    ap.add_argument("--max-train-samples", type=int, default=3000, help="0 = the whole train split")
    ap.add_argument("--max-eval-samples", type=int, default=0, help="dev sentences scored (0 = all)")
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--project-epochs", type=float, default=6,
                    help="epochs for the project preset: its epochs are cheap, and the question is the time "
                         "each setup needs to reach the baseline's final dev F1")
    ap.add_argument("--reuse-baseline", action="store_true",
                    help="take the baseline's result from OUT/benchmark_train.json, only if its provenance "
                         "(code, packages, machine, settings, resolved config) is identical")
    ap.add_argument("--eval-every", type=int, default=800, help="training sentences between dev evaluations")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=None, help="where the runs and benchmark_train.json go "
                    "(default: artifacts/benchmarks/train)")
    ap.add_argument("override", nargs="*", metavar="KEY=VALUE", help="extra train.py overrides for both runs")


def run_benchmark(args: argparse.Namespace) -> int:
    out = Path(args.out or project_root() / "artifacts" / "benchmarks" / "train")
    args.out = str(out)  # recorded with the other settings
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "benchmark_train.json"
    baseline = None
    if args.reuse_baseline:
        try:
            baseline = reusable_baseline(previous, args)
        except ReuseRefused as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"reusing the baseline of {previous} (provenance identical)")
    results = [baseline or run_training("baseline", args, out), run_training("project", args, out)]
    target = results[0]["final_dev_f1"]
    for r in results:
        r["time_to_baseline_f1_s"] = time_to_reach(r["curve"], target)
    base_t = results[0]["time_to_baseline_f1_s"]
    for r in results:
        t = r["time_to_baseline_f1_s"]
        r["speedup_to_baseline_f1"] = base_t / t if t and base_t else None
    print(f"\ntraining benchmark: {results[0]['sentences']} train sentences, baseline {args.epochs:g} epochs, "
          f"project {args.project_epochs:g} epochs, model {args.model}; target = baseline's final dev F1 "
          f"{target:.4f}\n")
    head = f"{'setup':<10} {'sent/s':>8} {'tok/s':>8} {'peak MB':>8} {'dev F1':>7} {'t(target) s':>12} {'speed-up':>9}"
    print(head)
    print("-" * len(head))
    for r in results:
        t, ratio = r["time_to_baseline_f1_s"], r["speedup_to_baseline_f1"]
        print(f"{r['name']:<10} {r['sentences_per_s']:>8.1f} {r['tokens_per_s']:>8.0f} {r['peak_rss_mb']:>8.0f} "
              f"{r['final_dev_f1']:>7.4f} {t if t is not None else float('nan'):>12.1f} "
              f"{f'{ratio:.2f}x' if ratio else 'n/a':>9}")
    record = {"args": vars(args), "provenance": provenance(project_root()), "results": results}
    tmp = previous.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    tmp.replace(previous)
    print(f"\nfull results: {previous}")
    return 0
