"""Steps that can be skipped when done and resumed when interrupted, with progress lines.

A step is done when its state file says so for the same fingerprint (its configuration and the
signatures of its inputs) AND every output still has the signature recorded when the step
finished. The state file is written only after the step returned and its outputs were checked, so
a step killed half-way (Ctrl-C, a killed process, a full disk) is never taken as done: the next
run redoes it, and a training step resumes from its last complete checkpoint instead of starting
over (its state says "started" with the same fingerprint). An output changed or deleted since
(another run, a hand edit) makes the step stale, and so does any change upstream: each step's
inputs are the outputs of the steps before it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..errors import KnsError
from ..training.checkpoints import write_json_atomic

STATE_VERSION = 1


def _is_reader_cache(path: Path) -> bool:
    # `datasets` writes cache-<hash>.arrow files into a built dataset when a reader maps it: they
    # are not the dataset, and counting them would make every training run look like a rebuild.
    return path.name.startswith("cache-") and path.suffix == ".arrow" or "__pycache__" in path.parts


def path_signature(path: Path) -> str | None:
    """A short hash of a file's or folder's file names, sizes and modification times (None when
    absent): cheap on gigabytes of weights, and any rewrite changes it."""
    path = Path(path)
    if not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not _is_reader_cache(p))
    entries = []
    for f in files:
        st = f.stat()
        entries.append([str(f.relative_to(path)) if f != path else "", st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:20]


def config_hash(config) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:20]


def input_signatures(inputs: list[Path]) -> dict[str, str | None]:
    return {str(p): path_signature(p) for p in inputs}


def fingerprint(config_digest: str, inputs: dict[str, str | None]) -> str:
    """What a step's result depends on: its configuration's hash and its inputs' signatures."""
    payload = {"config": config_digest, "inputs": inputs}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def why_stale(step: "Step", state: dict, config_digest: str, inputs: dict[str, str | None]) -> str:
    """In words, why a step recorded as done is redone (for the progress line)."""
    if state.get("config") != config_digest:
        return "its configuration changed"
    recorded = state.get("inputs") or {}
    for path, sig in inputs.items():
        if recorded.get(path) != sig:
            return f"its input {path} changed"
    for p in step.outputs:
        if (state.get("outputs") or {}).get(str(p)) != path_signature(p):
            return f"its output {p} is missing or was changed since"
    return "its inputs changed"


