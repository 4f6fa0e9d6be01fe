"""Full vs vocabulary-trimmed encoder: parameters, file sizes, load time and peak memory.

Each load runs in a fresh Python process (so page cache aside nothing is shared and the peak
resident memory is the process's own): it imports torch and transformers, records its
resident memory, then loads the tokenizer and the model from the folder and records the time
and the peak resident memory (ru_maxrss). The first folder is the baseline of the ratios.

    kns-bench trim [--models DIR DIR ...] [--repeat 3] [--out FILE.json]

Defaults: artifacts/models/e5_small_offline (baseline) and artifacts/models/e5_small_trimmed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from ..config import project_root
from ..errors import KnsError

CHILD = r"""
import json, resource, sys, time
import torch, transformers
from transformers import AutoModel, AutoTokenizer
transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
torch.set_num_threads(1)
def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
before = rss_mib()
t0 = time.perf_counter()
tok = AutoTokenizer.from_pretrained(sys.argv[1])
t1 = time.perf_counter()
try:
    model = AutoModel.from_pretrained(sys.argv[1], use_safetensors=True, add_pooling_layer=False)
except TypeError:
    model = AutoModel.from_pretrained(sys.argv[1], use_safetensors=True)
t2 = time.perf_counter()
with torch.inference_mode():
    enc = tok(["Қазақстан Республикасының астанасы Астана қаласы."], return_tensors="pt")
    model(**enc)
t3 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rss_after_imports_mib": before, "peak_rss_mib": peak, "tokenizer_s": t1 - t0,
                  "model_s": t2 - t1, "first_forward_s": t3 - t2}))
"""


def measure_load(model_dir: Path, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, "-c", CHILD, str(model_dir)], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise KnsError(f"loading {model_dir} failed:\n{proc.stderr[-2000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    med["load_s"] = statistics.median(r["tokenizer_s"] + r["model_s"] for r in runs)
    med["peak_over_imports_mib"] = statistics.median(r["peak_rss_mib"] - r["rss_after_imports_mib"] for r in runs)
    return med


def static_facts(model_dir: Path) -> dict:
    from safetensors import safe_open

    params = emb = 0
    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as f:
        for name in f.keys():
            n = f.get_slice(name).get_shape()
            count = 1
            for d in n:
                count *= d
            params += count
            if "word_embeddings" in name:
                emb += count
    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    files = {p.name: p.stat().st_size for p in model_dir.iterdir() if p.is_file()}
    return {"vocab_size": cfg.get("vocab_size"), "parameters": params, "embedding_parameters": emb,
            "weights_bytes": files.get("model.safetensors", 0), "tokenizer_bytes": files.get("tokenizer.json", 0),
            "folder_bytes": sum(files.values())}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--models", nargs="+", type=Path, default=None,
                    help="model folders, the first the baseline of the ratios (default: "
                         "artifacts/models/e5_small_offline artifacts/models/e5_small_trimmed)")
    ap.add_argument("--repeat", type=int, default=3, help="fresh-process loads per model (median reported)")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON")


def run_benchmark(args: argparse.Namespace) -> int:
    models = project_root() / "artifacts" / "models"
    args.models = args.models or [models / "e5_small_offline", models / "e5_small_trimmed"]
    for d in args.models:
        if not (d / "model.safetensors").is_file():
            print(f"{d} is not a prepared model (no model.safetensors); run scripts/prepare_model.py", file=sys.stderr)
            return 2

    rows = []
    for d in args.models:
        row = {"model": d.name, **static_facts(d), **measure_load(d, args.repeat)}
        rows.append(row)
    base = rows[0]
    mib = 1024 * 1024
    header = ["model", "vocabulary", "parameters", "model.safetensors", "tokenizer.json", "load (tokenizer + model)",
              "peak RSS", "peak RSS over imports"]
    print(f"baseline: {base['model']}; medians of {args.repeat} fresh-process loads, 1 thread")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for r in rows:
        def ratio(key):
            return "" if r is base else f" ({r[key] / base[key]:.2f}x)"

        print("| " + " | ".join([
            r["model"], f"{r['vocab_size']:,}",
            f"{r['parameters'] / 1e6:.1f}M{ratio('parameters')}",
            f"{r['weights_bytes'] / mib:.1f} MiB{ratio('weights_bytes')}",
            f"{r['tokenizer_bytes'] / mib:.1f} MiB{ratio('tokenizer_bytes')}",
            f"{r['load_s']:.2f} s{ratio('load_s')}",
            f"{r['peak_rss_mib']:.0f} MiB{ratio('peak_rss_mib')}",
            f"{r['peak_over_imports_mib']:.0f} MiB{ratio('peak_over_imports_mib')}",
        ]) + " |")
    if args.out:
        args.out.write_text(json.dumps({"baseline": base["model"], "rows": rows}, indent=2) + "\n", encoding="utf-8")
    return 0
