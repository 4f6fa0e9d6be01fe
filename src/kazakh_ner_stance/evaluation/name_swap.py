"""Name swaps (issue 22): the target replaced by another name of its type, the sentence
otherwise unchanged.

Two uses of one primitive:

* **the check**: a stance model that judges the sentence, not the name, gives the swapped
  item the label it gave the original. ``name_swap_check`` reports how often the predicted
  label changes, over all items and over the items predicted FAVOR or AGAINST (a model that
  has learnt that «Тоқаев» is FAVOR changes those most);
* **the augmentation**: swapped copies of training items, label kept
  (``task.name_swap``), so that a name alone cannot carry the label.

Kazakh marks case on the name itself («Тоқаевты», «Қазақстанға»), so a replacement is drawn
from the names of the same type whose last word ends like the original's (its last three
letters, else two, else any), which keeps most case endings: «Тоқаевты» -> «Назарбаевты».
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Callable, Mapping, Sequence

from ..labels import STANCE_LABELS


def _ending(words: Sequence[str], n: int) -> str:
    return words[-1][-n:].lower() if words else ""


def _same_name(words: Sequence[str], own: str) -> bool:
    """The same name in another case form: the two differ only in their last three letters."""
    other = " ".join(words).lower()
    common = 0
    for a, b in zip(other, own):
        if a != b:
            break
        common += 1
    return common >= 3 and common >= min(len(other), len(own)) - 3


class NamePool:
    """Distinct target names per type (token tuples), indexed by their last letters."""

    def __init__(self, items: Sequence[Mapping]):
        names: dict[str, set] = defaultdict(set)
        for it in items:
            words = tuple(it["tokens"][it["start"]:it["end"]])
            if words:
                names[str(it["target_type"])].add(words)
        self.names = {t: sorted(v) for t, v in names.items()}
        self.by_end = {n: defaultdict(list) for n in (3, 2)}
        for t, lst in self.names.items():
            for w in lst:
                for n in (3, 2):
                    self.by_end[n][(t, _ending(w, n))].append(w)

    def replacement(self, words: Sequence[str], target_type: str, rng: random.Random) -> tuple[str, ...] | None:
        """Another name of the type, ending like `words` where one does; None when the type has
        no other name. A form of the same name («Тоқаев» / «Тоқаевты») is not another name."""
        own = " ".join(words).lower()
        for n in (3, 2):
            cands = [w for w in self.by_end[n].get((target_type, _ending(words, n)), []) if not _same_name(w, own)]
            if cands:
                return rng.choice(cands)
        cands = [w for w in self.names.get(target_type, []) if not _same_name(w, own)]
        return rng.choice(cands) if cands else None


def swap_item(item: Mapping, pool: NamePool, rng: random.Random) -> dict | None:
    """A copy of `item` with its target replaced (tokens, start, end, target updated)."""
    s, e = int(item["start"]), int(item["end"])
    tokens = list(item["tokens"])
    new = pool.replacement(tokens[s:e], str(item["target_type"]), rng)
    if new is None:
        return None
    out = dict(item)
    out["tokens"] = tokens[:s] + list(new) + tokens[e:]
    out["start"], out["end"] = s, s + len(new)
    out["target"] = " ".join(new)
    return out


def swapped_copies(items: Sequence[Mapping], pool: NamePool, seed: int, share: float = 1.0) -> list[dict]:
    """Swapped copies of a seeded `share` of `items` (items whose type has no other name are
    left out); each copy's id is the original's plus ``~swap``."""
    rng = random.Random(seed)
    out = []
    for it in items:
        if share < 1.0 and rng.random() >= share:
            continue
        c = swap_item(it, pool, rng)
        if c is not None:
            if "id" in c:
                c["id"] = f"{c['id']}~swap"
            out.append(c)
    return out


def name_swap_check(predict: Callable[[Sequence[Mapping]], Sequence[str]], items: Sequence[Mapping],
                    pool: NamePool, seed: int = 0, rounds: int = 1) -> dict:
    """How often the predicted label changes when the target's name is swapped.

    `predict` maps items to labels. Each round swaps every item once (seeded, a different
    replacement per round). Reported: the share of changed labels over all swapped items, over
    those whose original prediction was FAVOR or AGAINST, and per original prediction and type."""
    original = list(predict(items))
    changed = Counter()
    total = Counter()
    by_type = defaultdict(Counter)
    examples = []
    for r in range(rounds):
        rng = random.Random(seed + r)
        pairs = [(i, swap_item(it, pool, rng)) for i, it in enumerate(items)]
        pairs = [(i, c) for i, c in pairs if c is not None]
        swapped = list(predict([c for _, c in pairs]))
        for (i, c), lab in zip(pairs, swapped):
            was = original[i]
            total[was] += 1
            by_type[str(items[i]["target_type"])]["n"] += 1
            if lab != was:
                changed[was] += 1
                by_type[str(items[i]["target_type"])]["changed"] += 1
                if len(examples) < 20:
                    examples.append({"id": items[i].get("id"), "target": items[i].get("target"),
                                     "swapped_to": c["target"], "before": was, "after": lab})
    n = sum(total.values())
    n_polar = total["FAVOR"] + total["AGAINST"]
    return {
        "items": len(items), "swaps": n, "rounds": rounds,
        "changed": (sum(changed.values()) / n) if n else None,
        "changed_of_favor_against": ((changed["FAVOR"] + changed["AGAINST"]) / n_polar) if n_polar else None,
        "favor_against_predictions": n_polar,
        "by_original_prediction": {lab: {"n": total[lab], "changed": changed[lab]} for lab in STANCE_LABELS},
        "by_type": {t: dict(v) for t, v in sorted(by_type.items())},
        "examples": examples,
    }


def main(argv=None) -> int:
    """`python scripts/stance_name_swap.py --checkpoint RUN/model [--dataset DIR] [--split test]`:
    the name-swap check of a trained stance model on one split of a built stance dataset (the
    names drawn from the dataset's real items of every split); prints the rates, writes JSON."""
    import argparse
    import json
    import sys
    from pathlib import Path

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--dataset", default=None, help="default: the built kazakh_stance dataset")
    ap.add_argument("--split", default="test")
    ap.add_argument("--rounds", type=int, default=3, help="swaps per item, each with another seeded name")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=None, help="default: the checkpoint's (kns_stance.json)")
    ap.add_argument("--out", default=None, help="default: CHECKPOINT/../name_swap_SPLIT.json")
    args = ap.parse_args(argv)

    from ..config import compose
    from ..data.build import load_built_dataset
    from ..errors import KnsError
    from ..tasks.stance import load_stance_checkpoint, predict_stance_probs

    try:
        folder = args.dataset or str(compose("build_dataset", ["data=kazakh_stance"]).data.dataset_dir)
        dsd = load_built_dataset(folder)
        if args.split not in dsd:
            raise KnsError(f"{folder} has no split {args.split!r} (it has {sorted(dsd)})")
        real = [r for s in dsd for r in dsd[s] if r.get("origin", "gold") != "counterfactual"]
        items = [r for r in dsd[args.split] if r.get("origin", "gold") != "counterfactual"]
        model, tokenizer, _ = load_stance_checkpoint(Path(args.checkpoint), cpu_linear="auto")
        if args.max_length is None:  # score with the windows the model was trained and selected with
            meta = json.loads((Path(args.checkpoint) / "kns_stance.json").read_text(encoding="utf-8"))
            args.max_length = int(meta.get("max_length") or 256)
    except KnsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    def predict(batch):
        probs = predict_stance_probs(model, tokenizer, [{"tokens": x["tokens"], "start": x["start"], "end": x["end"]}
                                                        for x in batch], args.batch_size, args.max_length)
        return [STANCE_LABELS[int(i)] for i in probs.argmax(axis=1)]

    report = name_swap_check(predict, items, NamePool(real), seed=args.seed, rounds=args.rounds)
    report.update({"checkpoint": str(args.checkpoint), "dataset": folder, "split": args.split})
    out = Path(args.out or Path(args.checkpoint).parent / f"name_swap_{args.split}.json")
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    pol = report["changed_of_favor_against"]
    print(f"name swaps on {args.split} ({report['items']} items, {report['rounds']} rounds, {report['swaps']} swaps): "
          f"{report['changed']:.1%} of labels change; "
          + (f"{pol:.1%} of {report['favor_against_predictions']} FAVOR/AGAINST predictions" if pol is not None else "")
          + f"  ({out})")
    return 0