def format_duration(seconds: float) -> str:
    seconds = int(round(max(0.0, seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass
class StepContext:
    """What a running step gets: whether to resume an interrupted attempt, and a way to report
    its progress (fraction done, 0..1), from which its ETA is computed."""

    resume: bool
    report: Callable[[float, str], None]


@dataclass
class Step:
    key: str                       # state file name: a stable identifier
    title: str                     # what the progress lines call it
    run: Callable[[StepContext], None]
    config: object                 # resolved configuration (JSON-able) that enters the fingerprint
    inputs: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    always: bool = False           # run every time (the printed example): never skipped


@dataclass
class StepRecord:
    key: str
    title: str
    status: str                    # "ran" | "skipped"
    seconds: float                 # this run's wall time (skipped: 0)
    recorded_seconds: float        # the wall time of the run that made the outputs
    resumed: bool = False


class ProgressLine:
    """Prints "[k/N] title: 42% · 3:10 elapsed · ETA 4:20" at most every `every` seconds (and at
    the end). The ETA extrapolates this process's own rate, so a resumed step that starts at 60%
    does not promise to finish in no time."""

    def __init__(self, prefix: str, every: float = 30.0, clock=time.monotonic, out=print):
        self.prefix = prefix
        self.every = float(every)
        self.clock = clock
        self.out = out
        self.started = clock()
        self.first_fraction: float | None = None
        self.last_print = float("-inf")

    def __call__(self, fraction: float, note: str = "") -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        now = self.clock()
        if self.first_fraction is None:
            self.first_fraction = fraction
        if now - self.last_print < self.every and fraction < 1.0:
            return
        self.last_print = now
        self.out(self.line(fraction, note, now))

    def line(self, fraction: float, note: str = "", now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = now - self.started
        done_here = fraction - (self.first_fraction or 0.0)
        if fraction >= 1.0:
            eta = "done"
        elif done_here > 0:
            eta = "ETA " + format_duration(elapsed / done_here * (1.0 - fraction))
        else:
            eta = "ETA unknown"
        extra = f" · {note}" if note else ""
        return f"{self.prefix}: {fraction:4.0%} · {format_duration(elapsed)} elapsed · {eta}{extra}"


class StepRunner:
    """Runs steps in order under `state_dir`, skipping the ones that are done (see the module doc)."""

    def __init__(self, state_dir: Path, total: int, fresh: bool = False, out=print, progress_every: float = 30.0):
        self.state_dir = Path(state_dir)
        self.total = int(total)
        self.out = out
        self.progress_every = progress_every
        self.index = 0
        self.records: list[StepRecord] = []
        if fresh and self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def state_file(self, key: str) -> Path:
        return self.state_dir / f"{key}.json"

    def read_state(self, key: str) -> dict:
        path = self.state_file(key)
        if not path.is_file():
            return {}
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}  # unreadable: the step is redone, which is always safe
        return state if isinstance(state, dict) and state.get("version") == STATE_VERSION else {}

    def is_done(self, step: Step, fp: str, state: dict) -> bool:
        if step.always or state.get("status") != "done" or state.get("fingerprint") != fp:
            return False
        recorded = state.get("outputs") or {}
        return all(recorded.get(str(p)) is not None and recorded.get(str(p)) == path_signature(p)
                   for p in step.outputs)

    def run(self, step: Step) -> StepRecord:
        self.index += 1
        prefix = f"[{self.index}/{self.total}] {step.title}"
        # Each input folder is listed once per step: its signature serves the fingerprint, the
        # reason a step is redone, and the state written.
        config_digest, inputs = config_hash(step.config), input_signatures(step.inputs)
        fp = fingerprint(config_digest, inputs)
        state = self.read_state(step.key)
        if self.is_done(step, fp, state):
            self.out(f"{prefix}: done earlier with the same inputs and configuration, skipped "
                     f"(took {format_duration(state.get('seconds', 0))} then)")
            record = StepRecord(step.key, step.title, "skipped", 0.0, float(state.get("seconds", 0.0)))
            self.records.append(record)
            return record
        resume = state.get("status") == "started" and state.get("fingerprint") == fp
        if resume:
            why = " (resuming the interrupted attempt)"
        elif state.get("status") == "done" and not step.always:
            why = f" (redone: {why_stale(step, state, config_digest, inputs)})"
        elif state.get("status") == "started":
            why = " (the interrupted attempt had other inputs: starting over)"
        else:
            why = ""
        recorded = {"fingerprint": fp, "config": config_digest, "inputs": inputs}
        self._write(step.key, {"status": "started", **recorded, "started": _now()})
        self.out(f"{prefix} ...{why}")
        progress = ProgressLine(prefix, every=self.progress_every, out=self.out)
        started = time.monotonic()
        step.run(StepContext(resume=resume, report=progress))
        seconds = time.monotonic() - started
        missing = [str(p) for p in step.outputs if not Path(p).exists()]
        if missing:
            raise KnsError(f"step '{step.title}' finished without writing {', '.join(missing)}")
        self._write(step.key, {
            "status": "done", **recorded, "finished": _now(), "seconds": round(seconds, 1),
            "outputs": {str(p): path_signature(p) for p in step.outputs},
        })
        self.out(f"{prefix}: done in {format_duration(seconds)}")
        record = StepRecord(step.key, step.title, "ran", seconds, seconds, resumed=resume)
        self.records.append(record)
        return record

    def _write(self, key: str, state: dict) -> None:
        write_json_atomic(self.state_file(key), {"version": STATE_VERSION, **state})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

