"""The model card (README.md) of a release, rendered from the checkpoint's kns_training.json,
the evaluation's metrics.json and the base model's provenance.

Deterministic: a pure function of its inputs (no dates). The YAML header is produced by
`huggingface_hub.ModelCardData`, so it is in the canonical form the Hub reads back, and the
`model-index` carries the evaluation results (CIs are given in the text). The Evaluation
section and its tables are `cards/model_card_results.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..labels import entity_types_of
from ..tasks.registry import TASKS, MetricKind, load_object, metric_kind, metric_parts, metric_value, task_spec
from .model_card_results import card_table, results_section

KAZNERD_REFERENCE = (
    "Rustem Yeshpanov, Yerbolat Khassanov, Huseyin Atakan Varol. KazNERD: Kazakh Named Entity "
    "Recognition Dataset. In Proceedings of the Thirteenth Language Resources and Evaluation "
    "Conference (LREC 2022), pages 417–426, Marseille, France."
)

STANCE_NOTE = (
    "The stance layer (FAVOR / AGAINST / NONE toward named-entity targets in KazNERD sentences) "
    "is not part of KazNERD: it was annotated for the kazakh-ner-stance project, on KazNERD "
    "sentences, following the label definition in the project's `docs/stance-labels.md`. Cite "
    "KazNERD for the sentences and entity annotation, and this release for the stance labels."
)

DOMAIN_NOTE = (
    "KazNERD's sentences come from Kazakh TV news texts, so the model has seen formal, edited "
    "news language: expect lower accuracy on social media, conversational, older or "
    "Latin-script Kazakh, code-switched Kazakh-Russian text and on domains (medicine, law, "
    "technology) whose entities are rare in news."
)

@dataclass
class ModelCardInputs:
    repo_id: str
    version: str
    task: str
    license: str
    base_model: str
    datasets: list[str]
    dataset_name: str
    metrics: dict
    training: dict
    provenance_sentence: str
    quantized_base: bool
    labels: list[str]
    extra_tags: list[str] = field(default_factory=list)
    data_stats: dict | None = None
    verification: dict | None = None
    # The trim record (kns_provenance.json of models.trim) when the vocabulary was trimmed,
    # before fine-tuning (a trimmed base) or at release (publish.py trim=true).
    trimmed_vocabulary: dict | None = None


def _kind_title(kind: MetricKind) -> str:
    """What a model-index entry scored by `kind` is called: the title of the task that this kind
    alone scores (a joint part's NER is "named-entity recognition")."""
    return next((spec.title for spec in TASKS.values() if spec.metric_kind is kind), kind.name)


def eval_results(inp: ModelCardInputs):
    """The model-index entries (huggingface_hub EvalResult) for the card header: every part's
    headline metrics (a joint checkpoint's NER and stance each under its own task name)."""
    from huggingface_hub import EvalResult

    out = []
    for _, title, m in metric_parts(inp.metrics, inp.task):
        kind = metric_kind(m)
        common = dict(
            # The card's pipeline tag (the validator requires it); the part names its own task.
            task_type=task_spec(inp.task).pipeline_tag,
            task_name=_kind_title(kind).capitalize(),
            dataset_type=inp.datasets[0],
            dataset_name=inp.dataset_name,
            dataset_split=str(m.get("split") or inp.metrics.get("split") or "test"),
        )
        out += [
            EvalResult(**common, metric_type=cm.metric_type, metric_name=f"{title}: {cm.label}" if title else cm.label,
                       metric_value=round(float(v), 4))
            for cm in kind.card_metrics
            if (v := metric_value(m, cm.path)) is not None
        ]
    return out


def card_header(inp: ModelCardInputs) -> str:
    from huggingface_hub import ModelCardData

    spec = task_spec(inp.task)
    tags = ["kazakh", "kaznerd", "kazakh-ner-stance", *spec.card_tags]
    if inp.quantized_base:
        tags.append("dequantized-base")
    if inp.trimmed_vocabulary:
        tags.append("vocabulary-trimmed")
    tags += [t for t in inp.extra_tags if t not in tags]
    data = ModelCardData(
        language=["kk"],
        license=inp.license,
        library_name="transformers",
        base_model=inp.base_model,
        base_model_relation="finetune",
        datasets=list(inp.datasets),
        pipeline_tag=spec.pipeline_tag,
        tags=tags,
        metrics=sorted({r.metric_type for r in eval_results(inp)}),
        model_name=inp.repo_id.split("/")[-1],
        eval_results=eval_results(inp),
    )
    return "---\n" + data.to_yaml() + "\n---\n"


def _usage(inp: ModelCardInputs) -> str:
    rev = f"v{inp.version}"
    lines = [
        "## How to use",
        "",
        "With this project's `Predictor` (raw text in; sentence splitting, tokenisation and "
        "sub-word windows handled for you):",
        "",
        "```python",
        "from huggingface_hub import snapshot_download",
        "from kazakh_ner_stance import Predictor",
        "",
        f'model_dir = snapshot_download("{inp.repo_id}", revision="{rev}")  # or a local release folder',
        "predictor = Predictor.from_pretrained(model_dir)",
        'print(predictor(["Қасым-Жомарт Тоқаев Астанада Қазақстан халқына Жолдау жариялады."]))',
        "```",
    ]
    spec = task_spec(inp.task)
    task_cfg = ((inp.training or {}).get("config") or {}).get("task") or {}
    custom = load_object(spec.custom_model_type)(task_cfg) if spec.custom_model_type else None
    if custom:
        lines += [
            "",
            f"The architecture (`model_type: {custom}`) is defined by the `kazakh_ner_stance` "
            "package, which registers it with transformers' Auto classes when it is imported; "
            "install the package to load this checkpoint (no remote code is executed).",
        ]
    # transformers' own token-classification pipeline gives the whole prediction only of a model
    # that tags entities and nothing else (a joint model's stance needs `Predictor`).
    if spec.predicts_entities and not spec.predicts_stance:
        how = ("every sub-word carries its word's label (B- on the first, I- on the rest), so the "
               "pipeline's own word grouping gives the same entities"
               if task_cfg.get("label_all_subwords") else "labels sit on the first sub-word of each word")
        lines += [
            "",
            f"With plain `transformers` ({how}; use "
            '`aggregation_strategy="first"`):',
            "",
            "```python",
            "from transformers import pipeline",
            "",
            f'ner = pipeline("token-classification", model="{inp.repo_id}", revision="{rev}",',
            '               aggregation_strategy="first")',
            'print(ner("Қасым-Жомарт Тоқаев Астанада Қазақстан халқына Жолдау жариялады."))',
            "```",
            "",
            "The pipeline scores one window of at most the model's maximum length; `Predictor` "
            "splits longer inputs into overlapping windows so that no word is truncated.",
        ]
        if task_cfg.get("head") == "crf":
            lines += [
                "",
                "This model has a CRF head: its learned tag-transition scores are in `config.json` "
                "(`kns_crf`). The pipeline reads each sub-word's best label and ignores them; `Predictor` "
                "decodes each sentence's best valid IOB2 sequence with them, as the scores above were measured.",
            ]
    return "\n".join(lines)


def _training(inp: ModelCardInputs) -> str:
    info = inp.training
    cfg = info.get("config") or {}
    trainer = cfg.get("trainer") or {}
    args = trainer.get("args") or {}
    task_cfg = cfg.get("task") or {}
    rows = []

    def add(name, value):
        if value not in (None, "", [], {}):
            rows.append([name, f"`{value}`"])

    add("base model", inp.base_model)
    fp = info.get("data_fingerprint")
    add("training data", f"{info.get('data_name')}" + (f" (fingerprint {str(fp)[:16]}…)" if fp else ""))
    add("max. training sentences", cfg.get("max_train_samples"))
    for key in ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
                "max_steps", "warmup_ratio", "warmup_steps", "weight_decay", "lr_scheduler_type", "optim",
                "bf16", "fp16", "train_sampling_strategy"):
        if key == "max_steps" and (args.get(key) in (None, -1)):
            continue
        add(key.replace("_", " "), args.get(key))
    add("seed", cfg.get("seed"))
    add("window length (sub-words)", task_cfg.get("max_length"))
    add("window overlap", task_cfg.get("window_overlap"))
    add("labels on every sub-word", task_cfg.get("label_all_subwords"))
    add("NER head", task_cfg.get("head"))
    add("tag decoding", task_cfg.get("decoding"))
    add("word embeddings frozen", trainer.get("freeze_word_embeddings"))
    add("early stopping patience", trainer.get("early_stopping_patience"))
    add("optimisation steps", info.get("global_step"))
    add("processes (world size)", info.get("world_size"))
    best = info.get("best_dev_metric") or {}
    for k, v in best.items():
        if v is not None:
            add(f"best validation {k}", f"{float(v):.4f}")
    add("training time (s)", info.get("train_time_s"))
    git = info.get("git") or {}
    if git.get("commit"):
        add("code commit", git["commit"] + (" (with local changes)" if git.get("dirty") else ""))
    for lib, ver in (info.get("versions") or {}).items():
        add(lib, ver)
    text = [
        "## Training procedure",
        "",
        f"Fine-tuned with `python scripts/train.py` of kazakh-ner-stance (Hugging Face `Trainer`; the best "
        f"checkpoint by validation score is kept). {inp.provenance_sentence}",
        *([ "", trimmed_vocabulary_paragraph(inp.trimmed_vocabulary)] if inp.trimmed_vocabulary else []),
        "",
        card_table(["setting", "value"], rows),
        "",
        "The full resolved training configuration is in `training_config.yaml` (and, with the "
        "base model's provenance, in `kns_training.json`).",
    ]
    return "\n".join(text)


