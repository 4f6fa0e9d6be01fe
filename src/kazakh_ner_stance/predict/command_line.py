"""`scripts/predict.py` (kns-predict): read a file or stdin, write JSON lines to a file or stdout."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path

from ..atomic import replace_file
from ..errors import DataValidationError, KnsError, Problem
from .inputs import ON_BAD_LINE, InputError, read_lines, scan_utf8
from .predictor import Predictor


def _stdout_logging_to_stderr() -> None:
    """Hydra's console log handler writes to stdout: move it so JSON lines stay clean."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stdout:
            handler.setStream(sys.stderr)


def predictor_from_config(cfg) -> Predictor:
    """The `Predictor` that configs/predict.yaml's (and serve.yaml's) model options describe."""
    checkpoint = cfg.get("checkpoint")
    if checkpoint is None or str(checkpoint) in ("", "???"):
        raise KnsError("no checkpoint given: pass checkpoint=DIR (a run's model/ folder)")
    return Predictor.from_pretrained(
        checkpoint, stance_checkpoint=cfg.get("stance_checkpoint"), backend=str(cfg.get("backend", "torch")),
        onnx_dir=cfg.get("onnx_dir"), device=cfg.get("device"), num_threads=cfg.get("num_threads"),
        batch_size=int(cfg.get("batch_size", 32)), max_length=cfg.get("max_length"),
        window_overlap=int(cfg.get("window_overlap", 32)), split_sentences=bool(cfg.get("split_sentences", True)),
        stance_target_types=cfg.get("stance_target_types"), cpu_linear=str(cfg.get("cpu_linear", "auto")),
        decoding=cfg.get("decoding"),
    )


def run_predict(cfg) -> dict:
    """`scripts/predict.py`: read `input` (a file or '-'), write JSON lines to `output`."""
    import time

    src, dst = str(cfg.get("input", "-")), str(cfg.get("output", "-"))
    on_bad_line = str(cfg.get("on_bad_line", "error"))
    if on_bad_line not in ON_BAD_LINE:
        raise KnsError(f"on_bad_line must be one of {ON_BAD_LINE}, not {on_bad_line!r}")
    if dst == "-":
        _stdout_logging_to_stderr()
    if src != "-" and not Path(src).is_file():
        raise KnsError(f"input file {src} does not exist")
    if src != "-" and on_bad_line == "error":
        # Every undecodable line of a file at once, before the model is loaded.
        problems = scan_utf8(Path(src))
        if problems:
            raise DataValidationError(problems + [Problem(src, None, "fix these lines, or pass on_bad_line=skip to "
                                                                     "predict the others and skip them")])
    predictor = predictor_from_config(cfg)
    fmt, chunk = str(cfg.get("input_format", "auto")), int(cfg.get("chunk_lines", 1000))
    started = time.perf_counter()
    n_lines = n_entities = n_targets = 0
    fin = _binary_stdin() if src == "-" else open(src, "rb")
    skipped: list[InputError] = []
    with contextlib.ExitStack() as stack:
        if src != "-":
            stack.enter_context(fin)
        if dst == "-":
            fout = sys.stdout
            if hasattr(fout, "reconfigure"):
                fout.reconfigure(encoding="utf-8")
        else:
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            tmp = stack.enter_context(replace_file(dst))  # a complete file or none
            fout = stack.enter_context(open(tmp, "w", encoding="utf-8"))
        source = "stdin" if src == "-" else src
        for rec in predictor.predict_lines(read_lines(fin, source), fmt, chunk, source=source,
                                           on_bad_line=on_bad_line, skipped=skipped):
            fout.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n_lines += 1
            n_entities += len(rec["entities"])
            n_targets += len(rec["targets"])
        fout.flush()
    elapsed = time.perf_counter() - started
    summary = {"lines": n_lines, "entities": n_entities, "targets": n_targets, "seconds": round(elapsed, 3),
               "task": predictor.task, "backend": predictor.backend, "skipped_lines": len(skipped)}
    if skipped:
        shown = "; ".join(str(e) for e in skipped[:10]) + (f"; ... and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        print(f"skipped {len(skipped)} bad line(s) (on_bad_line=skip): {shown}", file=sys.stderr)
    print(f"predicted {n_lines} line(s): {n_entities} entities, {n_targets} stance targets "
          f"in {elapsed:.2f}s ({predictor.task}, {predictor.backend}) -> {dst if dst != '-' else 'stdout'}",
          file=sys.stderr)
    return summary


def _binary_stdin():
    return getattr(sys.stdin, "buffer", None) or sys.stdin
