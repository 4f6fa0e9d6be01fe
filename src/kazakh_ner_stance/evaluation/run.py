"""`scripts/evaluate.py`: evaluate a checkpoint on a built split or on any IOB2 file.

    python scripts/evaluate.py checkpoint=DIR data.test_file=FILE         # any IOB2 file
    python scripts/evaluate.py checkpoint=DIR [data=kaznerd] split=test   # a built dataset
    ... out_dir=DIR bootstrap.n=1000 bootstrap.seed=0 batch_size=32
    python scripts/evaluate.py checkpoint=STANCE_DIR [data=kaznerd_stance] [split=test]

The task comes from the checkpoint's kns_training.json. NER: ``tasks.ner.load_ner_checkpoint``
+ ``predict_word_tags`` (one tag per gold word, long sentences windowed); headline numbers
come from the offline `evaluate` module ``kns_seqeval`` and must agree with the pure
``compute_ner_metrics`` (which also gives CIs and the error analysis). Stance:
``tasks.stance.load_stance_checkpoint`` + ``predict_stance_probs`` on a built stance split.

Writes into out_dir (default ``<checkpoint>/eval/<split or file stem>``): ``metrics.json``
(schema in ``ner_metrics``' docstring), ``report.md``, ``report.html`` (self-contained),
``plots/*.png`` and ``predictions.tsv``; prints a short table. Files are written to a
staging folder first and moved into place, ``metrics.json`` last.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..atomic import swap_into_place, write_text_atomic
from ..errors import KnsError
from ..labels import STANCE_LABELS, entity_types_of
from ..tasks.registry import TASKS, TaskSpec, task_spec
from ..training import checkpoints
from ..training.checkpoints import read_training_info
from .ner_metrics import compute_ner_metrics
from .report import summary_text, write_report
from .stance_metrics import compute_stance_metrics

log = logging.getLogger(__name__)


@dataclass
class EvalData:
    tokens: list[list[str]]
    tags: list[list[str]]
    sent_ids: list[str]
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------- checkpoint


def check_checkpoint(path) -> Path:
    """The resolved checkpoint folder, or a KnsError (training.checkpoints.check_checkpoint; the
    task's loader checks the weights and tokenizer)."""
    return checkpoints.check_checkpoint(path, complete=False)[0]


def _first(d: dict, *keys, default=None):
    for k in keys:
        cur = d
        for part in k.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                cur = None
                break
        if cur is not None:
            return cur
    return default


def training_info(ckpt: Path) -> dict:
    """What training recorded in kns_training.json (empty when absent), normalised."""
    raw = read_training_info(ckpt)
    if not raw:
        return {}
    return {
        "task": _first(raw, "task", "config.task.name", "config.task", "config.data.task"),
        "model": _first(raw, "model_name", "model", "config.model.name", "config.model.hub_id"),
        "data_fingerprint": _first(raw, "dataset_fingerprint", "data_fingerprint", "fingerprint"),
        "train_time_s": _first(raw, "train_time_s", "train_time_seconds", "train_runtime"),
        "git_commit": _first(raw, "git_commit", "commit", "git.commit", "git"),
    }


def _ner_backend():
    """(load_ner_checkpoint, predict_word_tags); a seam the tests replace."""
    from ..tasks.ner import load_ner_checkpoint, predict_word_tags

    return load_ner_checkpoint, predict_word_tags


# ---------------------------------------------------------------------------- data


def load_eval_data(cfg: DictConfig) -> EvalData:
    from ..data.download import sha256_file

    test_file = OmegaConf.select(cfg, "data.test_file", default=None)
    if test_file:
        from ..data.iob2 import read_iob2

        path = Path(str(test_file)).expanduser()
        if not path.is_file():
            raise KnsError(f"test file {path} does not exist")
        entity_types = list(OmegaConf.select(cfg, "data.entity_types", default=[]) or [])
        orphan = OmegaConf.select(cfg, "data.validation.orphan_inside", default="repair")
        sentences, stats = read_iob2(path, entity_types, orphan_inside=orphan)
        if not sentences:
            raise KnsError(f"test file {path} holds no sentences")
        return EvalData(
            tokens=[list(s.tokens) for s in sentences],
            tags=[list(s.tags) for s in sentences],
            sent_ids=[str(s.sent_id) if s.sent_id is not None else f"{path.name}:{s.line}" for s in sentences],
            meta={"kind": "file", "path": str(path.resolve()), "split": None, "fingerprint": "sha256:" + sha256_file(path),
                  "name": path.stem, "read_stats": _jsonable(stats)},
        )
    dataset_dir = Path(str(OmegaConf.select(cfg, "dataset_dir", default=None) or cfg.data.dataset_dir))
    if not dataset_dir.exists():
        raise KnsError(
            f"built dataset {dataset_dir} does not exist: run scripts/build_dataset.py first, "
            "or evaluate a file with data.test_file=PATH"
        )
    return built_eval_split(dataset_dir, str(cfg.split))[0]


def built_eval_split(dataset_dir: Path, split: str):
    """(EvalData, the split itself) of a built dataset with NER tags (NER or joint)."""
    from ..data.built_dataset import dataset_fingerprint, load_built_dataset

    dd = load_built_dataset(dataset_dir)
    if split not in dd:
        raise KnsError(f"built dataset {dataset_dir} has no split {split!r} (has: {', '.join(dd.keys())})")
    ds = dd[split]
    if "ner_tags" not in ds.column_names:
        raise KnsError(f"built dataset {dataset_dir} has no NER tags (column 'ner_tags'): not an NER or joint dataset")
    names = ds.features["ner_tags"].feature.names
    ids = ds["sent_id"] if "sent_id" in ds.column_names else [str(i) for i in range(len(ds))]
    data = EvalData(
        tokens=[list(t) for t in ds["tokens"]],
        tags=[[names[i] for i in row] for row in ds["ner_tags"]],
        sent_ids=[str(i) for i in ids],
        meta={"kind": "built", "path": str(dataset_dir.resolve()), "split": split,
              "fingerprint": dataset_fingerprint(dataset_dir), "name": split},
    )
    return data, ds


def _jsonable(x):
    try:
        json.dumps(x)
        return x
    except TypeError:
        if hasattr(x, "__dict__"):
            return _jsonable(vars(x))
        if isinstance(x, dict):
            return {str(k): _jsonable(v) for k, v in x.items()}
        if isinstance(x, (list, tuple, set)):
            return [_jsonable(v) for v in x]
        return str(x)


# ---------------------------------------------------------------------------- run


def _bootstrap(cfg) -> tuple[int, int, float]:
    b = cfg.get("bootstrap") or {}
    n, seed, conf = int(b.get("n", 1000)), int(b.get("seed", 0)), float(b.get("confidence", 0.95))
    if n < 0 or not 0 < conf < 1:
        raise KnsError(f"bootstrap: n must be >= 0 and 0 < confidence < 1 (got n={n}, confidence={conf})")
    return n, seed, conf


def _agree(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check_against_module(metrics: dict, gold, pred) -> dict:
    """Recompute the headline numbers with the offline `evaluate` module (seqeval) and
    require agreement; the module's numbers are the ones reported."""
    from .metrics import load_metric

    ev = load_metric("kns_seqeval").compute(predictions=pred, references=gold)
    pairs = [
        (metrics["micro"], "precision", ev["overall_precision"]),
        (metrics["micro"], "recall", ev["overall_recall"]),
        (metrics["micro"], "f1", ev["overall_f1"]),
        (metrics["macro"], "precision", ev["macro_precision"]),
        (metrics["macro"], "recall", ev["macro_recall"]),
        (metrics["macro"], "f1", ev["macro_f1"]),
    ]
    types = {k for k, v in ev.items() if isinstance(v, dict)}
    if types != set(metrics["per_type"]):
        raise RuntimeError(f"internal: entity types differ from seqeval's: {sorted(types)} vs {sorted(metrics['per_type'])}")
    for t in types:
        row = metrics["per_type"][t]
        pairs += [(row, k, ev[t][k]) for k in ("precision", "recall", "f1")]
        if row["support"] != ev[t]["number"]:
            raise RuntimeError(f"internal: support of {t} differs from seqeval's")
    for row, key, value in pairs:
        if not _agree(row[key], value):
            raise RuntimeError(f"internal: {key}={row[key]} differs from seqeval's {value}")
        row[key] = float(value)
    metrics["token_accuracy"] = float(ev["overall_accuracy"])
    metrics["metric_module"] = "kns_seqeval"
    return metrics


def _write_outputs(out_dir: Path, metrics: dict, extra: dict[str, str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        write_report(metrics, staging)
        for name, text in extra.items():
            (staging / name).write_text(text, encoding="utf-8")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        swap_into_place(staging / "plots", out_dir / "plots")  # old plots survive a failure
        for name in [*extra, "report.md", "report.html", "metrics.json"]:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _predictions_tsv(data: EvalData, pred: list[list[str]]) -> str:
    lines = ["# token\tgold\tpredicted"]
    for sid, toks, gold, p in zip(data.sent_ids, data.tokens, data.tags, pred):
        lines.append(f"# sent_id = {sid}")
        lines.extend(f"{t}\t{g}\t{q}" for t, g, q in zip(toks, gold, p))
        lines.append("")
    return "\n".join(lines) + "\n"


def _out_dir(cfg, ckpt: Path, name: str) -> Path:
    out = cfg.get("out_dir")
    if out in (None, "", "???"):
        return ckpt / "eval" / name
    return Path(str(out)).expanduser()


def score_ner(cfg: DictConfig, data: EvalData, pred: list[list[str]]) -> dict:
    """Strict IOB2 entity metrics with bootstrap CIs and the error analysis, checked against
    the offline seqeval module (NER checkpoints and a joint checkpoint's NER head)."""
    n, seed, conf = _bootstrap(cfg)
    errs = cfg.get("errors") or {}
    metrics = {"task": "ner", "split": data.meta["name"]}
    metrics.update(
        compute_ner_metrics(
            data.tags, pred, bootstrap_n=n, seed=seed, confidence=conf, tokens=data.tokens, sent_ids=data.sent_ids,
            n_examples=int(errs.get("examples", 3)), top_k=int(errs.get("top_confusions", 5)),
        )
    )
    check_against_module(metrics, data.tags, pred)
    return metrics


def evaluate_ner(cfg: DictConfig, ckpt: Path, info: dict) -> tuple[dict, EvalData, list[list[str]]]:
    data = load_eval_data(cfg)
    load_ner_checkpoint, predict_word_tags = _ner_backend()
    try:
        model, tokenizer, id2label = load_ner_checkpoint(ckpt)
    except KnsError:
        raise
    except (OSError, ValueError) as err:
        raise KnsError(f"cannot load checkpoint {ckpt}: {err}") from err
    # Windows as the run trained and scored them, so evaluate.py reproduces the run's own test
    # score; `max_length=` overrides the length.
    trained = checkpoints.trained_inference(ckpt)
    kwargs = {"batch_size": int(cfg.get("batch_size") or 32)}
    max_length = cfg.get("max_length") or trained["max_length"]
    if max_length:
        kwargs["max_length"] = int(max_length)
    if trained["overlap"] is not None:
        kwargs["overlap"] = trained["overlap"]
    # As the run decoded its dev and test scores, unless `decoding=` says otherwise.
    kwargs["decoding"] = str(cfg.get("decoding") or trained["decoding"])
    pred = predict_word_tags(model, tokenizer, data.tokens, **kwargs)
    if len(pred) != len(data.tokens) or any(len(p) != len(t) for p, t in zip(pred, data.tokens)):
        raise RuntimeError("internal: predict_word_tags did not return one tag per gold word")

    metrics = score_ner(cfg, data, pred)
    model_types = set(entity_types_of((id2label or {}).values()))
    gold_types = {t for t in metrics["per_type"] if metrics["per_type"][t]["support"] > 0}
    unknown = sorted(gold_types - model_types) if model_types else []
    if unknown:
        metrics["notes"] = [f"gold entity types the model cannot predict: {', '.join(unknown)}"]
    return metrics, data, pred


def _stance_backend():
    """(load_stance_checkpoint, predict_stance_probs) from the stance task; a test seam."""
    from ..tasks.stance import load_stance_checkpoint, predict_stance_probs

    return load_stance_checkpoint, predict_stance_probs


def _task_dataset_dir(cfg: DictConfig, ckpt: Path, spec: TaskSpec) -> Path:
    """The built dataset a checkpoint of task `spec` is scored on: this run's data config when
    it is one of that task (e.g. ``data=kaznerd_stance``), else the one the checkpoint was
    trained on."""
    task, data_option = spec.name, f"data={spec.dataset_config}"
    if str(OmegaConf.select(cfg, "data.task", default="")) == task:
        return Path(str(OmegaConf.select(cfg, "dataset_dir", default=None) or cfg.data.dataset_dir))
    try:
        raw = read_training_info(ckpt)
    except KnsError:
        raw = {}
    trained_on = _first(raw, "config.data.dataset_dir", "data_dir")
    if trained_on and _first(raw, "config.data.task") == task:
        return Path(str(trained_on))
    raise KnsError(
        f"checkpoint {ckpt} is a {task} model: evaluate it on a built {task} dataset, "
        f"e.g. {data_option} (build it with scripts/build_dataset.py {data_option})"
    )


def evaluate_stance(cfg: DictConfig, ckpt: Path, info: dict) -> dict:
    """Stance checkpoints on a built stance split (columns tokens, start, end, label,
    target_type); inference is the stance task's ``predict_stance_probs``."""
    if OmegaConf.select(cfg, "data.test_file", default=None):
        raise KnsError("data.test_file is for NER (IOB2); evaluate a stance model on a built stance dataset "
                       "(data=kaznerd_stance split=test)")
    import datasets

    spec = task_spec("stance")
    dataset_dir = _task_dataset_dir(cfg, ckpt, spec)
    if not (dataset_dir / "dataset_dict.json").is_file():
        raise KnsError(f"no built stance dataset at {dataset_dir}: run scripts/build_dataset.py "
                       f"data={spec.dataset_config}")
    split = str(cfg.split)
    dd = datasets.load_from_disk(str(dataset_dir))
    if split not in dd:
        raise KnsError(f"stance dataset {dataset_dir} has no split {split!r} (has: {', '.join(dd.keys())})")
    ds = dd[split]
    missing = {"tokens", "start", "end", "label"} - set(ds.column_names)
    if missing:
        raise KnsError(f"stance dataset {dataset_dir} lacks columns {sorted(missing)}")
    names = ds.features["label"].names if hasattr(ds.features["label"], "names") else None
    gold = [names[x] if names else str(x) for x in ds["label"]]
    items = [{"tokens": t, "start": a, "end": b} for t, a, b in zip(ds["tokens"], ds["start"], ds["end"])]
    target_types = ds["target_type"] if "target_type" in ds.column_names else None

    load_stance_checkpoint, predict_stance_probs = _stance_backend()
    model, tokenizer, _ = load_stance_checkpoint(ckpt)
    max_length = cfg.get("max_length")
    if not max_length:
        try:
            max_length = json.loads((ckpt / "kns_stance.json").read_text(encoding="utf-8")).get("max_length")
        except (OSError, json.JSONDecodeError):
            max_length = None
    probs = predict_stance_probs(model, tokenizer, items, int(cfg.get("batch_size") or 32), int(max_length or 256))
    # predict_stance_probs returns columns in the project's label order (STANCE_LABELS)
    pred = [STANCE_LABELS[int(i)] for i in probs.argmax(axis=1)] if len(items) else []

    n, seed, conf = _bootstrap(cfg)
    m = compute_stance_metrics(gold, pred, probs, target_types, bootstrap_n=n, seed=seed, confidence=conf)
    from .metrics import load_metric

    ev = load_metric("kns_stance").compute(predictions=pred, references=gold)
    if not (_agree(m["macro"]["f1"], ev["macro_f1"]) and _agree(m["f_avg"]["value"], ev["f_avg"])):
        raise RuntimeError("internal: stance metrics differ from the kns_stance module's")
    metrics = {"task": spec.metrics, "split": split, **m, "n_sentences": m["n_items"], "metric_module": "kns_stance"}
    fingerprint = None
    try:
        from ..data.built_dataset import compute_fingerprint

        fingerprint = compute_fingerprint(dataset_dir)
    except (ImportError, OSError, KeyError, ValueError) as err:  # informative, not essential
        log.warning("no fingerprint for %s: %s", dataset_dir, err)
    metrics["eval_data"] = {"kind": "built", "path": str(dataset_dir.resolve()), "split": split,
                            "fingerprint": fingerprint, "name": split}
    return metrics


def evaluate_joint(cfg: DictConfig, ckpt: Path, info: dict) -> dict:
    """A joint NER + stance checkpoint on a built joint split: its NER (strict IOB2 entity F1
    over every gold word, as evaluate_ner), its stance on the gold targets (as evaluate_stance)
    and end to end (a gold target gets the stance the model gives the entity its own NER found
    with exactly that span, NONE when it found none), each with bootstrap CIs."""
    if OmegaConf.select(cfg, "data.test_file", default=None):
        raise KnsError("data.test_file is for NER (IOB2); evaluate a joint model on a built joint dataset "
                       "(data=kaznerd_joint split=test)")
    from ..tasks.joint import gold_target_stance, load_joint_checkpoint, predict_joint

    spec = task_spec("joint")
    dataset_dir = _task_dataset_dir(cfg, ckpt, spec)
    split = str(cfg.split)
    data, ds = built_eval_split(dataset_dir, split)
    if "targets" not in ds.column_names:
        raise KnsError(f"joint dataset {dataset_dir} lacks the column 'targets': build it with "
                       "scripts/build_dataset.py data=kaznerd_joint")
    model, tokenizer, jinfo = load_joint_checkpoint(ckpt)
    batch = int(cfg.get("batch_size") or 32)
    pred = predict_joint(model, tokenizer, data.tokens, batch_size=batch, stance_types=jinfo["stance_types"])
    n, seed, conf = _bootstrap(cfg)
    ev = data.meta
    ner = {**score_ner(cfg, data, [p["tags"] for p in pred]), "eval_data": ev}

    gold, predicted, plist, types, e2e = gold_target_stance(model, tokenizer, data.tokens, ds["targets"], pred, batch)
    if not gold:
        raise KnsError(f"joint dataset {dataset_dir} [{split}] holds no stance target to score")
    stance = {"task": spec.parts["stance"], "split": split, "eval_data": ev,
              **compute_stance_metrics(gold, predicted, plist, types, bootstrap_n=n, seed=seed, confidence=conf)}
    stance["n_sentences"] = stance["n_items"]
    end_to_end = {"task": spec.parts["stance_end_to_end"], "split": split, "eval_data": ev,
                  **compute_stance_metrics(gold, e2e, None, types, bootstrap_n=n, seed=seed, confidence=conf)}
    end_to_end["n_sentences"] = end_to_end["n_items"]
    end_to_end["notes"] = ["end to end: a gold target gets the stance the model gives the entity its own NER "
                           "found with exactly that span; NONE when it found none"]
    return {"task": spec.name, "split": split, "eval_data": ev,
            "parts": {"ner": ner, "stance": stance, "stance_end_to_end": end_to_end}}


# The tasks' evaluators (TaskSpec.evaluator): (cfg, checkpoint dir, training info) ->
# (metrics.json dict, extra files {name: text} written beside it, default output folder name).


def evaluate_ner_run(cfg, ckpt, info):
    metrics, data, pred = evaluate_ner(cfg, ckpt, info)
    metrics["eval_data"] = {k: v for k, v in data.meta.items() if k != "read_stats"}
    extra = {"predictions.tsv": _predictions_tsv(data, pred)} if cfg.get("save_predictions", True) else {}
    return metrics, extra, data.meta["name"]


def evaluate_stance_run(cfg, ckpt, info):
    metrics = evaluate_stance(cfg, ckpt, info)
    return metrics, {}, metrics["split"]


def evaluate_joint_run(cfg, ckpt, info):
    metrics = evaluate_joint(cfg, ckpt, info)
    return metrics, {}, metrics["split"]


def run_evaluate(cfg: DictConfig) -> dict:
    ckpt = check_checkpoint(cfg.get("checkpoint"))
    info = training_info(ckpt)
    task = str(info.get("task") or cfg.get("task") or "ner")
    if task not in TASKS:
        raise KnsError(f"checkpoint {ckpt} was trained for task {task!r}; evaluate.py scores {sorted(TASKS)}")
    metrics, extra, name = task_spec(task).load("evaluator")(cfg, ckpt, info)
    provenance = {
        "checkpoint": str(ckpt),
        "model": info.get("model"),
        "data_fingerprint": info.get("data_fingerprint"),
        "train_time_s": info.get("train_time_s"),
        "git_commit": info.get("git_commit"),
    }
    metrics.update(provenance)
    out_dir = _out_dir(cfg, ckpt, name)
    parts = metrics.get("parts")
    if parts:
        # A checkpoint with several heads: one full report per part (each task's own metrics,
        # CIs and plots) in out_dir/<part>/, and metrics.json at the top holding them all.
        for part, m in parts.items():
            m.update(provenance)
            _write_outputs(out_dir / part, m, {})
            print(f"[{part}]\n" + summary_text(m))
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {out_dir / 'metrics.json'} and {', '.join(f'{p}/report.html' for p in parts)}")
        return metrics
    _write_outputs(out_dir, metrics, extra)
    print(summary_text(metrics))
    print(f"wrote {out_dir / 'metrics.json'}, report.md, report.html, plots/")
    return metrics
