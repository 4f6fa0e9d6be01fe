"""What a trained stance model gets wrong, and why (issue 22):

    python scripts/stance_diagnostics.py --checkpoint RUN/model [--dataset DIR] [--split test]
        [--roles data/stance/kazakh_stance_test_roles.jsonl]

One prediction pass over a split of a built stance dataset (real items only), then:

* the split's scores (macro-F1, per class, with bootstrap CIs);
* **errors by the target's role** (``--roles``: each item tagged ``holder`` / ``object`` /
  ``both`` / ``neither`` by an annotator who saw neither gold nor predictions): how often a
  holder of an attitude is given FAVOR/AGAINST (it should be NONE unless also evaluated), and
  how often an object of an attitude is missed (gold FAVOR/AGAINST, predicted NONE);
* the **name-swap check** (``evaluation/name_swap.py``);
* the **README example**, «Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін
  қолдады.»: «Бейбітшілік кеңесін» should be FAVOR and «Тоқаев» NONE.

Writes ``--out`` (default: CHECKPOINT/../diagnostics_SPLIT.json) and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

from ..labels import STANCE_LABELS

README_EXAMPLE = "Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады."
README_TARGETS = {"Тоқаев": "NONE", "Бейбітшілік кеңесін": "FAVOR"}
ROLES = ("holder", "object", "both", "neither")


def errors_by_role(items: Sequence[Mapping], pred: Sequence[str], roles: Mapping[str, str]) -> dict:
    """Per role: items, gold and predicted label counts, errors; for holders the FAVOR/AGAINST
    predictions where gold is NONE, for objects the misses (gold polar, predicted NONE)."""
    out = {}
    for role in ROLES:
        idx = [i for i, it in enumerate(items) if roles.get(it["id"]) == role]
        gold = [items[i]["label"] for i in idx]
        got = [pred[i] for i in idx]
        out[role] = {
            "items": len(idx), "gold": dict(Counter(gold)), "pred": dict(Counter(got)),
            "errors": sum(g != p for g, p in zip(gold, got)),
            "polar_for_gold_none": sum(g == "NONE" and p != "NONE" for g, p in zip(gold, got)),
            "missed_polar": sum(g != "NONE" and p == "NONE" for g, p in zip(gold, got)),
        }
    untagged = sum(1 for it in items if it["id"] not in roles)
    all_err = sum(g["label"] != p for g, p in zip(items, pred))
    out["_summary"] = {"errors": all_err, "untagged_items": untagged,
                       "holder_share_of_false_polar": _share(out["holder"]["polar_for_gold_none"],
                                                             sum(out[r]["polar_for_gold_none"] for r in ROLES))}
    return out


def none_beside_stance(items: Sequence[Mapping], pred: Sequence[str]) -> dict:
    """Gold NONE items split by whether their sentence also holds a FAVOR or AGAINST target (the
    holders and bystanders that `task.sampler.contrast_share` draws more often), each with how
    many a FAVOR or AGAINST label was given to."""
    from ..tasks.stance_mix import contrast_flags

    flags = contrast_flags([x["sent_id"] for x in items], [STANCE_LABELS.index(x["label"]) for x in items])
    out = {}
    for key, beside in (("beside_stance", True), ("other", False)):
        idx = [i for i, x in enumerate(items) if x["label"] == "NONE" and flags[i] == beside]
        out[key] = {"items": len(idx), "labelled": sum(pred[i] != "NONE" for i in idx)}
    return out


def real_items(dsd, split: str, folder: str) -> list[dict]:
    """The real items (counterfactual edits dropped) of `split` of a built stance dataset, each
    row with its label as a string. KnsError when the split is missing."""
    from ..errors import KnsError

    if split not in dsd:
        raise KnsError(f"{folder} has no split {split!r} (it has {sorted(dsd)})")
    names = dsd[split].features["label"].names
    return [{**r, "label": names[int(r["label"])]} for r in dsd[split] if r.get("origin", "gold") != "counterfactual"]


def checkpoint_predictor(checkpoint, batch_size: int, max_length: int | None = None):
    """A stance checkpoint as `predict(items) -> (labels, probabilities)`, items being
    {tokens, start, end} rows. `max_length` None: the windows the model was trained and selected
    with, so its scores are its run's."""
    from ..tasks.stance import load_stance_checkpoint, predict_stance_probs
    from ..training.checkpoints import trained_inference

    model, tokenizer, _ = load_stance_checkpoint(Path(checkpoint), cpu_linear="auto")
    if max_length is None:
        max_length = trained_inference(checkpoint)["max_length"] or 256

    def predict(batch):
        probs = predict_stance_probs(model, tokenizer, [{"tokens": x["tokens"], "start": x["start"], "end": x["end"]}
                                                        for x in batch], batch_size, max_length)
        return [STANCE_LABELS[int(i)] for i in probs.argmax(axis=1)], probs

    return predict


