"""Optional warm start of the stance classifier on KazSAnDRA review polarity.

KazSAnDRA (Kazakh sentiment analysis dataset of reviews and attitudes) ships as zip files of
CSV with columns custom_id, text, text_cleaned, label (0 negative / 1 positive), domain.
Sentiment is not stance, but a review's polarity is an attitude toward the thing reviewed, so
a short first stage maps positive -> FAVOR and negative -> AGAINST and trains the encoder and
the classification head on a subsample before the stance data. The input has the stance
task's pair shape: a fixed target phrase (``target_text``, "this product" by default) and the
review as the sentence. The review has no target span, so with the pooler head it carries no
markers; with the markers head (which reads the marker vectors) the target phrase, wrapped in
the markers, opens the sentence ("[TGT] бұл өнім [/TGT] <review>"). Whether it
helps is an empirical question measured on dev/test macro-F1 (see the task config comments).
"""

from __future__ import annotations

import csv
import io
import logging
import random
import time
import zipfile
from pathlib import Path
from typing import Sequence

from ..errors import KnsError

log = logging.getLogger(__name__)

POLARITY_TO_STANCE = {1: 1, 0: 2}  # positive -> FAVOR (id 1), negative -> AGAINST (id 2)


def read_kazsandra(paths: Sequence[str | Path], text_column: str = "text") -> list[dict]:
    """Rows {"text", "label", "domain"} from the CSV inside each zip file (or plain CSV)."""
    rows: list[dict] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise KnsError(f"{path}: KazSAnDRA file not found (set task.warm_start.data_dir / train_files / eval_files)")
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith(".csv")]
                if not names:
                    raise KnsError(f"{path}: no .csv file inside the zip")
                for name in names:
                    with zf.open(name) as f:
                        rows.extend(_read_csv(io.TextIOWrapper(f, encoding="utf-8"), f"{path}:{name}", text_column))
        else:
            with open(path, encoding="utf-8") as f:
                rows.extend(_read_csv(f, str(path), text_column))
    return rows


def _read_csv(handle, where: str, text_column: str) -> list[dict]:
    reader = csv.DictReader(handle)
    missing = {text_column, "label"} - set(reader.fieldnames or [])
    if missing:
        raise KnsError(f"{where}: missing column(s) {sorted(missing)} (has {reader.fieldnames})")
    out = []
    for row in reader:
        text = (row.get(text_column) or "").strip()
        try:
            label = int(row["label"])
        except (TypeError, ValueError):
            continue
        if text and label in POLARITY_TO_STANCE:
            out.append({"text": text, "label": label, "domain": row.get("domain") or ""})
    return out


def subsample(rows: list[dict], n: int | None, seed: int, balanced: bool = True) -> list[dict]:
    """`n` rows (seeded); with `balanced`, as many negative as positive ones where possible."""
    rng = random.Random(seed)
    rows = list(rows)
    rng.shuffle(rows)
    if n is None or n >= len(rows):
        return rows
    if not balanced:
        return rows[:n]
    pos = [r for r in rows if r["label"] == 1]
    neg = [r for r in rows if r["label"] == 0]
    half = n // 2
    take_neg = min(len(neg), half)
    take_pos = min(len(pos), n - take_neg)
    out = pos[:take_pos] + neg[:take_neg]
    rng.shuffle(out)
    return out


def _encode(tokenizer, rows, target_text: str, max_length: int, max_words: int, markers=None):
    target = target_text.split()
    texts = [r["text"].split()[:max_words] for r in rows]
    if markers:
        texts = [[markers[0], *target, markers[1], *t] for t in texts]
    enc = tokenizer([target] * len(rows), texts, is_split_into_words=True, truncation="only_second",
                    max_length=max_length)
    labels = [POLARITY_TO_STANCE[r["label"]] for r in rows]
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return [{**{k: enc[k][i] for k in keys}, "labels": labels[i]} for i in range(len(rows))]


