"""`genembed serve`: a real uvicorn server on a loopback port, the tiny checkpoint behind it, and
the real `openai` client (plus raw httpx for what the client hides) talking to it."""
import base64
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

for extra in ("fastapi", "uvicorn", "prometheus_client", "openai", "httpx"):  # genembed[serve] and [test]
    pytest.importorskip(extra)
import httpx  # noqa: E402
import openai  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import genembed  # noqa: E402
from genembed.checkpoint import save_checkpoint  # noqa: E402
from genembed.inputs import plain_ids  # noqa: E402
from genembed.serve import BackgroundServer, MissingServeDependencies, create_app  # noqa: E402

KEY = "test-key-123"
TEXTS = ["how do I boil an egg", "paris", "write a poem about the sea"]
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def ckpt(tiny_backbone, tmp_path_factory):
    from genembed.model import GenEmbed

    model = GenEmbed.create(tiny_backbone, embedding_dim=32, teacher="self", seed=0,
                            num_thought_tokens=2, num_compression_tokens=3)
    return save_checkpoint(model, tmp_path_factory.mktemp("serve") / "ckpt")


@pytest.fixture(scope="module")
def ref(ckpt):
    """The expected answers: the same checkpoint, called directly (never while a request runs)."""
    return genembed.load(ckpt)


@pytest.fixture(scope="module")
def server(ckpt):
    app = create_app(genembed.load(ckpt), api_key=KEY, model_name="tiny", max_batch=16, max_wait_ms=10,
                     max_texts=8, max_chars=200, max_body_bytes=20_000, max_new_tokens=8)
    with BackgroundServer(app) as s:
        yield s
    assert not s.thread.is_alive()  # should_exit stopped it


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, timeout=30)


def post(server, path, body, headers=AUTH, **kw):
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=30, **kw)


def metric(server, name, **labels):
    """Sum of the samples `name` whose labels include `labels` in the server's /metrics."""
    text = httpx.get(f"{server.url}/metrics", headers=AUTH, timeout=30).text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_openai_client_gets_exactly_model_encode(server, client, ref):
    expected = ref.encode(TEXTS)
    # the client asks for base64 by default and decodes it itself
    for kwargs in ({}, {"encoding_format": "float"}):
        out = client.embeddings.create(model="tiny", input=TEXTS, user="someone", **kwargs)
        assert out.model == "tiny" and [d.index for d in out.data] == [0, 1, 2]
        np.testing.assert_allclose(np.array([d.embedding for d in out.data]), expected, atol=1e-5)
    tokens = sum(len(ids) for ids in plain_ids(ref.backbone.tokenizer, TEXTS))
    assert out.usage.prompt_tokens == out.usage.total_tokens == tokens > 0
    # asked for explicitly, base64 comes back as the raw string: little-endian float32 bytes
    raw = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="base64")
    decoded = np.array([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in raw.data])
    np.testing.assert_allclose(decoded, expected, atol=1e-5)
    one = client.embeddings.create(model="tiny", input="paris", encoding_format="float")  # one string
    np.testing.assert_allclose(one.data[0].embedding, expected[1], atol=1e-5)
    empty = client.embeddings.create(model="tiny", input=["", "paris"], encoding_format="float")  # "" is a text
    np.testing.assert_allclose(np.array([d.embedding for d in empty.data]), ref.encode(["", "paris"]), atol=1e-5)


def test_the_served_model_is_listed_and_another_is_refused(server, client):
    """GET /v1/models lists the one model served (OpenAI's list shape, which the client reads); a request
    naming another model gets OpenAI's 404 model_not_found, on every endpoint that takes one."""
    listed = client.models.list()
    assert [(m.id, m.object, m.owned_by) for m in listed.data] == [("tiny", "model", "genembed")]
    assert isinstance(listed.data[0].created, int) and listed.data[0].created > 0
    assert client.models.retrieve("tiny") == listed.data[0]
    raw = httpx.get(f"{server.url}/v1/models", headers=AUTH).json()
    assert raw == {"object": "list", "data": [{"id": "tiny", "object": "model", "created": listed.data[0].created,
                                               "owned_by": "genembed"}]}
    with pytest.raises(openai.NotFoundError) as e:
        client.embeddings.create(model="text-embedding-3-small", input="paris")
    assert e.value.status_code == 404 and e.value.code == "model_not_found" and e.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("text-embedding-3-small")
    for path, body in (("/v1/embeddings", {"model": "other", "input": "paris"}),
                       ("/v1/decode", {"model": "other", "input": "paris"})):
        r = post(server, path, body)
        assert r.status_code == 404 and set(r.json()) == {"error"}, r.text
        error = r.json()["error"]
        assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "model", "model_not_found")
        assert "'other'" in error["message"] and "'tiny'" in error["message"] and "\n" not in error["message"]
    for name in ("owner/name", "tiny/extra"):  # ids with a slash (hub ids) reach the check too
        r = httpx.get(f"{server.url}/v1/models/{name}", headers=AUTH)
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert httpx.get(f"{server.url}/v1/models").status_code == 401  # behind the API key like the rest
    assert post(server, "/v1/embeddings", {"input": "paris"}).json()["model"] == "tiny"  # no model: the served one
    assert metric(server, "genembed_requests_total", endpoint="/v1/models/{id}", status="404") >= 2


