"""Raw text in, entities and target stance out: the `Predictor` and `scripts/predict.py`.

    python scripts/predict.py checkpoint=DIR input=FILE output=FILE.jsonl
    cat news.txt | python scripts/predict.py checkpoint=DIR            # stdin -> stdout
    python scripts/predict.py checkpoint=NER_DIR stance_checkpoint=STANCE_DIR input=... output=...
    python scripts/predict.py checkpoint=DIR backend=onnx               # after scripts/export_onnx.py

    from kazakh_ner_stance import Predictor
    predictor = Predictor.from_pretrained("artifacts/runs/kaznerd_e5_small_cpu/model")
    predictor(["Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады."])

Input, one item per line (`input_format=auto` tells them apart line by line):

- plain text: one document or sentence per line, split into sentences and KazNERD-style
  words (`data.tokenize`); character offsets are into the line without its line break;
- JSON `{"text": ..., "targets": [[char_start, char_end], ...]}`: text plus stance targets
  given as character spans (a span that cuts a word is widened to whole words); a target may
  also be `[start, end, type]` or `{"start", "end", "type"}`;
- JSON `{"tokens": [...], "targets": [[token_start, token_end], ...]}` (or the stance item
  form `{"tokens", "start", "end"}`): one pre-tokenised sentence, targets as token spans
  (end exclusive); its `text` is the tokens joined by single spaces.
  Any other key of a JSON line (e.g. "id") is copied to the output.

Input is read as bytes and decoded line by line: a line that is not UTF-8 (or, under
`input_format=jsonl`, not a JSON object; or with a bad target) is reported with its line and
byte and stops the run (`on_bad_line=error`, the default: for a file, every undecodable line is
listed before the model loads; on stdin, the lines before it are still written), or is left
out and counted (`on_bad_line=skip`: the output then has one object per *good* line).

Output, one JSON object per input line, in input order (the same schema as `Predictor(...)`):

    {"text": "...",
     "sentences": [{"start", "end", "token_start", "token_end"}],       # chars, tokens
     "tokens": [{"text", "start", "end"}],                              # chars into text
     "entities": [{"text", "type", "token_start", "token_end", "char_start", "char_end",
                   "score", "sentence"}],
     "targets": [{"text", "type", "token_start", "token_end", "char_start", "char_end",
                  "sentence", "label", "probs": {"NONE", "FAVOR", "AGAINST"}}]}

Token spans are end-exclusive indices into `tokens`; `text[char_start:char_end]` is always the
entity (or target) text. An entity's score is the mean over its words of the probability of the
predicted tag. `targets` holds one stance per target: the given spans (stance checkpoint),
the predicted entities of the target types (NER + stance checkpoints), or the targets a
joint checkpoint predicts; it is empty without a stance model.

Inference is batched over all sentences of a chunk of lines, sorted by length, under
`torch.inference_mode`; sentences longer than the model window are split into overlapping
windows (tasks/ner.py), never truncated.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .atomic import replace_file
from .errors import DataValidationError, KnsError, Problem, invalid_utf8_message
from .labels import TARGET_TYPES, entity_types_of, iob2_spans, repair_iob2
from .onnx_export import ONNX_TASKS
from .tasks.registry import TASKS, task_with
from .training.checkpoints import read_training_info, trained_windows

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")
ONNX_FILE = "model.onnx"
ON_BAD_LINE = ("error", "skip")


class InputError(KnsError):
    """One input item (a line, a request body item) that cannot be read: `where` it is, which
    `field` of it is wrong (None: the item itself), and what is wrong. str() is
    "where: detail", the message the command line prints; the server reports the parts."""

    def __init__(self, where: str, detail: str, field: str | None = None):
        self.where, self.detail, self.field = where, detail, field
        super().__init__(f"{where}: {detail}")


# --------------------------------------------------------------------------- input parsing


@dataclass
class Document:
    """One input line, tokenised: words with character offsets, sentences as word ranges."""

    text: str
    tokens: list[tuple[str, int, int]]
    sentences: list[tuple[int, int]]  # word index ranges [lo, hi)
    targets: list[tuple[int, int, str | None]] | None = None  # word ranges into `tokens`
    extra: dict = field(default_factory=dict)


def _target_tuple(raw, where: str, key: str = "targets") -> tuple[int, int, str | None]:
    if isinstance(raw, Mapping):
        start, end, ttype = raw.get("start"), raw.get("end"), raw.get("type")
    elif isinstance(raw, (list, tuple)) and len(raw) in (2, 3):
        start, end = raw[0], raw[1]
        ttype = raw[2] if len(raw) == 3 else None
    else:
        raise InputError(where, "a target must be [start, end], [start, end, type] or "
                                f'{{"start", "end", "type"}}, got {raw!r}', key)
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        raise InputError(where, f"target offsets must be integers, got {raw!r}", key)
    if ttype is not None and not isinstance(ttype, str):
        raise InputError(where, f"a target type must be a string, got {ttype!r}", key)
    return start, end, ttype


def _sentence_ranges(text: str, tokens: list[tuple[str, int, int]], split: bool) -> list[tuple[int, int]]:
    """Word ranges of the sentences (each word goes to the sentence its first character is in)."""
    from .data.tokenize import split_sentences

    if not tokens:
        return []
    if not split:
        return [(0, len(tokens))]
    starts = [s for _, s, _ in tokens]
    ranges = []
    for c0, c1 in split_sentences(text):
        lo, hi = bisect.bisect_left(starts, c0), bisect.bisect_left(starts, c1)
        if hi > lo:
            ranges.append((lo, hi))
    # Words outside every sentence span (never expected) join the sentence before them.
    fixed, cursor = [], 0
    for lo, hi in ranges:
        if lo > cursor and fixed:
            fixed[-1] = (fixed[-1][0], lo)
        elif lo > cursor:
            lo = cursor
        fixed.append((lo, hi))
        cursor = hi
    if fixed and cursor < len(tokens):
        fixed[-1] = (fixed[-1][0], len(tokens))
    return fixed or [(0, len(tokens))]


def _merge_for_targets(sentences: list[tuple[int, int]], targets) -> list[tuple[int, int]]:
    """Join consecutive sentences that a target crosses: a target lives in one sentence."""
    if not targets:
        return sentences
    merged = list(sentences)
    for t0, t1, _ in targets:
        out = []
        for lo, hi in merged:
            if out and out[-1][0] < t1 and t0 < out[-1][1] and lo < t1:
                out[-1] = (out[-1][0], hi)  # previous sentence overlaps the target, and so does this
            else:
                out.append((lo, hi))
        merged = out
    return merged


def make_document(item: Any, split_sentences: bool = True, where: str = "input") -> Document:
    """A `Document` from a text string or a JSON-like dict (see the module docstring)."""
    from .data.tokenize import tokenize_words

    if isinstance(item, str):
        tokens = tokenize_words(item)
        return Document(item, tokens, _sentence_ranges(item, tokens, split_sentences))
    if not isinstance(item, Mapping):
        raise InputError(where, f"expected a text string or an object with 'text' or 'tokens', got {type(item).__name__}")
    extra = {k: v for k, v in item.items() if k not in ("text", "tokens", "targets", "start", "end")}
    raw_targets = item.get("targets")
    if raw_targets is None and "start" in item and "end" in item:
        raw_targets = [[item["start"], item["end"]]]
    if raw_targets is not None and not isinstance(raw_targets, list):
        raise InputError(where, "'targets' must be a list of spans", "targets")
    key = "targets" if "targets" in item else "start"  # where given targets are named
    parsed = [_target_tuple(t, where, f"{key}[{i}]" if key == "targets" else key)
              for i, t in enumerate(raw_targets or [])]
    if "tokens" in item and item["tokens"] is not None:
        words = item["tokens"]
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            raise InputError(where, "'tokens' must be a list of non-empty strings", "tokens")
        tokens, pos = [], 0
        for w in words:
            tokens.append((w, pos, pos + len(w)))
            pos += len(w) + 1
        text = " ".join(words)
        targets = []
        for i, (t0, t1, ttype) in enumerate(parsed):
            if not 0 <= t0 < t1 <= len(tokens):
                raise InputError(where, f"target token span [{t0}, {t1}) is outside the {len(tokens)} tokens",
                                 f"{key}[{i}]" if key == "targets" else key)
            targets.append((t0, t1, ttype))
        sentences = [(0, len(tokens))] if tokens else []
        return Document(text, tokens, sentences, targets if raw_targets is not None else None, extra)
    text = item.get("text")
    if not isinstance(text, str):
        raise InputError(where, "a JSON line needs a 'text' string or a 'tokens' list", "text")
    tokens = tokenize_words(text)
    starts, ends = [s for _, s, _ in tokens], [e for _, _, e in tokens]
    targets = []
    for i, (c0, c1, ttype) in enumerate(parsed):
        tfield = f"{key}[{i}]" if key == "targets" else key
        if not 0 <= c0 < c1 <= len(text):
            raise InputError(where, f"target character span [{c0}, {c1}) is outside the text ({len(text)} characters)",
                             tfield)
        lo = bisect.bisect_right(ends, c0)  # first word ending after c0
        hi = bisect.bisect_left(starts, c1)  # words starting before c1
        if hi <= lo:
            raise InputError(where, f"target [{c0}, {c1}) = {text[c0:c1]!r} covers no word", tfield)
        targets.append((lo, hi, ttype))
    sentences = _merge_for_targets(_sentence_ranges(text, tokens, split_sentences), targets)
    return Document(text, tokens, sentences, targets if raw_targets is not None else None, extra)


def parse_line(line: str, fmt: str = "auto", where: str = "input") -> Any:
    """A text string or a decoded JSON object, by `fmt` (auto | text | jsonl)."""
    line = line.rstrip("\r\n")
    if fmt == "text":
        return line
    if fmt not in ("auto", "jsonl"):
        raise KnsError(f"input_format must be auto, text or jsonl, not {fmt!r}")
    stripped = line.strip()
    if fmt == "jsonl" and not stripped:
        return ""
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as err:
            if fmt == "jsonl":
                raise InputError(where, f"not a JSON object ({err.msg} at column {err.colno})") from None
            return line
        if isinstance(obj, dict) and ("text" in obj or "tokens" in obj):
            return obj
        if fmt == "jsonl":
            raise InputError(where, "a JSON line needs a 'text' or 'tokens' key")
        return line
    if fmt == "jsonl":
        raise InputError(where, "not a JSON object (input_format=jsonl)")
    return line


# --------------------------------------------------------------------------- decoding


def tags_to_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) word spans of a predicted IOB2 tag sequence, end exclusive; an
    orphan I-X starts an entity (``labels.iob2_spans`` in lenient mode)."""
    return iob2_spans(tags, "lenient")


