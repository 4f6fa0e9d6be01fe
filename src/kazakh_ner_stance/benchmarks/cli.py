"""`kns-bench NAME [--options] [KEY=VALUE ...]`: every benchmark behind one command.

`kns-bench suite` re-measures the results table (`make bench`); each other NAME runs one
benchmark, whose logic lives in `kazakh_ner_stance.benchmarks.<NAME>`. Options are `--dashed`;
the benchmarks that compose a training config take Hydra overrides as trailing KEY=VALUE
arguments. `kns-bench NAME --help` describes a benchmark and its options;
`python scripts/benchmarks.py NAME ...` is the same command from a checkout.
"""

from __future__ import annotations

import argparse
import re
import sys
from types import ModuleType

from ..errors import KnsError
from . import (
    cpu_kernels,
    data,
    decoding,
    ner_pair,
    predict,
    serve,
    stance_batches,
    stance_data,
    stance_pair,
    stance_posthoc,
    stance_probe,
    stance_recipes,
    suite,
    tokenizer,
    train,
    trim,
)

# name -> module with add_arguments(parser) and run_benchmark(args) -> exit code
BENCHMARKS: dict[str, ModuleType] = {
    "train": train,
    "predict": predict,
    "serve": serve,
    "data": data,
    "tokenizer": tokenizer,
    "trim": trim,
    "cpu_kernels": cpu_kernels,
    "stance_batches": stance_batches,
    "stance_probe": stance_probe,
    "stance_recipes": stance_recipes,
    "stance_data": stance_data,
    "stance_pair": stance_pair,
    "stance_posthoc": stance_posthoc,
    "ner_pair": ner_pair,
    "decoding": decoding,
}
PROG = "kns-bench"


def _summary(module: ModuleType) -> str:
    """The first sentence of a module's docstring: the sub-command's one-line help."""
    text = " ".join((module.__doc__ or "").split())
    return re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = ap.add_subparsers(dest="command", metavar="NAME", required=True)
    for name, module in {"suite": suite, **BENCHMARKS}.items():
        sub = commands.add_parser(name, help=_summary(module), description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
    return ap


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The sub-command's options, with `command` naming it."""
    return build_parser().parse_args(argv)


def run(argv: list[str] | None = None) -> int:
    """Run one sub-command; a KnsError (a user-fixable problem) propagates."""
    args = parse_args(argv)
    name = args.command
    del args.command  # the benchmarks record their options: only their own
    if name == "suite":
        return suite.run_suite(args)
    return BENCHMARKS[name].run_benchmark(args)


def main(argv: list[str] | None = None) -> int:
    """The console script: a KnsError becomes one `error:` line and exit code 2."""
    try:
        return run(argv)
    except KnsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
