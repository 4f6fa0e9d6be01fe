"""Seeded, vectorised sentence-level bootstrap.

Every metric we bootstrap is a function of *sums of per-item counts* (TP/FP/FN per entity
type for NER, per-class TP/pred/gold for stance). A resample of items is therefore fully
described by how many times each item was drawn, and the resampled sums of all resamples
at once are one matrix product: ``weights (n_resamples x n_items) @ counts (n_items x k)``.
1,000 resamples over ~1,100 sentences and 25 types take a few milliseconds this way.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def resample_weights(n_items: int, n_resamples: int, seed: int, chunk: int = 250) -> Iterator[np.ndarray]:
    """Yield blocks of draw counts, shape (<=chunk, n_items), n_resamples rows in total.

    Row r counts how often each item appears in resample r (items drawn with replacement,
    n_items draws). The same (n_items, n_resamples, seed, chunk) always gives the same
    rows: one numpy Generator, drawn in order."""
    if n_items <= 0 or n_resamples <= 0:
        return
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        b = min(chunk, n_resamples - done)
        idx = rng.integers(0, n_items, size=(b, n_items))
        flat = (np.arange(b)[:, None] * n_items + idx).ravel()
        yield np.bincount(flat, minlength=b * n_items).reshape(b, n_items).astype(np.float64)
        done += b


def resampled_sums(counts: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """counts: (n_items, k) per-item counts -> (n_resamples, k) sums over each resample."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim == 1:
        counts = counts[:, None]
    n_items = counts.shape[0]
    if n_items == 0 or n_resamples <= 0:
        return np.zeros((0, counts.shape[1]))
    blocks = [w @ counts for w in resample_weights(n_items, n_resamples, seed)]
    return np.concatenate(blocks, axis=0)


def percentile_ci(samples: np.ndarray, confidence: float) -> np.ndarray:
    """Percentile interval along axis 0, ignoring NaN (a resample where the metric is
    undefined, e.g. a type absent from both gold and prediction). Returns (2, ...) with
    NaN where every sample is NaN."""
    samples = np.asarray(samples, dtype=np.float64)
    alpha = (1.0 - confidence) / 2.0
    if samples.shape[0] == 0:
        return np.full((2,) + samples.shape[1:], np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanquantile(samples, [alpha, 1.0 - alpha], axis=0)


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with 0 where den == 0 (seqeval's and sklearn's zero_division=0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def prf(tp: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 from counts, elementwise, zero_division=0 everywhere."""
    p = safe_div(tp, n_pred)
    r = safe_div(tp, n_gold)
    f = safe_div(2 * p * r, p + r)
    return p, r, f


def ci_list(lo_hi) -> list[float | None]:
    """[lo, hi] as plain floats for JSON (None where undefined)."""
    out = []
    for v in lo_hi:
        v = float(v)
        out.append(None if np.isnan(v) else round(v, 6))
    return out
