"""Offline validation of model and dataset cards (the YAML header the Hub reads).

`huggingface_hub`'s `RepoCard.validate()` posts the card to the Hub's `/api/validate-yaml`,
which needs the network. Offline we run everything the library itself does when it loads a
card, plus the Hub's documented field rules:

1. the header is a YAML mapping between `---` lines (the library's own `REGEX_YAML_BLOCK`),
   and `metadata_load` reads the same mapping back from the file;
2. `ModelCard(text)` / `DatasetCard(text)` parse it with `ignore_metadata_errors=False`,
   which turns the `model-index` into `EvalResult`s and validates them;
3. the `model-index` survives `model_index_to_eval_results` -> `eval_results_to_model_index`
   unchanged (so the Hub shows exactly the numbers we wrote), and re-serialising the card
   data gives the same mapping;
4. field rules: language codes, a licence identifier the Hub knows (`other` needs
   `license_name` and `license_link`), a known pipeline tag / task category, `base_model` and
   `datasets` as valid repo ids, tags as strings, finite numeric metric values, a non-empty
   body, and for datasets `configs[].data_files` pointing at files that exist.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..errors import KnsError

# Licence identifiers accepted by the Hub (https://huggingface.co/docs/hub/repositories-licenses).
HUB_LICENSES = frozenset(
    """apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear
    c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0
    cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0
    cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl
    ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl
    lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0
    odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr
    deepfloyd-if-license llama2 llama3 llama3.1 llama3.2 llama3.3 gemma unknown other""".split()
)

# Pipeline tags / task categories this project can produce (a subset of the Hub's list).
HUB_PIPELINE_TAGS = frozenset(
    """token-classification text-classification zero-shot-classification feature-extraction
    fill-mask sentence-similarity question-answering summarization translation
    text-generation""".split()
)
HUB_TASK_IDS = frozenset(
    """named-entity-recognition part-of-speech sentiment-classification multi-class-classification
    multi-label-classification topic-classification fact-checking natural-language-inference""".split()
)
HUB_SIZE_CATEGORIES = frozenset(
    ["n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B", "1B<n<10B",
     "10B<n<100B", "100B<n<1T", "n>1T"]
)

MODEL_REQUIRED = ("language", "license", "base_model", "datasets", "pipeline_tag", "tags", "model-index")
DATASET_REQUIRED = ("language", "license", "pretty_name", "task_categories")

_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# A template field left unfilled, or a missing value rendered as text.
_TEMPLATE_HOLE = re.compile(r"\{[a-z_][a-z0-9_.]*\}|\bNone\b|\bnan\b")


class CardValidationError(KnsError):
    """The card would not pass the Hub's metadata checks."""


def split_card(text: str) -> tuple[dict, str]:
    """(header mapping, body) exactly as huggingface_hub splits a card."""
    import yaml
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    match = REGEX_YAML_BLOCK.search(text)
    if not match or match.start() != 0:
        raise CardValidationError("the card has no YAML header (a `---` block at the very top)")
    try:
        meta = yaml.safe_load(match.group(2))
    except yaml.YAMLError as err:
        raise CardValidationError(f"the card's YAML header does not parse: {err}") from None
    if not isinstance(meta, dict):
        raise CardValidationError("the card's YAML header is not a mapping")
    return meta, text[match.end():]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _check_repo_ids(field: str, value, problems: list[str]) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    for item in _as_list(value):
        if not isinstance(item, str) or not item:
            problems.append(f"{field}: {item!r} is not a repo id")
            continue
        try:
            validate_repo_id(item)
        except HFValidationError as err:
            problems.append(f"{field}: {item!r} is not a valid repo id ({err})")


def _check_common(meta: dict, body: str, problems: list[str]) -> None:
    langs = meta.get("language")
    if langs is not None:
        for lang in _as_list(langs):
            if not isinstance(lang, str) or not _LANG.match(lang):
                problems.append(f"language: {lang!r} is not an ISO 639 code")
    lic = meta.get("license")
    if lic is not None:
        for item in _as_list(lic):
            if item not in HUB_LICENSES:
                problems.append(f"license: {item!r} is not a licence identifier the Hub knows")
        if "other" in _as_list(lic) and not (meta.get("license_name") and meta.get("license_link")):
            problems.append("license: other needs license_name and license_link")
    tags = meta.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags)):
        problems.append("tags: must be a list of non-empty strings")
    if not body.strip():
        problems.append("the card has no text below the YAML header")
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", body, flags=re.S))  # code may hold braces
    hole = _TEMPLATE_HOLE.search(prose)
    if hole:
        problems.append(f"the card's text holds an unfilled template value ({hole.group(0)!r})")


def _raise(kind: str, problems: list[str]) -> None:
    if problems:
        raise CardValidationError(f"{kind} card fails validation:\n- " + "\n- ".join(problems))