def _cross_lingual_note(info: dict, predicts_entities: bool = False) -> list[str]:
    """What a stance run trained on besides the Kazakh layer (task.extra_train, task.init_from);
    for a model that also tags entities, that the extra items taught stance only."""
    from ..tasks.stance_mix import extra_train_dirs

    task = (info.get("config") or {}).get("task") or {}
    dirs = extra_train_dirs(task.get("extra_train") or {})
    out = []
    if dirs:
        def describe(folder: str) -> str:
            name = Path(folder).name
            if "silver" in name:
                source = ("silver Kazakh translations of RuSentNE-2023 training items, training only; see its "
                          "dataset card for the second translator's check")
            elif "rusentne" in name:
                source = ("RuSentNE-2023: Golubev, Rusnachenko, Loukachevitch, Dialogue 2023; MIT licence; Russian "
                          "news, entity-level sentiment mapped 1 -> FAVOR, -1 -> AGAINST, 0 -> NONE")
            else:
                source = "another stance dataset"
            return f"`{name}` ({source})"

        what = " and ".join(describe(d) for d in dirs)
        if task.get("train_on_target", True) is False:
            how = "only (no Kazakh training item; model selection on the Kazakh dev split)"
        else:
            how = "together with the Kazakh layer"
            if (task.get("sampler") or {}).get("kind") == "balanced":
                how += ", drawn by a language- and class-balanced sampler"
        out += ["", f"Also trained on {what}, split `{(task.get('extra_train') or {}).get('split', 'train')}`, {how}."]
        if predicts_entities:
            out[-1] += (" Those items carry no entity annotation: they train the stance head only, and the NER head "
                        "learns from the Kazakh sentences alone.")
    if task.get("init_from"):
        out += ["", f"Fine-tuned from the stance checkpoint `{Path(str(task['init_from'])).parent.name}` "
                    "(sequential recipe: its first stage, see that checkpoint's card for its data)."]
    return out


