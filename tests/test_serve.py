"""The inference server over tiny checkpoints: every route, every limit, bad JSON and bytes,
stance targets by character span, the empty text, micro-batching, a full queue, timeouts, and
that it keeps serving after each bad request."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the server needs the `serve` extra (fastapi, uvicorn, httpx)")
from fastapi.testclient import TestClient  # noqa: E402

from kazakh_ner_stance.config import compose  # noqa: E402
from kazakh_ner_stance.errors import KnsError  # noqa: E402
from kazakh_ner_stance.predict import Predictor  # noqa: E402
from kazakh_ner_stance.serve import ServeLimits, create_app  # noqa: E402
from kazakh_ner_stance.serve.batcher import MicroBatcher, QueueFull  # noqa: E402

EXAMPLE = "Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады."
PERSON = (EXAMPLE.index("Қасым"), EXAMPLE.index(" Бейбітшілік"))  # [21, 40): Қасым-Жомарт Тоқаев


@pytest.fixture(scope="module")
def ner_predictor(tiny_ner_checkpoint) -> Predictor:
    return Predictor.from_pretrained(tiny_ner_checkpoint)


@pytest.fixture(scope="module")
def both_predictor(tiny_ner_checkpoint, tiny_stance_checkpoint) -> Predictor:
    return Predictor.from_pretrained(tiny_ner_checkpoint, stance_checkpoint=tiny_stance_checkpoint)


@pytest.fixture(scope="module")
def client(both_predictor, tiny_ner_checkpoint):
    limits = ServeLimits(max_body_bytes=4000, max_texts=4, max_chars=300, timeout_s=30, window_ms=1)
    app = create_app(both_predictor, limits, model_info={"checkpoint": str(tiny_ner_checkpoint)})
    with TestClient(app) as c:
        yield c


def _error(resp, status: int, code: str, field: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["status"] == status and body["error"] == code and body["message"]
    assert "Traceback" not in resp.text
    if field is not None:
        assert body.get("field") == field, body
    return body


def test_health(client, both_predictor, tiny_ner_checkpoint):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["task"] == "ner+stance" and h["backend"] == "torch"
    assert h["model"]["checkpoint"] == str(tiny_ner_checkpoint)
    assert h["labels"]["stance"] == ["NONE", "FAVOR", "AGAINST"]
    assert "PERSON" in h["labels"]["entity_types"] and "PERSON" in h["labels"]["stance_target_types"]
    assert h["labels"]["ner_tags"][0] == "O"
    assert {"python", "torch", "transformers", "fastapi"} <= set(h["versions"])
    assert h["limits"]["max_texts"] == 4 and "waiting" in h["queue"]


def test_predict_forms_match_the_predictor(client, both_predictor):
    # One text string, one object (other keys copied), a tokens item, and a list of them.
    one = client.post("/predict", json=EXAMPLE)
    assert one.status_code == 200 and one.json() == both_predictor(EXAMPLE)
    obj = client.post("/predict", json={"text": EXAMPLE, "id": "a-1"}).json()
    assert obj["id"] == "a-1" and obj == both_predictor({"text": EXAMPLE, "id": "a-1"})
    items = ["Астана қаласы.", {"tokens": ["Тоқаев", "келді", "."], "targets": [[0, 1]]}, {"text": EXAMPLE}]
    many = client.post("/predict", json=items)
    assert many.status_code == 200 and many.json() == both_predictor(items)
    rec = many.json()[1]
    assert rec["text"] == "Тоқаев келді ." and rec["targets"][0]["text"] == "Тоқаев"
    # Raw text without JSON.
    plain = client.post("/predict", content=EXAMPLE.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})
    assert plain.json() == both_predictor(EXAMPLE)
    bom = client.post("/predict", content="\ufeff".encode() + json.dumps(EXAMPLE).encode(),
                      headers={"Content-Type": "application/json"})
    assert bom.json() == both_predictor(EXAMPLE)


def test_stance_target_by_character_span(client):
    rec = client.post("/predict", json={"text": EXAMPLE, "targets": [list(PERSON)]}).json()
    (target,) = rec["targets"]
    assert target["text"] == "Қасым-Жомарт Тоқаев" == EXAMPLE[target["char_start"]:target["char_end"]]
    assert (target["token_start"], target["token_end"]) == (2, 4)
    assert target["label"] in ("NONE", "FAVOR", "AGAINST")
    assert set(target["probs"]) == {"NONE", "FAVOR", "AGAINST"}
    assert sum(target["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    # A span that cuts words is widened to them; the object form with a type.
    cut = client.post("/predict", json={"text": EXAMPLE, "targets": [{"start": 23, "end": 36, "type": "PERSON"}]})
    (target,) = cut.json()["targets"]
    assert target["text"] == "Қасым-Жомарт Тоқаев" and target["type"] == "PERSON"


def test_empty_text_and_empty_list(client):
    rec = client.post("/predict", json="").json()
    assert rec == {"text": "", "sentences": [], "tokens": [], "entities": [], "targets": []}
    assert client.post("/predict", json={"text": "   "}).json()["tokens"] == []
    assert client.post("/predict", json=[]).json() == []


def test_limits(client):
    _error(client.post("/predict", json=["a"] * 5), 413, "too_large", "body")
    body = _error(client.post("/predict", json=["ok", "x" * 301]), 413, "too_large", "body[1]")
    assert body["limit"] == 300 and "301 characters" in body["message"]
    _error(client.post("/predict", json={"text": "x" * 301}), 413, "too_large", "body.text")
    _error(client.post("/predict", json={"tokens": ["xx"] * 101}), 413, "too_large", "body.tokens")
    body = _error(client.post("/predict", json={"text": EXAMPLE, "targets": [[0, 9]] * 65}), 413, "too_large",
                  "body.targets")
    assert body["limit"] == 64
    big = json.dumps({"text": "a", "pad": "x" * 5000})
    body = _error(client.post("/predict", content=big, headers={"Content-Type": "application/json"}),
                  413, "too_large", "body")
    assert body["limit"] == 4000

    def chunks():  # no Content-Length: the server counts what arrives
        for _ in range(10):
            yield b" " * 500
        yield b'"x"'

    _error(client.post("/predict", content=chunks(), headers={"Content-Type": "application/json"}),
           413, "too_large", "body")


@pytest.mark.parametrize("payload, field, words", [
    (42, "body", "got int"),
    (["ok", 7], "body[1]", "got int"),
    ({"txt": "a"}, "body.text", "'text' string"),
    ({"text": 5}, "body.text", "'text' string"),
    ({"text": EXAMPLE, "targets": "0-5"}, "body.targets", "list of spans"),
    ({"text": EXAMPLE, "targets": [[0, "5"]]}, "body.targets[0]", "integers"),
    ({"text": EXAMPLE, "targets": [[0, 5], [3]]}, "body.targets[1]", "a target must be"),
    ({"text": EXAMPLE, "targets": [[60, 500]]}, "body.targets[0]", "outside the text"),
    ({"text": EXAMPLE, "targets": [[9, 10]]}, "body.targets[0]", "covers no word"),
    ({"text": EXAMPLE, "targets": [[0, 5, 3]]}, "body.targets[0]", "type must be a string"),
    ([{"tokens": ["a", ""]}], "body[0].tokens", "non-empty strings"),
    ({"tokens": ["a", "b"], "targets": [[1, 3]]}, "body.targets[0]", "outside the 2 tokens"),
    ({"tokens": ["a", "b"], "start": 0, "end": 9}, "body.start", "outside the 2 tokens"),
])
def test_wrong_types_name_the_field(client, payload, field, words):
    body = _error(client.post("/predict", json=payload), 422, "invalid_input", field)
    assert words in body["message"]


def test_bad_json_bad_bytes_and_routes(client):
    body = _error(client.post("/predict", content=b'{"text": "a",}', headers={"Content-Type": "application/json"}),
                  400, "bad_json", "body")
    assert "line 1 column 14" in body["message"]
    assert "empty" in _error(client.post("/predict", content=b""), 400, "bad_json")["message"]
    deep = b"[" * 1900 + b"]" * 1900  # within the size limit, past the JSON parser's recursion limit
    assert "nested too deeply" in _error(client.post("/predict", content=deep), 400, "bad_json")["message"]
    # Invalid UTF-8 (as in `printf 'Астана қаласы.\n\xff\xfe bad\n'`): the line and the byte.
    raw = "Астана қаласы.\n".encode() + b"\xff\xfe bad\n"
    for ctype in ("text/plain", "application/json"):
        body = _error(client.post("/predict", content=raw, headers={"Content-Type": ctype}), 400, "bad_encoding")
        assert "line 2" in body["message"] and "0xff at column 1" in body["message"]
    _error(client.get("/nope"), 404, "not_found")
    _error(client.get("/predict"), 405, "method_not_allowed")
    _error(client.post("/predict", content=b'"a"', headers={"Content-Length": "x", "Content-Type": "application/json"}),
           400, "bad_request")
    # ... and it still serves.
    assert client.post("/predict", json=EXAMPLE).status_code == 200


def test_page_is_self_contained(client):
    resp = client.get("/")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    html = resp.text
    for element in ('id="text"', 'id="submit"', 'id="legend"', 'id="show-json"', 'id="json"', 'id="rendered"'):
        assert element in html
    # Nothing loaded from elsewhere: no external src/href, @import, url(...) or font files.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"@import|url\(|@font-face|<link\b", html, re.I)
    assert "<script src" not in html
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//|<link\b|url\(""", docs.text, re.I)


