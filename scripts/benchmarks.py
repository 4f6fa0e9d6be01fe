"""Re-measure every README results row in one command (`make bench`), write docs/results.json
and regenerate the README's results table; `--check` reports README figures that a fresh run
does not reproduce within their tolerance. `python scripts/benchmarks.py --help` lists the
benchmarks; the logic lives in kazakh_ner_stance.benchmarks.suite."""

from __future__ import annotations

import sys

from kazakh_ner_stance.benchmarks.suite import main
from kazakh_ner_stance.errors import KnsError

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KnsError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
