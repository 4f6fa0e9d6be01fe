"""The silver Kazakh stance layer translated from RuSentNE (issue 12): assemble and sample.

    python scripts/silver_layer.py assemble TRANSLATIONS.jsonl ... [--out data/stance/rusentne_kk_silver.jsonl]
        translators' lines {"id", "kk" (target wrapped once in ⟦ ⟧), "translator"} -> the layer;
        label and type come from the built RuSentNE dataset (artifacts/datasets/rusentne), never
        from the translator. Every bad line is reported as FILE:LINE and nothing is written.
    python scripts/silver_layer.py sample [--n 100] [--seed 42] --out CHECK_BATCH.jsonl
        the seeded random sample for the second translator, with the Russian source beside each.

Then: python scripts/build_dataset.py data=rusentne_kk_silver
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kazakh_ner_stance.config import project_root
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.stance_annotation.silver import assemble_layer, check_sample, read_layer


def _rusentne_sources(dataset_dir: Path) -> dict:
    from kazakh_ner_stance.data.built_dataset import load_built_dataset
    from kazakh_ner_stance.stance_annotation import STANCE_LABELS

    split = load_built_dataset(dataset_dir)["train"]
    return {r["id"]: {"source_row": r["source_row"], "target_type": r["target_type"],
                      "label": STANCE_LABELS[r["label"]], "tokens": r["tokens"], "start": r["start"], "end": r["end"]}
            for r in split}


def main(argv=None) -> int:
    root = project_root()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("assemble")
    a.add_argument("translations", nargs="+", type=Path)
    a.add_argument("--rusentne", type=Path, default=root / "artifacts" / "datasets" / "rusentne")
    a.add_argument("--out", type=Path, default=root / "data" / "stance" / "rusentne_kk_silver.jsonl")
    s = sub.add_parser("sample")
    s.add_argument("--layer", type=Path, default=root / "data" / "stance" / "rusentne_kk_silver.jsonl")
    s.add_argument("--rusentne", type=Path, default=root / "artifacts" / "datasets" / "rusentne")
    s.add_argument("--n", type=int, default=100)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        sources = _rusentne_sources(args.rusentne)
        if args.cmd == "assemble":
            records, problems = assemble_layer(args.translations, sources)
            for p in problems:
                print(p, file=sys.stderr)
            if problems:
                print(f"error: {len(problems)} bad line(s); nothing written", file=sys.stderr)
                return 1
            args.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
            tmp.replace(args.out)
            read_layer(args.out)  # the builder's own validation, before anyone relies on the file
            print(f"{len(records)} silver items -> {args.out}")
            return 0
        layer = {r["id"]: r for r in read_layer(args.layer)}
        picked = check_sample(list(layer), args.n, args.seed)
        with args.out.open("w", encoding="utf-8") as f:
            for i in picked:
                r = layer[i]
                src = sources[r["source_id"]]
                toks = src["tokens"]
                ru = " ".join(toks[: src["start"]] + ["⟦" + " ".join(toks[src["start"]:src["end"]]) + "⟧"]
                              + toks[src["end"]:])
                kk = r["text"][: r["start_char"]] + "⟦" + r["target"] + "⟧" + r["text"][r["end_char"]:]
                f.write(json.dumps({"id": i, "ru": ru, "kk": kk, "label": r["label"]}, ensure_ascii=False) + "\n")
        print(f"{len(picked)} items to check -> {args.out}")
        return 0
    except KnsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