def _probs_dict(probs, id2label=None) -> dict:
    if isinstance(probs, Mapping):
        return {str(k): float(v) for k, v in probs.items()}
    return {(id2label or {}).get(i, str(i)): float(p) for i, p in enumerate(probs)}


# --------------------------------------------------------------------------- ONNX backend


class OnnxTokenClassifier:
    """An onnxruntime session that quacks like a transformers token-classification model for
    `tasks.ner.predict_word_logits` (config, parameters(), eval(), __call__ -> .logits)."""

    def __init__(self, onnx_path: str | Path, config, num_threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = int(num_threads)
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = config
        self.training = False
        self.path = Path(onnx_path)

    def parameters(self):
        import torch

        yield torch.zeros(0)  # predict_word_logits asks for the device: CPU

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def __call__(self, input_ids, attention_mask, **_):
        import torch
        from types import SimpleNamespace

        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        logits = self.session.run(["logits"], {k: v for k, v in feeds.items() if k in self.input_names})[0]
        return SimpleNamespace(logits=torch.from_numpy(logits))


def find_onnx_dir(path: Path, onnx_dir: str | Path | None = None) -> Path:
    """The folder holding model.onnx: `onnx_dir`, `path` itself or `path/onnx`."""
    candidates = [Path(onnx_dir)] if onnx_dir else [path, path / "onnx"]
    for c in candidates:
        if (c / ONNX_FILE).is_file():
            return c
    raise KnsError(
        f"no {ONNX_FILE} in {' or '.join(str(c) for c in candidates)}; export one first with "
        f"`python scripts/export_onnx.py checkpoint={path}` (writes {path / 'onnx'})"
    )


# --------------------------------------------------------------------------- checkpoints


def checkpoint_task(path: Path) -> str:
    """ner | stance | joint: kns_training.json says, else the architecture in config.json."""
    task = read_training_info(path).get("task")
    if task:
        return str(task)
    if (path / "kns_onnx.json").is_file():
        return "ner"
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise KnsError(f"{path} has no config.json: not a checkpoint folder (pass the run's `model/` folder)")
    archs = json.loads(cfg_file.read_text(encoding="utf-8")).get("architectures") or []
    if any(a.endswith("ForTokenClassification") for a in archs):
        return "ner"
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "stance"
    raise KnsError(f"cannot tell which task {path} was trained for (no kns_training.json, architectures={archs})")


# --------------------------------------------------------------------------- predictor


class Predictor:
    """Callable: `predictor(texts) -> list[dict]` (one dict per text, schema in the module doc).

    Build it with `Predictor.from_pretrained(checkpoint, stance_checkpoint=None, backend="torch")`.
    """

    def __init__(self, *, ner=None, stance=None, joint=None, batch_size: int = 32, max_length: int | None = None,
                 window_overlap: int = 32, split_sentences: bool = True,
                 stance_target_types: Iterable[str] | None = None, stance_batch_size: int | None = None,
                 stance_max_length: int | None = None, backend: str = "torch"):
        if ner is None and stance is None and joint is None:
            raise KnsError("a Predictor needs a NER, stance or joint model")
        self.ner = ner  # (model, tokenizer, id2label)
        self.stance = stance  # (model, tokenizer, id2label)
        self.joint = joint  # (model, tokenizer, info)
        self.batch_size = int(batch_size)
        self.max_length = max_length
        self.window_overlap = int(window_overlap)
        self.split_sentences = bool(split_sentences)
        if stance_target_types is None:
            stance_target_types = TARGET_TYPES
        self.stance_target_types = set(stance_target_types)
        self.stance_batch_size = int(stance_batch_size or batch_size)
        self.stance_max_length = stance_max_length
        self.backend = backend
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, checkpoint, stance_checkpoint=None, *, backend: str = "torch", onnx_dir=None,
                        device: str | None = None, num_threads: int | None = None, cpu_linear: str = "auto",
                        **kwargs) -> "Predictor":
        """Load a NER, stance or joint checkpoint (task read from kns_training.json), and
        optionally a stance checkpoint to run on the predicted entities of a NER checkpoint.

        backend="onnx" runs the NER model with onnxruntime from `model.onnx` in the checkpoint
        folder, its `onnx/` sub-folder (scripts/export_onnx.py) or `onnx_dir`. cpu_linear="auto"
        (torch backend on CPU) runs the linear layers through oneDNN when it is usable here
        (kazakh_ner_stance.cpu_kernels: 1.86x faster on the reference CPU, the same predictions);
        "torch" keeps PyTorch's default kernels."""
        if backend not in BACKENDS:
            raise KnsError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if num_threads:
            import torch

            torch.set_num_threads(int(num_threads))
        path = Path(str(checkpoint)).expanduser()
        if not path.is_dir():
            raise KnsError(f"checkpoint folder not found: {path}")
        task = checkpoint_task(path)
        ner = stance = joint = None
        if backend == "onnx" and task not in ONNX_TASKS:
            raise KnsError(f"backend=onnx runs NER checkpoints only; {path} is a {task!r} checkpoint (use backend=torch)")
        if task not in TASKS:
            raise KnsError(f"{path}: unknown task {task!r} in kns_training.json")
        spec = TASKS[task]
        if backend == "onnx":
            loaded = cls._load_onnx_ner(path, onnx_dir, num_threads)
        else:
            loaded = spec.load("checkpoint_loader")(path, device=device, cpu_linear=cpu_linear)
        if spec.predicts_entities and spec.predicts_stance:  # one model finds entities and their stance
            joint = loaded
        elif spec.predicts_stance:
            stance = loaded
        else:
            ner = loaded
            if kwargs.get("max_length") is None:  # the window the model was trained with
                kwargs["max_length"] = trained_windows(path)["max_length"]
        if stance_checkpoint:
            if spec.predicts_stance:
                raise KnsError("stance_checkpoint goes with a NER checkpoint; this checkpoint already predicts stance")
            spath = Path(str(stance_checkpoint)).expanduser()
            if not spath.is_dir():
                raise KnsError(f"checkpoint folder not found: {spath}")
            stask = checkpoint_task(spath)
            sspec = TASKS.get(stask)
            if sspec is None or sspec.predicts_entities or not sspec.predicts_stance:
                raise KnsError(f"stance_checkpoint {spath} is a {stask!r} checkpoint, not a stance one")
            stance = sspec.load("checkpoint_loader")(spath, device=device, cpu_linear=cpu_linear)
        if kwargs.get("max_length") is None:
            kwargs.pop("max_length", None)
        return cls(ner=ner, stance=stance, joint=joint, backend=backend, **kwargs)

    @staticmethod
    def _load_onnx_ner(path: Path, onnx_dir, num_threads):
        from transformers import AutoConfig, AutoTokenizer

        folder = find_onnx_dir(path, onnx_dir)
        config = AutoConfig.from_pretrained(folder if (folder / "config.json").is_file() else path)
        tokenizer = AutoTokenizer.from_pretrained(folder if (folder / "tokenizer_config.json").is_file() else path)
        model = OnnxTokenClassifier(folder / ONNX_FILE, config, num_threads=num_threads)
        id2label = {int(k): v for k, v in config.id2label.items()}
        return model, tokenizer, id2label

    @property
    def task(self) -> str:
        """The registered task of the loaded model, or "A+B" for a NER model with a stance model."""
        if self.joint is not None:
            return task_with(entities=True, stance=True).name
        return "+".join(task_with(entities=finds_entities, stance=not finds_entities).name
                        for finds_entities, part in ((True, self.ner), (False, self.stance)) if part is not None)

    def describe(self) -> dict:
        """What this predictor predicts: task, backend, entity types, stance labels and the
        entity types stance is predicted for (the server's /health and page legend)."""
        ner_labels, stance_labels, target_types = [], [], []
        if self.ner is not None:
            ner_labels = [self.ner[2][i] for i in sorted(self.ner[2])]
        if self.stance is not None:
            stance_labels = [self.stance[2][i] for i in sorted(self.stance[2])]
            target_types = sorted(self.stance_target_types) if self.ner is not None else []
        if self.joint is not None:
            info = self.joint[2]
            ner_labels = [info["ner_id2label"][i] for i in sorted(info["ner_id2label"])]
            stance_labels, target_types = list(info["stance_labels"]), list(info["stance_types"])
        entity_types = entity_types_of(ner_labels)
        return {"task": self.task, "backend": self.backend, "entity_types": entity_types, "ner_tags": ner_labels,
                "stance_labels": stance_labels, "stance_target_types": target_types}

    # ------------------------------------------------------------------ prediction

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    def __call__(self, inputs, batch_size: int | None = None) -> list[dict] | dict:
        """Predict for one text (returns one dict) or a list of texts / JSON-like dicts."""
        single = isinstance(inputs, (str, Mapping))
        items = [inputs] if single else list(inputs)
        docs = [make_document(it, self.split_sentences, where=f"input {i}") for i, it in enumerate(items)]
        out = self.predict_documents(docs, batch_size)
        return out[0] if single else out

    def predict_documents(self, docs: Sequence[Document], batch_size: int | None = None) -> list[dict]:
        bs = int(batch_size or self.batch_size)
        # Every sentence of every document, predicted in one length-sorted batched pass.
        sent_index = [(d, s) for d, doc in enumerate(docs) for s in range(len(doc.sentences))]
        words = [[t for t, _, _ in docs[d].tokens[lo:hi]] for d, s in sent_index for lo, hi in [docs[d].sentences[s]]]
        tags, scores, joint_targets = self._predict_tags(words, bs)
        results = [self._skeleton(doc) for doc in docs]
        stance_jobs = []  # (doc index, target dict, item)
        for k, (d, s) in enumerate(sent_index):
            doc, res = docs[d], results[d]
            lo, _ = doc.sentences[s]
            if tags is not None:
                for w0, w1, etype in tags_to_spans(tags[k]):
                    res["entities"].append(self._span(doc, lo + w0, lo + w1, s, type=etype,
                                                      score=round(sum(scores[k][w0:w1]) / (w1 - w0), 6)))
            if joint_targets is not None:
                for t in joint_targets[k]:
                    target = self._span(doc, lo + int(t["start"]), lo + int(t["end"]), s, type=t.get("type"))
                    target.update(label=t["label"], probs=_probs_dict(t.get("probs", {})))
                    res["targets"].append(target)
        if self.stance is not None:
            for d, doc in enumerate(docs):
                for target in self._stance_targets(doc, results[d]):
                    s = target["sentence"]
                    lo, hi = doc.sentences[s]
                    item = {"tokens": [t for t, _, _ in doc.tokens[lo:hi]],
                            "start": target["token_start"] - lo, "end": target["token_end"] - lo}
                    stance_jobs.append((d, target, item))
            preds = self._predict_stance([it for _, _, it in stance_jobs])
            for (d, target, _), pred in zip(stance_jobs, preds):
                target.update(label=pred["label"], probs=_probs_dict(pred["probs"], self.stance[2]))
                results[d]["targets"].append(target)
        elif any(doc.targets for doc in docs) and self.joint is None:
            self._warn_once("targets", "input targets are ignored: no stance model loaded (pass stance_checkpoint=...)")
        elif self.joint is not None and any(doc.targets for doc in docs):
            self._warn_once("joint-targets", "input targets are ignored: a joint checkpoint finds its own targets")
        for res in results:
            res["targets"].sort(key=lambda t: (t["token_start"], t["token_end"]))
        return results

    def _stance_targets(self, doc: Document, res: dict) -> list[dict]:
        if doc.targets is not None:
            out = []
            for t0, t1, ttype in doc.targets:
                s = next(i for i, (lo, hi) in enumerate(doc.sentences) if lo <= t0 < hi)
                out.append(self._span(doc, t0, t1, s, type=ttype))
            return out
        if self.ner is None:
            if doc.tokens:
                self._warn_once("no-targets", "a stance-only checkpoint needs targets: give JSON lines "
                                '{"text": ..., "targets": [[char_start, char_end], ...]}')
            return []
        return [self._span(doc, e["token_start"], e["token_end"], e["sentence"], type=e["type"])
                for e in res["entities"] if e["type"] in self.stance_target_types]

    @staticmethod
    def _skeleton(doc: Document) -> dict:
        return {
            **doc.extra,
            "text": doc.text,
            "sentences": [{"start": doc.tokens[lo][1], "end": doc.tokens[hi - 1][2], "token_start": lo, "token_end": hi}
                          for lo, hi in doc.sentences],
            "tokens": [{"text": t, "start": s, "end": e} for t, s, e in doc.tokens],
            "entities": [],
            "targets": [],
        }

    @staticmethod
    def _span(doc: Document, w0: int, w1: int, sentence: int, **more) -> dict:
        c0, c1 = doc.tokens[w0][1], doc.tokens[w1 - 1][2]
        span = {"text": doc.text[c0:c1], "type": more.pop("type", None), "token_start": w0, "token_end": w1,
                "char_start": c0, "char_end": c1}
        span.update(more)
        span["sentence"] = sentence
        return span

    def _predict_tags(self, words: list[list[str]], bs: int):
        if not words:
            return None, None, None
        if self.ner is not None:
            from .tasks.ner import predict_word_tags

            model, tokenizer, id2label = self.ner
            tags, scores = predict_word_tags(model, tokenizer, words, batch_size=bs, max_length=self.max_length,
                                             overlap=self.window_overlap, id2label=id2label, return_scores=True)
            return tags, scores, None
        if self.joint is not None:
            from .tasks.joint import predict_joint

            model, tokenizer, _ = self.joint
            preds = predict_joint(model, tokenizer, words, bs)
            tags = [repair_iob2(list(p["tags"])) for p in preds]
            scores = [list(p.get("scores") or [1.0] * len(p["tags"])) for p in preds]
            return tags, scores, [p.get("targets", []) for p in preds]
        return None, None, None

    def _predict_stance(self, items: list[dict]) -> list[dict]:
        if not items:
            return []
        from .tasks.stance import predict_stance

        model, tokenizer, _ = self.stance
        max_length = self.stance_max_length
        if max_length is None:
            meta = getattr(getattr(model, "config", None), "kns_stance", None) or {}
            max_length = int(meta.get("max_length", 256))
        return predict_stance(model, tokenizer, items, batch_size=self.stance_batch_size, max_length=max_length)

    def predict_lines(self, lines: Iterable[str | InputError], input_format: str = "auto", chunk_lines: int = 1000,
                      source: str = "input", on_bad_line: str = "error",
                      skipped: list[InputError] | None = None) -> Iterator[dict]:
        """Stream predictions for lines of text / JSON, `chunk_lines` lines per batched pass.

        `lines` may hold `InputError`s in place of lines that could not be decoded
        (`read_lines`). A bad line (undecodable, not JSON under input_format=jsonl, a bad
        target) stops the stream with its error under on_bad_line="error", after the lines
        before it have been predicted and yielded; under "skip" it is left out and appended to
        `skipped`."""
        if on_bad_line not in ON_BAD_LINE:
            raise KnsError(f"on_bad_line must be one of {ON_BAD_LINE}, not {on_bad_line!r}")
        chunk: list[Document] = []
        for n, line in enumerate(lines, start=1):
            where = f"{source}:{n}"
            try:
                if isinstance(line, InputError):
                    raise line
                chunk.append(make_document(parse_line(line, input_format, where), self.split_sentences, where))
            except InputError as err:
                if on_bad_line == "skip":
                    if skipped is not None:
                        skipped.append(err)
                    continue
                if chunk:  # the valid lines before the bad one are not lost
                    yield from self.predict_documents(chunk)
                raise InputError(err.where, f"{err.detail} (on_bad_line=skip skips such lines)", err.field) from None
            if len(chunk) >= chunk_lines:
                yield from self.predict_documents(chunk)
                chunk = []
        if chunk:
            yield from self.predict_documents(chunk)


