"""Load test of the inference server on loopback: micro-batching vs one request at a time.

    python scripts/benchmark_serve.py checkpoint=DIR [stance_checkpoint=DIR] [requests=600]
        [concurrency=16] [texts_per_request=1] [threads=null] [window_ms=10] [file=IOB2]
        [warmup=16] [timeout_s=60] [out=FILE.json]

Input: KazNERD sentences (`file`, default the shared validation file) written as running text
(`detokenize`), `texts_per_request` per request, the same requests for every system. Each
server is `scripts/serve.py` in its own process on 127.0.0.1 and a free port; the clients are
asyncio tasks in this process (httpx), each sending its next request as soon as it has the
answer to the last (a closed loop), until the fixed number of requests has been sent: a
bounded load, never an open-ended one.

Systems (each row: requests/s, sentences/s, latency p50/p95/p99, errors):
- one client, one request at a time (the default server);
- `concurrency` clients, the server with micro-batching off (window_ms=0,
  max_batch_sentences=1: each pass holds one request): one request at a time under load,
  the baseline of the ratio column;
- `concurrency` clients, the micro-batched server (the defaults of configs/serve.yaml);
- `Predictor` in this process on the same sentences in one call (what `predict.py` does with
  a file): the ceiling, with no HTTP, JSON or queueing.
The 1-minute load average is printed with each row, since the machine may be shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {
    "checkpoint": None,
    "stance_checkpoint": None,
    "file": None,
    "requests": 600,
    "concurrency": 16,
    "texts_per_request": 1,
    "threads": None,
    "window_ms": 10,
    "max_batch_sentences": 128,
    "warmup": 16,
    "timeout_s": 60,
    "start_timeout_s": 180,
    # true: each server is scripts/serve.py in its own process (what users run); false: in a
    # thread of this process over one loaded Predictor (the quick smoke test; the clients then
    # share the server's interpreter, so its numbers are not the ones to report).
    "isolate": True,
    "out": None,
}


def load_texts(path: Path, n: int) -> list[str]:
    from kazakh_ner_stance.config import CONFIG_DIR
    from kazakh_ner_stance.data.iob2 import read_iob2
    from kazakh_ner_stance.data.tokenize import detokenize

    entity_types = list(OmegaConf.load(CONFIG_DIR / "data" / "kaznerd.yaml").get("entity_types") or [])
    sentences, _ = read_iob2(path, entity_types, orphan_inside="repair")
    if not sentences:
        raise SystemExit(f"no sentences in {path}")
    texts = [detokenize(s.tokens) for s in sentences]
    return [texts[i % len(texts)] for i in range(n)]  # a short file is cycled


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class ServerProcess:
    """scripts/serve.py on loopback, with the overrides given; stopped on exit."""

    def __init__(self, cfg, overrides: list[str], log_path: Path):
        from kazakh_ner_stance.serve.browser import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, str(ROOT / "scripts" / "serve.py"), f"checkpoint={cfg.checkpoint}", "host=127.0.0.1",
                f"port={self.port}", "log_level=warning", f"limits.timeout_s={cfg.timeout_s}",
                f"limits.max_queue={max(256, 4 * int(cfg.concurrency))}", *overrides]
        if cfg.stance_checkpoint:
            args.append(f"stance_checkpoint={cfg.stance_checkpoint}")
        if cfg.threads:
            args.append(f"num_threads={int(cfg.threads)}")
        self.args, self.log_path, self.start_timeout = args, log_path, float(cfg.start_timeout_s)

    def __enter__(self):
        import httpx

        self.log = open(self.log_path, "w", encoding="utf-8")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}); see {self.log_path}:\n"
                                 + self.log_path.read_text(encoding="utf-8")[-2000:])
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise SystemExit(f"the server did not answer /health within {self.start_timeout:.0f} s; see {self.log_path}")

    def health(self) -> dict:
        import httpx

        return httpx.get(self.url + "/health", timeout=10).json()

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class ThreadServer:
    """The same app in a thread of this process (isolate=false)."""

    _predictor = None

    def __init__(self, cfg, overrides: list[str], log_path: Path):
        from kazakh_ner_stance.predict import Predictor
        from kazakh_ner_stance.serve import ServeLimits

        if ThreadServer._predictor is None:
            ThreadServer._predictor = Predictor.from_pretrained(cfg.checkpoint, stance_checkpoint=cfg.stance_checkpoint,
                                                                num_threads=cfg.threads)
        limits = {k.split(".", 1)[1]: float(v) for k, v in (o.split("=", 1) for o in overrides)}
        self.limits = ServeLimits(timeout_s=float(cfg.timeout_s), max_queue=max(256, 4 * int(cfg.concurrency)),
                                  **{k: (int(v) if k == "max_batch_sentences" else v) for k, v in limits.items()})

    def __enter__(self):
        from kazakh_ner_stance.serve import create_app
        from kazakh_ner_stance.serve.browser import background_server

        self.app = create_app(ThreadServer._predictor, self.limits)
        self._ctx = background_server(self.app)
        self.url = self._ctx.__enter__()
        return self

    def health(self) -> dict:
        import httpx

        return httpx.get(self.url + "/health", timeout=10).json()

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


async def _load(url: str, bodies: list[bytes], concurrency: int, timeout_s: float) -> dict:
    """Send every body once from `concurrency` closed-loop clients; latencies and errors."""
    import httpx

    latencies, errors, statuses = [], 0, {}
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:

        async def worker():
            nonlocal next_index, errors
            while next_index < len(bodies):
                body = bodies[next_index]
                next_index += 1
                started = time.perf_counter()
                try:
                    resp = await client.post("/predict", content=body, headers={"Content-Type": "application/json"})
                    ok = resp.status_code == 200
                    statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
                    if ok:
                        resp.json()
                except httpx.HTTPError as err:
                    ok = False
                    statuses[type(err).__name__] = statuses.get(type(err).__name__, 0) + 1
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "latencies": latencies, "errors": errors, "statuses": statuses}


def run_load(url: str, requests: list[list[str]], concurrency: int, timeout_s: float) -> dict:
    bodies = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in requests]
    return asyncio.run(_load(url, bodies, concurrency, timeout_s))


def _load1() -> float:
    return round(os.getloadavg()[0], 2)


def main(argv: list[str]) -> int:
    cfg = OmegaConf.merge(OmegaConf.create(DEFAULTS), OmegaConf.from_dotlist(argv))
    if not cfg.checkpoint:
        print("usage: benchmark_serve.py checkpoint=DIR [stance_checkpoint=DIR] [requests=600] [concurrency=16] ...",
              file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from kazakh_ner_stance.config import project_root

    src = Path(str(cfg.file)) if cfg.file else project_root().parent / "shared" / "data" / "kaznerd" / "IOB2_valid.txt"
    n_req, per, conc = int(cfg.requests), int(cfg.texts_per_request), int(cfg.concurrency)
    texts = load_texts(src, n_req * per + int(cfg.warmup) * per)
    warm = [texts[i * per:(i + 1) * per] for i in range(int(cfg.warmup))]
    timed_texts = texts[int(cfg.warmup) * per:]
    requests = [timed_texts[i * per:(i + 1) * per] for i in range(n_req)]
    print(f"{n_req} requests x {per} sentence(s) from {src}; {conc} concurrent clients; checkpoint {cfg.checkpoint}"
          + (f" + stance {cfg.stance_checkpoint}" if cfg.stance_checkpoint else "")
          + f"; threads={cfg.threads or 'default'}, cpus={os.cpu_count()}", flush=True)
    logs = Path(str(cfg.out)).with_suffix("") if cfg.out else Path(os.environ.get("TMPDIR", "/tmp"))
    logs.mkdir(parents=True, exist_ok=True)

    systems = [
        ("server, 1 client, one request at a time", 1, []),
        (f"server, {conc} clients, micro-batching off", conc, ["limits.window_ms=0", "limits.max_batch_sentences=1"]),
        (f"server, {conc} clients, micro-batched (window {cfg.window_ms:g} ms)", conc,
         [f"limits.window_ms={cfg.window_ms}", f"limits.max_batch_sentences={cfg.max_batch_sentences}"]),
    ]
    rows = []
    for i, (name, clients, overrides) in enumerate(systems):
        server_cls = ServerProcess if cfg.isolate else ThreadServer
        with server_cls(cfg, overrides, logs / f"benchmark_serve_server{i}.log") as server:
            if warm:  # first passes (allocator, kernels) are not timed
                run_load(server.url, warm, min(clients, len(warm)), float(cfg.timeout_s))
            before = _load1()
            res = run_load(server.url, requests, clients, float(cfg.timeout_s))
            queue = server.health()["queue"]
        lat = res["latencies"]
        row = {"system": name, "clients": clients, "requests": n_req, "sentences": n_req * per,
               "errors": res["errors"], "statuses": res["statuses"], "seconds": res["seconds"],
               "requests_per_s": n_req / res["seconds"], "sentences_per_s": n_req * per / res["seconds"],
               "p50_ms": 1000 * percentile(lat, 0.5), "p95_ms": 1000 * percentile(lat, 0.95),
               "p99_ms": 1000 * percentile(lat, 0.99), "mean_ms": 1000 * statistics.fmean(lat) if lat else None,
               "passes": queue["batches"], "requests_per_pass": queue["requests"] / max(1, queue["batches"]),
               "load": (before, _load1())}
        rows.append(row)
        print(f"  {name}: {row['requests_per_s']:.1f} requests/s, p50 {row['p50_ms']:.0f} ms, "
              f"{row['errors']} errors, {row['requests_per_pass']:.1f} requests per pass", flush=True)

    # predict.py's way: one process, every sentence in one call (batched, length-sorted).
    from kazakh_ner_stance.predict import Predictor

    predictor = ThreadServer._predictor or Predictor.from_pretrained(
        cfg.checkpoint, stance_checkpoint=cfg.stance_checkpoint, num_threads=cfg.threads)
    flat = [t for r in requests for t in r]
    predictor([t for r in warm for t in r])
    before = _load1()
    started = time.perf_counter()
    predictor(flat)
    secs = time.perf_counter() - started
    rows.append({"system": "Predictor in-process, one call (predict.py)", "clients": None, "requests": None,
                 "sentences": len(flat), "errors": 0, "seconds": secs, "requests_per_s": None,
                 "sentences_per_s": len(flat) / secs, "p50_ms": None, "p95_ms": None, "p99_ms": None,
                 "passes": None, "requests_per_pass": None, "load": (before, _load1())})
    print(f"  in-process: {len(flat) / secs:.1f} sentences/s", flush=True)

    base = rows[1]["sentences_per_s"]
    fmt = lambda v, spec: "–" if v is None else format(v, spec)  # noqa: E731
    print()
    print("| system | requests | errors | requests/s | sentences/s | p50 ms | p95 ms | p99 ms | requests per pass "
          "| × micro-batching off | load 1-min |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        r["ratio"] = r["sentences_per_s"] / base
        print(f"| {r['system']} | {fmt(r['requests'], 'd')} | {r['errors']} | {fmt(r['requests_per_s'], '.1f')} | "
              f"{r['sentences_per_s']:.1f} | {fmt(r['p50_ms'], '.0f')} | {fmt(r['p95_ms'], '.0f')} | "
              f"{fmt(r['p99_ms'], '.0f')} | {fmt(r['requests_per_pass'], '.1f')} | {r['ratio']:.2f} | "
              f"{r['load'][0]}→{r['load'][1]} |")
    if cfg.out:
        Path(str(cfg.out)).write_text(json.dumps({"config": OmegaConf.to_container(cfg), "rows": rows}, indent=2,
                                                 ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
