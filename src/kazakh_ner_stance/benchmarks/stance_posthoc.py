"""Stance levers that need no training: a seed ensemble and decision offsets chosen on dev.

    kns-bench stance_posthoc --models RUN_A/model RUN_B/model [RUN_C/model ...] [--dataset DIR]

Every model predicts the real items (counterfactual items are never scored) of the dev and test
splits, each with the windows it was trained with. The rows, each scored on test against the first
model (the base) with a paired item-level bootstrap (one set of resamples scores both):

- each model alone (seeds of one recipe give the spread a single run hides);
- the ensemble: the mean of the models' class probabilities;
- the first model and the ensemble with FAVOR / AGAINST log-probability offsets, the pair on a
  grid that maximises macro-F1 on **dev** (``stance_probe.tune_bias``), applied unchanged to test.

The KazNERD part is scored beside all items (the hidden test set is KazNERD sentences), and each
row gives the README example's two labels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..labels import STANCE_LABELS


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--models", nargs="+", required=True, help="stance model folders; the first is the base")
    ap.add_argument("--dataset", default=None, help="a built v2 stance dataset; default: the kazakh_stance one")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=None, help="JSON record; default: artifacts/benchmarks/stance_posthoc.json")


def decide(probs: np.ndarray, offsets: tuple[float, float] = (0.0, 0.0)) -> list[str]:
    """Labels from class probabilities plus FAVOR / AGAINST log-probability offsets."""
    bias = np.array([0.0, offsets[0], offsets[1]])
    return [STANCE_LABELS[int(i)] for i in (np.log(np.clip(probs, 1e-12, None)) + bias).argmax(axis=1)]


def run_benchmark(args: argparse.Namespace) -> int:
    from ..config import compose
    from ..data.built_dataset import load_built_dataset
    from ..errors import KnsError
    from ..evaluation.stance_diagnostics import README_TARGETS, checkpoint_predictor, readme_example, real_items
    from ..evaluation.stance_metrics import compute_stance_metrics
    from ..evaluation.stance_probe import tune_bias
    from .stance_pair import paired

    if len(args.models) < 2:
        raise KnsError("--models needs at least two stance model folders (the first is the base)")
    cfg = compose("build_dataset", ["data=kazakh_stance"])
    folder = args.dataset or str(cfg.data.dataset_dir)
    dsd = load_built_dataset(folder)
    splits = {name: real_items(dsd, name, folder) for name in ("validation", "test")}
    gold = {name: [x["label"] for x in items] for name, items in splits.items()}
    probs = {name: [] for name in splits}
    example_probs = []
    for checkpoint in args.models:
        predict = checkpoint_predictor(checkpoint, args.batch_size)
        for name, items in splits.items():
            probs[name].append(predict(items)[1])
        example_probs.append(np.array([[v["probs"][lab] for lab in STANCE_LABELS]
                                       for v in readme_example(predict).values()]))
    targets = list(README_TARGETS)

    variants: dict[str, tuple[dict[str, np.ndarray], np.ndarray, tuple[float, float]]] = {}
    for i in range(len(args.models)):
        variants[f"model {i + 1}"] = ({n: probs[n][i] for n in splits}, example_probs[i], (0.0, 0.0))
    mean = ({n: np.mean(probs[n], axis=0) for n in splits}, np.mean(example_probs, axis=0))
    variants[f"ensemble of {len(args.models)}"] = (*mean, (0.0, 0.0))
    y_dev = np.array([STANCE_LABELS.index(g) for g in gold["validation"]])
    for name, (p, ex) in (("model 1", variants["model 1"][:2]), (f"ensemble of {len(args.models)}", mean)):
        a, b, _ = tune_bias(np.log(np.clip(p["validation"], 1e-12, None)), y_dev)
        variants[f"{name} + dev offsets ({a:+.2f}, {b:+.2f})"] = (p, ex, (a, b))

    base_test = decide(variants["model 1"][0]["test"])
    sources = [x.get("source", "kaznerd") for x in splits["test"]]
    kz = [i for i, s in enumerate(sources) if s == "kaznerd"]
    rows = {}
    for name, (p, ex, off) in variants.items():
        pred = decide(p["test"], off)
        per_class = compute_stance_metrics(gold["test"], pred)["per_class"]
        rows[name] = {
            "offsets": list(off),
            "dev": compute_stance_metrics(gold["validation"], decide(p["validation"], off))["macro"]["f1"],
            "all": paired(gold["test"], base_test, pred, args.bootstrap, args.seed),
            "kaznerd": paired([gold["test"][i] for i in kz], [base_test[i] for i in kz], [pred[i] for i in kz],
                              args.bootstrap, args.seed),
            "f1": {lab: per_class[lab]["f1"] for lab in STANCE_LABELS[1:]},
            "predicted": {lab: per_class[lab]["n_pred"] for lab in STANCE_LABELS[1:]},
            "readme_example": dict(zip(targets, decide(ex, off))),
        }
    singles = [rows[f"model {i + 1}"]["all"]["other"] for i in range(len(args.models))]
    lines = [f"test: {len(gold['test'])} real items (FAVOR {gold['test'].count('FAVOR')}, AGAINST "
             f"{gold['test'].count('AGAINST')}); KazNERD part {len(kz)}; dev {len(gold['validation'])}",
             f"single models: test macro-F1 mean {np.mean(singles):.3f}, sd {np.std(singles, ddof=1):.3f}", "",
             "| decision | dev macro-F1 | test macro-F1 | - model 1 [95% CI, paired] | KazNERD part | - model 1 "
             "[95% CI] | F1 FAVOR | F1 AGAINST | predicted FAVOR / AGAINST | README example (" + " / ".join(targets) + ") |",
             "|---|---:|---:|---|---:|---|---:|---:|---|---|"]
    for name, r in rows.items():
        a, k = r["all"], r["kaznerd"]
        lines.append(f"| {name} | {r['dev']:.3f} | {a['other']:.3f} | {a['difference']:+.3f} [{a['ci'][0]:+.3f}, "
                     f"{a['ci'][1]:+.3f}] | {k['other']:.3f} | {k['difference']:+.3f} [{k['ci'][0]:+.3f}, "
                     f"{k['ci'][1]:+.3f}] | {r['f1']['FAVOR']:.3f} | {r['f1']['AGAINST']:.3f} | "
                     f"{r['predicted']['FAVOR']} / {r['predicted']['AGAINST']} | "
                     + " / ".join(r["readme_example"].values()) + " |")
    text = "\n".join(lines)
    print("models:\n" + "\n".join(f"  {i + 1}. {m}" for i, m in enumerate(args.models)) + f"\n{folder}\n\n{text}")
    out = Path(args.out or Path(str(cfg.paths.artifacts_dir)) / "benchmarks" / "stance_posthoc.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"models": args.models, "dataset": folder, "rows": rows}, indent=1,
                              ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
