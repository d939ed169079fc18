"""`genembed serve`: an OpenAI-compatible embeddings server around one loaded GenEmbed.

    from genembed.serve import create_app, serve
    serve("path/to/checkpoint", port=8000, api_key="secret")   # blocks, runs uvicorn
    app = create_app(genembed.load())                          # a FastAPI app to mount or test

Endpoints: POST /v1/embeddings (the OpenAI request/response shapes), GET /v1/models and
GET /v1/models/{id} (the one model served, in OpenAI's list and model shapes), POST /v1/decode,
GET /health, GET /metrics (Prometheus text). A request naming another `model` than the one served
gets OpenAI's 404 `model_not_found`; one naming none gets the served model.

The model is not thread-safe (nor is its prefix cache, nor its fast tokenizer under changing
truncation settings), so it is owned by one worker thread: requests become jobs on a queue and
wait on a future. While the worker is free it waits up to `max_wait_ms` after a request arrives
for others (up to `max_batch` texts) and embeds each (instruction, normalize) group with one
`model.encode` call, so many concurrent one-text clients share forward passes.

fastapi, uvicorn and prometheus_client are imported only here, on use (`pip install 'genembed[serve]'`).
"""
import asyncio
import base64
import hmac
import json
import logging
import queue
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from . import decoders, load
from .errors import InputError, MissingDependency
from .inputs import plain_ids

log = logging.getLogger("genembed.serve")

ENDPOINTS = ("/v1/embeddings", "/v1/models", "/v1/decode", "/health", "/metrics")
MODEL_PATH = "/v1/models/{id}"  # GET /v1/models/<id>: one metrics label for every id asked for
OPEN_PATHS = ("/health",)  # answered without the API key: load balancers probe it


class MissingServeDependencies(MissingDependency, ValueError):
    """fastapi / uvicorn / prometheus_client are not installed (a ValueError too, as it always was)."""


def _require():
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise MissingServeDependencies(
            f"the server needs fastapi, uvicorn and prometheus-client ({e.name} is missing): "
            "pip install 'genembed[serve]'") from None


