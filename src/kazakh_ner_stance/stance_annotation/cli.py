"""The stance tool verbs: plain `run_*` functions (tests call them) and thin Hydra mains
(scripts/stance_candidates.py, stance_weak_labels.py, stance_annotation.py)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import hydra
import yaml
from omegaconf import DictConfig, OmegaConf

from .. import config as _config  # noqa: F401  (registers the OmegaConf resolvers)
from ..cli import _run
from ..errors import KnsError

log = logging.getLogger(__name__)


def _list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value)


def _sentences(path, entity_types):
    from ..data.iob2 import read_iob2

    path = Path(str(path))
    if not path.is_file():
        raise KnsError(f"{path}: the with_sentID sentence file does not exist")
    sents, _ = read_iob2(path, entity_types, orphan_inside="repair")
    if not sents or sents[0].sent_id is None:
        raise KnsError(f"{path}: has no sentence-ID lines (KazNERD's with_sentID file is needed)")
    return {s.sent_id: s for s in sents}


def _lfs(cfg, lexicon=None):
    from . import weak_labels

    opts = {k: int(cfg[k]) for k in ("window", "negation_window", "agent_window") if cfg.get(k) is not None}
    return weak_labels.make_lfs(weak_labels.load_lexicon(lexicon or cfg.get("lexicon") or "default"), **opts)


def _load_items(path, cfg) -> list[dict]:
    """Items JSONL; standoff lines without tokens take them from cfg.sentid_file."""
    from . import annotation
    from ..data.stance_layer import read_jsonl

    problems: list = []
    need = any("tokens" not in obj for _, obj in read_jsonl(str(path), problems))
    sentences = _sentences(cfg.sentid_file, _list(cfg.data.entity_types)) if need else None
    return annotation.load_items(str(path), sentences)


def add_weak_labels(items: list[dict], lfs) -> None:
    from . import weak_labels

    for it in items:
        votes = [lf(weak_labels.Item(it["tokens"], it["start"], it["end"], it.get("type"))) for lf in lfs]
        it["weak_label"] = weak_labels.majority_vote(votes)
        it["weak_votes"] = {lf.name: v for lf, v in zip(lfs, votes) if v is not None}


# --------------------------------------------------------------------------- candidates


def run_stance_candidates(cfg, predictor=None) -> list[dict]:
    """Candidates JSONL (`out`). `predictor` (tokens_list -> tags_list) replaces the NER
    checkpoint, e.g. a fake in tests."""
    from . import annotation, candidates

    target_types = _list(cfg.target_types)
    if str(cfg.source) == "iob2":
        items = candidates.iob2_candidates(_sentences(cfg.iob2_file, _list(cfg.data.entity_types)).values(), target_types)
    elif str(cfg.source) == "text":
        names = _list(cfg.get("names"))
        if cfg.get("names_file"):
            path = Path(str(cfg.names_file))
            if not path.is_file():
                raise KnsError(f"{path}: names file not found")
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or []
            names += loaded.get("names", []) if isinstance(loaded, dict) else loaded
        matcher = candidates.NameMatcher(names) if names else None
        if predictor is None and cfg.get("ner_checkpoint"):
            predictor = candidates.default_predictor(str(cfg.ner_checkpoint))
        inputs = _list(cfg.input)
        if not inputs:
            raise KnsError("stance candidates: give input=[file.txt,...] (or source=iob2)")
        items = candidates.extract_candidates(
            candidates.read_documents(inputs), matcher, predictor, target_types, batch_size=int(cfg.batch_size)
        )
    else:
        raise KnsError(f"source={cfg.source}: expected text or iob2")
    if cfg.get("limit"):
        items = items[: int(cfg.limit)]
    if cfg.get("weak_label"):
        add_weak_labels(items, _lfs(cfg))
    out = annotation.write_jsonl(items, str(cfg.out))
    by = Counter(it.get("type") for it in items)
    print(f"{len(items)} candidate items -> {out}")
    print("per type: " + ", ".join(f"{t} {n}" for t, n in by.most_common()))
    if cfg.get("weak_label"):
        print("weak labels: " + ", ".join(f"{k} {v}" for k, v in Counter(it["weak_label"] for it in items).most_common()))
    return items


# --------------------------------------------------------------------------- weak labels


def run_stance_weak_labels(cfg) -> dict | list:
    """Evaluate the LFs against the gold file (table printed, JSON written), or label items."""
    from . import annotation, weak_label_evaluation, weak_labels
    from ..data.stance_join import join_records
    from ..data.stance_layer import read_standoff

    lfs = _lfs(cfg)
    sentences = None
    if cfg.get("items_file"):
        items = _load_items(cfg.items_file, cfg)
        add_weak_labels(items, lfs)
        out = annotation.write_jsonl(items, str(cfg.out))
        print(f"{len(items)} items labelled -> {out}")
        print("weak labels: " + ", ".join(f"{k} {v}" for k, v in Counter(it["weak_label"] for it in items).most_common()))
        return items
    gold_path = Path(str(cfg.gold_file))
    if not gold_path.is_file():
        raise KnsError(f"{gold_path}: gold file not found (set gold_file=PATH)")
    sentences = _sentences(cfg.sentid_file, _list(cfg.data.entity_types))
    records = join_records(read_standoff(gold_path), sentences, _list(cfg.data.stance.target_types))
    items = [weak_labels.Item(sentences[r.sent_id].tokens, r.start, r.end, r.type) for r in records]
    report = weak_label_evaluation.evaluate(lfs, items, [r.label for r in records])
    report["gold_file"] = str(gold_path)
    print(weak_label_evaluation.report_text(report))
    out = Path(str(cfg.out_json))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nreport -> {out}")
    return report


# --------------------------------------------------------------------------- annotation


def run_stance_annotation(cfg):
    from . import agreement, annotation

    action = str(cfg.action)
    out_dir = Path(str(cfg.out_dir))
    if action == "export":
        if not cfg.get("items_file"):
            raise KnsError("action=export needs items_file=FILE.jsonl")
        items = _load_items(cfg.items_file, cfg)
        fmt = str(cfg.format)
        if fmt not in ("label_studio", "csv", "both"):
            raise KnsError(f"format={fmt}: expected label_studio, csv or both")
        written = []
        stem = Path(str(cfg.items_file)).stem
        if fmt in ("label_studio", "both"):
            written.append(annotation.export_label_studio(items, out_dir / f"{stem}.label_studio.json", bool(cfg.prefill_label)))
            written.append(out_dir / "label_config.xml")
        if fmt in ("csv", "both"):
            written.append(annotation.export_csv(items, out_dir / f"{stem}.csv", str(cfg.get("annotator") or "")))
        print(f"{len(items)} items exported:\n" + "\n".join(f"  {p}" for p in written))
        return written
    files = _list(cfg.files)
    if not files:
        raise KnsError(f"action={action} needs files=[...]")
    if action == "import":
        if cfg.get("reference"):
            reference = annotation.load_items(str(cfg.reference))
        elif cfg.get("sentid_file") and Path(str(cfg.sentid_file)).is_file():
            reference = _sentences(cfg.sentid_file, _list(cfg.data.entity_types))
        else:
            reference = None
        records = []
        for f in files:
            got = annotation.import_file(f, reference, cfg.get("annotator"), bool(cfg.allow_unlabelled))
            print(f"{f}: {len(got)} annotations")
            records += got
        out = Path(str(cfg.out)) if cfg.get("out") else out_dir / "imported.jsonl"
        annotation.write_jsonl([annotation.record_dict(r) for r in records], out)
        print(f"{len(records)} annotations -> {out}; labels: "
              + ", ".join(f"{k} {v}" for k, v in Counter(r.label for r in records).most_common()))
        return records
    if action == "merge":
        rows = annotation.merge([annotation.read_records(f) for f in files])
        out = Path(str(cfg.out)) if cfg.get("out") else out_dir / "merged.jsonl"
        annotation.write_jsonl(rows, out)
        ties = sum(1 for r in rows if r["label_final"] is None)
        print(f"{len(rows)} items merged -> {out}; {sum(r['agreed'] for r in rows)} unanimous, {ties} need adjudication")
        return rows
    if action == "agreement":
        rows = []
        for f in files:
            problems = []
            from ..data.stance_layer import read_jsonl

            objs = [o for _, o in read_jsonl(f, problems)]
            if objs and all("labels" in o or "label_a" in o for o in objs):
                rows += objs
            else:
                rows = None
                break
        if rows is None:  # imported per-annotator files: merge first
            rows = annotation.merge([annotation.read_records(f) for f in files])
        report = agreement.agreement(rows)
        print(agreement.agreement_text(report))
        out = Path(str(cfg.out)) if cfg.get("out") else out_dir / "agreement.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"report -> {out}")
        return report
    raise KnsError(f"action={action}: expected export, import, merge or agreement")


@hydra.main(version_base="1.3", config_path=str(_config.CONFIG_DIR), config_name="stance_candidates")
def candidates_main(cfg: DictConfig) -> None:
    _run(run_stance_candidates, cfg)


@hydra.main(version_base="1.3", config_path=str(_config.CONFIG_DIR), config_name="stance_weak_labels")
def weak_labels_main(cfg: DictConfig) -> None:
    _run(run_stance_weak_labels, cfg)


@hydra.main(version_base="1.3", config_path=str(_config.CONFIG_DIR), config_name="stance_annotation")
def annotation_main(cfg: DictConfig) -> None:
    _run(run_stance_annotation, cfg)