def test_a_hub_id_is_served_by_its_name(ckpt):
    app = create_app(genembed.load(ckpt), model_name="McGill-NLP/LLM2Vec-Gen-Qwen3-8B")
    with BackgroundServer(app) as s:
        client = openai.OpenAI(base_url=f"{s.url}/v1", api_key="none", max_retries=0, timeout=30)
        assert client.models.retrieve("McGill-NLP/LLM2Vec-Gen-Qwen3-8B").id == "McGill-NLP/LLM2Vec-Gen-Qwen3-8B"
        out = client.embeddings.create(model="McGill-NLP/LLM2Vec-Gen-Qwen3-8B", input="paris")
        assert out.model == "McGill-NLP/LLM2Vec-Gen-Qwen3-8B"


def test_serve_names_the_model_as_it_was_loaded(monkeypatch, tiny_model):
    import uvicorn

    import genembed.serve as serving

    names = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: names.append(app.state.model_name))
    monkeypatch.setattr(serving, "load", lambda name, backend: tiny_model)
    for model in (None, "runs/x/model", "owner/name"):
        serving.serve(model)
    serving.serve(tiny_model)
    serving.serve("runs/x/model", model_name="mine")
    assert names == ["default", "runs/x/model", "owner/name", "genembed", "mine"]


def test_raw_base64_and_dimensions(server, ref):
    r = post(server, "/v1/embeddings", {"model": "tiny", "input": TEXTS, "encoding_format": "base64",
                                        "dimensions": 32})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["data"][0]["object"] == "embedding"
    vectors = np.array([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in body["data"]])
    assert vectors.shape == (3, 32)
    np.testing.assert_allclose(vectors, ref.encode(TEXTS), atol=1e-5)
    r = post(server, "/v1/embeddings", {"model": "tiny", "input": TEXTS, "dimensions": 8})
    assert r.status_code == 400 and r.json()["error"]["param"] == "dimensions" and "32" in r.json()["error"]["message"]


