"""genembed index build / search: results equal brute-force cosine, a killed build resumes without
re-encoding finished chunks, bad input is named."""
import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import genembed.index as gi
from genembed.checkpoint import save_checkpoint
from genembed.cli import app
from genembed.index import Index, build_index, make_faiss_index

runner = CliRunner()
TEXTS = [f"{t} number {i}" for i, t in enumerate(
    ["how do I boil an egg", "put the egg in boiling water", "what is the capital of france",
     "paris is the capital of france", "write a poem about the sea", "the sea is wide and blue",
     "explain how a neural network learns", "weights move to reduce a loss"] * 3)]  # 24 distinct texts
QUERIES = ["boil an egg", "capital of france", "the sea"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def same_hits(a, b):
    """Equal hits up to float noise (a batch's padding moves scores by ~1e-7)."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert [(h.id, h.text, h.row) for h in x] == [(h.id, h.text, h.row) for h in y]
        np.testing.assert_allclose([h.score for h in x], [h.score for h in y], atol=1e-5)


def brute_force(model, texts, queries, k):
    """(scores, row indices) of the exact top k by cosine, from model.encode alone."""
    docs = model.encode(texts, instruction="document")
    qs = model.encode(queries, instruction="query")
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    sims = qs @ docs.T
    order = np.argsort(-sims, axis=1)[:, :k]
    return np.take_along_axis(sims, order, axis=1), sims


def test_search_equals_brute_force_cosine_with_ids_from_the_file(tiny_model, tmp_path):
    ids = [f"doc-{i}" if i % 2 else i * 10 for i in range(len(TEXTS))]  # str and int ids, kept as given
    src = write_jsonl(tmp_path / "corpus.jsonl", [{"id": i, "body": t} for i, t in zip(ids, TEXTS)])
    index = build_index(tiny_model, src, tmp_path / "idx", field="body", chunk_size=5)
    assert index.kind == "flat" and len(index) == len(TEXTS)
    top, sims = brute_force(tiny_model, TEXTS, QUERIES, 5)
    hits = index.search(QUERIES, k=5)
    assert [len(h) for h in hits] == [5, 5, 5]
    for q, query_hits in enumerate(hits):
        np.testing.assert_allclose([h.score for h in query_hits], top[q], atol=1e-5)
        for h in query_hits:  # each hit is the row it claims to be, with its own score
            assert h.id == ids[h.row] and type(h.id) is type(ids[h.row]) and h.text == TEXTS[h.row]
            assert abs(h.score - sims[q, h.row]) < 1e-5
    same_hits(index.search(QUERIES[0], k=5), hits[:1])  # one string: one list of hits
    assert len(index.search("egg", k=100)[0]) == len(TEXTS)  # k beyond the corpus: every row once
    manifest = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert manifest["count"] == len(TEXTS) and manifest["dim"] == 32 and manifest["field"] == "body"
    assert manifest["instruction"] == "document" and manifest["model"] is None and manifest["complete"]
    assert len(manifest["source"]["sha1"]) == 40 and manifest["source"]["size"] == src.stat().st_size


def test_line_numbers_are_the_ids_without_an_id_field_and_for_text_files(tiny_model, tmp_path):
    src = tmp_path / "corpus.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" + ("\n" if i == 2 else "") for i, t in enumerate(TEXTS[:6])))
    index = build_index(tiny_model, src, tmp_path / "a")
    assert sorted(index.row(i)[0] for i in range(6)) == [1, 2, 3, 5, 6, 7]  # a blank line is skipped, not renumbered
    txt = tmp_path / "corpus.txt"
    txt.write_text("\n".join(TEXTS[:6]) + "\n")
    index = build_index(tiny_model, txt, tmp_path / "b", chunk_size=4)
    assert [index.row(i) for i in range(6)] == [(i + 1, t) for i, t in enumerate(TEXTS[:6])]
    hit = index.search("the sea", k=1)[0][0]
    assert hit.text == TEXTS[hit.id - 1]


def test_cli_build_then_search_text_and_json(tiny_model, tmp_path):
    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    src = write_jsonl(tmp_path / "corpus.jsonl", [{"id": f"d{i}", "text": t} for i, t in enumerate(TEXTS)])
    idx = tmp_path / "idx"
    result = runner.invoke(app, ["index", "build", str(src), "--out", str(idx), "--model", str(ckpt), "--chunk-size", "7"])
    assert result.exit_code == 0, result.output
    assert f"{len(TEXTS)} rows indexed (flat" in result.output
    # search loads the model the manifest records (the checkpoint), no --model needed
    result = runner.invoke(app, ["search", str(idx), "capital of france", "-k", "3"])
    assert result.exit_code == 0, result.output
    expected = Index.open(idx, model=tiny_model).search(QUERIES, k=3)
    lines = [line.split() for line in result.output.splitlines() if line.strip() and not line.startswith("query:")]
    assert [(int(r), s, i) for r, s, i, *_ in lines] == [(n, f"{h.score:.4f}", h.id) for n, h in enumerate(expected[1], 1)]
    queries = tmp_path / "queries.txt"
    queries.write_text("\n".join(QUERIES) + "\n")
    result = runner.invoke(app, ["search", str(idx), "--input", str(queries), "-k", "4", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    expected = Index.open(idx, model=tiny_model).search(QUERIES, k=4)
    assert [r["query"] for r in rows] == QUERIES
    for row, hits in zip(rows, expected):
        assert all(set(h) == {"id", "score", "text"} for h in row["hits"])
        assert [(h["id"], h["text"]) for h in row["hits"]] == [(h.id, h.text) for h in hits]
        np.testing.assert_allclose([h["score"] for h in row["hits"]], [h.score for h in hits], atol=1e-6)


class Killed(Exception):
    pass


def test_a_killed_build_resumes_where_it_stopped_and_equals_an_uninterrupted_one(tiny_model, tmp_path, monkeypatch):
    src = write_jsonl(tmp_path / "corpus.jsonl", [{"id": i, "text": t} for i, t in enumerate(TEXTS)])
    whole = build_index(tiny_model, src, tmp_path / "whole", chunk_size=10)
    encode = gi._encode_chunk
    encoded = []

    def dies_after_first_chunk(model, texts, *args):
        if encoded:
            raise Killed
        encoded.append(list(texts))
        return encode(model, texts, *args)

    monkeypatch.setattr(gi, "_encode_chunk", dies_after_first_chunk)
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        build_index(tiny_model, src, out, chunk_size=10)
    manifest = json.loads((out / "index.json").read_text())
    assert manifest["rows_done"] == 10 and not manifest["complete"] and not (out / "index.faiss").exists()
    with pytest.raises(ValueError, match="not finished"):
        Index.open(out)
    # a kill in the middle of the next chunk's appends leaves tails the manifest does not count
    with open(out / "vectors.f32", "ab") as f:
        f.write(b"\x01" * 40)
    with open(out / "rows.jsonl", "ab") as f:
        f.write(b'{"id": 10, "te')

    def counting(model, texts, *args):
        encoded.append(list(texts))
        return encode(model, texts, *args)

    monkeypatch.setattr(gi, "_encode_chunk", counting)
    resumed = build_index(tiny_model, src, out, chunk_size=10)
    assert [len(t) for t in encoded] == [10, 10, 4] and encoded[1][0] == TEXTS[10]  # nothing encoded twice
    for name in ("rows.jsonl", "offsets.u64"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    np.testing.assert_allclose(np.fromfile(out / "vectors.f32", dtype=np.float32),
                               np.fromfile(tmp_path / "whole" / "vectors.f32", dtype=np.float32), atol=1e-6)
    same_hits(resumed.search(QUERIES, k=5), whole.search(QUERIES, k=5))
    encoded.clear()
    build_index(tiny_model, src, out, chunk_size=10)  # a finished index: nothing to encode again
    assert encoded == []


def test_a_changed_source_or_other_settings_are_refused_on_resume(tiny_model, tmp_path, monkeypatch):
    src = write_jsonl(tmp_path / "corpus.jsonl", [{"text": t} for t in TEXTS])
    monkeypatch.setattr(gi, "_encode_chunk", lambda *a: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        build_index(tiny_model, src, tmp_path / "idx", chunk_size=10)
    monkeypatch.undo()
    write_jsonl(src, [{"text": t} for t in TEXTS[::-1]])  # same size, other bytes
    with pytest.raises(ValueError, match="source changed"):
        build_index(tiny_model, src, tmp_path / "idx", chunk_size=10)
    write_jsonl(src, [{"text": t} for t in TEXTS])
    with pytest.raises(ValueError, match="instruction_text"):
        build_index(tiny_model, src, tmp_path / "idx", instruction="query")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        build_index(tiny_model, src, tmp_path / "other")
    assert build_index(tiny_model, src, tmp_path / "idx", chunk_size=10).search("egg", k=1)


def test_kind_by_flag_and_by_size_and_a_rebuild_in_another_kind(tiny_model, tmp_path, monkeypatch):
    src = write_jsonl(tmp_path / "corpus.jsonl", [{"text": t} for t in TEXTS])
    flat = build_index(tiny_model, src, tmp_path / "idx", kind="flat")
    monkeypatch.setattr(gi, "_encode_chunk", lambda *a: pytest.fail("re-encoded"))
    hnsw = build_index(tiny_model, src, tmp_path / "idx", kind="hnsw")  # only the faiss index is rebuilt
    assert hnsw.kind == "hnsw" and type(hnsw.faiss_index).__name__ == "IndexHNSWFlat"
    assert [[h.row for h in q] for q in hnsw.search_vectors(np.eye(32, dtype=np.float32)[:3], k=5)] == \
        [[h.row for h in q] for q in flat.search_vectors(np.eye(32, dtype=np.float32)[:3], k=5)]
    monkeypatch.setattr(gi, "AUTO_HNSW_ROWS", 10)
    assert build_index(tiny_model, src, tmp_path / "idx").kind == "hnsw"
    monkeypatch.setattr(gi, "AUTO_HNSW_ROWS", 1000)
    assert build_index(tiny_model, src, tmp_path / "idx").kind == "flat"


def test_hnsw_recall_against_exact_search_on_random_vectors():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((400, 24)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = rng.standard_normal((50, 24)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    _, flat = make_faiss_index(base, "flat").search(queries, 10)
    assert (flat == exact).mean() > 0.99  # exact search, up to ties
    hnsw = make_faiss_index(base, "hnsw")
    hnsw.hnsw.efSearch = 64
    _, approx = hnsw.search(queries, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.95, recall


def test_bad_input_is_named(tiny_model, tmp_path):
    src = write_jsonl(tmp_path / "corpus.jsonl", [{"text": "a"}, {"body": "b"}])
    with pytest.raises(ValueError, match=r"corpus.jsonl:2 has no 'text' key"):
        build_index(tiny_model, src, tmp_path / "idx")
    assert not (tmp_path / "idx").exists()  # refused before anything is written
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [{"id": "x", "text": "a"}, {"text": "b"}])
    with pytest.raises(ValueError, match="mixed.jsonl:2 has no 'id' key"):
        build_index(tiny_model, mixed, tmp_path / "idx")
    bad_id = write_jsonl(tmp_path / "bad_id.jsonl", [{"id": [1], "text": "a"}])
    with pytest.raises(ValueError, match="not a string or integer"):
        build_index(tiny_model, bad_id, tmp_path / "idx")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no rows"):
        build_index(tiny_model, empty, tmp_path / "idx")
    with pytest.raises(ValueError, match="kind must be"):
        build_index(tiny_model, write_jsonl(tmp_path / "ok.jsonl", [{"text": "a"}]), tmp_path / "idx", kind="ivf")
    with pytest.raises(ValueError, match="index folder not found"):
        Index.open(tmp_path / "missing")
    index = build_index(tiny_model, tmp_path / "ok.jsonl", tmp_path / "idx")
    with pytest.raises(ValueError, match="k must be >= 1"):
        index.search("a", k=0)
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="no index.json"):
        Index.open(tmp_path / "plain")
    # built from a model in memory: search must be given it; another model is refused
    with pytest.raises(ValueError, match="model in memory"):
        Index.open(tmp_path / "idx").search("a")
    other = type(tiny_model).create(tiny_model.backbone, embedding_dim=32, teacher="self", seed=1,
                                    num_thought_tokens=2, num_compression_tokens=3)
    with pytest.raises(ValueError, match="not the model"):
        Index.open(tmp_path / "idx", model=other)

    result = runner.invoke(app, ["search", str(tmp_path / "idx"), "a", "-k", "0"])
    assert result.exit_code == 2 and "-k must be >= 1" in result.output
    result = runner.invoke(app, ["search", str(tmp_path / "missing"), "a"])
    assert result.exit_code != 0 and "index folder not found" in str(result.exception)
    result = runner.invoke(app, ["search", str(tmp_path / "idx")])
    assert result.exit_code == 2 and "no queries" in result.output
    result = runner.invoke(app, ["index", "build", str(src), "--out", str(tmp_path / "x"), "--model", "nowhere"])
    assert result.exit_code != 0 and "corpus.jsonl:2" in str(result.exception)


def test_faiss_is_imported_lazily_and_its_absence_is_one_line(tiny_model, tmp_path, monkeypatch):
    code = "import genembed, genembed.index, sys; print('faiss' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    src = write_jsonl(tmp_path / "corpus.jsonl", [{"text": "a"}])
    with pytest.raises(ImportError, match=r"pip install 'genembed\[search\]'"):
        build_index(tiny_model, src, tmp_path / "idx")
    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    result = runner.invoke(app, ["index", "build", str(src), "--out", str(tmp_path / "idx"), "--model", str(ckpt)])
    assert result.exit_code == 2 and "pip install 'genembed[search]'" in result.output


def test_the_model_fingerprint_lives_with_checkpoints(tiny_model, tmp_path, monkeypatch):
    """An index and an evaluation score record the same fingerprint of a model, checkpoint.model_fingerprint,
    and fingerprinting a model for an evaluation does not load the faiss index module."""
    from genembed.checkpoint import model_fingerprint
    from genembed.eval.methods import Student

    src = write_jsonl(tmp_path / "corpus.jsonl", [{"text": t} for t in TEXTS[:3]])
    build_index(tiny_model, src, tmp_path / "idx")
    recorded = json.loads((tmp_path / "idx" / "index.json").read_text())["model_fingerprint"]
    assert recorded == model_fingerprint(tiny_model)
    monkeypatch.delitem(sys.modules, "genembed.index")
    assert Student(tiny_model, "tiny").identity()["model"] == recorded
    assert "genembed.index" not in sys.modules
    with __import__("torch").no_grad():
        tiny_model.align.bias.add_(1.0)  # other weights: another fingerprint
    assert model_fingerprint(tiny_model) != recorded
