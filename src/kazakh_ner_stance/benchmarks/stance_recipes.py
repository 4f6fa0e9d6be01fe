"""Cross-validate the fine-tuned stance recipes on the same folds and print one table.

    python scripts/build_dataset.py data=rusentne
    kns-bench stance_recipes --folds 3 [--epochs 3] [--recipes kazakh,zeroshot,mixed,sequential] [KEY=VALUE ...]

Recipes (each an experiment, on the same folds, each with its experiment's own epochs unless
`--epochs` sets one short schedule for all):

* kazakh: the Kazakh-only stance experiment (`kaznerd_stance_e5_small_kazakh`, the default
  before this table; the baseline every ratio is against);
* zeroshot: RuSentNE only. Trained once (its experiment, model selection on the Kazakh dev
  split), then scored on every fold without training (`cv.fixed_model`);
* mixed: Kazakh + RuSentNE through the language/class-balanced sampler, per fold (the default
  stance experiment of issue 12, `kaznerd_stance_e5_small_mixed`);
* sequential: per fold, the Kazakh fold data starting from the zero-shot model (the RuSentNE
  stage is trained once and reused across folds);
* silver: mixed plus the silver Kazakh translations of RuSentNE (`data=rusentne_kk_silver`,
  built first), per fold. Not in the default list: run it with `--recipes mixed,silver`.

Each row: pooled Kazakh macro-F1, F_avg, per-class F1 with 95% bootstrap CIs, AGAINST recall,
F1_PN on RuSentNE's labelled validation file (the `test` split of the rusentne dataset;
first fold's model), and training seconds (the sum over folds; zero-shot: its one training).
`--resume` reuses finished folds; `--table-only` prints the table of what --out holds; a file
`STOP` in --out, or `--deadline-s` passing, ends the benchmark after the recipe that is running.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..config import compose
from ..errors import KnsError

RECIPES = ("kazakh", "zeroshot", "mixed", "sequential", "silver")
BASELINE = "kazakh"


def _experiment(recipe: str) -> str:
    return f"kaznerd_stance_e5_small_{recipe}"


def _ci(v, ci) -> str:
    return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] is not None else f"{v:.3f}"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--recipes", default=",".join(RECIPES[:4]), help=f"comma-separated, from {', '.join(RECIPES)}")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=None,
                    help="epochs of every per-fold training (default: each experiment's own)")
    ap.add_argument("--deadline-s", type=float, default=None, help="start no recipe after this many seconds")
    ap.add_argument("--zeroshot-epochs", type=float, default=None, help="default: the zeroshot experiment's")
    ap.add_argument("--out", default=None, help="default: artifacts/runs/cv/recipes")
    ap.add_argument("--resume", action="store_true", help="reuse finished folds and an existing zero-shot model")
    ap.add_argument("--table-only", action="store_true", help="print the table of the recipes already run in --out")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="extra Hydra overrides for every run (e.g. trainer.num_threads=2)")


def run_benchmark(args: argparse.Namespace) -> int:
    from ..evaluation.stance_cv import run_stance_cv
    from ..training.train import run_train

    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise KnsError(f"unknown recipe(s) {unknown}; choose from {RECIPES}")

    probe = compose("train", [f"experiment={_experiment(BASELINE)}", *args.overrides])
    out = Path(args.out or Path(probe.paths.runs_dir) / "cv" / "recipes")
    rusentne = Path(probe.paths.datasets_dir) / "rusentne"
    # --table-only reads finished recipes' cv.json and trains nothing, so it needs no dataset.
    if not args.table_only and not (rusentne / "dataset_dict.json").is_file():
        print(f"error: {rusentne} is not built; run: python scripts/build_dataset.py data=rusentne", file=sys.stderr)
        return 2
    common = [f"cv.folds={args.folds}", f"cv.resume={str(args.resume).lower()}", f"cv.extra_eval.dir={rusentne}",
              *args.overrides]
    zero_run = out / "zeroshot_model"
    rows = {}
    stop = out / "STOP"  # touch it to end the benchmark after the running recipe (a shared CPU)
    stop.unlink(missing_ok=True)
    started = time.time()
    for recipe in recipes:
        if stop.is_file():
            print(f"{stop} exists: not starting {recipe} or any later recipe")
            break
        if args.deadline_s is not None and not args.table_only and time.time() - started > args.deadline_s:
            print(f"--deadline-s {args.deadline_s:g} passed: not starting {recipe} or any later recipe")
            break
        if args.table_only:
            done = out / recipe / "cv.json"
            if done.is_file():
                rows[recipe] = json.loads(done.read_text(encoding="utf-8"))
            continue
        overrides = [f"experiment={_experiment(recipe)}", f"cv.out_dir={out / recipe}", *common]
        if recipe in ("zeroshot", "sequential") and not (args.resume and (zero_run / "model").is_dir()):
            zov = [f"experiment={_experiment('zeroshot')}", f"run_dir={zero_run}", "overwrite=true", *args.overrides]
            if args.zeroshot_epochs is not None:
                zov.append(f"trainer.args.num_train_epochs={args.zeroshot_epochs}")
            t0 = time.time()
            run_train(compose("train", zov))
            print(f"zero-shot model trained in {time.time() - t0:.0f} s wall: {zero_run / 'model'}")
        if recipe == "zeroshot":
            overrides.append(f"cv.fixed_model={zero_run / 'model'}")
            # Nothing trains here; the epochs its cv.json records are those of the fixed model.
            if args.zeroshot_epochs is not None:
                overrides.append(f"trainer.args.num_train_epochs={args.zeroshot_epochs}")
        elif args.epochs is not None:
            overrides.append(f"trainer.args.num_train_epochs={args.epochs}")
        if recipe == "sequential":
            overrides.append(f"task.init_from={zero_run / 'model'}")
        run_stance_cv(compose("train", overrides))
        rows[recipe] = json.loads((out / recipe / "cv.json").read_text(encoding="utf-8"))

    head = ["recipe", "Kazakh CV macro-F1", "F_avg", "F1 NONE", "F1 FAVOR", "F1 AGAINST", "AGAINST R",
            "RuSentNE val F1_PN", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = rows.get(BASELINE)
    for recipe, r in rows.items():
        p = r["pooled"]
        pc = p["per_class"]
        ex = r.get("extra_eval") or {}
        ratio = ""
        if base and recipe != BASELINE:
            ratio = f" ({p['macro']['f1'] / base['pooled']['macro']['f1']:.2f}x {BASELINE})"
        lines.append("| " + " | ".join([
            recipe, _ci(p["macro"]["f1"], p["macro"]["f1_ci"]) + ratio, _ci(p["f_avg"]["value"], p["f_avg"]["ci"]),
            *(_ci(pc[lab]["f1"], pc[lab]["f1_ci"]) for lab in ("NONE", "FAVOR", "AGAINST")),
            f"{pc['AGAINST']['recall']:.2f}",
            _ci(ex["f1_pn"], ex.get("f1_pn_ci")) if ex else "-", f"{r['train_time_s']:.0f}",
        ]) + " |")
    if not rows:
        print(f"error: no recipe has a cv.json in {out}", file=sys.stderr)
        return 2
    any_row = next(iter(rows.values()))
    table = "\n".join(lines)
    note = (f"{any_row['folds']} folds over {any_row['items']} Kazakh items ({any_row['groups']} sentence groups), "
            "epochs per fold " + ", ".join(f"{name} {r['epochs']:g}" for name, r in rows.items())
            + ", pooled predictions, 95% bootstrap CIs; F1_PN on RuSentNE's labelled "
            "validation file with the first fold's model.")
    (out / "recipes.md").write_text(table + "\n\n" + note + "\n", encoding="utf-8")
    print("\n" + table + "\n\n" + note)
    return 0
