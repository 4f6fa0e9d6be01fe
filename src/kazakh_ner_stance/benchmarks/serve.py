"""Load test of the inference server on loopback: micro-batching vs one request at a time.

    kns-bench serve --checkpoint DIR [--stance-checkpoint DIR] [--requests 600]
        [--concurrency 16] [--texts-per-request 1] [--threads N] [--window-ms 10] [--file IOB2]
        [--warmup 16] [--timeout-s 60] [--in-process] [--out FILE.json]

Input: KazNERD sentences (`--file`, default the shared validation file) written as running text
(`detokenize`), `--texts-per-request` per request, the same requests for every system. Each
server is `scripts/serve.py` in its own process on 127.0.0.1 and a free port; the clients are
asyncio tasks in this process (httpx), each sending its next request as soon as it has the
answer to the last (a closed loop), until the fixed number of requests has been sent: a
bounded load, never an open-ended one.

Systems (each row: requests/s, sentences/s, latency p50/p95/p99, errors):
- one client, one request at a time (the default server);
- `--concurrency` clients, the server with micro-batching off (window_ms=0,
  max_batch_sentences=1: each pass holds one request): one request at a time under load,
  the baseline of the ratio column;
- `--concurrency` clients, the micro-batched server (the defaults of configs/serve.yaml);
- `Predictor` in this process on the same sentences in one call (what `predict.py` does with
  a file): the ceiling, with no HTTP, JSON or queueing.
The 1-minute load average is printed with each row, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ..config import project_root
from ..errors import KnsError


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--checkpoint", type=Path, required=True, help="the NER model folder")
    ap.add_argument("--stance-checkpoint", type=Path, default=None, help="a stance model served with it")
    ap.add_argument("--file", type=Path, default=None,
                    help="an IOB2 file (default: ../shared/data/kaznerd/IOB2_valid.txt; a short one is cycled)")
    ap.add_argument("--requests", type=int, default=600, help="timed requests per server")
    ap.add_argument("--concurrency", type=int, default=16, help="closed-loop clients of the loaded servers")
    ap.add_argument("--texts-per-request", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="the servers' torch threads (default: torch's)")
    ap.add_argument("--window-ms", type=float, default=10, help="the micro-batched server's batching window")
    ap.add_argument("--max-batch-sentences", type=int, default=128, help="the micro-batched server's batch cap")
    ap.add_argument("--warmup", type=int, default=16, help="untimed requests first")
    ap.add_argument("--timeout-s", type=float, default=60, help="per-request timeout (client and server)")
    ap.add_argument("--start-timeout-s", type=float, default=180, help="how long a server may take to answer /health")
    # Off (the default), each server is scripts/serve.py in its own process, as users run it; on,
    # a thread of this process over one loaded Predictor: the quick smoke test, whose clients
    # share the server's interpreter, so its numbers are not the ones to report.
    ap.add_argument("--in-process", action="store_true",
                    help="serve from a thread of this process (a quick smoke test, not figures to report)")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON (server logs beside it)")


def load_texts(path: Path, n: int) -> list[str]:
    from omegaconf import OmegaConf

    from ..config import CONFIG_DIR
    from ..data.iob2 import read_iob2
    from ..data.tokenize import detokenize

    entity_types = list(OmegaConf.load(CONFIG_DIR / "data" / "kaznerd.yaml").get("entity_types") or [])
    sentences, _ = read_iob2(path, entity_types, orphan_inside="repair")
    if not sentences:
        raise KnsError(f"no sentences in {path}")
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

    def __init__(self, args: argparse.Namespace, overrides: list[str], log_path: Path):
        from ..serve.browser import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = project_root()
        argv = [sys.executable, str(self.root / "scripts" / "serve.py"), f"checkpoint={args.checkpoint}",
                "host=127.0.0.1", f"port={self.port}", "log_level=warning", f"limits.timeout_s={args.timeout_s}",
                f"limits.max_queue={max(256, 4 * args.concurrency)}", *overrides]
        if args.stance_checkpoint:
            argv.append(f"stance_checkpoint={args.stance_checkpoint}")
        if args.threads:
            argv.append(f"num_threads={args.threads}")
        self.argv, self.log_path, self.start_timeout = argv, log_path, args.start_timeout_s

    def __enter__(self):
        import httpx

        self.log = open(self.log_path, "w", encoding="utf-8")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.root)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                raise KnsError(f"the server exited ({self.proc.returncode}); see {self.log_path}:\n"
                                 + self.log_path.read_text(encoding="utf-8")[-2000:])
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise KnsError(f"the server did not answer /health within {self.start_timeout:.0f} s; see {self.log_path}")

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
    """The same app in a thread of this process (--in-process)."""

    _predictor = None

    def __init__(self, args: argparse.Namespace, overrides: list[str], log_path: Path):
        from ..predict import Predictor
        from ..serve import ServeLimits

        if ThreadServer._predictor is None:
            ThreadServer._predictor = Predictor.from_pretrained(args.checkpoint, stance_checkpoint=args.stance_checkpoint,
                                                                num_threads=args.threads)
        limits = {k.split(".", 1)[1]: float(v) for k, v in (o.split("=", 1) for o in overrides)}
        self.limits = ServeLimits(timeout_s=args.timeout_s, max_queue=max(256, 4 * args.concurrency),
                                  **{k: (int(v) if k == "max_batch_sentences" else v) for k, v in limits.items()})

    def __enter__(self):
        from ..serve import create_app
        from ..serve.browser import background_server

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


def run_benchmark(args: argparse.Namespace) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    src = args.file or project_root().parent / "shared" / "data" / "kaznerd" / "IOB2_valid.txt"
    n_req, per, conc = args.requests, args.texts_per_request, args.concurrency
    texts = load_texts(src, n_req * per + args.warmup * per)
    warm = [texts[i * per:(i + 1) * per] for i in range(args.warmup)]
    timed_texts = texts[args.warmup * per:]
    requests = [timed_texts[i * per:(i + 1) * per] for i in range(n_req)]
    print(f"{n_req} requests x {per} sentence(s) from {src}; {conc} concurrent clients; checkpoint {args.checkpoint}"
          + (f" + stance {args.stance_checkpoint}" if args.stance_checkpoint else "")
          + f"; threads={args.threads or 'default'}, cpus={os.cpu_count()}", flush=True)
    logs = args.out.with_suffix("") if args.out else Path(os.environ.get("TMPDIR", "/tmp"))
    logs.mkdir(parents=True, exist_ok=True)

    systems = [
        ("server, 1 client, one request at a time", 1, []),
        (f"server, {conc} clients, micro-batching off", conc, ["limits.window_ms=0", "limits.max_batch_sentences=1"]),
        (f"server, {conc} clients, micro-batched (window {args.window_ms:g} ms)", conc,
         [f"limits.window_ms={args.window_ms:g}", f"limits.max_batch_sentences={args.max_batch_sentences}"]),
    ]
    rows = []
    for i, (name, clients, overrides) in enumerate(systems):
        server_cls = ThreadServer if args.in_process else ServerProcess
        with server_cls(args, overrides, logs / f"benchmark_serve_server{i}.log") as server:
            if warm:  # first passes (allocator, kernels) are not timed
                run_load(server.url, warm, min(clients, len(warm)), args.timeout_s)
            before = _load1()
            res = run_load(server.url, requests, clients, args.timeout_s)
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
    from ..predict import Predictor

    predictor = ThreadServer._predictor or Predictor.from_pretrained(
        args.checkpoint, stance_checkpoint=args.stance_checkpoint, num_threads=args.threads)
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
    if args.out:
        config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.out.write_text(json.dumps({"config": config, "rows": rows}, indent=2, ensure_ascii=False) + "\n",
                            encoding="utf-8")
    return 1 if any(r["errors"] for r in rows) else 0