def test_openapi_describes_the_routes(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/predict"]["post"]
    assert {"200", "400", "413", "422", "503", "504"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/PredictRequest"
    schemas = spec["components"]["schemas"]
    for name in ("PredictRequest", "Prediction", "TextItem", "TokensItem", "Entity", "Target", "ErrorBody"):
        assert name in schemas
    assert "/health" in spec["paths"] and "/" not in spec["paths"]


def test_no_route_opens_a_file(client, monkeypatch):
    import builtins
    import io

    opened = []

    def no_open(file, *args, **kwargs):
        opened.append(file)
        raise AssertionError(f"a request opened {file!r}")

    monkeypatch.setattr(builtins, "open", no_open)
    monkeypatch.setattr(io, "open", no_open)
    for path in ("/", "/docs", "/health", "/openapi.json"):
        assert client.get(path).status_code == 200
    for payload in ({"text": "/etc/passwd", "input": "/etc/passwd", "checkpoint": "/etc"}, ["../../secret.txt"]):
        assert client.post("/predict", json=payload).status_code == 200
    assert opened == []


def test_concurrent_requests_share_batched_passes(ner_predictor):
    calls = []
    original = ner_predictor.predict_documents

    def recording(docs, batch_size=None):
        calls.append(len(docs))
        if len(calls) == 1:  # the first pass lasts until every other request is queued
            deadline = time.monotonic() + 10
            while app.state.batcher.waiting + len(docs) < len(texts) and time.monotonic() < deadline:
                time.sleep(0.01)
        return original(docs, batch_size)

    texts = [f"Тоқаев {i} рет Астанаға келді." for i in range(12)]
    expected = ner_predictor(texts)
    ner_predictor.predict_documents = recording
    try:
        app = create_app(ner_predictor, ServeLimits(window_ms=30))
        with TestClient(app) as c:
            results = [None] * len(texts)

            def call(i):
                results[i] = c.post("/predict", json=texts[i]).json()

            threads = [threading.Thread(target=call, args=(i,)) for i in range(len(texts))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            stats = c.get("/health").json()["queue"]
    finally:
        del ner_predictor.predict_documents
    assert results == expected  # every caller gets its own answer
    assert sum(calls) == len(texts) and len(calls) < len(texts) and max(calls) > 1
    assert len(calls) <= 2 and max(calls) > len(texts) // 2  # those queued during the first pass share the next
    assert stats["requests"] == len(texts) and stats["batches"] == len(calls)


def test_full_queue_503_and_timeout_504_then_recovers(ner_predictor):
    entered, release = threading.Event(), threading.Event()
    original = ner_predictor.predict_documents

    def blocked(docs, batch_size=None):
        entered.set()
        release.wait(10)
        return original(docs, batch_size)

    ner_predictor.predict_documents = blocked
    try:
        app = create_app(ner_predictor, ServeLimits(window_ms=0, max_queue=1, timeout_s=3))
        batcher = app.state.batcher
        with TestClient(app) as c:
            out = {}
            first = threading.Thread(target=lambda: out.setdefault("first", c.post("/predict", json="Бір.")))
            first.start()
            assert entered.wait(10)  # the first request is in the model ...
            second = threading.Thread(target=lambda: out.setdefault("second", c.post("/predict", json="Екі.")))
            second.start()
            deadline = time.monotonic() + 5
            while batcher.waiting < 1 and time.monotonic() < deadline:  # ... the second waits in the queue
                time.sleep(0.01)
            busy = c.post("/predict", json="Үш.")  # ... and the third finds the queue full
            body = _error(busy, 503, "queue_full")
            assert busy.headers["retry-after"] == "1" and "max_queue=1" in body["message"]
            first.join()
            second.join()
            _error(out["first"], 504, "timeout")
            _error(out["second"], 504, "timeout")
            assert batcher.waiting == 0  # a timed-out request gives its place back
            release.set()
            ner_predictor.predict_documents = original
            ok = c.post("/predict", json=EXAMPLE)
            assert ok.status_code == 200 and ok.json()["text"] == EXAMPLE
            assert c.get("/health").json()["queue"]["rejected"] == 1
    finally:
        release.set()
        if "predict_documents" in vars(ner_predictor):
            del ner_predictor.predict_documents


def test_batcher_drops_timed_out_jobs_and_reports_errors():
    seen = []

    def predict(docs):
        seen.append(list(docs))
        if "boom" in docs:
            raise ValueError("model failed")
        time.sleep(0.2)
        return [d.upper() for d in docs]

    class Doc(str):
        sentences = [(0, 1)]

    async def scenario():
        b = MicroBatcher(predict, window_ms=0, max_queue=4)
        await b.start()
        try:
            slow = asyncio.ensure_future(b.submit([Doc("a")], 5))
            await asyncio.sleep(0.05)
            with pytest.raises(asyncio.TimeoutError):
                await b.submit([Doc("late")], 0.05)  # times out while "a" runs: never predicted
            assert await slow == ["A"]
            assert await b.submit([Doc("b"), Doc("c")], 5) == ["B", "C"]
            with pytest.raises(ValueError, match="model failed"):
                await b.submit([Doc("boom")], 5)
            assert await b.submit([Doc("d")], 5) == ["D"]
        finally:
            await b.stop()
        return b

    b = asyncio.run(scenario())
    assert ["late"] not in seen and b.stats["timed_out"] == 1
    with pytest.raises(QueueFull):
        async def full():
            q = MicroBatcher(predict, max_queue=1)
            await q.start()
            q._queue.append(type("J", (), {"abandoned": False, "sentences": 1})())
            try:
                await q.submit([Doc("x")], 1)
            finally:
                q._queue.clear()
                await q.stop()
        asyncio.run(full())


def test_internal_error_is_json_500(ner_predictor):
    def broken(docs, batch_size=None):
        raise RuntimeError("CUDA out of memory (simulated)")

    ner_predictor.predict_documents = broken
    try:
        with TestClient(create_app(ner_predictor), raise_server_exceptions=False) as c:
            body = _error(c.post("/predict", json=EXAMPLE), 500, "internal_error")
            assert "CUDA" not in body["message"]
    finally:
        del ner_predictor.predict_documents


def test_serve_config_and_runner(tiny_ner_checkpoint, monkeypatch):
    import uvicorn

    from kazakh_ner_stance.serve.app import is_loopback, run_serve

    cfg = compose("serve", [f"checkpoint={tiny_ner_checkpoint}", "limits.max_texts=3", "port=8123"])
    assert cfg.host == "127.0.0.1" and is_loopback(cfg.host)
    assert is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    run_serve(cfg)
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert seen["app"].state.limits.max_texts == 3 and seen["app"].state.predictor.task == "ner"
    with pytest.raises(KnsError, match="unknown limits"):
        run_serve(compose("serve", [f"checkpoint={tiny_ner_checkpoint}", "+limits.max_bodies=3"]))
    with pytest.raises(KnsError, match="no checkpoint"):
        run_serve(compose("serve", []))
