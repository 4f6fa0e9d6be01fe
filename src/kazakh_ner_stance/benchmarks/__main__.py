"""`python -m kazakh_ner_stance.benchmarks NAME ...`: the same command as `kns-bench` (the suite runs each
benchmark this way, in its own process)."""

import sys

from .cli import main

sys.exit(main())
