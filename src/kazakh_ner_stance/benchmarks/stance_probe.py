"""Frozen-encoder stance probe on the stance CV folds: one table of probe variants.

    python scripts/build_dataset.py data=rusentne
    kns-bench stance_probe --folds 3 [--layers 6,8,10,12] [KEY=VALUE ...]

The encoder (the stance experiment's `model`, the offline e5-small by default) is never
trained: each sentence is encoded once and a logistic regression over the mean of the target's
pieces at `--layers` decides (`evaluation/stance_probe.py`). Rows, all on the folds of
`train.py experiment=kaznerd_stance_e5_small_mixed cv.folds=K` (same grouping, same seed):

* probe-kazakh: the Kazakh training folds only (the baseline every ratio is against);
* probe-mixed: plus every RuSentNE train and dev item (weights x `--extra-weight`);
* each again with `+bias`: FAVOR/AGAINST decision offsets tuned on a grouped dev part of the
  training folds.

Columns: pooled Kazakh macro-F1, F_avg, per-class F1 with 95% bootstrap CIs, AGAINST recall,
and seconds (encoding every item once, then the fits of all folds). Writes `--out`/probe.json
and probe.md. Compare with the fine-tuned recipes of `kns-bench stance_recipes` (same folds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ..config import compose, project_root
from ..evaluation.stance_probe import ProbeVariant, cross_validate_probe, featurize, load_frozen_encoder

BASELINE = "probe-kazakh"


def _ci(v, ci) -> str:
    return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] is not None else f"{v:.3f}"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--layers", default="6,8,10,12", help="hidden_states indices (0: embeddings)")
    ap.add_argument("--C", type=float, default=0.01, help="inverse L2 strength of the logistic regression")
    ap.add_argument("--class-power", type=float, default=0.75, help="item weight (n_max / n_c) ** power")
    ap.add_argument("--extra-weight", type=float, default=0.25, help="RuSentNE items' weight relative to Kazakh")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    ap.add_argument("--out", default=None, help="default: artifacts/runs/cv/probe")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="Hydra overrides of the stance experiment (model=..., paths...)")


def run_benchmark(args: argparse.Namespace) -> int:
    import torch

    from ..data.built_dataset import load_built_dataset
    from ..errors import KnsError
    from ..evaluation.stance_cv import _all_items, grouped_folds, stance_groups
    from ..tasks.stance import stance_scores
    from .provenance import provenance

    cfg = compose("train", ["experiment=kaznerd_stance_e5_small_mixed", *args.overrides])
    out = Path(args.out or Path(cfg.paths.runs_dir) / "cv" / "probe")
    rusentne = Path(cfg.paths.datasets_dir) / "rusentne"
    if not (rusentne / "dataset_dict.json").is_file():
        print(f"error: {rusentne} is not built; run: python scripts/build_dataset.py data=rusentne", file=sys.stderr)
        return 2
    try:
        layers = [int(x) for x in args.layers.split(",") if x.strip()]
    except ValueError:
        raise KnsError(f"--layers takes comma-separated integers, not {args.layers!r}") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    seed = int(cfg.cv.get("seed", 42))
    model_dir, tokenizer, model = load_frozen_encoder(cfg.model)

    items = _all_items(load_built_dataset(cfg.data.dataset_dir))
    ru = load_built_dataset(rusentne)
    from datasets import concatenate_datasets

    ru_train = concatenate_datasets([ru[s] for s in ("train", "validation") if s in ru])
    kk = featurize(model, tokenizer, items, layers, args.max_length, 32)
    extra = featurize(model, tokenizer, ru_train, layers, args.max_length, 32)
    print(f"encoded {len(kk.labels)} Kazakh items ({kk.passes} passes) in {kk.encode_s:.0f} s, "
          f"{len(extra.labels)} RuSentNE items ({extra.passes} passes) in {extra.encode_s:.0f} s")
    pattern = OmegaConf.select(cfg, "data.split.variant_id_pattern", default=r"^[A-Z]ID(\d+)$")
    groups = stance_groups(items["sent_id"], items["tokens"], pattern)
    folds = grouped_folds(groups, kk.labels, args.folds, seed)

    common = {"C": args.C, "class_power": args.class_power, "extra_weight": args.extra_weight}
    variants = [ProbeVariant("probe-kazakh", **common), ProbeVariant("probe-mixed", extra=True, **common),
                ProbeVariant("probe-kazakh+bias", tune_bias=True, **common),
                ProbeVariant("probe-mixed+bias", extra=True, tune_bias=True, **common)]
    rows = {}
    for v in variants:
        res = cross_validate_probe(kk, groups, folds, v, extra=extra if v.extra else None, seed=seed)
        s = stance_scores(kk.labels, res["pred"], res["probs"], items["target_type"], bootstrap_n=1000, seed=seed)
        encode_s = kk.encode_s + (extra.encode_s if v.extra else 0.0)
        rows[v.name] = {"variant": vars(v), "report": s["report"], "offsets": res["offsets"],
                        "encode_s": round(encode_s, 1), "fit_s": round(res["fit_s"], 1)}
        print(f"{v.name}: macro-F1 {s['macro_f1']:.3f}", flush=True)

    head = ["probe", "Kazakh CV macro-F1", "F_avg", "F1 NONE", "F1 FAVOR", "F1 AGAINST", "AGAINST R",
            "encode + fit s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = rows[BASELINE]["report"]["macro"]["f1"]
    for name, r in rows.items():
        p, pc = r["report"], r["report"]["per_class"]
        ratio = f" ({p['macro']['f1'] / base:.2f}x {BASELINE})" if name != BASELINE and base else ""
        lines.append("| " + " | ".join([
            name, _ci(p["macro"]["f1"], p["macro"]["f1_ci"]) + ratio, _ci(p["f_avg"]["value"], p["f_avg"]["ci"]),
            *(_ci(pc[lab]["f1"], pc[lab]["f1_ci"]) for lab in ("NONE", "FAVOR", "AGAINST")),
            f"{pc['AGAINST']['recall']:.2f}", f"{r['encode_s']:.0f} + {r['fit_s']:.0f}",
        ]) + " |")
    note = (f"{args.folds} folds over {len(kk.labels)} Kazakh items ({len(set(groups))} sentence groups, seed {seed}), "
            f"frozen {model_dir.name}, target mean at hidden_states {layers}, logistic regression C={args.C}, "
            f"class power {args.class_power}, RuSentNE weight x{args.extra_weight}; pooled predictions, "
            "95% bootstrap CIs. Offsets tuned per fold: "
            + "; ".join(f"{n} " + ", ".join(f"({o['FAVOR']:+.2f}, {o['AGAINST']:+.2f})" for o in r["offsets"])
                        for n, r in rows.items() if r["offsets"]))
    table = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    record = {"folds": args.folds, "seed": seed, "layers": layers, "model": str(model_dir), "rows": rows,
              "provenance": provenance(project_root(), torch.get_num_threads())}
    (out / "probe.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "probe.md").write_text(table + "\n\n" + note + "\n", encoding="utf-8")
    print("\n" + table + "\n\n" + note)
    return 0