def _share(a: int, b: int):
    return a / b if b else None


def readme_example(predict) -> dict:
    from ..data.tokenize import words

    tokens = words(README_EXAMPLE)
    items = []
    for target in README_TARGETS:
        t = target.split()
        start = next(i for i in range(len(tokens)) if tokens[i:i + len(t)] == t)
        items.append({"tokens": tokens, "start": start, "end": start + len(t)})
    labels, probs = predict(items)
    return {t: {"label": lab, "wanted": README_TARGETS[t], "probs": dict(zip(STANCE_LABELS, map(float, p)))}
            for t, lab, p in zip(README_TARGETS, labels, probs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--dataset", default=None, help="default: the built kazakh_stance dataset")
    ap.add_argument("--split", default="test")
    ap.add_argument("--roles", default=None, help="JSON lines {id, role}; default: none")
    ap.add_argument("--swap-rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=None, help="default: the checkpoint's training windows")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    from ..config import compose
    from ..data.built_dataset import load_built_dataset
    from ..data.stance_layer import read_jsonl
    from ..errors import DataValidationError, KnsError, Problem
    from ..tasks.stance import stance_scores
    from .name_swap import NamePool, name_swap_check

    try:
        folder = args.dataset or str(compose("build_dataset", ["data=kazakh_stance"]).data.dataset_dir)
        dsd = load_built_dataset(folder)
        items = real_items(dsd, args.split, folder)
        real = [r for s in dsd for r in real_items(dsd, s, folder)]
        roles = {}
        if args.roles:
            problems = []
            for lineno, obj in read_jsonl(Path(args.roles), problems):
                if obj.get("role") not in ROLES:
                    problems.append(Problem(str(args.roles), lineno,
                                            f"role {obj.get('role')!r} is not one of {list(ROLES)}"))
                else:
                    roles[str(obj.get("id"))] = obj["role"]
            if problems:
                raise DataValidationError(problems)
        predict = checkpoint_predictor(args.checkpoint, args.batch_size, args.max_length)
    except KnsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    pred, probs = predict(items)
    scores = stance_scores([x["label"] for x in items], pred, probs, [x["target_type"] for x in items],
                           bootstrap_n=1000, seed=args.seed)["report"]
    report = {"checkpoint": str(args.checkpoint), "dataset": folder, "split": args.split, "scores": scores,
              "roles": errors_by_role(items, pred, roles) if roles else None,
              "none_beside_stance": none_beside_stance(items, pred),
              "name_swap": name_swap_check(lambda b: predict(b)[0], items, NamePool(real), seed=args.seed,
                                           rounds=args.swap_rounds, original=pred),
              "readme_example": readme_example(predict)}
    out = Path(args.out or Path(args.checkpoint).parent / f"diagnostics_{args.split}.json")
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(format_diagnostics(report))
    print(f"({out})")
    return 0


def format_diagnostics(report: Mapping) -> str:
    s = report["scores"]
    pc = s["per_class"]
    lines = [f"{report['split']}: {s['n_items']} items; macro-F1 {s['macro']['f1']:.3f} "
             f"[{s['macro']['f1_ci'][0]:.3f}, {s['macro']['f1_ci'][1]:.3f}]; "
             + "; ".join(f"{lab} F1 {pc[lab]['f1']:.3f} (P {pc[lab]['precision']:.2f} R {pc[lab]['recall']:.2f}, "
                         f"{pc[lab]['n_pred']} predicted / {pc[lab]['support']})" for lab in ("FAVOR", "AGAINST"))]
    r = report.get("roles")
    if r:
        for role in ROLES:
            x = r[role]
            lines.append(f"  role {role:<8} {x['items']:>4} items, {x['errors']:>3} errors; FAVOR/AGAINST for gold "
                         f"NONE {x['polar_for_gold_none']}; gold FAVOR/AGAINST missed {x['missed_polar']}")
        h = r["_summary"]["holder_share_of_false_polar"]
        if h is not None:
            lines.append(f"  holders are {h:.0%} of the false FAVOR/AGAINST predictions")
    nb = report.get("none_beside_stance")
    if nb:
        b, o = nb["beside_stance"], nb["other"]
        lines.append(f"  gold NONE beside a FAVOR/AGAINST target: {b['labelled']} of {b['items']} given FAVOR/AGAINST; "
                     f"other gold NONE: {o['labelled']} of {o['items']}")
    sw = report["name_swap"]
    if sw["swaps"]:
        lines.append(f"  name swaps: {sw['changed']:.1%} of {sw['swaps']} labels change"
                     + (f"; {sw['changed_of_favor_against']:.1%} of {sw['favor_against_predictions']} FAVOR/AGAINST "
                        "predictions" if sw["changed_of_favor_against"] is not None else ""))
    for t, v in report["readme_example"].items():
        lines.append(f"  README example «{t}»: {v['label']} ({v['probs'][v['label']]:.2f}; wanted {v['wanted']})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
