"""The GPU presets, run for real on a borrowed machine that can receive only 64 MiB.

Developer tooling for the borrowed GPU machine, not part of the package. Two steps
(``tools/gpu_check.sh`` runs the second on the GPU machine):

    python tools/gpu_check.py pack [--out .gpu_bundle] [--limit-mib 64]
        here, online: wheels of the packages the GPU image lacks (hydra-core, omegaconf and
        antlr4, datasets, evaluate, seqeval and small pure dependencies) with `pip download`,
        the offline e5-small trimmed to the bundled datasets and stored in float16, and the
        datasets themselves (KazNERD NER and stance; RuSentNE and its silver Kazakh translations
        when they are built) as
        xz-compressed tar files; prints every size and fails above the limit.

    python tools/gpu_check.py run [--bundle .gpu_bundle] [--out DIR]
        on the GPU: trains the default NER experiment (kaznerd_ner_e5_small) and the stance
        experiment (kaznerd_stance_e5_small_mixed) with trainer=gpu (bf16, fused AdamW) on the
        bundled encoder, evaluates both on their test split, times a bf16 training step of each
        model, and prints sentences/s, tokens/s, step time, peak GPU memory, the share of the
        GPU's bf16 peak (model FLOPs / step time / peak) and dev and test F1.

    python tools/gpu_check.py run --recipes kazakh,zeroshot,mixed,sequential --recipe-folds 3
        the same, then the cross-lingual stance recipes of issue 12 cross-validated on the GPU
        (`kns-bench stance_recipes` with trainer=gpu on the bundled encoder; the bundle
        must hold RuSentNE); the recipe table is written to OUT/recipes.md.

    python tools/gpu_check.py run --cpu-smoke --bundle DIR
        the same pipeline on CPU with trainer=debug (a few steps), for tests and dry runs: no GPU
        figures, everything else exercised.

Why float16, trimming and xz: the encoder body alone is 21M parameters (85 MB in float32);
trimmed to the pieces of the datasets it trains on and halved, with the datasets compressed
(Arrow files of text shrink about 4x), the whole bundle fits. On the
GPU, bf16 autocast rounds the weights further than float16 storage does, so the check measures the
same model a float32 copy would give (fine-tuning keeps float32 master weights either way).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from kazakh_ner_stance.config import project_root

MIB = 1024 * 1024
# Packages the GPU image (torch, transformers, accelerate) lacks, and their small pure
# dependencies; pyarrow and pandas (datasets) are large and are expected on the image.
WHEELS = ("hydra-core", "omegaconf", "antlr4-python3-runtime", "datasets", "evaluate", "seqeval",
          "dill", "multiprocess", "xxhash", "fsspec")
# Compiled or interpreter-specific wheels: fetched for these Python versions too.
PY_VERSIONS = ("3.10", "3.11", "3.12")
NER_EXPERIMENT = "kaznerd_ner_e5_small"
STANCE_EXPERIMENT = "kaznerd_stance_e5_small_mixed"  # mixed Kazakh + RuSentNE: needs RuSentNE bundled
STANCE_EXPERIMENT_KAZAKH = "kaznerd_stance_e5_small_kazakh"  # what runs when the bundle lacks it
# Dense bf16 tensor-core peak (FLOP/s) by device name fragment, most specific first.
BF16_PEAK = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12),
             ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12), ("A10", 125e12), ("B200", 2250e12))


# --------------------------------------------------------------------------- pack


def _du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def download_wheels(dest: Path) -> list[str]:
    """`pip download` the WHEELS at the versions installed here (no dependencies: the list is
    explicit). seqeval ships only an sdist, so it is built into a wheel (`pip wheel`)."""
    dest.mkdir(parents=True, exist_ok=True)
    notes = []
    for dist in WHEELS:
        ver = _version(dist)
        spec = f"{dist}=={ver}" if ver else dist
        base = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
                "-d", str(dest), spec]
        proc = subprocess.run(base + ["--only-binary=:all:"], capture_output=True, text=True)
        if proc.returncode != 0:
            # sdist only (seqeval): build a wheel from it.
            proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                                   "-q", "-w", str(dest), spec], capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"pip could not fetch {spec}:\n{proc.stderr[-1500:]}")
            notes.append(f"{spec}: built from its sdist")
        for py in PY_VERSIONS:  # interpreter-specific wheels for the GPU image's Python
            subprocess.run(base + ["--only-binary=:all:", "--python-version", py, "--platform",
                                   "manylinux2014_x86_64", "--implementation", "cp"], capture_output=True, text=True)
    for stale in dest.glob("*.tar.gz"):
        stale.unlink()
    return notes


def pack(args) -> int:
    from kazakh_ner_stance.models.trim import trim_model

    root = project_root()
    out = args.out.resolve()
    base = args.base.resolve()
    datasets = {"kaznerd": args.ner_dataset.resolve(), "kaznerd_stance": args.stance_dataset.resolve()}
    for what, p in [("base encoder", base), *datasets.items()]:
        if not p.exists():
            raise SystemExit(f"{what} {p} is missing; prepare it first (scripts/prepare_model.py / build_dataset.py)")
    # Optional datasets, bundled when built: RuSentNE for the cross-lingual recipes, its silver
    # Kazakh translations for the `silver` recipe. The encoder is trimmed to every bundled one.
    for name, path, needed_by in (("rusentne", args.rusentne_dataset, "the stance recipes"),
                                  ("rusentne_kk_silver", args.silver_dataset, "the silver recipe")):
        if path is None:
            continue
        if (path.resolve() / "dataset_dict.json").is_file():
            datasets[name] = path.resolve()
        else:
            print(f"note: no {name} dataset at {path} (python scripts/build_dataset.py data={name}); the bundle "
                  f"cannot run {needed_by}")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    notes = [] if args.no_wheels else download_wheels(out / "wheels")
    model = out / "model"
    model.mkdir()
    started = time.perf_counter()
    record = trim_model(base, model, list(datasets.values()), dtype=args.dtype, verify_sentences=32,
                        held_aside_share=0.05)
    trim_s = time.perf_counter() - started
    (out / "datasets").mkdir()
    for name, src in datasets.items():
        # xz: the Arrow files are mostly text and shrink about 4x; `run` unpacks them.
        with tarfile.open(out / "datasets" / f"{name}.tar.xz", "w:xz") as tar:
            tar.add(src, arcname=name)
    sizes = {p.name: _du(p) for p in sorted(out.iterdir())}
    total = sum(sizes.values())
    manifest = {"total_bytes": total, "sizes": sizes, "wheels": sorted(p.name for p in (out / "wheels").glob("*"))
                if (out / "wheels").exists() else [], "notes": notes, "model_kept_pieces": record["kept"],
                "model_dtype": args.dtype, "trim_seconds": round(trim_s, 1)}
    (out / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    v = record["verification"]
    print(f"bundle {os.path.relpath(out, root)}:")
    for name, b in sizes.items():
        print(f"  {name:<10} {b / MIB:8.2f} MiB")
    for w in manifest["wheels"]:
        print(f"    {w:<70} {_du(out / 'wheels' / w) / MIB:6.2f} MiB")
    print(f"  {'total':<10} {total / MIB:8.2f} MiB (limit {args.limit_mib} MiB)")
    print(f"  model: {record['kept']:,} of {record['trimmed_from']['tokenizer_pieces']:,} pieces, {args.dtype}; "
          f"corpus tokenization identical on {v['corpus_tokenization']['sentences']:,} sentences; hidden states max "
          f"abs difference {v['hidden_states']['max_abs_difference']:.3g} (storage precision)")
    for n in notes:
        print(f"  note: {n}")
    if total > args.limit_mib * MIB:
        print(f"error: the bundle is {total / MIB:.2f} MiB, over the {args.limit_mib} MiB limit", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- run


def unpack_datasets(bundle: Path, dest: Path) -> list[str]:
    """Unpack BUNDLE/datasets/NAME.tar.xz into DEST/NAME once (kept between runs). Outside the
    bundle, so the bundle stays the size that was packed and checked against the limit."""
    names = []
    for archive in sorted((bundle / "datasets").glob("*.tar.xz")):
        name = archive.name[: -len(".tar.xz")]
        if not (dest / name / "dataset_dict.json").is_file():
            dest.mkdir(parents=True, exist_ok=True)
            with tarfile.open(archive, "r:xz") as tar:
                tar.extractall(dest, filter="data")
        names.append(name)
    return names


def _bf16_peak(name: str) -> float | None:
    for frag, peak in BF16_PEAK:
        if frag in name:
            return peak
    return None


def _train(experiment: str, bundle: Path, data_root: Path, dataset: str, run_dir: Path, smoke: bool, extra=()) -> dict:
    import torch

    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.training.train import run_train

    ov = [f"experiment={experiment}", "trainer=debug" if smoke else "trainer=gpu", "model=local",
          f"paths.datasets_dir={data_root}",
          f"model.path={bundle / 'model'}", f"data.dataset_dir={data_root / dataset}", f"run_dir={run_dir}",
          f"run_name={run_dir.name}", f"paths.artifacts_dir={run_dir.parent / 'artifacts'}", "overwrite=true",
          *extra]
    if smoke:
        ov += ["task.max_length=24"] if "stance" not in experiment else []
    cfg = compose("train", ov)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    run_train(cfg)
    wall = time.perf_counter() - started
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    info = json.loads((run_dir / "model" / "kns_training.json").read_text(encoding="utf-8"))
    train_s = max(float(summary["train_time_s"]) - float(summary.get("eval_time_s") or 0.0), 1e-9)
    epochs = float(summary.get("epochs_run") or 0)
    return {
        "experiment": experiment, "wall_s": wall, "train_s": train_s, "steps": int(info.get("global_step") or 0),
        "sentences_per_s": summary["train_sentences"] * epochs / train_s,
        "tokens_per_s": summary["train_tokens_per_epoch"] * epochs / train_s,
        "step_s": train_s / max(int(info.get("global_step") or 1), 1),
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / MIB if torch.cuda.is_available() else None,
        "metric": summary["metric"], "dev": summary.get("best_dev"),
        "batch_size": int(cfg.trainer.args.per_device_train_batch_size), "max_length": int(cfg.task.max_length),
    }


def _evaluate(run_dir: Path, data_root: Path, dataset: str, out: Path) -> dict:
    from kazakh_ner_stance.config import compose
    from kazakh_ner_stance.evaluation.run import run_evaluate

    run_evaluate(compose("evaluate", [f"checkpoint={run_dir / 'model'}", f"dataset_dir={data_root / dataset}",
                                      "split=test", f"out_dir={out}", "bootstrap.n=200",
                                      f"paths.artifacts_dir={run_dir.parent / 'artifacts'}"]))
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def _headline(metrics: dict) -> float | None:
    """The ranking score of an evaluation (the registry's headline: NER micro F1, stance macro-F1)."""
    from kazakh_ner_stance.tasks.registry import headline

    return headline(metrics)[0]


def dense_parameters(model_dir: Path) -> int:
    """Parameters outside the embeddings (each costs 2 FLOPs per token forward, 4 backward)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as f:
        for name in f.keys():
            if "embeddings" not in name:
                n = 1
                for d in f.get_slice(name).get_shape():
                    n *= d
                total += n
    return total


def step_benchmark(model_dir: Path, data_root: Path, dataset: str, batch_size: int, max_length: int,
                   steps: int = 20, warmup: int = 5) -> dict:
    """A bf16-autocast, fused-AdamW training step of the trained NER model on real training
    batches (padded to a multiple of 8): step time, padded tokens/s and model FLOPs per step,
    counted as 6 x non-embedding parameters per token plus attention's 12 x layers x hidden x
    length^2 per sequence."""
    import torch
    from datasets import load_from_disk
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    dev = torch.device("cuda")
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(model_dir)
    model.to(dev).train()
    rows = load_from_disk(str(data_root / dataset))["train"]
    words = rows["tokens"][: batch_size * (steps + warmup)]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)
    enc_all = []
    for i in range(steps + warmup):
        chunk = words[(i * batch_size) % len(words):][:batch_size] or words[:batch_size]
        enc = tok(chunk, is_split_into_words=True, truncation=True, max_length=max_length, padding=True,
                  pad_to_multiple_of=8, return_tensors="pt")
        enc_all.append({k: v.to(dev) for k, v in enc.items() if k in ("input_ids", "attention_mask")})
    cfg = model.config
    emb = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    dense = sum(p.numel() for p in model.parameters()) - emb
    layers, hidden = int(cfg.num_hidden_layers), int(cfg.hidden_size)
    flops = tokens = 0
    times = []
    for i, enc in enumerate(enc_all):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(**enc)
            logits = out.logits if hasattr(out, "logits") else out[0]
            loss = logits.float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if i >= warmup:
            b, s = enc["input_ids"].shape
            times.append(time.perf_counter() - t0)
            tokens += b * s
            flops += 6 * dense * b * s + 12 * layers * hidden * s * s * b
    total = sum(times)
    return {"step_s": total / len(times), "padded_tokens_per_s": tokens / total, "flops_per_s": flops / total}


def run(args) -> int:
    import torch

    bundle = args.bundle.resolve()
    out = (args.out or bundle / "results").resolve()
    out.mkdir(parents=True, exist_ok=True)
    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        print("error: no CUDA device; use --cpu-smoke for a CPU dry run", file=sys.stderr)
        return 2
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (smoke run)"
    peak = None if smoke else (args.peak_tflops * 1e12 if args.peak_tflops else _bf16_peak(device))
    data_root = out / "datasets"
    available = unpack_datasets(bundle, data_root)
    if args.recipes and "rusentne" not in available:
        print(f"error: --recipes needs RuSentNE in the bundle ({bundle / 'datasets'} holds {available}); pack it "
              "after: python scripts/build_dataset.py data=rusentne", file=sys.stderr)
        return 2
    recipes = [r.strip() for r in (args.recipes or "").split(",") if r.strip()]
    if "silver" in recipes and "rusentne_kk_silver" not in available:
        print(f"error: the silver recipe needs rusentne_kk_silver in the bundle ({bundle / 'datasets'} holds "
              f"{available}); pack it after: python scripts/build_dataset.py data=rusentne_kk_silver", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results = []
    stance_experiment = STANCE_EXPERIMENT if "rusentne" in available else STANCE_EXPERIMENT_KAZAKH
    if "stance" in args.tasks and stance_experiment != STANCE_EXPERIMENT:
        print(f"note: no RuSentNE in the bundle; the stance check runs {stance_experiment} (Kazakh only) instead of "
              f"the default {STANCE_EXPERIMENT}")
    for task, experiment, dataset in (("ner", NER_EXPERIMENT, "kaznerd"), ("stance", stance_experiment, "kaznerd_stance")):
        if task not in args.tasks:
            continue
        run_dir = out / f"gpu_check_{task}"
        r = _train(experiment, bundle, data_root, dataset, run_dir, smoke)
        metrics = _evaluate(run_dir, data_root, dataset, out / f"eval_{task}")
        r["test"] = _headline(metrics)
        r["task"] = task
        # Model FLOPs of the real run: 6 x dense parameters x (unpadded) tokens; attention's
        # length-squared term is ~3% at these lengths and left out, so this is a lower bound.
        r["run_flops_per_s"] = 6 * dense_parameters(run_dir / "model") * r["tokens_per_s"]
        r["run_bf16_peak_share"] = r["run_flops_per_s"] / peak if peak else None
        if not smoke and task == "ner":
            r.update({f"bench_{k}": v for k, v in step_benchmark(run_dir / "model", data_root, dataset,
                                                                 r["batch_size"], r["max_length"]).items()})
            r["bench_bf16_peak_share"] = r["bench_flops_per_s"] / peak if peak else None
        results.append(r)
    total = time.perf_counter() - started
    report = {"device": device, "bf16_peak_flops": peak, "torch": torch.__version__, "total_s": total,
              "results": results}
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    def f(x, fmt):
        return "n/a" if x is None else format(x, fmt)

    print(f"\ndevice: {device}; bf16 peak {f(peak and peak / 1e12, '.0f')} TFLOP/s; total {total:.0f} s")
    print(f"| task | experiment (trainer={'debug' if smoke else 'gpu'}) | train sentences/s | train tokens/s | step (s) "
          "| peak GPU memory (MiB) "
          "| share of bf16 peak (run) | timed step: padded tokens/s | timed step: share of bf16 peak "
          "| dev F1 | test F1 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['task']} | {r['experiment']} | {r['sentences_per_s']:.1f} | {r['tokens_per_s']:,.0f} | "
              f"{r['step_s']:.3f} | {f(r['peak_gpu_mib'], ',.0f')} | {f(r.get('run_bf16_peak_share'), '.1%')} | "
              f"{f(r.get('bench_padded_tokens_per_s'), ',.0f')} | {f(r.get('bench_bf16_peak_share'), '.1%')} | "
              f"{f(r['dev'], '.4f')} | {f(r['test'], '.4f')} |")
    print("(F1: NER micro F1, stance macro F1; train rates are over training time net of evaluation)")
    if not smoke and total > 600:
        print(f"warning: the check took {total:.0f} s, over its 10-minute budget", file=sys.stderr)
    if args.recipes:
        return run_recipes(args, bundle, data_root, out, smoke)
    return 0


def run_recipes(args, bundle: Path, data_root: Path, out: Path, smoke: bool) -> int:
    """The stance recipe table (`kns-bench stance_recipes`), cross-validated with the bundled
    encoder (trainer=gpu)."""
    options = ["--recipes", args.recipes, "--folds", str(args.recipe_folds), "--out", str(out / "recipes")]
    if args.recipe_epochs is not None:
        options += ["--epochs", str(args.recipe_epochs)]
    if args.recipe_deadline_s:
        options += ["--deadline-s", str(args.recipe_deadline_s)]
    overrides = ["trainer=debug" if smoke else "trainer=gpu", "model=local", f"model.path={bundle / 'model'}",
                 f"paths.datasets_dir={data_root}", f"paths.artifacts_dir={out / 'artifacts'}",
                 *(args.recipe_overrides or [])]
    cmd = [sys.executable, "-m", "kazakh_ner_stance.benchmarks", "stance_recipes", *options, *overrides]
    print("stance recipes:", " ".join(cmd), flush=True)
    started = time.perf_counter()
    rc = subprocess.run(cmd).returncode
    print(f"stance recipes: exit {rc} after {time.perf_counter() - started:.0f} s", flush=True)
    table = out / "recipes" / "recipes.md"
    if table.is_file():
        shutil.copy(table, out / "recipes.md")
    return rc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    root = project_root()
    p = sub.add_parser("pack", help="build the bundle here")
    p.add_argument("--out", type=Path, default=root / ".gpu_bundle")
    p.add_argument("--base", type=Path, default=root / "artifacts" / "models" / "e5_small_offline")
    p.add_argument("--ner-dataset", type=Path, default=root / "artifacts" / "datasets" / "kaznerd")
    p.add_argument("--stance-dataset", type=Path, default=root / "artifacts" / "datasets" / "kaznerd_stance")
    p.add_argument("--rusentne-dataset", type=Path, default=root / "artifacts" / "datasets" / "rusentne",
                   help="bundled when built (the stance recipes need it)")
    p.add_argument("--no-rusentne", dest="rusentne_dataset", action="store_const", const=None)
    p.add_argument("--silver-dataset", type=Path, default=root / "artifacts" / "datasets" / "rusentne_kk_silver",
                   help="bundled when built (the silver recipe needs it)")
    p.add_argument("--no-silver", dest="silver_dataset", action="store_const", const=None)
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--limit-mib", type=float, default=64)
    p.add_argument("--no-wheels", action="store_true", help="skip pip download (tests)")
    r = sub.add_parser("run", help="run the check (on the GPU machine)")
    r.add_argument("--bundle", type=Path, default=root / ".gpu_bundle")
    r.add_argument("--out", type=Path, default=None, help="results folder (default: BUNDLE/results)")
    r.add_argument("--tasks", nargs="*", default=["ner", "stance"], choices=["ner", "stance"])
    r.add_argument("--peak-tflops", type=float, default=None, help="bf16 dense peak when the card is not known")
    r.add_argument("--cpu-smoke", action="store_true", help="trainer=debug on CPU, no GPU figures")
    r.add_argument("--recipes", default=None, help="then cross-validate these stance recipes (comma-separated)")
    r.add_argument("--recipe-folds", type=int, default=3)
    r.add_argument("--recipe-epochs", type=float, default=None, help="default: each experiment's own")
    r.add_argument("--recipe-deadline-s", type=float, default=None,
                   help="start no recipe after this many seconds of the recipe stage")
    r.add_argument("--recipe-overrides", nargs="*", default=None, help="extra Hydra overrides for the recipes")
    args = parser.parse_args(argv)
    return pack(args) if args.cmd == "pack" else run(args)


if __name__ == "__main__":
    sys.exit(main())