class APIError(Exception):
    """An error answered as OpenAI does: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: Optional[str] = None, code: Optional[str] = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# -- the worker thread that owns the model ---------------------------------------------------
@dataclass
class _Job:
    kind: str  # "encode" or "decode"
    texts: list
    instruction: str  # resolved text: the batching key, with normalize
    normalize: bool = False
    max_new_tokens: int = 64
    via: str | None = None  # decode's reading (decoders.VIA); None: the model's default
    arrived: float = field(default_factory=time.monotonic)
    future: Future = field(default_factory=Future)


_STOP = object()


class ModelWorker:
    """One thread runs every model call; jobs come through a bounded queue.

    max_wait_ms = 0 turns batching off: each request is its own model call (the baseline)."""

    def __init__(self, model, *, max_batch: int = 32, max_wait_ms: float = 5.0, max_queue: int = 1024,
                 on_batch=None, bf16: bool = False):
        self.model, self.bf16 = model, bf16
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.on_batch = on_batch or (lambda **kw: None)
        self.stats = {"requests": 0, "model_calls": 0, "forward_batches": 0}
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise APIError(503, "the server is shutting down", type="server_error", code="shutting_down")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="genembed-model", daemon=True)
                self._thread.start()

    def submit(self, job: _Job) -> Future:
        self.start()  # lazily, so an app used without its lifespan (a bare TestClient) still works
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise APIError(503, "too many requests waiting for the model; retry later", type="server_error",
                           code="overloaded") from None
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            try:  # after the jobs already queued: they are answered first
                self.queue.put(_STOP, timeout=timeout)
            except queue.Full:  # a worker stuck in the model: it is a daemon thread, leave it
                return
            thread.join(timeout)

    def _run(self) -> None:
        held = None  # a job taken while collecting a batch that does not belong in it
        while True:
            job, held = (held, None) if held is not None else (self.queue.get(), None)
            if job is _STOP:
                break
            batch = [job]
            if job.kind == "encode" and self.max_wait > 0:
                n, deadline = len(job.texts), job.arrived + self.max_wait
                while n < self.max_batch:
                    left = deadline - time.monotonic()
                    try:  # past the deadline, still take what already waits: it has waited long enough
                        nxt = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP or nxt.kind != "encode":
                        held = nxt
                        break
                    batch.append(nxt)
                    n += len(nxt.texts)
            # a client that went away cancelled its future: skip its work
            batch = [j for j in batch if j.future.set_running_or_notify_cancel()]
            try:
                if batch:
                    self._process(batch)
            except Exception as e:  # a bug outside the model call: fail these requests, keep the thread
                log.exception("worker error")
                for j in batch:
                    if not j.future.done():
                        j.future.set_exception(e)
        while True:  # stopped: answer whatever is still queued rather than leave it hanging
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP and job.future.set_running_or_notify_cancel():
                job.future.set_exception(APIError(503, "the server is shutting down", type="server_error"))

    def _process(self, batch: list) -> None:
        if batch[0].kind == "decode":
            groups = [batch]
        else:  # one model.encode call per (instruction, normalize)
            by_key: dict = {}
            for job in batch:
                by_key.setdefault((job.instruction, job.normalize), []).append(job)
            groups = list(by_key.values())
        for jobs in groups:
            texts = [t for j in jobs for t in j.texts]
            start = time.perf_counter()
            try:
                results = self._call(jobs[0], texts)
            except Exception as e:
                if len(jobs) > 1:  # run each alone, so one bad request does not fail its batch mates
                    for j in jobs:
                        self._process([j])
                    continue
                # the model failed: this request gets a 500, the server goes on
                log.exception("model call failed on %d texts", len(texts))
                jobs[0].future.set_exception(e)
                continue
            forward = -(-len(texts) // self.max_batch)
            self.stats["requests"] += len(jobs)
            self.stats["model_calls"] += 1
            self.stats["forward_batches"] += forward
            self.on_batch(kind=jobs[0].kind, texts=len(texts), requests=len(jobs), forward_batches=forward,
                          seconds=time.perf_counter() - start)
            offset = 0
            for j in jobs:
                j.future.set_result(tuple(r[offset:offset + len(j.texts)] for r in results))
                offset += len(j.texts)

    def _call(self, job: _Job, texts: list) -> tuple:
        m = self.model
        if job.kind == "decode":
            return (m.decode(texts, max_new_tokens=job.max_new_tokens, instruction=job.instruction,
                             batch_size=self.max_batch, show_progress_bar=False, via=job.via),)
        vectors = m.encode(texts, instruction=job.instruction, normalize=job.normalize,
                           batch_size=self.max_batch, show_progress_bar=False, bf16=self.bf16)
        # usage: the text's own tokens as the model reads them (cut to max_text_tokens), without
        # the chat template and instruction around it; counted here, where the tokenizer is safe
        tokens = [len(ids) for ids in plain_ids(m.backbone.tokenizer, texts, max_length=m.config.max_text_tokens)]
        return vectors, tokens


# -- request checks --------------------------------------------------------------------------
def _texts(value: Any, max_texts: int, max_chars: int) -> list:
    """`input` as a list of strings, or the APIError that says what is wrong with it."""
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list):
        if not value:
            raise APIError(400, "'input' is an empty list: give at least one string", param="input")
        ints = lambda xs: all(isinstance(x, int) and not isinstance(x, bool) for x in xs)  # noqa: E731
        if ints(value) or all(isinstance(v, list) and ints(v) for v in value):
            raise APIError(400, "token arrays are not supported: send 'input' as text (a string or a list of "
                                "strings); the server tokenizes with its own backbone's tokenizer", param="input")
        if not all(isinstance(v, str) for v in value):
            raise APIError(422, "'input' must be a string or a list of strings", param="input")
        texts = value
    else:
        raise APIError(422, "'input' must be a string or a list of strings", param="input")
    if len(texts) > max_texts:
        raise APIError(413, f"'input' has {len(texts)} texts; this server takes at most {max_texts} per request",
                       param="input", code="too_many_texts")
    for i, text in enumerate(texts):
        if len(text) > max_chars:
            raise APIError(413, f"input[{i}] has {len(text)} characters; this server takes at most {max_chars}",
                           param="input", code="text_too_long")
    return texts


def _instruction(model, value: Optional[str], max_chars: int) -> str:
    if value is not None and len(value) > max_chars:
        raise APIError(413, f"'instruction' has {len(value)} characters; at most {max_chars}", param="instruction",
                       code="text_too_long")
    return model.resolve_instruction(value)


# -- the ASGI gate: metrics, API key and body size, before any request body is read ----------
class _Gate:
    def __init__(self, app, *, api_key, max_body_bytes, metrics):
        self.app, self.api_key, self.max_body, self.metrics = app, api_key, max_body_bytes, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        # bounded label values, whatever the URL
        endpoint = path if path in ENDPOINTS else MODEL_PATH if path.startswith("/v1/models/") else "other"
        status, start = None, time.perf_counter()

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, send_status, path)
        except Exception:
            status = status or 500
            raise
        finally:  # 499 (nginx's): the client left before any answer
            self.metrics["requests"].labels(endpoint, str(status or 499)).inc()
            self.metrics["latency"].labels(endpoint).observe(time.perf_counter() - start)

    async def _guarded(self, scope, receive, send, path):
        headers = dict(scope["headers"])
        if self.api_key is not None and path not in OPEN_PATHS:
            given = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, token = given.partition(" ")
            # constant-time comparison: the answer's timing says nothing about the key
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
                return await _send_error(send, APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                                        code="invalid_api_key"), [(b"www-authenticate", b"Bearer")])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return await _send_error(send, self._too_big())
        # read the body here, counting (a chunked body has no length to check up front), then replay it
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return await _send_error(send, self._too_big())
            if not message.get("more_body"):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_big(self):
        return APIError(413, f"request body over {self.max_body} bytes", code="request_too_large")


async def _send_error(send, error: APIError, headers=()):
    body = json.dumps(error.body()).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


# -- the app ---------------------------------------------------------------------------------
def _metrics(registry):
    """The Prometheus series of one app, and the worker's callback that feeds the batch ones."""
    from prometheus_client import Counter, Histogram

    metrics = {
        "requests": Counter("genembed_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                            registry=registry),
        "latency": Histogram("genembed_request_seconds", "request latency, arrival to response", ["endpoint"],
                             registry=registry,
                             buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)),
        "batch_texts": Histogram("genembed_batch_texts", "texts per model call", ["kind"], registry=registry,
                                 buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)),
        "batch_requests": Histogram("genembed_batch_requests", "requests per model call", ["kind"],
                                    registry=registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128)),
        "forward": Counter("genembed_forward_batches", "forward batches run (texts per model call / max_batch, "
                                                       "rounded up)", ["kind"], registry=registry),
        "model_seconds": Histogram("genembed_model_seconds", "time inside one model call", ["kind"],
                                   registry=registry),
    }

    def on_batch(kind, texts, requests, forward_batches, seconds):
        metrics["batch_texts"].labels(kind).observe(texts)
        metrics["batch_requests"].labels(kind).observe(requests)
        metrics["forward"].labels(kind).inc(forward_batches)
        metrics["model_seconds"].labels(kind).observe(seconds)

    return metrics, on_batch


