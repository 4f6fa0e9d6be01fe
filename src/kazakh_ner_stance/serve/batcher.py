"""Micro-batching: requests that arrive together are predicted in one batched pass.

One model thread runs `predict(docs)`; while it works, new requests queue up, and each pass
takes every waiting request (up to `max_batch_sentences`), so under load a pass serves many
requests at the cost of one. Under load (the last pass served more than one request) an idle
model waits `window_ms` after the first request for the others to join it: their clients send
again right after the last answers, and a pass taken at once would hold one request and leave
the rest for the next. A lone client never waits. The queue is bounded
(`max_queue` requests): beyond it a request is refused at once (HTTP 503) instead of waiting
past its timeout, and a request whose time ran out before its pass started is dropped unrun.
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence


class QueueFull(Exception):
    """More requests are waiting than the queue holds."""


@dataclass
class _Job:
    docs: Sequence
    sentences: int
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)
    abandoned: bool = False  # its caller stopped waiting (timeout): skip it


class MicroBatcher:
    def __init__(self, predict: Callable[[list], list], *, window_ms: float = 10.0, max_batch_sentences: int = 128,
                 max_queue: int = 256):
        self.predict = predict
        self.window_s = max(0.0, float(window_ms)) / 1000.0
        self.max_batch_sentences = max(1, int(max_batch_sentences))
        self.max_queue = max(1, int(max_queue))
        self._queue: collections.deque[_Job] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        # Counters for /health and the benchmark: passes run, requests and sentences served.
        self.stats = {"batches": 0, "requests": 0, "sentences": 0, "rejected": 0, "timed_out": 0}
        self._last_pass_requests = 0

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kns-predict")
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        for job in self._queue:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._queue.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, docs: Sequence, timeout_s: float) -> list:
        """Predictions for `docs` (in order), from a batched pass shared with other requests.
        Raises QueueFull at once when the queue is full, asyncio.TimeoutError after `timeout_s`."""
        if self._worker is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        if len(self._queue) >= self.max_queue:
            self.stats["rejected"] += 1
            raise QueueFull(f"{len(self._queue)} requests are already waiting (max_queue={self.max_queue})")
        job = _Job(docs, sum(max(1, len(d.sentences)) for d in docs), asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self._wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout_s)
        except asyncio.TimeoutError:
            job.abandoned = True  # if its pass already started, its answer is dropped
            try:
                self._queue.remove(job)  # not yet started: it no longer holds a place in the queue
            except ValueError:
                pass
            self.stats["timed_out"] += 1
            raise

    def _take(self) -> list[_Job]:
        """The next pass: queued jobs in arrival order up to max_batch_sentences (always one)."""
        jobs, sentences = [], 0
        while self._queue:
            job = self._queue[0]
            if job.abandoned:
                self._queue.popleft()
                continue
            if jobs and sentences + job.sentences > self.max_batch_sentences:
                break
            jobs.append(self._queue.popleft())
            sentences += job.sentences
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            # Idle model under load: give the requests of the other clients a short window to join.
            window = self.window_s if self._last_pass_requests > 1 else 0.0
            deadline = self._queue[0].enqueued + window
            while sum(j.sentences for j in self._queue) < self.max_batch_sentences:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), left)
                except asyncio.TimeoutError:
                    break
            jobs = self._take()
            if not jobs:
                continue
            docs = [d for job in jobs for d in job.docs]
            try:
                results = await loop.run_in_executor(self._executor, self.predict, docs)
            except Exception as err:  # noqa: BLE001 - every waiting request gets the error
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(err)
                continue
            self._last_pass_requests = len(jobs)
            self.stats["batches"] += 1
            self.stats["requests"] += len(jobs)
            self.stats["sentences"] += sum(j.sentences for j in jobs)
            pos = 0
            for job in jobs:
                part = results[pos : pos + len(job.docs)]
                pos += len(job.docs)
                if not job.future.done():
                    job.future.set_result(part)