def _data(inp: ModelCardInputs) -> str:
    info = inp.training
    lines = [
        "## Training data",
        "",
        f"`{info.get('data_name')}`: KazNERD (Yeshpanov, Khassanov, Varol, LREC 2022; CC BY 4.0), "
        "validated, deduplicated and split without leakage by `python scripts/build_dataset.py` of "
        "kazakh-ner-stance. "
        + (f"Dataset fingerprint: `{info['data_fingerprint']}`." if info.get("data_fingerprint")
           else "The dataset fingerprint was not recorded."),
    ]
    stats = inp.data_stats or {}
    splitting = (stats.get("options") or {}).get("splitting")
    sources = [f"`{src.get('file')}`" for src in stats.get("sources") or []]
    if splitting:
        # Say plainly which upstream split the numbers come from: a "test" split carved out of
        # KazNERD's validation file is not KazNERD's official test split.
        lines += ["", f"Source file(s): {', '.join(sources) or 'unknown'}. Splits: {splitting}. "
                      "These splits are this project's, so scores are not comparable with results "
                      "on KazNERD's official test split."
                  if len(stats.get("sources") or []) == 1 else f"Splits: {splitting}."]
    if task_spec(inp.task).predicts_stance:
        lines += ["", STANCE_NOTE]
        lines += _cross_lingual_note(info, task_spec(inp.task).predicts_entities)
    splits = stats.get("splits") or {}
    if splits and all(isinstance(v, dict) and "sentences" in v for v in splits.values()):
        rows = [[s, f"{v['sentences']:,}", f"{v.get('tokens', 0):,}", f"{v.get('entities', 0):,}"]
                for s, v in splits.items()]
        lines += ["", card_table(["split", "sentences", "tokens", "entities"], rows)]
    if inp.labels:
        lines += ["", "Labels (`config.json` `id2label`): " + ", ".join(f"`{x}`" for x in inp.labels) + "."]
    return "\n".join(lines)


