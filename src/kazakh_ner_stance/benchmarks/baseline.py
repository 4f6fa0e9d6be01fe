"""The run_ner.py-style baseline, pinned: the one place that says what "baseline" means.

HF's `examples/pytorch/token-classification/run_ner.py`, run with no tuning flags, trains with
`TrainingArguments`' defaults and labels only the first sub-word of each word
(`DataTrainingArguments.label_all_tokens=False`); it trains every weight, pads each batch to its
longest sentence, truncates at the tokenizer's maximum length and gets PyTorch's default GEMM
kernels. Every setting below is written out, so the baseline stays what run_ner.py does whatever
this project's presets (`trainer=cpu`, `task=ner`) change to; `tests/test_benchmarks.py` checks
them against `TrainingArguments()` and checks that every optimisation setting of the presets is
pinned here.
"""

from __future__ import annotations

# TrainingArguments fields that change what or how the model learns, pinned to run_ner.py's
# values (transformers' defaults; its `optim` default is fused AdamW since transformers 5).
RUN_NER_TRAINING_ARGS: dict[str, object] = {
    "learning_rate": 5e-5,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "lr_scheduler_type": "linear",
    "optim": "adamw_torch_fused",
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
    "max_grad_norm": 1.0,
    "label_smoothing_factor": 0.0,
    "train_sampling_strategy": "random",
}

# The project's own switches, set to what run_ner.py does.
RUN_NER_PROJECT_SETTINGS: dict[str, object] = {
    "trainer.freeze_word_embeddings": False,  # every weight trained
    "trainer.cpu_linear": "torch",  # PyTorch's default (MKL) GEMMs
    "trainer.pad_to_multiple_of": None,  # DataCollatorForTokenClassification pads to the batch's longest
    "trainer.average_last_checkpoints": None,  # run_ner.py keeps one model, no weight averaging
    "task.label_all_subwords": False,  # label_all_tokens=False: first sub-word labelled, the rest -100
    "task.decoding": "argmax",  # run_ner.py takes each token's argmax; no IOB2-constrained decoding
    "task.head": "linear",  # AutoModelForTokenClassification's linear classifier, no CRF
    "task.max_length": 512,  # max_seq_length=None: the tokenizer's model_max_length (512 for e5/XLM-R)
}

# run_ner.py's DataTrainingArguments default that the project setting above stands for.
RUN_NER_LABEL_ALL_TOKENS = False

# TrainingArguments fields that only say how often to log, evaluate or save, or where: a
# preset may set them freely, the benchmark sets them for both runs alike.
NOT_TRAINING_ARGS = {
    "num_train_epochs", "max_steps", "eval_strategy", "eval_steps", "save_strategy", "save_steps",
    "save_total_limit", "logging_steps", "logging_strategy", "use_cpu", "dataloader_num_workers",
    "disable_tqdm", "report_to", "length_column_name", "seed", "data_seed", "output_dir",
    "load_best_model_at_end", "metric_for_best_model", "greater_is_better",
}
# The project's trainer keys that do not touch the optimisation (or are set by the benchmark).
NOT_TRAINING_TRAINER_KEYS = {"preset", "args", "early_stopping_patience", "num_threads", "resume", "eval_batch_size"}


def _value(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def baseline_overrides() -> list[str]:
    """train.py overrides that turn any trainer preset into the run_ner.py baseline (`++`: set
    the key whether or not the preset has it)."""
    out = [f"++trainer.args.{k}={_value(v)}" for k, v in RUN_NER_TRAINING_ARGS.items()]
    out += [f"++{k}={_value(v)}" for k, v in RUN_NER_PROJECT_SETTINGS.items()]
    return out


# The project side of the training benchmark: the cpu preset exactly as it is.
PROJECT_OVERRIDES: list[str] = []