def test_instruction_and_normalize_fields(server, client, ref):
    default = ref.encode(TEXTS)
    out = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="float",
                                   extra_body={"instruction": "document"})
    got = np.array([d.embedding for d in out.data])
    np.testing.assert_allclose(got, ref.encode(TEXTS, instruction="document"), atol=1e-5)
    assert np.abs(got - default).max() > 1e-3  # it really changed the vector
    free = post(server, "/v1/embeddings", {"input": TEXTS, "instruction": "Find the topic: "}).json()
    np.testing.assert_allclose(np.array([d["embedding"] for d in free["data"]]),
                               ref.encode(TEXTS, instruction="Find the topic: "), atol=1e-5)
    unit = post(server, "/v1/embeddings", {"input": TEXTS, "normalize": True}).json()
    unit = np.array([d["embedding"] for d in unit["data"]])
    np.testing.assert_allclose(unit, ref.encode(TEXTS, normalize=True), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    assert np.abs(np.linalg.norm(default, axis=1) - 1).max() > 1e-3  # by default: not normalised


def test_api_key_is_required_except_for_health(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        r = post(server, "/v1/embeddings", {"input": "paris"}, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(f"{server.url}/metrics", headers=headers).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).embeddings.create(
            model="tiny", input="paris")
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok", "model": "tiny", "dimension": 32}


def test_limits_answer_413_in_openai_shape(server, client):
    for body, code in (({"input": ["a"] * 9}, "too_many_texts"), ({"input": ["ok", "x" * 201]}, "text_too_long"),
                       ({"input": "ok", "instruction": "i" * 201}, "text_too_long")):
        r = post(server, "/v1/embeddings", body)
        assert r.status_code == 413, body
        assert r.json()["error"]["code"] == code and r.json()["error"]["type"] == "invalid_request_error"
    r = post(server, "/v1/embeddings", {"input": ["x" * 150] * 150})  # a body over max_body_bytes
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    with pytest.raises(openai.APIStatusError) as e:
        client.embeddings.create(model="tiny", input=["a"] * 9)
    assert e.value.status_code == 413
    r = post(server, "/v1/decode", {"input": ["a"] * 9})
    assert r.status_code == 413


def test_bad_requests_are_refused_with_json(server):
    bad = httpx.post(f"{server.url}/v1/embeddings", content=b'{"input": ["paris"', timeout=30,
                     headers={**AUTH, "Content-Type": "application/json"})
    assert bad.status_code == 422 and "error" in bad.json()
    for body in ({"input": 5}, {"input": ["ok", 3]}, {"model": "tiny"}, {"input": "a", "encoding_format": "hex"},
                 {"input": "a", "dimensions": "many"}):
        r = post(server, "/v1/embeddings", body)
        assert r.status_code == 422, body
        assert r.json()["error"]["message"]
    for body in ({"input": [1, 2, 3]}, {"input": [[1, 2], [3]]}):
        r = post(server, "/v1/embeddings", body)
        assert r.status_code == 400 and "token arrays" in r.json()["error"]["message"]
    r = post(server, "/v1/embeddings", {"input": []})
    assert r.status_code == 400 and "empty" in r.json()["error"]["message"]
    r = httpx.get(f"{server.url}/v1/nowhere", headers=AUTH)
    assert r.status_code == 404 and "error" in r.json()


def test_decode_endpoint_matches_model_decode(server, ref):
    r = post(server, "/v1/decode", {"input": TEXTS, "max_new_tokens": 3})
    assert r.status_code == 200, r.text
    assert [d["text"] for d in r.json()["data"]] == ref.decode(TEXTS, max_new_tokens=3)
    r = post(server, "/v1/decode", {"input": "paris", "max_new_tokens": 2, "instruction": "document"})
    assert r.json()["data"] == [{"index": 0, "text": ref.decode(["paris"], max_new_tokens=2, instruction="document")[0]}]
    r = post(server, "/v1/decode", {"input": TEXTS, "max_new_tokens": 3, "via": "soft-prompt"})
    assert [d["text"] for d in r.json()["data"]] == ref.decode(TEXTS, max_new_tokens=3, via="soft-prompt")
    r = post(server, "/v1/decode", {"input": "paris", "via": "telepathy"})
    assert r.status_code == 422 and "via" in r.json()["error"]["message"]
    r = post(server, "/v1/decode", {"input": "paris", "max_new_tokens": 2, "via": "queries"})  # no query lens here
    assert r.status_code == 400 and r.json()["error"]["param"] == "via" and "query lens" in r.json()["error"]["message"]
    for n in (0, 9):  # the server's cap is 8
        r = post(server, "/v1/decode", {"input": "paris", "max_new_tokens": n})
        assert r.status_code == 400 and r.json()["error"]["param"] == "max_new_tokens"


def test_metrics_count_requests_and_batches(server):
    before = metric(server, "genembed_requests_total", endpoint="/v1/embeddings", status="200")
    post(server, "/v1/embeddings", {"input": "paris"})
    post(server, "/v1/embeddings", {"input": "paris"}, headers={})
    assert metric(server, "genembed_requests_total", endpoint="/v1/embeddings", status="200") == before + 1
    assert metric(server, "genembed_requests_total", endpoint="/v1/embeddings", status="401") >= 1
    assert metric(server, "genembed_batch_texts_count", kind="encode") >= 1
    assert metric(server, "genembed_request_seconds_count", endpoint="/v1/embeddings") >= before + 2
    httpx.get(f"{server.url}/some/random/path")  # not a label of its own
    assert metric(server, "genembed_requests_total", endpoint="other") >= 1


def concurrent_embeddings(server, texts):
    """One request per text, all let go at once; their vectors in text order."""
    gate, out = threading.Barrier(len(texts)), [None] * len(texts)

    def one(i):
        with httpx.Client(timeout=60) as http:
            http.get(f"{server.url}/health")  # connect first, so the requests leave together
            gate.wait()
            r = http.post(f"{server.url}/v1/embeddings", json={"input": texts[i]}, headers=AUTH)
            out[i] = r.json()["data"][0]["embedding"] if r.status_code == 200 else r.text

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_one_text_requests_share_forward_passes(ckpt, ref):
    texts = [f"question number {i} about eggs" if i % 2 else f"paris {i}" for i in range(16)]
    expected = ref.encode(texts)
    batches = {}
    for wait in (400, 0):  # batching on, then off: the comparison shows the test can tell them apart
        app = create_app(genembed.load(ckpt), api_key=KEY, max_batch=16, max_wait_ms=wait)
        with BackgroundServer(app) as s:
            vectors = concurrent_embeddings(s, texts)
            assert all(isinstance(v, list) for v in vectors), vectors
            np.testing.assert_allclose(np.array(vectors), expected, atol=1e-5)
            assert app.state.worker.stats["requests"] == 16
            batches[wait] = metric(s, "genembed_forward_batches_total", kind="encode")
            assert batches[wait] == app.state.worker.stats["forward_batches"]
    assert batches[0] == 16
    assert batches[400] <= 4, batches  # about one pass; a late thread on a busy machine may miss it


class Flaky:
    """A model whose encode fails on the text 'boom': a model error inside the server."""

    def __init__(self, model):
        self.model, self.config, self.backbone = model, model.config, model.backbone
        self.resolve_instruction = model.resolve_instruction

    def encode(self, texts, **kw):
        if "boom" in texts:
            raise RuntimeError("kaboom")
        return self.model.encode(texts, **kw)


def test_a_model_error_is_a_500_and_the_server_goes_on(ckpt, ref):
    app = create_app(Flaky(genembed.load(ckpt)), max_wait_ms=300)
    with BackgroundServer(app) as s:
        r = post(s, "/v1/embeddings", {"input": ["ok", "boom"]}, headers={})
        assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
        assert "kaboom" not in r.text  # details stay in the server log
        # batched with a failing request, a good one still gets its vector
        results = {}
        threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, post(s, "/v1/embeddings", {"input": t},
                                                                                   headers={})))
                   for t in ("boom", "paris")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results["boom"].status_code == 500 and results["paris"].status_code == 200
        np.testing.assert_allclose(results["paris"].json()["data"][0]["embedding"], ref.encode("paris"), atol=1e-5)
        assert httpx.get(f"{s.url}/health").status_code == 200  # no key set: all open