def validate_model_card(text: str, required=MODEL_REQUIRED) -> dict:
    """Validate a model card offline; returns its header mapping. Raises CardValidationError."""
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard import eval_results_to_model_index, model_index_to_eval_results

    meta, body = split_card(text)
    problems = [f"missing `{key}`" for key in required if meta.get(key) in (None, "", [])]
    _check_common(meta, body, problems)
    try:
        card = ModelCard(text, ignore_metadata_errors=False)
    except (ValueError, TypeError, KeyError) as err:
        _raise("model", problems + [f"huggingface_hub cannot load it: {err}"])
    if card.data.to_dict() != meta:
        problems.append("re-serialising the card data with huggingface_hub changes it (non-canonical header)")
    tag = meta.get("pipeline_tag")
    if tag is not None and tag not in HUB_PIPELINE_TAGS:
        problems.append(f"pipeline_tag: {tag!r} is not a pipeline tag")
    for field in ("base_model", "datasets"):
        if meta.get(field) is not None:
            _check_repo_ids(field, meta[field], problems)
    index = meta.get("model-index")
    if index is not None:
        try:
            name, results = model_index_to_eval_results(index)
        except (KeyError, TypeError, ValueError) as err:
            _raise("model", problems + [f"model-index does not parse: {err!r}"])
        if not name:
            problems.append("model-index: the model has no name")
        if not results:
            problems.append("model-index: no results")
        if eval_results_to_model_index(name, results) != index:
            problems.append("model-index does not round-trip through huggingface_hub's EvalResult")
        for r in results:
            where = f"model-index result {r.task_type}/{r.dataset_name}/{r.metric_type}"
            if not r.dataset_split:
                problems.append(f"{where}: no dataset split")
            if not isinstance(r.metric_value, (int, float)) or isinstance(r.metric_value, bool) \
                    or not math.isfinite(r.metric_value):
                problems.append(f"{where}: value {r.metric_value!r} is not a finite number")
            if tag is not None and r.task_type != tag:
                problems.append(f"{where}: task type differs from pipeline_tag {tag!r}")
    _raise("model", problems)
    return meta


def validate_dataset_card(text: str, folder: str | Path | None = None, required=DATASET_REQUIRED) -> dict:
    """Validate a dataset card offline (and, given its folder, that `configs` point at real files)."""
    from huggingface_hub import DatasetCard

    meta, body = split_card(text)
    problems = [f"missing `{key}`" for key in required if meta.get(key) in (None, "", [])]
    _check_common(meta, body, problems)
    try:
        card = DatasetCard(text, ignore_metadata_errors=False)
    except (ValueError, TypeError, KeyError) as err:
        _raise("dataset", problems + [f"huggingface_hub cannot load it: {err}"])
    if card.data.to_dict() != meta:
        problems.append("re-serialising the card data with huggingface_hub changes it (non-canonical header)")
    for cat in _as_list(meta.get("task_categories") or []):
        if cat not in HUB_PIPELINE_TAGS:
            problems.append(f"task_categories: {cat!r} is not a task category")
    for tid in _as_list(meta.get("task_ids") or []):
        if tid not in HUB_TASK_IDS:
            problems.append(f"task_ids: {tid!r} is not a task id")
    for size in _as_list(meta.get("size_categories") or []):
        if size not in HUB_SIZE_CATEGORIES:
            problems.append(f"size_categories: {size!r} is not a size category")
    configs = meta.get("configs")
    if configs is not None:
        if not isinstance(configs, list) or not configs:
            problems.append("configs: must be a non-empty list")
        else:
            for cfg in configs:
                if not isinstance(cfg, dict) or not cfg.get("config_name") or not cfg.get("data_files"):
                    problems.append(f"configs: {cfg!r} needs config_name and data_files")
                    continue
                for entry in _as_list(cfg["data_files"]):
                    if not isinstance(entry, dict) or not entry.get("split") or not entry.get("path"):
                        problems.append(f"configs[{cfg['config_name']}]: {entry!r} needs split and path")
                    elif folder is not None and not any(Path(folder).glob(str(entry["path"]))):
                        problems.append(f"configs[{cfg['config_name']}]: {entry['path']} matches no file")
    _raise("dataset", problems)
    return meta


def validate_card_file(path: str | Path, repo_type: str = "model") -> dict:
    """Validate README.md in a release folder; also checks that `metadata_load` reads the same header."""
    from huggingface_hub import metadata_load

    path = Path(path)
    if not path.is_file():
        raise CardValidationError(f"{path} does not exist")
    text = path.read_text(encoding="utf-8")
    if repo_type == "model":
        meta = validate_model_card(text)
    else:
        meta = validate_dataset_card(text, folder=path.parent)
    if metadata_load(path) != meta:
        raise CardValidationError(f"{path}: huggingface_hub's metadata_load reads a different header")
    return meta