def _batches(features, batch_size: int, rng: random.Random):
    """Shuffled batches of similar length (sort within chunks of 50 batches)."""
    idx = list(range(len(features)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c : c + chunk], key=lambda i: len(features[i]["input_ids"]))
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def _collate(tokenizer, features, batch):
    import torch

    width = max(len(features[i]["input_ids"]) for i in batch)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = {}
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key not in features[batch[0]]:
            continue
        t = torch.full((len(batch), width), pad if key == "input_ids" else 0, dtype=torch.long)
        for r, i in enumerate(batch):
            seq = features[i][key]
            t[r, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        out[key] = t
    out["labels"] = torch.tensor([features[i]["labels"] for i in batch], dtype=torch.long)
    return out


def polarity_accuracy(model, tokenizer, features, batch_size: int = 64) -> float:
    """Share of held-out reviews where P(FAVOR) vs P(AGAINST) picks the right polarity."""
    import torch

    if not features:
        return float("nan")
    device = next(model.parameters()).device
    model.eval()
    correct = 0
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            batch = order[b : b + batch_size]
            inputs = _collate(tokenizer, features, batch)
            labels = inputs.pop("labels")
            logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits
            pred = torch.where(logits[:, 1] >= logits[:, 2], 1, 2).cpu()
            correct += int((pred == labels).sum())
    model.train()
    return correct / len(features)


def warm_start_stance(model, tokenizer, ws, task=None, freeze_embeddings: bool = False, seed: int = 42) -> dict:
    """Train `model` (a 3-way sequence classifier) on a KazSAnDRA subsample, in place. `ws`: the
    composed `task.warm_start` (every key of WarmStartOptions in tasks/options.py is set)."""
    import torch

    t0 = time.time()
    data_dir = Path(str(ws.data_dir))
    train_files = [data_dir / f for f in ws.train_files]
    eval_files = [data_dir / f for f in ws.eval_files]
    text_column = str(ws.text_column)
    rows = subsample(read_kazsandra(train_files, text_column), ws.n_rows, seed, bool(ws.balanced))
    eval_rows = subsample(read_kazsandra(eval_files, text_column), ws.eval_rows, seed + 1, True) if eval_files else []
    max_length = int(ws.max_length)
    max_words = int(ws.max_words)
    target_text = str(ws.target_text)
    markers = tuple(task.markers) if task is not None and getattr(task, "head", "pooler") == "markers" else None
    feats = _encode(tokenizer, rows, target_text, max_length, max_words, markers)
    eval_feats = _encode(tokenizer, eval_rows, target_text, max_length, max_words, markers) if eval_rows else []

    emb = model.get_input_embeddings().weight
    emb_trainable = emb.requires_grad
    if freeze_embeddings:  # as train.py does for the main stage (see freeze_word_embeddings)
        emb.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    lr = float(ws.learning_rate)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=float(ws.weight_decay))
    batch_size = int(ws.batch_size)
    epochs = int(ws.epochs)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    total = epochs * ((len(feats) + batch_size - 1) // batch_size)
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm))
    )
    device = next(model.parameters()).device
    model.train()
    step, running = 0, 0.0
    for _ in range(epochs):
        for batch in _batches(feats, batch_size, rng):
            inputs = {k: v.to(device) for k, v in _collate(tokenizer, feats, batch).items()}
            labels = inputs.pop("labels")
            logits = model(**inputs).logits.float()
            loss = torch.nn.functional.cross_entropy(logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            running += float(loss.detach())
            if step % 25 == 0:
                log.info("warm start step %d/%d loss %.4f", step, total, running / 25)
                running = 0.0
    emb.requires_grad_(emb_trainable)
    info = {"rows": len(feats), "steps": step, "seconds": round(time.time() - t0, 1), "learning_rate": lr,
            "target_text": target_text, "files": [p.name for p in train_files]}
    if eval_feats:
        info["heldout_polarity_accuracy"] = polarity_accuracy(model, tokenizer, eval_feats)
        info["heldout_rows"] = len(eval_feats)
    log.info("KazSAnDRA warm start: %s", info)
    if task is not None:
        task.warm_start_info = info
    return info
