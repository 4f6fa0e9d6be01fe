#!/usr/bin/env bash
# The GPU check, one command on the borrowed GPU machine (image: torch, transformers, accelerate);
# developer tooling, not part of the package.
# Prepare the bundle here first:  python tools/gpu_check.py pack   (wheels, trimmed encoder,
# datasets; under 64 MiB), send .gpu_bundle with the working tree, then on the GPU machine:
#   bash tools/gpu_check.sh [--tasks ner stance] [--out DIR]
# Installs the bundled wheels offline only when a package is missing, then trains and evaluates
# the NER and stance experiments with trainer=gpu and prints the table (tools/gpu_check.py run).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE="${KNS_GPU_BUNDLE:-.gpu_bundle}"
PY="${PYTHON:-python3}"
if [ ! -d "$BUNDLE/model" ]; then
  echo "error: no bundle at $BUNDLE (run: python tools/gpu_check.py pack)" >&2
  exit 2
fi
missing=$("$PY" - <<'PYEOF'
import importlib.util
mods = {"hydra": "hydra-core", "omegaconf": "omegaconf", "antlr4": "antlr4-python3-runtime", "datasets": "datasets",
        "evaluate": "evaluate", "seqeval": "seqeval", "dill": "dill", "multiprocess": "multiprocess",
        "xxhash": "xxhash", "fsspec": "fsspec"}
print(" ".join(d for m, d in mods.items() if importlib.util.find_spec(m) is None))
PYEOF
)
if [ -n "$missing" ]; then
  echo "installing from $BUNDLE/wheels (offline): $missing"
  # --no-deps: the bundle lists every dependency the image lacks; pip check reports any gap.
  "$PY" -m pip install --no-index --no-deps --find-links "$BUNDLE/wheels" $missing
  "$PY" -m pip check || echo "warning: pip check reports missing dependencies (above)" >&2
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec "$PY" tools/gpu_check.py run --bundle "$BUNDLE" "$@"