def test_a_bf16_server_answers_what_encode_gives_under_bf16(ckpt, ref):
    app = create_app(genembed.load(ckpt), max_wait_ms=0, bf16=True)
    with BackgroundServer(app) as s:
        got = np.array([d["embedding"] for d in post(s, "/v1/embeddings", {"input": TEXTS}, headers={}).json()["data"]])
    np.testing.assert_allclose(got, ref.encode(TEXTS, bf16=True), atol=1e-6)
    assert np.abs(got - ref.encode(TEXTS)).max() > 1e-6  # it is not the float32 answer


def test_bad_settings_are_refused(ref):
    with pytest.raises(ValueError, match="max_batch"):
        create_app(ref, max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        create_app(ref, max_wait_ms=-1)
    with pytest.raises(ValueError, match="api_key"):
        create_app(ref, api_key=" ")
    with pytest.raises(ValueError, match="model_name must be a non-empty string"):
        create_app(ref, model_name="")


def test_cli_serve_is_a_thin_call(monkeypatch, tmp_path):
    import genembed.serve
    from genembed.cli import app

    calls = []
    monkeypatch.setattr(genembed.serve, "serve", lambda *a, **kw: calls.append((a, kw)))
    monkeypatch.setenv("GENEMBED_API_KEY", "from-env")
    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path), "--port", "9001", "--max-wait-ms", "0"])
    assert result.exit_code == 0, result.output
    (args, kw), = calls
    assert args == (str(tmp_path),) and kw["host"] == "127.0.0.1" and kw["port"] == 9001
    assert kw["api_key"] == "from-env" and kw["max_wait_ms"] == 0 and kw["bf16"] is False
    calls.clear()
    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path), "--backend", "openvino", "--bf16"])
    assert result.exit_code == 0, result.output
    assert calls[0][1]["backend"] == "openvino" and calls[0][1]["bf16"] is True


def test_missing_extras_name_the_install_and_import_stays_light(monkeypatch, tmp_path):
    from genembed.cli import app

    monkeypatch.setitem(sys.modules, "fastapi", None)  # `import fastapi` now fails
    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path)])
    assert isinstance(result.exception, MissingServeDependencies)
    assert isinstance(result.exception, ValueError)  # so `genembed` prints one `error:` line
    assert "pip install 'genembed[serve]'" in str(result.exception) and "\n" not in str(result.exception)
    code = "import sys, genembed, genembed.cli; print(json.dumps(sorted({'fastapi', 'uvicorn', 'prometheus_client'} & set(sys.modules))))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
