# The README's two commands: `make run` (set up + the main job: both datasets, NER and stance trained,
# evaluated and staged; FRESH=1 redoes every step, QUICK=1 is a few-minute smoke run) and
# `make test` (set up + tests);
# `make bench` re-measures the results table of docs/results.md (`kns-bench suite`; BENCH_ARGS: e.g.
# --quick, --only train, --check). One benchmark: `kns-bench NAME --help`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# On this kind of machine pip finds the CPU wheel of torch 2.13.0 on disk. Elsewhere, add
# TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu" to keep CUDA builds out.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
FRESH ?=
QUICK ?=
RUN_ARGS ?=

BENCH_ARGS ?=

.PHONY: setup run test bench clean-artifacts

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

run: setup
	$(BIN)/python scripts/run_default.py $(if $(FRESH),fresh=true) $(if $(QUICK),quick=true) $(RUN_ARGS)

test: setup
	$(BIN)/python -m pytest -q -n 2

bench: setup
	$(BIN)/python scripts/benchmarks.py suite $(BENCH_ARGS)

clean-artifacts:
	rm -rf artifacts