def read_lines(f, source: str = "input") -> Iterator[str | InputError]:
    """Lines of a binary file object, decoded as UTF-8 (a leading BOM dropped), split on b"\\n"
    only (not on \\u2028 or form feeds as str.splitlines would): one item per line. A line that
    is not UTF-8 comes out as an `InputError` naming the line and the byte, so that the caller
    decides whether to stop or skip, and the lines around it are still read."""
    for n, raw in enumerate(f, start=1):
        if isinstance(raw, str):  # an already decoded text stream (e.g. a replaced sys.stdin)
            yield raw[1:] if n == 1 and raw.startswith("\ufeff") else raw
            continue
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as err:
            yield InputError(f"{source}:{n}", invalid_utf8_message(raw, err))


def scan_utf8(path: Path) -> list[Problem]:
    """Every line of a file that is not UTF-8 (one fast pass when the whole file is valid)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return []
    except UnicodeDecodeError:
        pass
    problems = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append(Problem(str(path), n, invalid_utf8_message(raw, err)))
    return problems


# --------------------------------------------------------------------------- command line


def _stdout_logging_to_stderr() -> None:
    """Hydra's console log handler writes to stdout: move it so JSON lines stay clean."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stdout:
            handler.setStream(sys.stderr)


def predictor_from_config(cfg) -> Predictor:
    """The `Predictor` that configs/predict.yaml's (and serve.yaml's) model options describe."""
    checkpoint = cfg.get("checkpoint")
    if checkpoint is None or str(checkpoint) in ("", "???"):
        raise KnsError("no checkpoint given: pass checkpoint=DIR (a run's model/ folder)")
    return Predictor.from_pretrained(
        checkpoint, stance_checkpoint=cfg.get("stance_checkpoint"), backend=str(cfg.get("backend", "torch")),
        onnx_dir=cfg.get("onnx_dir"), device=cfg.get("device"), num_threads=cfg.get("num_threads"),
        batch_size=int(cfg.get("batch_size", 32)), max_length=cfg.get("max_length"),
        window_overlap=int(cfg.get("window_overlap", 32)), split_sentences=bool(cfg.get("split_sentences", True)),
        stance_target_types=cfg.get("stance_target_types"), cpu_linear=str(cfg.get("cpu_linear", "auto")),
    )


