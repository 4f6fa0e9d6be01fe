"""k-fold cross-validation of a stance recipe over the whole Kazakh stance layer.

    python scripts/train.py experiment=kaznerd_stance_e5_small cv.folds=5

The stance layer's test split holds 2 AGAINST items: it cannot tell one model from another.
Cross-validation predicts every item of the layer once, with a model that never saw it or
any variant of its sentence, and scores the pooled predictions (macro-F1, F_avg, per-class
P/R/F1 with bootstrap CIs: `evaluation.stance_metrics`).

* Folds are grouped like the NER splits (`data.build.split_groups`): items of one sentence,
  identical sentences and KazNERD sentence-ID variants (AID336541 / BID336541,
  `data.split.variant_id_pattern`) form one group, and a group lies in one fold. Groups are
  dealt to folds in a seeded order, rarest label first (a group with an AGAINST item, then
  FAVOR, then the rest), so every fold gets its share of the rare classes.
* Each fold's model trains on the other folds, minus a dev part carved from them the same way
  (`cv.dev_share`), which selects the checkpoint (the recipe's own early stopping).
* `cv.fixed_model=PATH` scores one trained model on every fold without training (the
  zero-shot recipe: its training saw no Kazakh item).
* `cv.extra_eval.dir` (e.g. the RuSentNE dataset) is scored with the first fold's model (or
  the fixed model): its F_avg is RuSentNE's F1_PN (mean F1 of positive and negative).

Writes `cv.out_dir`: folds.json (item id -> fold), predictions.jsonl (every item, its fold,
gold, predicted label and probabilities), cv.json (pooled report, per-fold scores, training
seconds) and prints a table. A finished fold is reused with `cv.resume=true`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

from omegaconf import OmegaConf

from ..errors import KnsError
from ..labels import STANCE_LABELS
from ..tasks.registry import METRIC_KINDS, TASKS
from ..training.checkpoints import read_training_info

log = logging.getLogger(__name__)

RARITY = ("AGAINST", "FAVOR", "NONE")  # a group is dealt by its rarest label


def stance_groups(sent_ids: Sequence[str], tokens: Sequence[Sequence[str]], variant_id_pattern: str | None):
    """Group key per item: one sentence, identical sentences and sentence-ID variants share one
    (the NER builder's union-find, so folds and NER splits group alike)."""
    from ..data.splitting import split_groups

    records = [SimpleNamespace(key="\x1f".join(t), sent=SimpleNamespace(sent_id=s)) for s, t in zip(sent_ids, tokens)]
    group = split_groups(records, variant_id_pattern)
    return [group[r.key] for r in records]


def grouped_folds(groups: Sequence[str], labels: Sequence[str], k: int, seed: int) -> list[int]:
    """Fold index per item: whole groups, dealt in a seeded order (rarest label first) to the
    fold that has the fewest groups of that kind, then the fewest items."""
    from ..data.splitting import _seeded_order

    if k < 2:
        raise KnsError(f"cv.folds must be at least 2, not {k}")
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    if len(members) < k:
        raise KnsError(f"{len(members)} sentence groups cannot fill {k} folds")

    def kind(g):
        present = {labels[i] for i in members[g]}
        return next((r for r in RARITY if r in present), "NONE")

    order = _seeded_order(list(members), seed)
    order.sort(key=lambda g: RARITY.index(kind(g)))  # stable: seeded within each kind
    per_kind = [Counter() for _ in range(k)]
    size = [0] * k
    fold_of_group: dict[str, int] = {}
    for g in order:
        kd = kind(g)
        f = min(range(k), key=lambda j: (per_kind[j][kd], size[j], j))
        fold_of_group[g] = f
        per_kind[f][kd] += 1
        size[f] += len(members[g])
    return [fold_of_group[g] for g in groups]


@dataclass
class CvPlan:
    """Where every item of a stance dataset goes in k-fold CV.

    `groups` never cross folds (a dataset's `group` column when it has one: news documents,
    KazNERD sentence groups; else `stance_groups`). Evaluation items are the real ones
    (`origin` != counterfactual): they are dealt to folds. A counterfactual item takes its
    source item's fold, is never evaluated, and trains only the folds whose test and dev parts
    do not hold its source."""

    groups: list[str]
    folds: list[int]
    evaluated: list[bool]
    source_index: list[int | None]  # a counterfactual's source item (row index), else None


def cv_plan(items, k: int, seed: int, variant_id_pattern: str | None) -> CvPlan:
    names = items.features["label"].names
    labels = [names[int(x)] for x in items["label"]]
    cols = items.column_names
    groups = list(items["group"]) if "group" in cols else stance_groups(items["sent_id"], items["tokens"],
                                                                          variant_id_pattern)
    origin = list(items["origin"]) if "origin" in cols else ["gold"] * len(labels)
    evaluated = [o != "counterfactual" for o in origin]
    real = [i for i, e in enumerate(evaluated) if e]
    real_folds = grouped_folds([groups[i] for i in real], [labels[i] for i in real], k, seed)
    folds = [-1] * len(labels)
    for i, f in zip(real, real_folds):
        folds[i] = f
    index_of = {x: i for i, x in enumerate(items["id"])}
    source_index: list[int | None] = [None] * len(labels)
    sources = list(items["source_id"]) if "source_id" in cols else [""] * len(labels)
    for i, e in enumerate(evaluated):
        if e:
            continue
        j = index_of.get(sources[i])
        if j is None or not evaluated[j]:
            raise KnsError(f"counterfactual item {items['id'][i]}: its source item {sources[i]!r} is not a real "
                           "item of the dataset")
        source_index[i] = j
        folds[i] = folds[j]
    return CvPlan(groups=groups, folds=folds, evaluated=evaluated, source_index=source_index)


def fold_parts(plan: CvPlan, labels: Sequence[str], f: int, dev_share: float, seed: int) -> tuple[list, list, list]:
    """(train, dev, test) row indices of fold `f`: test = its real items; dev = a grouped part
    of the other folds' real items; train = the rest of them plus the counterfactual items
    whose source is in train."""
    test = [i for i, (x, e) in enumerate(zip(plan.folds, plan.evaluated)) if e and x == f]
    rest = [i for i, (x, e) in enumerate(zip(plan.folds, plan.evaluated)) if e and x != f]
    n_dev = max(2, round(1.0 / dev_share))
    sub = grouped_folds([plan.groups[i] for i in rest], [labels[i] for i in rest], n_dev, seed + 1 + f)
    dev = [i for i, s in zip(rest, sub) if s == 0]
    train = [i for i, s in zip(rest, sub) if s != 0]
    in_train = set(train)
    train += [i for i, j in enumerate(plan.source_index) if j is not None and j in in_train]
    return sorted(train), dev, test


def _all_items(dsd):
    from datasets import concatenate_datasets

    parts = [dsd[s] for s in ("train", "validation", "test") if s in dsd]
    return concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def _predict(model_dir: Path, split, batch_size: int, max_length: int):
    from .stance_diagnostics import checkpoint_predictor

    items = [{"tokens": t, "start": s, "end": e} for t, s, e in zip(split["tokens"], split["start"], split["end"])]
    return checkpoint_predictor(model_dir, batch_size, max_length)(items)


def _score(gold, pred, probs, types, bootstrap_n, seed) -> dict:
    from ..tasks.stance import stance_scores

    return stance_scores(gold, pred, probs, types, bootstrap_n=bootstrap_n, seed=seed)


def run_stance_cv(cfg) -> float:
    """Cross-validate the configured stance recipe; returns the pooled macro-F1."""
    from datasets import DatasetDict

    from ..data.built_dataset import load_built_dataset
    from ..training.train import run_train

    spec = TASKS.get(str(cfg.task.name))
    if spec is None or spec.metric_kind is not METRIC_KINDS["stance"]:  # one stance head, scored as stance
        raise KnsError(f"cv.folds is for task=stance, not task={cfg.task.name}")
    cv = cfg.cv
    k = int(cv.folds)
    seed = int(cv.get("seed", 42))
    out = Path(str(cv.out_dir))
    out.mkdir(parents=True, exist_ok=True)
    dsd = load_built_dataset(cfg.data.dataset_dir)
    items = _all_items(dsd)
    names = items.features["label"].names
    gold = [names[int(x)] for x in items["label"]]
    pattern = OmegaConf.select(cfg, "data.split.variant_id_pattern", default=r"^[A-Z]ID(\d+)$")
    plan = cv_plan(items, k, seed, pattern)
    groups, folds = plan.groups, plan.folds
    evaluated = [i for i, e in enumerate(plan.evaluated) if e]
    (out / "folds.json").write_text(json.dumps(
        {"folds": k, "seed": seed, "variant_id_pattern": pattern, "groups": len(set(groups)),
         "fold_of_item": dict(zip(items["id"], folds)),
         "counterfactual_items": len(items) - len(evaluated)}, ensure_ascii=False) + "\n", encoding="utf-8")
    fixed = cv.get("fixed_model")
    max_length = int(cfg.task.max_length)
    batch = int(cfg.trainer.get("eval_batch_size") or 64)
    dev_share = float(cv.get("dev_share", 0.1))
    bootstrap_n = int(cv.get("bootstrap_n", 1000))
    pred: list[str | None] = [None] * len(items)
    probs_all: list[list[float] | None] = [None] * len(items)
    per_fold = []
    train_seconds = 0.0
    extra_report = None
    if fixed:
        train_seconds = float(read_training_info(Path(str(fixed))).get("train_time_s") or 0.0)
    for f in range(k):
        fold_dir = out / f"fold-{f}"
        done = fold_dir / "predictions.json"
        train_idx, dev_idx, test_idx = fold_parts(plan, gold, f, dev_share, seed)
        if bool(cv.get("resume", False)) and done.is_file():
            saved = json.loads(done.read_text(encoding="utf-8"))
            fold_pred, fold_probs, seconds = saved["pred"], saved["probs"], saved["train_time_s"]
        else:
            model_dir = Path(str(fixed)) if fixed else None
            seconds = 0.0
            if not fixed:
                data_dir = fold_dir / "data"
                DatasetDict({"train": items.select(train_idx), "validation": items.select(dev_idx),
                             "test": items.select(test_idx)}).save_to_disk(str(data_dir))
                fold_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
                fold_cfg.data.dataset_dir = str(data_dir)
                fold_cfg.run_dir = str(fold_dir / "run")
                fold_cfg.overwrite = True
                fold_cfg.evaluate_test = False
                fold_cfg.cv.folds = 0
                log.info("fold %d/%d: %d train, %d dev, %d test items", f + 1, k, len(train_idx), len(dev_idx),
                         len(test_idx))
                # run_train only sets the TensorBoard folder when unset; each fold logs into its own.
                saved_tb = os.environ.get("TENSORBOARD_LOGGING_DIR")
                os.environ["TENSORBOARD_LOGGING_DIR"] = str(fold_dir / "run" / "tensorboard")
                try:
                    run_train(fold_cfg)
                finally:
                    if saved_tb is None:
                        os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
                    else:
                        os.environ["TENSORBOARD_LOGGING_DIR"] = saved_tb
                summary = json.loads((fold_dir / "run" / "summary.json").read_text(encoding="utf-8"))
                seconds = float(summary["train_time_s"])
                model_dir = fold_dir / "run" / "model"
            test = items.select(test_idx)
            fold_pred, fold_probs = _predict(model_dir, test, batch, max_length)
            fold_probs = fold_probs.tolist()
            fold_dir.mkdir(parents=True, exist_ok=True)
            if bool(cv.get("name_swap_check", False)):
                swap = _name_swap_fold(model_dir, test, [items[i] for i in evaluated], fold_pred, batch, max_length,
                                       seed + f)
                (fold_dir / "name_swap.json").write_text(json.dumps(swap, indent=1, ensure_ascii=False) + "\n",
                                                         encoding="utf-8")
            if f == 0 and cv.get("extra_eval") and cv.extra_eval.get("dir"):
                extra_report = _extra_eval(cv.extra_eval, model_dir, batch, max_length, bootstrap_n, seed)
                (fold_dir / "extra_eval.json").write_text(json.dumps(extra_report, indent=2) + "\n", encoding="utf-8")
            done.write_text(json.dumps({"pred": fold_pred, "probs": fold_probs, "train_time_s": seconds}) + "\n",
                            encoding="utf-8")
            if not fixed and not bool(cv.get("keep_models", False)):
                shutil.rmtree(fold_dir / "run", ignore_errors=True)  # ~0.5 GB a fold
                shutil.rmtree(fold_dir / "data", ignore_errors=True)
        if extra_report is None and (fold_dir / "extra_eval.json").is_file():
            extra_report = json.loads((fold_dir / "extra_eval.json").read_text(encoding="utf-8"))
        for i, p, q in zip(test_idx, fold_pred, fold_probs):
            pred[i], probs_all[i] = p, q
        if not fixed:
            train_seconds += seconds
        fs = _score([gold[i] for i in test_idx], fold_pred, None, None, 0, seed)
        per_fold.append({"fold": f, "items": len(test_idx),
                         "support": dict(Counter(gold[i] for i in test_idx)),
                         "macro_f1": fs["macro_f1"], "f_avg": fs["f_avg"], "train_time_s": seconds})
    types = items["target_type"]
    ev = evaluated
    pooled = _score([gold[i] for i in ev], [pred[i] for i in ev], [probs_all[i] for i in ev],
                    [types[i] for i in ev], bootstrap_n, seed)
    sources = list(items["source"]) if "source" in items.column_names else None
    parts = {}
    if sources is not None and len(set(sources[i] for i in ev)) > 1:
        # Each source's items alone (KazNERD's keep figures comparable with a KazNERD-only CV).
        for src in sorted(set(sources[i] for i in ev)):
            idx = [i for i in ev if sources[i] == src]
            sc = _score([gold[i] for i in idx], [pred[i] for i in idx], [probs_all[i] for i in idx],
                        [types[i] for i in idx], bootstrap_n, seed)
            parts[src] = sc["report"]
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for i in ev:
            fh.write(json.dumps({"id": items[i]["id"], "fold": folds[i], "gold": gold[i], "pred": pred[i],
                                 "probs": dict(zip(STANCE_LABELS, probs_all[i]))}, ensure_ascii=False) + "\n")
    swap_report = _name_swap_from_folds(out, k) if bool(cv.get("name_swap_check", False)) else None
    result = {
        "recipe": str(cfg.run_name), "folds": k, "seed": seed, "items": len(ev), "groups": len(set(groups)),
        "counterfactual_items": len(items) - len(ev),
        "fixed_model": str(fixed) if fixed else None,
        "epochs": OmegaConf.select(cfg, "trainer.args.num_train_epochs"),
        "max_length": max_length,
        "train_time_s": round(train_seconds, 1),
        "pooled": pooled["report"], "per_fold": per_fold, "parts": parts,
        "name_swap": swap_report,
        "extra_eval": extra_report,
    }
    (out / "cv.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(format_cv(result))
    return float(pooled["macro_f1"])


def _name_swap_fold(model_dir, test, pool_items, fold_pred, batch, max_length, seed) -> dict:
    """The name-swap check of one fold's model on its test items (names drawn from every real
    item's targets of the same type); the fold's own predictions are the originals."""
    from datasets import Dataset

    from .name_swap import NamePool, name_swap_check

    def predict(items):
        split = Dataset.from_list([{"tokens": list(x["tokens"]), "start": int(x["start"]), "end": int(x["end"])}
                                   for x in items])
        return _predict(model_dir, split, batch, max_length)[0]

    return name_swap_check(predict, test.to_list(), NamePool(pool_items), seed=seed, original=fold_pred)


def _name_swap_from_folds(out: Path, k: int) -> dict | None:
    """The folds' name-swap checks pooled: changed labels over all swaps and over the FAVOR /
    AGAINST predictions."""
    reports = [json.loads((out / f"fold-{f}" / "name_swap.json").read_text(encoding="utf-8"))
               for f in range(k) if (out / f"fold-{f}" / "name_swap.json").is_file()]
    if not reports:
        return None
    swaps = sum(r["swaps"] for r in reports)
    changed = sum(sum(v["changed"] for v in r["by_original_prediction"].values()) for r in reports)
    polar = sum(r["favor_against_predictions"] for r in reports)
    polar_changed = sum(r["by_original_prediction"][lab]["changed"] for r in reports for lab in ("FAVOR", "AGAINST"))
    return {"swaps": swaps, "changed": changed / swaps if swaps else None,
            "favor_against_predictions": polar, "changed_of_favor_against": polar_changed / polar if polar else None}


def _extra_eval(extra_cfg, model_dir, batch, max_length, bootstrap_n, seed) -> dict:
    """Scores on another stance dataset's split (RuSentNE: F_avg = its F1_PN)."""
    from ..data.built_dataset import load_built_dataset

    dsd = load_built_dataset(str(extra_cfg.dir))
    name = str(extra_cfg.get("split", "test"))
    split = dsd[name]
    names = split.features["label"].names
    gold = [names[int(x)] for x in split["label"]]
    start = time.time()
    pred, probs = _predict(model_dir, split, batch, max_length)
    s = _score(gold, pred, probs, split["target_type"], bootstrap_n, seed)
    return {"dir": str(extra_cfg.dir), "split": name, "items": len(gold), "f1_pn": s["f_avg"],
            "f1_pn_ci": s["f_avg_ci"], "macro_f1": s["macro_f1"], "macro_f1_ci": s["macro_f1_ci"],
            "f1_FAVOR": s["f1_FAVOR"], "f1_AGAINST": s["f1_AGAINST"], "predict_s": round(time.time() - start, 1),
            "model": str(model_dir)}


def _fmt(v, ci=None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] is not None else "")


def format_cv(result: dict) -> str:
    rep = result["pooled"]
    pc = rep["per_class"]
    lines = [
        "",
        f"stance cross-validation: {result['recipe']} ({result['folds']} folds, {result['items']} items, "
        f"{result['groups']} sentence groups; pooled predictions, 95% bootstrap CIs)",
        f"  macro-F1  {_fmt(rep['macro']['f1'], rep['macro']['f1_ci'])}",
        f"  F_avg     {_fmt(rep['f_avg']['value'], rep['f_avg']['ci'])}",
    ]
    for lab in ("NONE", "FAVOR", "AGAINST"):
        c = pc[lab]
        lines.append(f"  {lab:<8}  F1 {_fmt(c['f1'], c['f1_ci'])}  P {c['precision']:.3f}  R {c['recall']:.3f}  "
                     f"support {c['support']}  predicted {c['n_pred']}")
    lines.append("  per fold macro-F1: " + ", ".join(f"{p['macro_f1']:.3f}" for p in result["per_fold"]))
    lines.append(f"  training seconds: {result['train_time_s']}")
    for src, rep2 in (result.get("parts") or {}).items():
        pc2 = rep2["per_class"]
        lines.append(f"  {src} items only: macro-F1 {_fmt(rep2['macro']['f1'], rep2['macro']['f1_ci'])}, F1 FAVOR "
                     f"{pc2['FAVOR']['f1']:.3f}, AGAINST {pc2['AGAINST']['f1']:.3f} (support "
                     f"{pc2['FAVOR']['support']} / {pc2['AGAINST']['support']})")
    sw = result.get("name_swap")
    if sw and sw.get("swaps"):
        lines.append(f"  name swaps: {sw['changed']:.1%} of {sw['swaps']} labels change; "
                     + (f"{sw['changed_of_favor_against']:.1%} of {sw['favor_against_predictions']} FAVOR/AGAINST "
                        "predictions" if sw.get("changed_of_favor_against") is not None else ""))
    ex = result.get("extra_eval")
    if ex:
        lines.append(f"  {Path(ex['dir']).name}/{ex['split']} ({ex['items']} items, first fold's model): F1_PN "
                     f"{_fmt(ex['f1_pn'], ex['f1_pn_ci'])}, macro-F1 {_fmt(ex['macro_f1'], ex['macro_f1_ci'])}")
    return "\n".join(lines)