def trimmed_vocabulary_paragraph(t: dict) -> str:
    """What a vocabulary trim kept and how it was checked, for the card."""
    src = t.get("trimmed_from") or {}
    v = t.get("verification") or {}
    tok, hid = v.get("corpus_tokenization") or {}, v.get("hidden_states") or {}
    est = v.get("held_aside_estimate") or {}
    names = ", ".join(f"`{Path(str(c.get('path'))).name}`" for c in t.get("corpora") or [])
    when = "at release (`publish.py trim=true`)" if t.get("trimmed_at") == "release" else "before fine-tuning"
    text = (
        f"**Vocabulary trimmed** {when}: {int(t.get('kept', 0)):,} of the base tokenizer's "
        f"{int(src.get('tokenizer_pieces', 0)):,} pieces are kept (the pieces the full tokenizer uses on "
        f"{names}, the single characters it falls back on, and the special tokens), and the embedding matrix "
        f"has only their rows. On all {int(tok.get('sentences', 0)):,} sentences of that text the trimmed "
        f"tokenizer gives the same pieces as the full one"
    )
    if hid:
        text += (f", and the encoder's hidden states differ by at most {float(hid.get('max_abs_difference', 0)):.3g} "
                 f"on a sample of {hid.get('sentences')} sentences")
    text += "."
    if est:
        text += (f" On text it was not built from ({float(est.get('share_held_out', 0)):.0%} of the sentences held "
                 f"out), {float(est.get('identical_share', 0)):.2%} of the sentences tokenize exactly as with the full "
                 "vocabulary; elsewhere a word falls back to smaller pieces, and a character outside the kept set "
                 "becomes `<unk>`.")
    return text


def _limitations(inp: ModelCardInputs) -> str:
    items = []
    if inp.trimmed_vocabulary:
        items.append(
            "**Trimmed vocabulary.** The tokenizer keeps only the pieces of Kazakh (and the corpora listed above); "
            "text in other scripts is split into single characters or `<unk>`, where the untrimmed model would "
            "have used its own pieces. `kns_trim.json` / the provenance record lists what was kept."
        )
    if inp.quantized_base:
        items.append(
            f"**4-bit-derived base.** {inp.provenance_sentence} Quantisation error in the base weights is not "
            "removed by fine-tuning; a model fine-tuned from the original float weights may score higher."
        )
    items.append(f"**Domain.** {DOMAIN_NOTE}")
    spec = task_spec(inp.task)
    if spec.predicts_entities:
        items.append(
            "**Entity types.** Only KazNERD's types are predicted; rare types (see the support column) have "
            "few training examples and unreliable scores."
        )
    if spec.predicts_stance:
        items.append(
            "**Stance.** Labels express the attitude a single sentence states toward a target; the annotated "
            "layer is small, so per-class scores are uncertain (see the intervals)."
        )
    items.append(
        "**Use.** Predictions are not a substitute for human judgement about people or organisations; do not "
        "use them alone for decisions that affect individuals."
    )
    return "## Limitations\n\n" + "\n".join(f"- {x}" for x in items)


def _citation(inp: ModelCardInputs) -> str:
    from ..data.card import CITATION

    lines = [
        "## Citation",
        "",
        "Please cite KazNERD, whose sentences and entity annotation this model was trained on:",
        "",
        KAZNERD_REFERENCE,
        "",
        "```bibtex",
        CITATION,
        "```",
    ]
    if task_spec(inp.task).predicts_stance:
        lines += ["", STANCE_NOTE]
    return "\n".join(lines)


def render_model_card(inp: ModelCardInputs) -> str:
    spec = task_spec(inp.task)
    task_title = spec.title
    name = inp.repo_id.split("/")[-1]
    intro = [
        f"# {name}: Kazakh {task_title}",
        "",
        f"Kazakh {task_title}, fine-tuned from `{inp.base_model}` on KazNERD with the kazakh-ner-stance "
        f"toolkit (release `v{inp.version}`).",
        "",
        "## Intended use",
        "",
    ]
    if not spec.predicts_entities:
        intro.append("Classify the stance (FAVOR, AGAINST, NONE) a Kazakh sentence expresses toward a named target.")
    else:
        intro.append(
            f"Tag named entities of {len(entity_types_of(inp.labels))} KazNERD types "
            "(persons, organisations, places, dates, amounts, ...) in Kazakh text, e.g. to index or analyse news, "
            "or as a pre-annotation step for human annotators."
        )
    sections = [
        "\n".join(intro),
        _usage(inp),
        _data(inp),
        _training(inp),
        results_section(inp.metrics, inp.task, inp.dataset_name, inp.verification),
        _limitations(inp),
        "## Licence\n\n"
        f"`{inp.license}`. The weights derive from {inp.base_model} and from KazNERD (CC BY 4.0: attribution "
        "required, see the citation below).",
        _citation(inp),
    ]
    return card_header(inp) + "\n" + "\n\n".join(sections) + "\n"
