"""`kns-bench suite` (`make bench`): re-measure every generated results row in one command.

Each row's benchmark is a `kns-bench` benchmark (or a cheap quality command) run in its own process,
writing its figures to JSON. The suite collects them with each row's provenance into one results file
(default `docs/results.json`) and regenerates the table of `docs/results.md` from it. With `--check` it
writes nothing: it re-runs the selected benchmarks and names the figures that moved by more than their
stated tolerance.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import KnsError
from . import results_page
from .provenance import provenance, same_code_now

# A figure's tolerance: ("rel", 0.25) within 25% of the recorded value, ("abs", 0.01), ("exact", 0).
Tolerance = tuple[str, float]
SPEED: Tolerance = ("rel", 0.25)  # timings on a shared 2-core machine move by this much run to run
RATIO: Tolerance = ("rel", 0.20)
EXACT: Tolerance = ("exact", 0)


@dataclass
class Context:
    root: Path
    python: str
    work: Path  # where the scripts write their JSON and runs (artifacts/benchmarks)
    checkpoint: Path | None = None
    train_args: list[str] = field(default_factory=list)


@dataclass
class Benchmark:
    id: str
    title: str  # the results table row's first cell: how the row is found again
    long: bool
    argv: Callable[[Context, Path], list[str]]  # the command; it writes JSON to the path given
    figures: Callable[[dict], dict]  # that JSON -> the row's figures
    result: Callable[[dict, dict], str]  # (figures, JSON) -> the row's result cell
    tolerances: dict[str, Tolerance]
    json_path: Callable[[Context, Path], Path] = lambda ctx, default: default
    needs_checkpoint: bool = False


# How the suite starts a benchmark in its own process; shown as `kns-bench NAME ...`.
BENCH_MODULE = ["-m", "kazakh_ner_stance.benchmarks"]


def _bench(ctx: Context, name: str, *args: str) -> list[str]:
    return [ctx.python, *BENCH_MODULE, name, *args]


def _script(ctx: Context, name: str, *args: str) -> list[str]:
    return [ctx.python, str(ctx.root / "scripts" / name), *args]


def _hydra_dir(ctx: Context, name: str) -> str:
    return f"hydra.run.dir={ctx.work / 'hydra' / name}"


# ------------------------------------------------------------------------------ the benchmarks
def _data_figures(raw):
    return {"sentences": raw["sentences"], "build_s": min(raw["in_process_s"]), "command_s": raw["cli_s"],
            "identical": raw["identical"]}


def _data_result(f, raw):
    return (f"{f['sentences']:,} sentences: {f['build_s']:.2f} s in-process, {f['command_s']:.1f} s for the whole "
            f"command; {len(raw['in_process_s'])} builds byte-identical: {'yes' if f['identical'] else '**no**'}")


def _tok_figures(raw):
    return {"sentences": raw["sentences"], "exact": raw["exact"], "offsets_ok": raw["offsets_ok"],
            "tokens_per_s": raw["tokens_per_s"]}


def _tok_result(f, raw):
    return (f"{f['exact']:,} / {f['sentences']:,} KazNERD sentences recovered exactly "
            f"({100 * f['exact'] / f['sentences']:.2f}%); offsets exact in {f['offsets_ok']:,}; "
            f"{f['tokens_per_s']:,.0f} tokens/s")


def _kernels_figures(raw):
    rows = {r["what"]: r for r in raw["rows"]}
    pick = lambda prefix: next((r["speedup"] for w, r in rows.items() if w.startswith(prefix)), None)  # noqa: E731
    return {"gemm_speedup": pick("linear 1280x384"), "forward_backward_speedup": pick("linear, forward + backward"),
            "train_step_speedup": pick("training step"), "addmm_share": raw.get("addmm_share")}


def _kernels_result(f, raw):
    rows = {r["what"]: r for r in raw["rows"]}
    gemm = next(r for w, r in rows.items() if w.startswith("linear 1280x384"))
    step = next((r for w, r in rows.items() if w.startswith("training step")), None)
    text = (f"one e5-small feed-forward GEMM (32x40 pieces, 384→1536): {gemm['torch_ms']:.1f} → "
            f"{gemm['onednn_ms']:.1f} ms (**{f['gemm_speedup']:.2f}x**); forward + backward "
            f"{f['forward_backward_speedup']:.2f}x")
    if step:
        text += (f"; a training step of e5-small + token head: {step['torch_ms'] / 1e3:.2f} → "
                 f"{step['onednn_ms'] / 1e3:.2f} s ({f['train_step_speedup']:.2f}x, same loss)")
    if f.get("addmm_share") is not None:
        text += f"; {100 * f['addmm_share']:.0f}% of a forward pass is `aten::addmm`"
    return text


def _weak_figures(raw):
    mv = raw["majority_vote"]["per_class"]
    return {"favor_precision": mv["FAVOR"]["precision"], "favor_recall": mv["FAVOR"]["recall"],
            "against_precision": mv["AGAINST"]["precision"], "against_recall": mv["AGAINST"]["recall"],
            "macro_f1": raw["majority_vote"]["macro_f1"], "all_none_macro_f1": raw["all_none_baseline"]["macro_f1"]}


def _weak_result(f, raw):
    p = lambda x: "—" if x is None else f"{x:.2f}"  # noqa: E731
    return (f"FAVOR P {p(f['favor_precision'])} / R {p(f['favor_recall'])}, AGAINST P {p(f['against_precision'])} / "
            f"R {p(f['against_recall'])}, macro-F1 {f['macro_f1']:.3f} (all-NONE: {f['all_none_macro_f1']:.3f}); "
            f"{raw['items']:,} gold items")


def _agreement_figures(raw):
    return {"items": raw["n"], "kappa": raw["kappa"], **{f"kappa_{k}": v for k, v in raw["kappa_per_class"].items()}}


def _agreement_result(f, raw):
    return (f"Cohen's kappa **{f['kappa']:.3f}** over {f['items']} items (FAVOR {f['kappa_FAVOR']:.3f}, "
            f"AGAINST {f['kappa_AGAINST']:.3f}, NONE {f['kappa_NONE']:.3f}); observed agreement {raw['observed']:.3f}")


def _train_figures(raw):
    base, proj = raw["results"][0], raw["results"][1]
    return {
        "train_sentences": base["sentences"], "baseline_sentences_per_s": base["sentences_per_s"],
        "project_sentences_per_s": proj["sentences_per_s"], "baseline_peak_mb": base["peak_rss_mb"],
        "project_peak_mb": proj["peak_rss_mb"], "target_dev_f1": base["final_dev_f1"],
        "baseline_time_to_target_s": base["time_to_baseline_f1_s"],
        "project_time_to_target_s": proj["time_to_baseline_f1_s"],
        "speedup": proj.get("speedup_to_baseline_f1"), "project_final_dev_f1": proj["final_dev_f1"],
    }


def _train_result(f, raw):
    a = raw["args"]
    base, proj = raw["results"][0], raw["results"][1]
    sizes = (f"{f['train_sentences']:,} train sentences" + ("" if a.get("max_train_samples") else " (all)")
             + f"; baseline {a['epochs']:g} epochs, project {a['project_epochs']:g}"
             + (f"; dev scored on {a['max_eval_samples']} sentences" if a.get("max_eval_samples") else ""))
    t = f["project_time_to_target_s"]
    reach = (f"**reaches {f['target_dev_f1']:.3f} after {t:.0f} s ({f['speedup']:.2f}x sooner)**" if t
             else f"does not reach {f['target_dev_f1']:.3f}")
    return (f"{sizes}. Baseline (run_ner.py as pinned in `benchmarks/baseline.py`: first sub-word labelled, lr 5e-5, "
            f"batch 8, random order, every weight trained, PyTorch's GEMMs): {f['baseline_sentences_per_s']:.1f} "
            f"sentences/s, {f['baseline_peak_mb'] / 1024:.1f} GB peak, final dev F1 {f['target_dev_f1']:.3f} after "
            f"{f['baseline_time_to_target_s']:.0f} s of training; project (`trainer=cpu` as it is): "
            f"{f['project_sentences_per_s']:.1f} sentences/s, {f['project_peak_mb'] / 1024:.1f} GB peak, {reach}, "
            f"dev F1 {f['project_final_dev_f1']:.3f} after {proj['epochs']:g} epochs")


def _predict_rows(raw):
    rows = {r["system"]: r for r in raw["rows"]}
    get = lambda key: next((r for name, r in rows.items() if key in name), None)  # noqa: E731
    return rows, get


def _predict_figures(raw):
    _, get = _predict_rows(raw)
    pipe, auto, torch_k, onnx = get("pipeline"), get("cpu_linear=auto"), get("cpu_linear=torch"), get("onnx")
    out = {"sentences": raw["n"], "pipeline_sentences_per_s": pipe["sentences_per_s"]}
    for key, row in (("torch_onednn", auto), ("torch_default_kernels", torch_k), ("onnx", onnx)):
        if row:
            out[f"{key}_sentences_per_s"] = row["sentences_per_s"]
            out[f"{key}_speedup"] = row["ratio"]
            out[f"{key}_identical"] = row["agreement"]
    return out


def _predict_result(f, raw):
    def part(key, label):
        if f"{key}_speedup" not in f:
            return None
        return (f"{label} {f[f'{key}_sentences_per_s']:.1f} ({f[f'{key}_speedup']:.2f}x; identical entity sets "
                f"{100 * f[f'{key}_identical']:.1f}%)")
    parts = [p for p in (part("torch_onednn", "`Predictor` torch (oneDNN linears, the default)"),
                         part("torch_default_kernels", "torch with PyTorch's default kernels"),
                         part("onnx", "onnx")) if p]
    threads = (raw.get("provenance") or {}).get("machine", {}).get("threads")
    return (f"{f['sentences']:,} KazNERD sentences, {threads} thread(s), checkpoint `{Path(raw['checkpoint']).parent.name}`"
            f": pipeline {f['pipeline_sentences_per_s']:.1f} sentences/s; " + "; ".join(parts))


BENCHMARKS: list[Benchmark] = [
    Benchmark(
        "train", "training speed vs run_ner.py-style baseline", True,
        lambda ctx, out: _bench(ctx, "train", "--out", str(out.parent / "train"), *ctx.train_args),
        _train_figures, _train_result,
        {"train_sentences": EXACT, "baseline_sentences_per_s": SPEED, "project_sentences_per_s": SPEED,
         "baseline_peak_mb": ("rel", 0.15), "project_peak_mb": ("rel", 0.15), "target_dev_f1": ("abs", 0.02),
         "baseline_time_to_target_s": SPEED, "project_time_to_target_s": ("rel", 0.35), "speedup": ("rel", 0.35),
         "project_final_dev_f1": ("abs", 0.02)},
        json_path=lambda ctx, out: out.parent / "train" / "benchmark_train.json",
    ),
    Benchmark(
        "predict", "prediction speed and agreement vs `pipeline(\"token-classification\", aggregation_strategy=\"first\")`",
        True,
        lambda ctx, out: _bench(ctx, "predict", "--checkpoint", str(ctx.checkpoint), "--threads", "1",
                                "--export-onnx", "--onnx-dir", str(out.parent / "predict_onnx"), "--show", "0",
                                "--out", str(out)),
        _predict_figures, _predict_result,
        {"sentences": EXACT, "pipeline_sentences_per_s": SPEED, "torch_onednn_sentences_per_s": SPEED,
         "torch_onednn_speedup": RATIO, "torch_onednn_identical": ("abs", 0.005),
         "torch_default_kernels_sentences_per_s": SPEED, "torch_default_kernels_speedup": RATIO,
         "torch_default_kernels_identical": ("abs", 0.005), "onnx_sentences_per_s": SPEED, "onnx_speedup": RATIO,
         "onnx_identical": ("abs", 0.005)},
        needs_checkpoint=True,
    ),
    Benchmark(
        "cpu_kernels", "CPU GEMM kernels: oneDNN vs PyTorch's default (MKL)", False,
        lambda ctx, out: _bench(ctx, "cpu_kernels", "--threads", "1", "--json", str(out)),
        _kernels_figures, _kernels_result,
        {"gemm_speedup": RATIO, "forward_backward_speedup": RATIO, "train_step_speedup": RATIO,
         "addmm_share": ("abs", 0.05)},
    ),
    Benchmark(
        "data", "dataset build, full shared split", False,
        lambda ctx, out: _bench(ctx, "data", "--json", str(out)),
        _data_figures, _data_result,
        {"sentences": EXACT, "build_s": ("rel", 0.5), "command_s": ("rel", 0.5), "identical": EXACT},
    ),
    Benchmark(
        "tokenizer", "raw-text tokenizer round trip", False,
        lambda ctx, out: _bench(ctx, "tokenizer", "--show", "0", "--json", str(out)),
        _tok_figures, _tok_result,
        {"sentences": EXACT, "exact": EXACT, "offsets_ok": EXACT, "tokens_per_s": ("rel", 0.5)},
    ),
    Benchmark(
        "agreement", "stance agreement (600 items double-annotated)", False,
        lambda ctx, out: _script(ctx, "stance_annotation.py", "action=agreement",
                                 "files=[data/stance/kaznerd_valid_stance_double.jsonl]", f"out={out}",
                                 _hydra_dir(ctx, "agreement")),
        _agreement_figures, _agreement_result,
        {"items": EXACT, "kappa": ("abs", 0.0005), "kappa_FAVOR": ("abs", 0.0005), "kappa_AGAINST": ("abs", 0.0005),
         "kappa_NONE": ("abs", 0.0005)},
    ),
    Benchmark(
        "weak_labels", "weak labels vs gold (majority vote)", False,
        lambda ctx, out: _script(ctx, "stance_weak_labels.py", f"out_json={out}", _hydra_dir(ctx, "weak_labels")),
        _weak_figures, _weak_result,
        {k: ("abs", 0.0005) for k in ("favor_precision", "favor_recall", "against_precision", "against_recall",
                                      "macro_f1", "all_none_macro_f1")},
    ),
]
BY_ID = {b.id: b for b in BENCHMARKS}
TITLES = {b.id: b.title for b in BENCHMARKS}


# Arguments that only say where a script writes its output: left out of the results table's command.
_PLUMBING_FLAGS = ("--json", "--out", "--onnx-dir")
_PLUMBING_KEYS = ("out=", "out_json=", "hydra.run.dir=")


def shown_command(argv: list[str], root: Path) -> str:
    """The command as a user types it in the checkout (`kns-bench NAME ...` or `python scripts/...`,
    paths relative), without the output-location arguments the suite adds."""
    args = list(map(str, argv[1:]))
    if args[: len(BENCH_MODULE)] == BENCH_MODULE:
        parts, args = ["kns-bench"], args[len(BENCH_MODULE):]
    else:
        parts = ["python"]
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in _PLUMBING_FLAGS:
            skip = True
            continue
        if arg.startswith(_PLUMBING_KEYS):
            continue
        arg = arg.replace(str(root) + "/", "")
        if "/artifacts/" in arg:  # another checkout's run folder: shown as it sits in any checkout
            key, sep, path = arg.rpartition("=")
            arg = f"{key}{sep}artifacts/{path.split('/artifacts/', 1)[1]}"
        parts.append(arg)
    return "`" + shlex.join(parts) + "`"


# ------------------------------------------------------------------------------ running
def run_benchmark(bench: Benchmark, ctx: Context) -> dict:
    out = ctx.work / f"{bench.id}.json"
    argv = bench.argv(ctx, out)
    json_path = bench.json_path(ctx, out)
    json_path.unlink(missing_ok=True)
    if bench.id == "predict":  # a stale export of another checkpoint must not be timed
        shutil.rmtree(ctx.work / "predict_onnx", ignore_errors=True)
    log = ctx.work / f"{bench.id}.log"
    print(f"[{bench.id}] {shown_command(argv, ctx.root)}  (log: {log})", flush=True)
    started = time.time()
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.run(argv, cwd=ctx.root, stdout=fh, stderr=subprocess.STDOUT, text=True)
    wall = time.time() - started
    if proc.returncode != 0 or not json_path.is_file():
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise KnsError(f"benchmark {bench.id!r} failed (exit code {proc.returncode}); the end of {log}:\n{tail}")
    raw = json.loads(json_path.read_text(encoding="utf-8"))
    figures = bench.figures(raw)
    entry = {
        "title": bench.title,
        "command": shown_command(argv, ctx.root),
        "result": bench.result(figures, raw),
        "figures": figures,
        "tolerances": {k: list(v) for k, v in bench.tolerances.items()},
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(wall, 1),
        # the script's own record where it writes one (threads as the benchmark set them)
        "provenance": raw.get("provenance") or provenance(ctx.root),
    }
    if bench.id == "train":  # each run's overrides and the full config they resolve to
        entry["runs"] = {r["name"]: r.get("provenance") for r in raw["results"]}
    print(f"[{bench.id}] {wall:.0f} s: {entry['result']}", flush=True)
    return entry


def within(old, new, tol: Tolerance) -> bool:
    kind, value = tol
    if old is None or new is None or isinstance(old, (bool, str)) or kind == "exact":
        return old == new
    if kind == "abs":
        return abs(new - old) <= value
    return abs(new - old) <= value * abs(old)


def compare(old_entry: dict, new_entry: dict) -> list[dict]:
    """Figure-by-figure comparison of a results-file row with a fresh measurement."""
    rows = []
    tolerances = {k: tuple(v) for k, v in (new_entry.get("tolerances") or {}).items()}
    for name, new in new_entry["figures"].items():
        old = (old_entry.get("figures") or {}).get(name)
        tol = tolerances.get(name, EXACT)
        rows.append({"figure": name, "readme": old, "fresh": new, "tolerance": tol, "ok": within(old, new, tol)})
    return rows


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _tol(tol: Tolerance) -> str:
    kind, value = tol
    return "exact" if kind == "exact" else f"±{100 * value:g}%" if kind == "rel" else f"±{value:g}"


def code_changed_since(root: Path) -> Callable[[dict], bool]:
    """For a row's git record: has the code changed since it was measured (then the results page
    marks it as a figure of earlier code)?"""
    return lambda git: same_code_now(git, root) is False


def render_results_page(page_path: Path, results: dict, root: Path) -> bool:
    """Rewrite the results table of `page_path` (docs/results.md) from `results`; True when it changed."""
    text = page_path.read_text(encoding="utf-8")
    new = results_page.render(text, results, TITLES, code_changed_since(root))
    if new != text:
        write_text_atomic(page_path, new)
    return new != text


def load_results(path: Path) -> dict:
    if not path.is_file():
        return {"benchmarks": {}}
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise KnsError(f"{path}: not a results file ({err}); restore it from git or delete it to start afresh") from None
    if not isinstance(results, dict) or not isinstance(results.get("benchmarks", {}), dict):
        raise KnsError(f"{path}: not a results file (expected an object with a 'benchmarks' object)")
    return results


def add_arguments(ap: argparse.ArgumentParser) -> None:
    names = ", ".join(f"{b.id}{' (long)' if b.long else ''}" for b in BENCHMARKS)
    ap.add_argument("--only", nargs="+", metavar="ID", help=f"run only these: {names}")
    ap.add_argument("--skip", nargs="+", metavar="ID", default=[], help="run all but these")
    ap.add_argument("--quick", action="store_true", help="leave out the long ones (train, predict)")
    ap.add_argument("--check", action="store_true",
                    help="measure afresh and report recorded figures that differ by more than their tolerance; "
                         "writes neither the results file nor the results page (exit code 1 when any differ)")
    ap.add_argument("--render", action="store_true",
                    help="only regenerate the results page's table from the results file (runs no benchmark)")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="NER model for the prediction benchmark (default: artifacts/runs/kaznerd_ner_e5_small/model, "
                         "what `make run` trains)")
    ap.add_argument("--train-args", default="",
                    help="options for `kns-bench train`, e.g. \"--max-train-samples 1500\"")
    ap.add_argument("--results", type=Path, default=None, help="results file (default docs/results.json)")
    ap.add_argument("--page", type=Path, default=None, help="results page to regenerate (default docs/results.md)")
    ap.add_argument("--no-page", action="store_true", help="write the results file only")
    ap.add_argument("--work-dir", type=Path, default=None, help="default artifacts/benchmarks")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="kns-bench suite", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return ap.parse_args(argv)


def main(argv=None, root: Path | None = None) -> int:
    return run_suite(parse_args(argv), root)


def run_suite(args: argparse.Namespace, root: Path | None = None) -> int:
    """Run the chosen benchmarks, record them in the results file and regenerate the results
    page (or, with --check, compare; with --render, only regenerate); the exit code."""
    from ..config import project_root

    root = Path(root or project_root()).resolve()
    results_path = args.results or root / "docs" / "results.json"
    page_path = args.page or root / "docs" / "results.md"
    results = load_results(results_path)
    if not args.no_page:  # a page without the markers is refused before anything runs
        results_page.table_block(page_path.read_text(encoding="utf-8"))
    if args.render:
        changed = render_results_page(page_path, results, root)
        print(f"{page_path}: results table {'regenerated' if changed else 'already up to date'}")
        return 0

    unknown = sorted((set(args.only or []) | set(args.skip)) - set(BY_ID))
    if unknown:
        raise KnsError(f"unknown benchmark(s) {unknown}; choose from {sorted(BY_ID)}")
    chosen = [b for b in BENCHMARKS if (not args.only or b.id in args.only) and b.id not in args.skip
              and not (args.quick and b.long and not args.only)]
    ctx = Context(root=root, python=sys.executable, work=Path(args.work_dir or root / "artifacts" / "benchmarks"),
                  checkpoint=args.checkpoint or root / "artifacts" / "runs" / "kaznerd_ner_e5_small" / "model",
                  train_args=shlex.split(args.train_args))
    ctx.work.mkdir(parents=True, exist_ok=True)
    if any(b.needs_checkpoint for b in chosen) and not (ctx.checkpoint / "config.json").is_file():
        msg = f"no NER checkpoint at {ctx.checkpoint} for the prediction benchmark (train one with `make run`, or pass --checkpoint DIR)"
        if args.only and "predict" in args.only:
            raise KnsError(msg)
        print(f"skipping predict: {msg}")
        chosen = [b for b in chosen if not b.needs_checkpoint]

    fresh, failed = {}, []
    for bench in chosen:
        try:
            fresh[bench.id] = run_benchmark(bench, ctx)
        except KnsError as err:  # the other rows are still worth measuring
            print(f"error: {err}", file=sys.stderr)
            failed.append(bench.id)
            continue
        if not args.check:  # saved after each benchmark: a failure later loses nothing
            results.setdefault("benchmarks", {})[bench.id] = fresh[bench.id]
            results["updated"] = fresh[bench.id]["measured_at"]
            results_path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(results_path, json.dumps(results, indent=2, ensure_ascii=False) + "\n")

    if failed:
        print(f"\nfailed: {', '.join(failed)} (their rows keep their earlier figures)", file=sys.stderr)
    if args.check:
        return report_check(results, fresh, page_path, root) or (1 if failed else 0)
    print(f"\nresults: {results_path}")
    if not args.no_page:
        changed = render_results_page(page_path, results, root)
        print(f"{page_path}: results table {'regenerated' if changed else 'unchanged'}")
    return 1 if failed else 0


def report_check(results: dict, fresh: dict, page_path: Path, root: Path) -> int:
    bad = 0
    print("\n| benchmark | figure | results file | fresh | tolerance | |")
    print("|---|---|---:|---:|---|---|")
    for bench_id, entry in fresh.items():
        old = (results.get("benchmarks") or {}).get(bench_id)
        if old is None:
            print(f"| {bench_id} | (no row in the results file) | | | | DIFFERS |")
            bad += 1
            continue
        for row in compare(old, entry):
            bad += not row["ok"]
            print(f"| {bench_id} | {row['figure']} | {_fmt(row['readme'])} | {_fmt(row['fresh'])} | "
                  f"{_tol(row['tolerance'])} | {'ok' if row['ok'] else 'DIFFERS'} |")
    text = page_path.read_text(encoding="utf-8")
    if results_page.render(text, results, TITLES, code_changed_since(root)) != text:
        print(f"\n{page_path}'s results table is not what the results file gives: run `kns-bench suite --render`")
        bad += 1
    print(f"\n{bad} difference(s) beyond tolerance" if bad else "\nevery figure within its tolerance")
    return 1 if bad else 0
