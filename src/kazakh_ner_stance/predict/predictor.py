"""The `Predictor`: a loaded NER, stance or joint checkpoint (or NER + stance) that turns
documents into entities and target stances (the output schema is in the package docstring).

Inference is batched over all sentences of a chunk of lines, sorted by length, under
`torch.inference_mode`; sentences longer than the model window are split into overlapping
windows (tasks/ner.py), never truncated."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from ..errors import KnsError
from ..labels import TARGET_TYPES, entity_types_of, iob2_spans, repair_iob2
from ..tasks.registry import TASKS, task_with
from ..training.checkpoints import trained_inference
from .checkpoints import checkpoint_task
from .inputs import ON_BAD_LINE, Document, InputError, make_document, parse_line
from .onnx_runtime import ONNX_FILE, ONNX_TASKS, OnnxTokenClassifier, find_onnx_dir

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")


def tags_to_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) word spans of a predicted IOB2 tag sequence, end exclusive; an
    orphan I-X starts an entity (``labels.iob2_spans`` in lenient mode)."""
    return iob2_spans(tags, "lenient")


def _probs_dict(probs, id2label=None) -> dict:
    if isinstance(probs, Mapping):
        return {str(k): float(v) for k, v in probs.items()}
    return {(id2label or {}).get(i, str(i)): float(p) for i, p in enumerate(probs)}


class Predictor:
    """Callable: `predictor(texts) -> list[dict]` (one dict per text, schema in the package docstring).

    Build it with `Predictor.from_pretrained(checkpoint, stance_checkpoint=None, backend="torch")`.
    """

    def __init__(self, *, ner=None, stance=None, joint=None, batch_size: int = 32, max_length: int | None = None,
                 window_overlap: int = 32, split_sentences: bool = True,
                 stance_target_types: Iterable[str] | None = None, stance_batch_size: int | None = None,
                 stance_max_length: int | None = None, backend: str = "torch", decoding: str = "argmax"):
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
        self.decoding = decoding  # of the NER tags: "argmax" or "viterbi" (tasks.ner.predict_word_tags)
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
            trained = trained_inference(path)
            if kwargs.get("max_length") is None:  # the window the model was trained with
                kwargs["max_length"] = trained["max_length"]
            if kwargs.get("decoding") is None:  # and the decoding its scores were measured with
                kwargs["decoding"] = trained["decoding"]
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
        for key in ("max_length", "decoding"):
            if kwargs.get(key) is None:
                kwargs.pop(key, None)
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
            from ..tasks.ner import predict_word_tags

            model, tokenizer, id2label = self.ner
            tags, scores = predict_word_tags(model, tokenizer, words, batch_size=bs, max_length=self.max_length,
                                             overlap=self.window_overlap, id2label=id2label, return_scores=True,
                                             decoding=self.decoding)
            return tags, scores, None
        if self.joint is not None:
            from ..tasks.joint import predict_joint

            model, tokenizer, _ = self.joint
            preds = predict_joint(model, tokenizer, words, bs)
            tags = [repair_iob2(list(p["tags"])) for p in preds]
            scores = [list(p.get("scores") or [1.0] * len(p["tags"])) for p in preds]
            return tags, scores, [p.get("targets", []) for p in preds]
        return None, None, None

    def _predict_stance(self, items: list[dict]) -> list[dict]:
        if not items:
            return []
        from ..tasks.stance import predict_stance

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
