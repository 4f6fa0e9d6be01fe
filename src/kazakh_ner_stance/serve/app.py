"""The FastAPI app over a `Predictor`: POST /predict, GET /health, GET / (the page), GET /docs.

    from kazakh_ner_stance import Predictor
    from kazakh_ner_stance.serve import ServeLimits, create_app
    app = create_app(Predictor.from_pretrained("artifacts/runs/NAME/model"), ServeLimits(max_texts=16))

The request body is parsed by `predict.make_document`, the same parser as `predict.py`'s JSON
lines, and answered with the `Predictor`'s own output: one object for one text, a list for a
list. Every refused request gets a JSON error `{"status", "error", "message", "field", "limit"}`
with the status that says why (400 undecodable body, 413 over a size limit, 422 a field of
the wrong type or value, 503 queue full, 504 timed out); nothing a request sends is a file
name, and no route opens a file after start-up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import time
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, Mapping

from fastapi import Request  # at module level: the route signatures name it

from ..predict import InputError, Predictor, make_document
from .batcher import MicroBatcher, QueueFull

log = logging.getLogger(__name__)


@dataclass
class ServeLimits:
    """What one request may ask, and how requests are batched (configs/serve.yaml)."""

    max_body_bytes: int = 1_000_000  # 413 beyond
    max_texts: int = 64  # texts (list items) per request; 413 beyond
    max_chars: int = 10_000  # characters per text (tokens: joined with spaces); 413 beyond
    max_targets: int = 64  # given stance targets per text (each is a model input); 413 beyond
    timeout_s: float = 30.0  # queue wait + prediction; 504 beyond
    window_ms: float = 10.0  # under load, how long an idle model waits for other requests to join
    max_batch_sentences: int = 128  # sentences per batched pass (a larger single request runs alone)
    max_queue: int = 256  # requests waiting; 503 beyond


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, field: str | None = None, limit: int | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.error, self.message, self.field, self.limit = status, error, message, field, limit
        self.headers = dict(headers or {})

    def body(self) -> dict:
        out: dict[str, Any] = {"status": self.status, "error": self.error, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.limit is not None:
            out["limit"] = self.limit
        return out


# The page may use its own inline script and style and talk to this server, nothing else: the
# browser itself enforces that the page loads no external scripts, fonts or styles.
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
            "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _resource(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("kazakh-ner-stance", "torch", "transformers", "tokenizers", "fastapi", "uvicorn", "onnxruntime"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _decode_body(raw: bytes) -> str:
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark is no part of the text
    except UnicodeDecodeError as err:
        from ..errors import invalid_utf8_message

        line_no = raw.count(b"\n", 0, err.start) + 1
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        line_end = raw.find(b"\n", err.start)
        line = raw[line_start : line_end if line_end >= 0 else len(raw)]
        try:
            line.decode("utf-8")
            detail = f"invalid UTF-8 at byte {err.start}"
        except UnicodeDecodeError as line_err:
            detail = invalid_utf8_message(line, line_err)
        raise ApiError(400, "bad_encoding", f"the request body is not UTF-8: line {line_no}: {detail}") from None


def _text_length(item: Any) -> int:
    if isinstance(item, str):
        return len(item)
    if isinstance(item, Mapping):
        tokens = item.get("tokens")
        if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens):
            return sum(map(len, tokens)) + max(0, len(tokens) - 1)
        text = item.get("text")
        if isinstance(text, str):
            return len(text)
    return 0


def parse_request(body: Any, limits: ServeLimits, split_sentences: bool = True) -> tuple[list, bool]:
    """(documents, single) from a decoded JSON body, or an ApiError naming the field."""
    single = not isinstance(body, list)
    items = [body] if single else body
    if not single and len(items) > limits.max_texts:
        raise ApiError(413, "too_large", f"{len(items)} texts in one request; at most {limits.max_texts} "
                                         "(split the list over several requests)", "body", limits.max_texts)
    docs = []
    for i, item in enumerate(items):
        where = "body" if single else f"body[{i}]"
        if not isinstance(item, (str, Mapping)):
            raise ApiError(422, "invalid_input", f"{where}: expected a text string or an object with 'text' or "
                                                 f"'tokens', got {type(item).__name__}", where)
        n_chars = _text_length(item)
        if n_chars > limits.max_chars:
            what = "tokens" if isinstance(item, Mapping) and item.get("tokens") is not None else "text"
            field = where if isinstance(item, str) else f"{where}.{what}"
            raise ApiError(413, "too_large", f"{field}: {n_chars} characters; at most {limits.max_chars} per text "
                                             "(send long documents in parts)", field, limits.max_chars)
        targets = item.get("targets") if isinstance(item, Mapping) else None
        if isinstance(targets, list) and len(targets) > limits.max_targets:
            raise ApiError(413, "too_large", f"{where}.targets: {len(targets)} targets; at most {limits.max_targets} "
                                             "per text", f"{where}.targets", limits.max_targets)
        try:
            docs.append(make_document(item, split_sentences, where=where))
        except InputError as err:
            field = f"{err.where}.{err.field}" if err.field else err.where
            raise ApiError(422, "invalid_input", str(err), field) from None
    return docs, single


def create_app(predictor: Predictor, limits: ServeLimits | None = None, *, model_info: Mapping | None = None):
    """The ASGI app. `model_info` (e.g. the checkpoint folders) is shown by /health."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from . import schema

    limits = limits or ServeLimits()
    batcher = MicroBatcher(predictor.predict_documents, window_ms=limits.window_ms,
                           max_batch_sentences=limits.max_batch_sentences, max_queue=limits.max_queue)
    description = predictor.describe()
    versions = _versions()
    page = _resource("page.html")
    docs_page = _resource("docs.html")

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="kazakh-ner-stance", version=versions.get("kazakh-ner-stance", "0"),
                  description="Kazakh named entities and the stance toward each, from a `Predictor`.",
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.batcher = batcher
    app.state.predictor = predictor
    app.state.limits = limits

    def error_response(err: ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError):
        return error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        detail = err.detail if isinstance(err.detail, str) else json.dumps(err.detail)
        if err.status_code == 404:
            detail = f"no route {request.method} {request.url.path}; see GET /docs"
        return error_response(ApiError(err.status_code, code, detail, headers=getattr(err, "headers", None)))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError):
        first = (err.errors() or [{}])[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        return error_response(ApiError(422, "invalid_input", str(first.get("msg", "invalid request")), field))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, err: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(ApiError(500, "internal_error", "internal error while predicting; the server log "
                                                              "has the details"))

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise ApiError(400, "bad_request", "Content-Length is not a number") from None
            if size > limits.max_body_bytes:
                raise ApiError(413, "too_large", f"request body of {size} bytes; at most {limits.max_body_bytes}",
                               "body", limits.max_body_bytes)
        chunks, size = [], 0
        async for chunk in request.stream():  # chunked uploads have no Content-Length: count
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise ApiError(413, "too_large", f"request body over {limits.max_body_bytes} bytes", "body",
                               limits.max_body_bytes)
            chunks.append(chunk)
        return b"".join(chunks)

    predict_doc = {
        "summary": "Entities and stance for one text or a list of texts",
        "description": (
            "The body is `predict.py`'s JSON input: a text string, an object with `text` (and optional "
            "`targets` as character spans) or `tokens` (targets as token spans), or a list of these. "
            "A `Content-Type: text/plain` body is one raw text. The answer is `predict.py`'s output "
            "schema: one object for one text, a list in request order for a list. Limits: "
            f"{limits.max_body_bytes} bytes of body, {limits.max_texts} texts, {limits.max_chars} "
            f"characters and {limits.max_targets} targets per text, {limits.timeout_s:g} s."),
        "openapi_extra": {"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
            "text/plain": {"schema": {"type": "string"}}}}},
        "responses": {
            200: {"description": "one prediction, or a list for a list",
                  "content": {"application/json": {"schema": {"anyOf": [
                      {"$ref": "#/components/schemas/Prediction"},
                      {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}]}}}},
            **{code: {"model": schema.ErrorBody, "description": why} for code, why in (
                (400, "the body is not UTF-8 or not JSON"), (413, "over a size limit (body, texts, characters)"),
                (422, "a field of the wrong type or value (named in `field`)"), (503, "the queue is full: retry"),
                (504, "not answered within the request timeout"))},
        },
    }

    @app.post("/predict", **predict_doc)
    async def predict(request: Request):
        raw = await read_body(request)
        text = _decode_body(raw)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "text/plain":
            body: Any = text
        else:
            try:
                body = json.loads(text)
            except RecursionError:
                raise ApiError(400, "bad_json", "the request body is nested too deeply", "body") from None
            except json.JSONDecodeError as err:
                hint = "" if text.strip() else " (the body is empty)"
                raise ApiError(400, "bad_json", f"the request body is not JSON: {err.msg} at line {err.lineno} "
                                                f"column {err.colno}{hint}; send a JSON string, object or list, "
                                                "or Content-Type: text/plain for raw text", "body") from None
        # Tokenising is CPU work: off the event loop, so other requests are still accepted.
        from starlette.concurrency import run_in_threadpool

        docs, single = await run_in_threadpool(parse_request, body, limits, predictor.split_sentences)
        if not docs:
            return JSONResponse([])
        try:
            results = await batcher.submit(docs, limits.timeout_s)
        except QueueFull as err:
            raise ApiError(503, "queue_full", f"the server is busy: {err}; retry shortly",
                           headers={"Retry-After": "1"}) from None
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"no answer within {limits.timeout_s:g} s (timeout_s); send fewer or "
                                           "shorter texts, or retry when the server is less busy") from None
        return JSONResponse(results[0] if single else results)

    @app.get("/health", summary="Model, task, labels, versions, limits and queue",
             responses={200: {"model": schema.Health}})
    async def health():
        return {
            "status": "ok",
            "task": description["task"],
            "backend": description["backend"],
            "model": dict(model_info or {}),
            "labels": {"entity_types": description["entity_types"], "ner_tags": description["ner_tags"],
                       "stance": description["stance_labels"],
                       "stance_target_types": description["stance_target_types"]},
            "versions": versions,
            "limits": asdict(limits),
            "queue": {"waiting": batcher.waiting, **batcher.stats},
        }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP})

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def api_docs():
        return HTMLResponse(docs_page, headers={"Content-Security-Policy": PAGE_CSP})

    def openapi():
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in (schema.PredictRequest, schema.Prediction):
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(js.pop("$defs", {}))
                components[model.__name__] = js
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi
    return app


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(cfg) -> None:
    """`scripts/serve.py`: load the model(s) of configs/serve.yaml, serve until Ctrl-C."""
    import uvicorn

    from ..errors import KnsError
    from ..predict import predictor_from_config

    host, port = str(cfg.get("host", "127.0.0.1")), int(cfg.get("port", 8000))
    limits_cfg = cfg.get("limits") or {}
    known = set(ServeLimits.__dataclass_fields__)
    unknown = set(limits_cfg) - known
    if unknown:
        raise KnsError(f"unknown limits: {sorted(unknown)} (known: {sorted(known)})")
    limits = ServeLimits(**{k: type(getattr(ServeLimits, k))(v) for k, v in limits_cfg.items()})
    started = time.perf_counter()
    predictor = predictor_from_config(cfg)
    info = {"checkpoint": str(cfg.get("checkpoint"))}
    if cfg.get("stance_checkpoint"):
        info["stance_checkpoint"] = str(cfg.get("stance_checkpoint"))
    app = create_app(predictor, limits, model_info=info)
    if not is_loopback(host):
        log.warning("binding to %s: the server has no authentication; anyone who reaches this address can use it",
                    host)
    print(f"loaded {predictor.task} model in {time.perf_counter() - started:.1f}s; serving on http://{host}:{port}/ "
          f"(page), /predict, /health, /docs", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=str(cfg.get("log_level", "info")),
                access_log=bool(cfg.get("access_log", False)))
