"""Speed and agreement of the Predictor against `transformers.pipeline("token-classification")`.

    kns-bench predict --checkpoint DIR [--n 1000] [--batch-size 32] [--threads N]
        [--backends torch onnx] [--pipeline-batch-sizes 1 32] [--join space|natural] [--file IOB2]
        [--export-onnx] [--onnx-dir DIR] [--repeat 1] [--show 5] [--out FILE.json] [--cpu-linear auto torch]

Input: the first `--n` KazNERD sentences of `--file` (default: the shared KazNERD validation
file) re-joined as text, the *same strings* for every system: `--join space` joins the gold
tokens with single spaces (the pipeline's whitespace pre-tokenisation then sees the same words
as ours), `--join natural` writes them as running text (`detokenize`: no space before `.`,
`,`, `»` ...), where the pipeline's words glue punctuation to the word before it.

For each system: sentences per second over the whole list (one call; the Predictor batches
and length-sorts internally, the pipeline gets `--batch-size`), the ratio to the pipeline with
its default batch size (1), and the share of sentences whose entity set {(char_start,
char_end, type)} is identical to the pipeline's (aggregation_strategy="first"). Models are
warmed up first; the 1-minute load average is printed before and after each timing because
the machine may be shared. ONNX needs `kns-export-onnx` first, or `--export-onnx` (written to
`--onnx-dir`, default CHECKPOINT/onnx; give another folder for a checkpoint you may not write
to). The torch backend runs once per `--cpu-linear` value: `auto` (oneDNN linear layers, the
Predictor's default) and `torch` (PyTorch's default kernels, as the pipeline runs), so the
table separates what batching gives from what the kernels give.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--checkpoint", type=Path, required=True, help="the NER model folder")
    ap.add_argument("--file", type=Path, default=None,
                    help="an IOB2 file (default: ../shared/data/kaznerd/IOB2_valid.txt)")
    ap.add_argument("--n", type=int, default=1000, help="sentences (the first N of the file)")
    ap.add_argument("--batch-size", type=int, default=32, help="the Predictor's batch size")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--backends", nargs="+", choices=("torch", "onnx"), default=["torch", "onnx"])
    ap.add_argument("--pipeline-batch-sizes", nargs="+", type=int, default=[1], metavar="N",
                    help="the pipeline's batch sizes; the first is the reference of every ratio")
    ap.add_argument("--join", choices=("space", "natural"), default="space")
    ap.add_argument("--export-onnx", action="store_true", help="export the ONNX model when none is found")
    ap.add_argument("--onnx-dir", type=Path, default=None, help="default: CHECKPOINT/onnx")
    ap.add_argument("--repeat", type=int, default=1, help="timed calls per system (the fastest counts)")
    ap.add_argument("--warmup", type=int, default=16, help="sentences of the untimed first call")
    ap.add_argument("--show", type=int, default=5, help="differing sentences printed per system")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--cpu-linear", nargs="+", choices=("auto", "onednn", "torch"), default=["auto", "torch"],
                    metavar="{auto,onednn,torch}",
                    help="the torch backend's linear kernels, one row each")


def load_sentences(path: Path, n: int) -> list[list[str]]:
    from omegaconf import OmegaConf

    from ..config import CONFIG_DIR
    from ..data.iob2 import read_iob2

    entity_types = list(OmegaConf.load(CONFIG_DIR / "data" / "kaznerd.yaml").get("entity_types") or [])
    sentences, _ = read_iob2(path, entity_types, orphan_inside="repair")
    return [s.tokens for s in sentences[:n]]


def _load1() -> float:
    return round(os.getloadavg()[0], 2)


def _timed(fn, repeat: int):
    best, result, loads = None, None, []
    for _ in range(max(1, repeat)):
        before = _load1()
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        loads.append((before, _load1()))
        best = elapsed if best is None else min(best, elapsed)
    return best, result, loads


def pipeline_entities(output) -> set:
    return {(int(e["start"]), int(e["end"]), str(e["entity_group"])) for e in output}


def predictor_entities(rec) -> set:
    return {(e["char_start"], e["char_end"], e["type"]) for e in rec["entities"]}


def pipeline_word_starts(tokenizer, text: str) -> list[int]:
    """Where the pipeline's `first` aggregation starts a word with this tokenizer: every
    token whose character before it is a space (its fallback heuristic for tokenizers without
    a continuing-subword prefix, e.g. XLM-R's sentencepiece)."""
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    starts = []
    for s, e in enc["offset_mapping"]:
        if e > s and (s == 0 or " " in text[s - 1 : s + 1]):
            starts.append(s)
    return starts


def run_benchmark(args: argparse.Namespace) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    from ..config import project_root
    from ..data.tokenize import detokenize, tokenize_words
    from ..predict import Predictor, find_onnx_dir
    from .provenance import provenance

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    ckpt = args.checkpoint
    onnx_dir = str(args.onnx_dir) if args.onnx_dir else None
    src = args.file or project_root().parent / "shared" / "data" / "kaznerd" / "IOB2_valid.txt"
    sentences = load_sentences(src, args.n)
    join = args.join
    texts = [" ".join(t) if join == "space" else detokenize(t) for t in sentences]
    n = len(texts)
    print(f"{n} sentences from {src} (join={join}), {sum(map(len, sentences))} words; checkpoint {ckpt}; "
          f"torch {torch.__version__} threads={torch.get_num_threads()}, cpus={os.cpu_count()}", flush=True)

    rows, entities = [], {}
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    model = AutoModelForTokenClassification.from_pretrained(ckpt, use_safetensors=True).eval()
    pipe = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="first",
                    device=-1)
    for pbs in args.pipeline_batch_sizes:
        pipe(texts[: args.warmup], batch_size=pbs)
        with torch.inference_mode():
            secs, out, loads = _timed(lambda: pipe(texts, batch_size=pbs), args.repeat)
        name = f"pipeline (bs={pbs})"
        entities[name] = [pipeline_entities(o) for o in out]
        rows.append({"system": name, "seconds": secs, "loads": loads})
        print(f"  {name}: {n / secs:.1f} sentences/s", flush=True)
    reference = f"pipeline (bs={args.pipeline_batch_sizes[0]})"
    del pipe

    runs = []
    for backend in args.backends:
        for kernel in (args.cpu_linear if backend == "torch" else [None]):
            runs.append((backend, kernel))
    for backend, kernel in runs:
        if backend == "onnx":
            try:
                find_onnx_dir(ckpt, onnx_dir)
            except Exception:
                if not args.export_onnx:
                    print("  onnx: no export found; run kns-export-onnx first or pass --export-onnx")
                    continue
                from ..onnx_export import export_onnx

                info = export_onnx(ckpt, out_dir=onnx_dir)
                print(f"  exported {info['out_dir']} ({info['exporter']}, parity {info['parity']['max_abs_diff']:.1e})")
        extra = {"cpu_linear": kernel} if kernel else {"onnx_dir": onnx_dir}
        predictor = Predictor.from_pretrained(ckpt, backend=backend, batch_size=args.batch_size,
                                              num_threads=args.threads, **extra)
        predictor(texts[: args.warmup])
        secs, out, loads = _timed(lambda: predictor(texts), args.repeat)
        name = f"Predictor {backend} (bs={args.batch_size}" + (f", cpu_linear={kernel})" if kernel else ")")
        entities[name] = [predictor_entities(r) for r in out]
        rows.append({"system": name, "seconds": secs, "loads": loads})
        print(f"  {name}: {n / secs:.1f} sentences/s", flush=True)

    ref_secs = next(r["seconds"] for r in rows if r["system"] == reference)
    ref_ents = entities[reference]
    # Sentences where the pipeline's words are not our words (e.g. sentencepiece's lone "▁"
    # piece before a word, which the pipeline's heuristic counts as a word of its own).
    seg_same = [pipeline_word_starts(tokenizer, t) == [a for _, a, _ in tokenize_words(t)] for t in texts]
    print()
    n_same_seg = sum(seg_same)
    print(f"| system | sentences/s | × {reference} | identical entity sets vs {reference} | differing sentences "
          f"whose words differ from the pipeline's | load 1-min (before→after) |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        pairs = list(zip(entities[r["system"]], ref_ents))
        same = sum(a == b for a, b in pairs)
        differ = [ok for (a, b), ok in zip(pairs, seg_same) if a != b]
        explained = sum(not ok for ok in differ)
        r.update(sentences_per_s=n / r["seconds"], ratio=ref_secs / r["seconds"], agreement=same / n,
                 differing=len(differ), differing_with_other_words=explained, sentences_same_words=n_same_seg)
        load = ", ".join(f"{a}→{b}" for a, b in r["loads"])
        print(f"| {r['system']} | {r['sentences_per_s']:.1f} | {r['ratio']:.2f} | {100 * r['agreement']:.2f}% "
              f"({same}/{n}) | {explained}/{len(differ)} | {load} |")
    print(f"\nthe pipeline's words equal ours in {n_same_seg}/{n} sentences (its heuristic makes a word of every "
          f"piece after a space: sentencepiece's lone '▁' before ' .', ' ,', digits and some letters becomes a word "
          f"of its own, whose label the model never saw in training unless it labels every sub-word "
          f"(task.label_all_subwords=true); with --join natural punctuation also stays glued on)")
    ents_total = sum(len(e) for e in ref_ents)
    print(f"\n{reference}: {ents_total} entities in {n} sentences")
    for r in rows:
        if r["system"] == reference or args.show <= 0:
            continue
        diffs = [i for i, (a, b) in enumerate(zip(entities[r["system"]], ref_ents)) if a != b]
        if diffs:
            print(f"\nfirst differences, {r['system']} vs {reference}:")
        for i in diffs[: args.show]:
            ours, theirs = entities[r["system"]][i], ref_ents[i]
            fmt = lambda s: sorted((texts[i][a:b], t, a, b) for a, b, t in s)  # noqa: E731
            print(f"  [{i}] only {r['system'].split(' (')[0]}: {fmt(ours - theirs)}; only pipeline: {fmt(theirs - ours)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"n": n, "join": join, "checkpoint": str(ckpt), "file": str(src), "rows": rows,
                  "provenance": provenance(project_root(), torch.get_num_threads())}
        args.out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