def create_app(model, *, api_key: Optional[str] = None, model_name: str = "genembed", max_batch: int = 32,
               max_wait_ms: float = 5.0, max_texts: int = 2048, max_chars: int = 16384,
               max_body_bytes: int = 16 * 2**20, max_new_tokens: int = 256, max_queue: int = 1024,
               bf16: bool = False):
    """A FastAPI app serving `model` (a GenEmbed; this app's worker thread is then its only user).

    model_name: the name it is served by: what GET /v1/models lists and every response names. A request
    whose `model` is another name gets a 404 (`model_not_found`, OpenAI's answer); one without `model` is
    answered by this model.
    POST /v1/embeddings returns exactly `model.encode(texts)`: the checkpoint's default
    instruction and NO normalisation (OpenAI's vectors are unit length; send `"normalize": true`
    for that). Extra request fields: `"instruction"` (a name such as "query" / "document", or the
    instruction text itself) and `"normalize"`.

    api_key: if set, every endpoint but /health wants `Authorization: Bearer <api_key>` (401).
    max_batch: texts one forward pass takes; a batch is collected up to that many texts or
    max_wait_ms after its first request, whichever comes first (0: no batching, the baseline).
    max_texts / max_chars / max_body_bytes: larger requests get a 413, before any model work.
    max_new_tokens: the most tokens /v1/decode writes per text. max_queue: requests that may wait
    for the model; beyond that a 503. bf16: embed under bf16 autocast (`model.encode(bf16=True)`;
    decoding stays float32).
    """
    _require()
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    for name, value, low in (("max_batch", max_batch, 1), ("max_texts", max_texts, 1), ("max_chars", max_chars, 1),
                             ("max_body_bytes", max_body_bytes, 1), ("max_new_tokens", max_new_tokens, 1),
                             ("max_queue", max_queue, 1), ("max_wait_ms", max_wait_ms, 0)):
        if value < low:
            raise InputError(f"{name} must be >= {low}, got {value}")
    if api_key is not None and not api_key.strip():
        raise InputError("api_key is empty: give a key, or none to serve without one")
    if not isinstance(model_name, str) or not model_name.strip():
        raise InputError(f"model_name must be a non-empty string (the name clients send as 'model'), "
                         f"got {model_name!r}")
    dim = int(model.config.embedding_dim)

    registry = CollectorRegistry()  # per app: two apps in one process keep separate counts
    metrics, on_batch = _metrics(registry)
    worker = ModelWorker(model, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue, on_batch=on_batch,
                         bf16=bf16)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        worker.start()
        yield
        await asyncio.get_running_loop().run_in_executor(None, worker.close)

    # no /docs or /openapi.json: nothing served beyond the endpoints of the module's docstring
    app = FastAPI(title="genembed", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.worker, app.state.registry, app.state.model_name = worker, registry, model_name

    _routes(app, worker, model, model_name, dim, max_texts, max_chars, max_new_tokens)
    _error_handlers(app)
    app.add_middleware(_Gate, api_key=api_key, max_body_bytes=max_body_bytes, metrics=metrics)
    return app


def _routes(app, worker, model, model_name: str, dim: int, max_texts: int, max_chars: int, max_new_tokens: int):
    """The endpoints."""
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from pydantic import BaseModel, ConfigDict

    registry = app.state.registry
    card = {"id": model_name, "object": "model", "created": int(time.time()), "owned_by": "genembed"}

    def served(asked: Optional[str]) -> None:
        """A request's `model` must be the one served (or left out): else OpenAI's 404."""
        if asked is not None and asked != model_name:
            raise APIError(404, f"the model {asked!r} is not served here; this server serves {model_name!r} "
                                "(GET /v1/models)", param="model", code="model_not_found")

    class Loose(BaseModel):
        model_config = ConfigDict(extra="ignore")  # OpenAI clients may send fields added later

    class EmbeddingRequest(Loose):
        input: Any
        model: Optional[str] = None
        encoding_format: Literal["float", "base64"] = "float"
        dimensions: Optional[int] = None
        user: Optional[str] = None  # accepted, ignored
        instruction: Optional[str] = None
        normalize: bool = False

    class DecodeRequest(Loose):
        input: Any
        model: Optional[str] = None
        max_new_tokens: int = 64
        instruction: Optional[str] = None
        via: Optional[Literal["queries", "words", "soft-prompt"]] = None  # None: queries where the model has a query lens, else words

    async def run(job: _Job):
        try:
            return await asyncio.wrap_future(worker.submit(job))
        except APIError:
            raise
        except Exception as e:  # details go to the log, not to the client
            raise APIError(500, f"the model failed on this request ({type(e).__name__}); see the server log",
                           type="server_error") from e

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [card]}

    @app.get("/v1/models/{model_id:path}")
    async def one_model(model_id: str):
        served(model_id)
        return card

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest):
        served(body.model)
        texts = _texts(body.input, max_texts, max_chars)
        if body.dimensions is not None and body.dimensions != dim:
            raise APIError(400, f"'dimensions' must be {dim} (this model's size) or left out; "
                                f"it cannot shorten vectors, got {body.dimensions}", param="dimensions")
        instruction = _instruction(model, body.instruction, max_chars)
        vectors, tokens = await run(_Job("encode", texts, instruction, normalize=body.normalize))
        if body.encoding_format == "base64":  # OpenAI's: the little-endian float32 bytes
            rows = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
        else:
            rows = vectors.tolist()
        n = int(sum(tokens))
        # a JSONResponse directly: no response-model pass over thousands of floats
        return JSONResponse({"object": "list",
                             "data": [{"object": "embedding", "index": i, "embedding": r} for i, r in enumerate(rows)],
                             "model": model_name, "usage": {"prompt_tokens": n, "total_tokens": n}})

    @app.post("/v1/decode")
    async def decode(body: DecodeRequest):
        served(body.model)
        texts = _texts(body.input, max_texts, max_chars)
        if not 1 <= body.max_new_tokens <= max_new_tokens:
            raise APIError(400, f"'max_new_tokens' must be between 1 and {max_new_tokens}, got {body.max_new_tokens}",
                           param="max_new_tokens")
        instruction = _instruction(model, body.instruction, max_chars)
        try:  # the decoders' own check, answered as the client's mistake it is
            decoders.resolve(model, body.via)
        except ValueError as e:
            raise APIError(400, f"'via': {e}", param="via") from None
        (said,) = await run(_Job("decode", texts, instruction, max_new_tokens=body.max_new_tokens, via=body.via))
        return JSONResponse({"object": "list", "data": [{"index": i, "text": t} for i, t in enumerate(said)],
                             "model": model_name})

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name, "dimension": dim}

    @app.get("/metrics")
    async def prometheus():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _error_handlers(app):
    """Every error answered in OpenAI's shape."""
    from fastapi import Request
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = jsonable_encoder(exc.errors())
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg", "invalid request"))
        body = APIError(422, message, param=where).body()
        body["detail"] = errors  # FastAPI's usual list, for clients that read it
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse(APIError(exc.status_code, str(exc.detail)).body(), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("unhandled error")
        return JSONResponse(APIError(500, "internal server error", type="server_error").body(), status_code=500)


# -- running it ------------------------------------------------------------------------------
def serve(model=None, *, host: str = "127.0.0.1", port: int = 8000, api_key: Optional[str] = None,
          model_name: Optional[str] = None, log_level: str = "info", backend: Optional[str] = None,
          **options) -> None:
    """Load `model` (a name `genembed.load` takes: a checkpoint folder, a hub id, None for the bundled
    default; or a GenEmbed) once and serve it with uvicorn until interrupted. model_name: the name it
    is served by (create_app); None: the name it was loaded by, as given ("default" for None, the
    folder or hub id), or "genembed" for a GenEmbed passed in. `options` go to create_app (max_batch,
    max_wait_ms, max_texts, max_chars, ...). backend: how the model runs (backends.py; None: "torch"
    for a model loaded here, a given model's own). Binds loopback unless `host` says otherwise."""
    _require()
    import uvicorn

    if model_name is None:
        model_name = "default" if model is None else str(model) if isinstance(model, (str, Path)) else "genembed"
    if isinstance(model, (str, Path)) or model is None:
        model = load(model, backend=backend or "torch")
    elif backend is not None:
        model.set_backend(backend)
    app = create_app(model, api_key=api_key, model_name=model_name, **options)
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        log.warning("serving on %s without an API key: anyone who can reach it can use it", host)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


class BackgroundServer:
    """A uvicorn server on a thread of this process, on a port bound before it starts (port 0:
    any free one): for tests and the load benchmark. `with BackgroundServer(app) as s: s.url`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        _require()
        import uvicorn

        self.socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.host, self.port = host, self.socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="genembed-uvicorn", daemon=True)

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.socket.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
