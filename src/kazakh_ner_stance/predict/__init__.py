"""Raw text in, entities and target stance out: the `Predictor` and `scripts/predict.py`.

    python scripts/predict.py checkpoint=DIR input=FILE output=FILE.jsonl
    cat news.txt | python scripts/predict.py checkpoint=DIR            # stdin -> stdout
    python scripts/predict.py checkpoint=NER_DIR stance_checkpoint=STANCE_DIR input=... output=...
    python scripts/predict.py checkpoint=DIR backend=onnx               # after scripts/export_onnx.py

    from kazakh_ner_stance import Predictor
    predictor = Predictor.from_pretrained("artifacts/runs/kaznerd_ner_e5_small/model")
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

Modules: `inputs` (lines and JSON objects -> documents), `predictor` (the `Predictor`),
`onnx_runtime` (backend=onnx), `checkpoints` (which task a checkpoint folder holds) and
`command_line` (`scripts/predict.py`'s file and stdin/stdout I/O).
"""

from .checkpoints import checkpoint_task
from .command_line import predictor_from_config, run_predict
from .inputs import Document, InputError, make_document, parse_line, read_lines, scan_utf8
from .onnx_runtime import ONNX_FILE, ONNX_TASKS, OnnxTokenClassifier, find_onnx_dir
from .predictor import BACKENDS, Predictor, tags_to_spans

__all__ = ["BACKENDS", "Document", "InputError", "ONNX_FILE", "ONNX_TASKS", "OnnxTokenClassifier", "Predictor",
           "checkpoint_task", "find_onnx_dir", "make_document", "parse_line", "predictor_from_config", "read_lines",
           "run_predict", "scan_utf8", "tags_to_spans"]
