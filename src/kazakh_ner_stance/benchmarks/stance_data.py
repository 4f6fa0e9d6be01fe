"""Which stance data helps: one table of data recipes, each scored by 3-fold grouped
CV over every real Kazakh item, with a frozen-encoder probe.

    python scripts/build_dataset.py data=rusentne
    python scripts/build_dataset.py data=kazakh_stance          # or data=kazakh_stance_reviews
    kns-bench stance_data [--folds 3] [--recipes default,news,reviews,counterfactual,name_swaps,all]
        [--dataset kazakh_stance_reviews] [KEY=VALUE ...]

The probe (``evaluation/stance_probe.py``: logistic regression over the frozen encoder's target
vectors) scored like every fine-tuned recipe on the KazNERD layer (issue 12), in minutes
instead of hours, so it ranks data recipes cheaply; the recipe that wins is then fine-tuned
(``train.py experiment=... cv.folds=3``).

Folds: ``stance_cv.cv_plan`` over the v2 dataset (documents and KazNERD sentence groups never
split; counterfactual items in their source item's fold, training only). Every row is scored
on the same real items: KazNERD's, the news layer's and, with ``--dataset
kazakh_stance_reviews``, the KazSAnDRA reviews layer's. Rows:

* ``default``: today's data, the KazNERD layer's training folds plus RuSentNE (weight x0.25);
* ``news``: plus the news gold items of the training folds;
* ``reviews``: plus the news and the review gold items of the training folds;
* ``counterfactual``: the default plus the counterfactual items whose source is in training;
* ``name_swaps``: the default plus a name-swapped copy of every KazNERD training item;
* ``all``: every real training item (news, and reviews where the dataset has them),
  counterfactual items and name-swapped copies of every real training item.

Columns: macro-F1 over all real items [95% CI], the KazNERD part and the news part, F_avg,
F1 per class, AGAINST recall, and the name-swap check (share of labels that change when each
test item's target is replaced by another name of its type; and of the FAVOR/AGAINST
predictions). The first row is the baseline of every ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

RECIPES = ("default", "news", "reviews", "counterfactual", "name_swaps", "all")
REVIEWS = "kazsandra"
BASELINE = "default"


def _ci(v, ci) -> str:
    return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] is not None else f"{v:.3f}"


def recipe_mask(recipe: str, source: np.ndarray, origin: np.ndarray) -> dict:
    """Which kinds of item a recipe trains on."""
    kaznerd = (source == "kaznerd") & (origin == "gold")
    news = (source != "kaznerd") & (source != REVIEWS) & (origin == "gold")
    reviews = (source == REVIEWS) & (origin == "gold")
    cf = origin == "counterfactual"
    none = np.zeros_like(news)
    return {"real": kaznerd | (news if recipe in ("news", "reviews", "all") else none)
            | (reviews if recipe in ("reviews", "all") else none),
            "counterfactual": cf if recipe in ("counterfactual", "all") else np.zeros_like(cf),
            "swaps": recipe in ("name_swaps", "all")}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, from {', '.join(RECIPES)}")
    ap.add_argument("--dataset", default="kazakh_stance", help="the built v2 stance dataset (under datasets_dir)")
    ap.add_argument("--layers", default="6,8,10,12")
    ap.add_argument("--C", type=float, default=0.01)
    ap.add_argument("--class-power", type=float, default=0.75)
    ap.add_argument("--extra-weight", type=float, default=0.25, help="RuSentNE items' weight relative to Kazakh")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="default: artifacts/runs/cv/stance_data")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="Hydra overrides of the stance experiment (model=..., paths...)")


def run_benchmark(args: argparse.Namespace) -> int:
    from ..errors import KnsError

    recipes = [r for r in args.recipes.split(",") if r]
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise KnsError(f"unknown recipe(s) {unknown}; choose from {RECIPES}")

    import random

    import torch
    from datasets import Dataset, concatenate_datasets
    from omegaconf import OmegaConf

    from ..config import compose
    from ..data.built_dataset import load_built_dataset
    from ..evaluation.name_swap import NamePool, swap_item
    from ..evaluation.stance_cv import _all_items, cv_plan
    from ..evaluation.stance_probe import class_weights, featurize, fit_probe, load_frozen_encoder
    from ..labels import STANCE_LABELS
    from ..tasks.stance import stance_scores
    from .provenance import provenance

    cfg = compose("train", ["experiment=kaznerd_stance_e5_small", "data=kazakh_stance", *args.overrides])
    out = Path(args.out or Path(cfg.paths.runs_dir) / "cv" / "stance_data")
    for name in ("rusentne", args.dataset):
        if not (Path(cfg.paths.datasets_dir) / name / "dataset_dict.json").is_file():
            print(f"error: {name} is not built; run: python scripts/build_dataset.py data={name}", file=sys.stderr)
            return 2
    layers = [int(x) for x in args.layers.split(",") if x.strip()]
    if args.threads:
        torch.set_num_threads(args.threads)
    seed = int(cfg.cv.get("seed", 42))
    model_dir, tokenizer, model = load_frozen_encoder(cfg.model)

    items = _all_items(load_built_dataset(Path(cfg.paths.datasets_dir) / args.dataset))
    pattern = OmegaConf.select(cfg, "data.split.variant_id_pattern", default=r"^[A-Z]ID(\d+)$")
    plan = cv_plan(items, args.folds, seed, pattern)
    folds = np.asarray(plan.folds)
    source = np.asarray(items["source"])
    origin = np.asarray(items["origin"])
    real = np.asarray(plan.evaluated)
    rows = items.to_list()
    # One name-swapped copy of every real item (seeded): training copies for the swap recipes,
    # test copies for the check. Items whose type has no other name keep no copy.
    pool = NamePool([r for r, e in zip(rows, real) if e])
    rng = random.Random(seed)
    swap_of, swapped = {}, []
    for i, r in enumerate(rows):
        if real[i]:
            c = swap_item(r, pool, rng)
            if c is not None:
                swap_of[i] = len(swapped)
                swapped.append({k: c[k] for k in ("tokens", "start", "end", "label", "target_type")})
    start = time.time()
    feats = featurize(model, tokenizer, items, layers, args.max_length, 32)
    swap_ds = Dataset.from_list(swapped, features=items.select_columns(["tokens", "start", "end", "label",
                                                                        "target_type"]).features)
    sfeats = featurize(model, tokenizer, swap_ds, layers, args.max_length, 32)
    ru = load_built_dataset(Path(cfg.paths.datasets_dir) / "rusentne")
    ru_train = concatenate_datasets([ru[s] for s in ("train", "validation") if s in ru])
    efeats = featurize(model, tokenizer, ru_train, layers, args.max_length, 32)
    encode_s = time.time() - start
    print(f"encoded {len(rows)} items, {len(swapped)} name-swapped copies, {len(ru_train)} RuSentNE items in "
          f"{encode_s:.0f} s", flush=True)

    index = {lab: i for i, lab in enumerate(STANCE_LABELS)}
    y = np.array([index[lab] for lab in feats.labels])
    ys = np.array([index[lab] for lab in sfeats.labels])
    ye = np.array([index[lab] for lab in efeats.labels])
    src_index = np.array([-1 if j is None else j for j in plan.source_index])
    gold = [feats.labels[i] for i in np.where(real)[0]]
    results = {}
    for recipe in recipes:
        m = recipe_mask(recipe, source, origin)
        pred = np.zeros(len(rows), dtype=int)
        probs = np.zeros((len(rows), len(STANCE_LABELS)))
        swap_pred = {}
        t0 = time.time()
        n_train = []
        for f in range(args.folds):
            train_real = np.where(m["real"] & real & (folds != f))[0]
            train_cf = np.where(m["counterfactual"] & (src_index >= 0) & (folds != f))[0]
            kk_idx = np.concatenate([train_real, train_cf])
            xs, yk = [feats.x[kk_idx]], [y[kk_idx]]
            if m["swaps"]:
                s_idx = np.array([swap_of[i] for i in train_real if i in swap_of], dtype=int)
                xs.append(sfeats.x[s_idx])
                yk.append(ys[s_idx])
            xk, yk = np.concatenate(xs), np.concatenate(yk)
            w = np.concatenate([class_weights(yk, args.class_power), class_weights(ye, args.class_power) * args.extra_weight])
            n_train.append(int(len(yk)))
            probe = fit_probe(np.concatenate([xk, efeats.x]), np.concatenate([yk, ye]), w, C=args.C, seed=seed)
            test = np.where(real & (folds == f))[0]
            lp = probe(feats.x[test])
            pred[test] = lp.argmax(1)
            probs[test] = np.exp(lp)
            with_swap = [i for i in test if i in swap_of]
            if with_swap:
                sp = probe(sfeats.x[[swap_of[i] for i in with_swap]]).argmax(1)
                swap_pred.update(dict(zip(with_swap, sp.tolist())))
        ev = np.where(real)[0]
        labels = [STANCE_LABELS[i] for i in pred]
        s = stance_scores(gold, [labels[i] for i in ev], probs[ev], [rows[i]["target_type"] for i in ev],
                          bootstrap_n=1000, seed=seed)
        parts = {}
        for name, mask in (("kaznerd", source == "kaznerd"), ("news", (source != "kaznerd") & (source != REVIEWS)),
                           ("reviews", source == REVIEWS)):
            idx = [i for i in ev if mask[i]]
            if not idx:
                continue
            parts[name] = stance_scores([feats.labels[i] for i in idx], [labels[i] for i in idx], probs[idx], None,
                                        bootstrap_n=1000, seed=seed)["report"]
        changed = [int(swap_pred[i] != pred[i]) for i in swap_pred]
        polar = [int(swap_pred[i] != pred[i]) for i in swap_pred if STANCE_LABELS[pred[i]] != "NONE"]
        results[recipe] = {"report": s["report"], "parts": parts, "train_items_per_fold": n_train,
                           "fit_s": round(time.time() - t0, 1),
                           "name_swap": {"swaps": len(changed), "changed": float(np.mean(changed)) if changed else None,
                                         "favor_against_predictions": len(polar),
                                         "changed_of_favor_against": float(np.mean(polar)) if polar else None}}
        print(f"{recipe}: macro-F1 {s['macro_f1']:.3f}", flush=True)

    has_reviews = bool((real & (source == REVIEWS)).any())
    head = ["data recipe (probe)", "CV macro-F1, all real items", "KazNERD part", "news part",
            *(["reviews part"] if has_reviews else []), "F_avg", "F1 FAVOR",
            "F1 AGAINST", "AGAINST R", "name swap: labels changed (of FAVOR/AGAINST)", "train items / fold"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = results[recipes[0]]["report"]["macro"]["f1"]
    for name, r in results.items():
        p, pc = r["report"], r["report"]["per_class"]
        ratio = f" ({p['macro']['f1'] / base:.2f}x)" if name != recipes[0] and base else ""
        sw = r["name_swap"]
        lines.append("| " + " | ".join([
            name, _ci(p["macro"]["f1"], p["macro"]["f1_ci"]) + ratio,
            f"{r['parts']['kaznerd']['macro']['f1']:.3f}", f"{r['parts']['news']['macro']['f1']:.3f}",
            *([f"{r['parts']['reviews']['macro']['f1']:.3f}"] if has_reviews else []),
            _ci(p["f_avg"]["value"], p["f_avg"]["ci"]), _ci(pc["FAVOR"]["f1"], pc["FAVOR"]["f1_ci"]),
            _ci(pc["AGAINST"]["f1"], pc["AGAINST"]["f1_ci"]), f"{pc['AGAINST']['recall']:.2f}",
            f"{sw['changed']:.1%} ({sw['changed_of_favor_against']:.1%})" if sw["changed"] is not None else "-",
            str(round(sum(r["train_items_per_fold"]) / len(r["train_items_per_fold"]))),
        ]) + " |")
    support = results[recipes[0]]["report"]["per_class"]
    note = (f"{args.folds} grouped folds (seed {seed}) over {int(real.sum())} real items ({int((real & (source == 'kaznerd')).sum())} "
            f"KazNERD, {int((real & (source != 'kaznerd') & (source != REVIEWS)).sum())} news, "
            f"{int((real & (source == REVIEWS)).sum())} reviews; support FAVOR {support['FAVOR']['support']}, "
            f"AGAINST {support['AGAINST']['support']}), {int((~real).sum())} counterfactual items; frozen "
            f"{model_dir.name}, target mean at hidden_states {layers}, logistic regression C={args.C}, class power "
            f"{args.class_power}, RuSentNE ({len(ru_train)} items) weight x{args.extra_weight} in every row; encoding "
            f"{encode_s:.0f} s. Ratios against `{recipes[0]}`.")
    table = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    record = {"folds": args.folds, "seed": seed, "layers": layers, "model": str(model_dir), "rows": results,
              "provenance": provenance(Path(str(cfg.paths.root_dir)), torch.get_num_threads())}
    (out / "stance_data.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "stance_data.md").write_text(table + "\n\n" + note + "\n", encoding="utf-8")
    print("\n" + table + "\n\n" + note)
    return 0
