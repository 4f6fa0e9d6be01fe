"""Time the dataset build on the full shared KazNERD split and check it is reproducible.

Builds twice in-process (timing each phase), compares every output file byte for byte,
then times the real command end to end (`python scripts/build_dataset.py`, imports included).

    kns-bench data [--source-dir ../shared/data/kaznerd] [--repeat 2] [--no-cli] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..config import compose, project_root
from .provenance import provenance

TARGET_S = 15.0


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--source-dir", default=None, help="default: data.source_dir of configs/data/kaznerd.yaml")
    ap.add_argument("--repeat", type=int, default=2, help="in-process builds (>= 2 checks byte identity)")
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end command timing")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")


def run_benchmark(args: argparse.Namespace) -> int:
    from ..data.build import BuildOptions, build_ner_dataset

    logging.basicConfig(level=logging.ERROR)  # the build's own warnings are shown by the command

    overrides = ["progress=false"]
    if args.source_dir:
        overrides.append(f"data.source_dir={Path(args.source_dir).resolve()}")
    with tempfile.TemporaryDirectory(prefix="kns-bench-") as tmp:
        tmp = Path(tmp)
        runs = []
        for i in range(max(1, args.repeat)):
            cfg = compose("build_dataset", overrides + [f"out_dir={tmp / f'build{i}'}"])
            stats = build_ner_dataset(BuildOptions.from_cfg(cfg))
            runs.append(stats)
        outputs = [_files(tmp / f"build{i}") for i in range(len(runs))]
        identical = all(o == outputs[0] for o in outputs[1:]) if len(outputs) > 1 else None

        cli_s = None
        if not args.no_cli:
            command = [
                sys.executable, str(project_root() / "scripts" / "build_dataset.py"),
                *overrides, f"out_dir={tmp / 'cli'}", f"hydra.run.dir={tmp / 'hydra'}",
            ]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, cwd=project_root())
            cli_s = time.perf_counter() - started
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1

    first = runs[0]
    phases = list(first["timings"])
    print(f"source: {', '.join(s['file'] for s in first['sources'])} ({first['input']['sentences']:,} sentences, "
          f"{first['input']['tokens']:,} tokens)")
    header = ["run", *phases]
    rows = [[f"in-process {i + 1}", *(f"{r['timings'][p]:.2f}" for p in phases)] for i, r in enumerate(runs)]
    width = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, width))) + "   (seconds)")
    for row in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, width))))
    if cli_s is not None:
        print(f"end-to-end `python scripts/build_dataset.py`: {cli_s:.2f} s (target < {TARGET_S:g} s: "
              f"{'met' if cli_s < TARGET_S else 'MISSED'})")
    if identical is not None:
        print(f"outputs of {len(runs)} builds byte-identical ({len(outputs[0])} files): {'yes' if identical else 'NO'}")
    print(f"fingerprint {first['fingerprint']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "sentences": first["input"]["sentences"], "tokens": first["input"]["tokens"],
            "in_process_s": [r["timings"]["total"] for r in runs], "timings": [r["timings"] for r in runs],
            "cli_s": cli_s, "identical": identical, "files": len(outputs[0]), "fingerprint": first["fingerprint"],
            "provenance": provenance(project_root()),
        }, indent=2) + "\n", encoding="utf-8")
    return 0 if identical in (True, None) else 1
