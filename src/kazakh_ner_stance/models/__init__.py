"""Pretrained encoders: preparing them for offline use and finding them again.

`python scripts/prepare_model.py model=<name>` writes a checkpoint (see `prepare`);
training calls `resolve_model_dir(cfg.model)`, and model cards quote `read_provenance`.
"""

from .provenance import describe_provenance, read_provenance
from .prepare import is_complete, missing_parts, resolve_model_dir

__all__ = ["describe_provenance", "is_complete", "missing_parts", "read_provenance", "resolve_model_dir"]
