"""The README's main job, end to end on the embedded default (offline encoder, shared data):
prepare the encoder, build the dataset, train, evaluate on the test split, stage a dry-run
release. Each step is the same verb a user would run by hand; extra arguments go to train.py.

    python scripts/run_default.py [experiment=kaznerd_e5_small_cpu] [train overrides ...]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from kazakh_ner_stance.config import compose

ROOT = Path(__file__).resolve().parent.parent


def step(title: str, args: list[str]) -> float:
    print(f"\n=== {title}\n$ {' '.join(args)}", flush=True)
    started = time.time()
    result = subprocess.run([sys.executable, *args], cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"step failed ({title}), exit code {result.returncode}")
    return time.time() - started


def main(argv: list[str]) -> None:
    overrides = argv or ["experiment=kaznerd_e5_small_cpu"]
    cfg = compose("train", overrides)
    run_dir = Path(cfg.run_dir)
    eval_dir = run_dir / "eval_test"
    release_dir = Path(cfg.paths.releases_dir) / cfg.run_name
    times = {}
    times["prepare model"] = step("prepare the encoder", ["scripts/prepare_model.py", f"model={cfg.model.name}"])
    times["build dataset"] = step("build the dataset", ["scripts/build_dataset.py", f"data={cfg.data.name}"])
    times["train"] = step("train", ["scripts/train.py", *overrides, "overwrite=true"])
    times["evaluate"] = step(
        "evaluate on the test split",
        ["scripts/evaluate.py", f"checkpoint={run_dir / 'model'}", f"data={cfg.data.name}", "split=test",
         f"out_dir={eval_dir}"],
    )
    times["stage release"] = step(
        "stage a dry-run release",
        ["scripts/publish.py", f"checkpoint={run_dir / 'model'}", f"metrics={eval_dir / 'metrics.json'}",
         f"out_dir={release_dir}", f"repo_id=kazakh-ner-stance/{cfg.run_name}", "dry_run=true"],
    )
    print("\n=== done")
    print(f"{'prepared encoder':<18} {cfg.model.path}")
    print(f"{'built dataset':<18} {cfg.data.dataset_dir}")
    print(f"{'run (checkpoints)':<18} {run_dir}")
    print(f"{'best model':<18} {run_dir / 'model'}")
    print(f"{'test report':<18} {eval_dir / 'report.html'}")
    print(f"{'staged release':<18} {release_dir}")
    print("wall time: " + ", ".join(f"{k} {v:.0f}s" for k, v in times.items()) + f"; total {sum(times.values()):.0f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