def run_predict(cfg) -> dict:
    """`scripts/predict.py`: read `input` (a file or '-'), write JSON lines to `output`."""
    import time

    src, dst = str(cfg.get("input", "-")), str(cfg.get("output", "-"))
    on_bad_line = str(cfg.get("on_bad_line", "error"))
    if on_bad_line not in ON_BAD_LINE:
        raise KnsError(f"on_bad_line must be one of {ON_BAD_LINE}, not {on_bad_line!r}")
    if dst == "-":
        _stdout_logging_to_stderr()
    if src != "-" and not Path(src).is_file():
        raise KnsError(f"input file {src} does not exist")
    if src != "-" and on_bad_line == "error":
        # Every undecodable line of a file at once, before the model is loaded.
        problems = scan_utf8(Path(src))
        if problems:
            raise DataValidationError(problems + [Problem(src, None, "fix these lines, or pass on_bad_line=skip to "
                                                                     "predict the others and skip them")])
    predictor = predictor_from_config(cfg)
    fmt, chunk = str(cfg.get("input_format", "auto")), int(cfg.get("chunk_lines", 1000))
    started = time.perf_counter()
    n_lines = n_entities = n_targets = 0
    fin = _binary_stdin() if src == "-" else open(src, "rb")
    skipped: list[InputError] = []
    with contextlib.ExitStack() as stack:
        if src != "-":
            stack.enter_context(fin)
        if dst == "-":
            fout = sys.stdout
            if hasattr(fout, "reconfigure"):
                fout.reconfigure(encoding="utf-8")
        else:
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            tmp = stack.enter_context(replace_file(dst))  # a complete file or none
            fout = stack.enter_context(open(tmp, "w", encoding="utf-8"))
        source = "stdin" if src == "-" else src
        for rec in predictor.predict_lines(read_lines(fin, source), fmt, chunk, source=source,
                                           on_bad_line=on_bad_line, skipped=skipped):
            fout.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n_lines += 1
            n_entities += len(rec["entities"])
            n_targets += len(rec["targets"])
        fout.flush()
    elapsed = time.perf_counter() - started
    summary = {"lines": n_lines, "entities": n_entities, "targets": n_targets, "seconds": round(elapsed, 3),
               "task": predictor.task, "backend": predictor.backend, "skipped_lines": len(skipped)}
    if skipped:
        shown = "; ".join(str(e) for e in skipped[:10]) + (f"; ... and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        print(f"skipped {len(skipped)} bad line(s) (on_bad_line=skip): {shown}", file=sys.stderr)
    print(f"predicted {n_lines} line(s): {n_entities} entities, {n_targets} stance targets "
          f"in {elapsed:.2f}s ({predictor.task}, {predictor.backend}) -> {dst if dst != '-' else 'stdout'}",
          file=sys.stderr)
    return summary


def _binary_stdin():
    return getattr(sys.stdin, "buffer", None) or sys.stdin
