"""The query lens (query_lens.py): the training queries nearest an embedding, the request they make,
kept in the checkpoint, and the default decoder where a checkpoint has one."""
import numpy as np
import pytest

from genembed.decoders import get_decoder

QUERIES = ["how do I boil an egg", "write a poem about the sea", "what is the capital of france",
           "explain how a neural network learns"]


def test_nearest_queries_rank_by_cosine_and_make_the_request():
    from genembed.query_lens import ABOUT, QueryLens

    lens = QueryLens(["boil an egg", "a poem", "paris"], np.eye(3, dtype=np.float32))
    e = np.array([[0.2, 0.0, 3.0], [1.0, 0.5, 0.0]], dtype=np.float32)  # not unit: normalised
    near = lens.nearest(e, k=2)
    assert [q for q, _ in near[0]] == ["paris", "boil an egg"] and [q for q, _ in near[1]] == ["boil an egg", "a poem"]
    assert near[1][0][1] == pytest.approx(1 / np.sqrt(1.25), rel=1e-5)
    words = [[("france", 0.9), ("city", 0.5)], [("egg", 0.7)]]
    assert lens.requests(e, words) == [ABOUT.format(query="paris", words="france, city"),
                                       ABOUT.format(query="boil an egg", words="egg")]
    with pytest.raises(ValueError, match="k must be"):
        lens.nearest(e, k=0)
    with pytest.raises(ValueError, match="one vector per query"):
        QueryLens(["a"], np.eye(2, dtype=np.float32))


def test_build_cuts_dedupes_and_places_each_query_on_its_own_embedding(tiny_model):
    from genembed.query_lens import QUERY_TOKENS, QueryLens

    long = "the sea is wide and blue " * 60
    lens = QueryLens.build(tiny_model, QUERIES + [QUERIES[0], "  ", long])
    assert lens.queries[:4] == QUERIES and len(lens.queries) == 5  # the repeat and the blank are gone
    assert len(tiny_model.backbone.tokenizer(lens.queries[4], add_special_tokens=False).input_ids) <= QUERY_TOKENS
    np.testing.assert_allclose(np.linalg.norm(lens.vectors, axis=1), 1.0, rtol=1e-5)
    own = [row[0] for row in lens.nearest(tiny_model.encode(QUERIES))]  # encoded as encode() does by default
    assert [q for q, _ in own] == QUERIES and all(c > 0.999 for _, c in own)
    with pytest.raises(ValueError, match="at least one non-empty query"):
        QueryLens.build(tiny_model, ["", " "])


def test_the_lens_travels_in_the_checkpoint_and_becomes_the_default_decoder(tiny_model, tmp_path, monkeypatch):
    from genembed.checkpoint import load_checkpoint, save_checkpoint
    from genembed.generate import generate_batch
    from genembed.query_lens import FILE, QueryLens
    from genembed.word_lens import request_ids

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "cache"))
    texts = ["boil an egg please", "a poem about the sea"]
    plain = load_checkpoint(save_checkpoint(tiny_model, tmp_path / "plain"))
    assert plain.query_lens is None and not (tmp_path / "plain" / FILE).exists()
    assert plain.decode(texts, max_new_tokens=4) == plain.decode(texts, max_new_tokens=4, via="words")
    with pytest.raises(ValueError, match="no query lens.*via='words'"):
        plain.decode(texts, via="queries")

    tiny_model.query_lens = QueryLens.build(tiny_model, QUERIES)
    model = load_checkpoint(save_checkpoint(tiny_model, tmp_path / "lens"))
    assert model.query_lens.queries == QUERIES
    np.testing.assert_allclose(model.query_lens.vectors, tiny_model.query_lens.vectors, atol=1e-3)  # float16 on disk
    emb = model.encode(texts)
    requests = get_decoder(model, "queries").requests(emb)
    nearest = model.query_lens.nearest(emb)
    assert all(r.startswith(n[0][0] + "\n") for r, n in zip(requests, nearest))
    expected = generate_batch(model.backbone, request_ids(model.backbone.tokenizer, requests), 4)[0]
    assert model.decode(texts, max_new_tokens=4) == expected == model.decode(texts, max_new_tokens=4, via="queries")
    assert get_decoder(model, "words").requests(emb) != requests


def test_training_writes_the_lens_unless_told_not_to(tiny_backbone_path, tiny_responses, tmp_path, monkeypatch):
    from test_train import config

    import genembed.query_lens
    from genembed.checkpoint import load_checkpoint
    from genembed.data import Conversation
    from genembed.jsonl import read_rows
    from genembed.query_lens import FILE
    from genembed.train import train

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "cache"))
    rows = read_rows(tiny_responses)
    sharegpt = [Conversation(r["id"], r["query"], "") for r in rows]
    monkeypatch.setattr(genembed.query_lens, "load_sharegpt", lambda split="train": sharegpt)
    train(config(tiny_backbone_path, tiny_responses, tmp_path / "a", steps=2, w_rec=0.0), show_progress_bar=False)
    lens = load_checkpoint(tmp_path / "a" / "model").query_lens
    assert set(lens.queries) == {r["query"].strip() for r in rows}
    # rows that are ShareGPT training queries: the lens keeps their ids, never their text
    assert set(lens.sharegpt_ids) == {r["id"] for r in rows}
    assert rows[1]["query"].encode() not in (tmp_path / "a" / "model" / FILE).read_bytes()
    train(config(tiny_backbone_path, tiny_responses, tmp_path / "b", steps=2, w_rec=0.0, query_lens=False),
          show_progress_bar=False)
    assert not (tmp_path / "b" / "model" / FILE).exists()
    assert (tmp_path / "a" / "model" / FILE).exists()


def test_inspect_names_the_nearest_training_query(tiny_model, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from genembed.checkpoint import save_checkpoint
    from genembed.cli import app
    from genembed.query_lens import QueryLens

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "cache"))
    tiny_model.query_lens = QueryLens.build(tiny_model, QUERIES)
    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    result = CliRunner().invoke(app, ["inspect", QUERIES[1], "--model", str(ckpt), "--max-new-tokens", "2"])
    assert result.exit_code == 0, result.output
    assert f"nearest training query (1.00): {QUERIES[1]}" in result.output
    result = CliRunner().invoke(app, ["decode", "paris", "--model", str(ckpt), "--via", "words", "--max-new-tokens", "2"])
    assert result.exit_code == 0 and "decoded:" in result.output


def test_the_query_lens_command_adds_a_lens_to_a_checkpoint(tiny_model, tmp_path):
    import json

    from typer.testing import CliRunner

    from genembed.checkpoint import load_checkpoint, save_checkpoint
    from genembed.cli import app

    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    before = tiny_model.encode(QUERIES)
    rows = tmp_path / "responses.jsonl"
    rows.write_text("".join(json.dumps({"query": q, "response": "r"}) + "\n" for q in QUERIES))
    result = CliRunner().invoke(app, ["query-lens", "--model", str(ckpt), "--input", str(rows)])
    assert result.exit_code == 0, result.output
    model = load_checkpoint(ckpt)
    assert model.query_lens.queries == QUERIES
    np.testing.assert_allclose(model.encode(QUERIES), before, atol=1e-6)  # the trained tensors are unchanged
    neither = CliRunner().invoke(app, ["query-lens", "--model", str(ckpt)])
    assert neither.exit_code != 0 and "--input or --sharegpt" in neither.output
    missing = CliRunner().invoke(app, ["query-lens", "--model", str(ckpt), "--input", str(tmp_path / "none.jsonl")])
    assert missing.exit_code != 0 and load_checkpoint(ckpt).query_lens.queries == QUERIES  # nothing lost


def test_a_lens_of_rows_keeps_sharegpt_ids_only_where_every_row_is_a_sharegpt_training_query(tiny_model, tmp_path,
                                                                                             monkeypatch):
    import json

    from typer.testing import CliRunner

    import genembed.query_lens
    from genembed.checkpoint import load_checkpoint, save_checkpoint
    from genembed.cli import app
    from genembed.data import Conversation
    from genembed.query_lens import FILE, QueryLens

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "cache"))
    sharegpt = [Conversation(f"c{i}_0", q, "") for i, q in enumerate(QUERIES)]
    monkeypatch.setattr(genembed.query_lens, "load_sharegpt", lambda split="train": sharegpt)
    rows = [{"id": c.id, "query": c.query} for c in sharegpt]
    assert QueryLens.build_rows(tiny_model, rows).sharegpt_ids == [c.id for c in sharegpt]
    for other in ({"id": "c1_0", "query": "my own question"},  # a ShareGPT id over someone's own text
                  {"id": "mine", "query": QUERIES[1]},        # an id ShareGPT lacks
                  {"query": QUERIES[1]}):                      # no id
        lens = QueryLens.build_rows(tiny_model, [*rows[:1], other, *rows[2:]])
        assert lens.sharegpt_ids is None and other["query"] in lens.queries

    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    responses = tmp_path / "responses.jsonl"
    responses.write_text("".join(json.dumps({**r, "response": "r"}) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["query-lens", "--model", str(ckpt), "--input", str(responses)])
    assert result.exit_code == 0, result.output
    assert QUERIES[1].encode() not in (ckpt / FILE).read_bytes()
    assert load_checkpoint(ckpt).query_lens.queries == QUERIES


def test_decode_embeddings_reads_any_vector_of_the_space(tiny_model, tmp_path, monkeypatch):
    import torch

    from genembed.query_lens import QueryLens

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "cache"))
    tiny_model.query_lens = QueryLens.build(tiny_model, QUERIES)
    texts = ["boil an egg please", "a poem about the sea"]
    emb = tiny_model.encode(texts)
    for via in ("queries", "words"):
        assert tiny_model.decode_embeddings(emb, 4, via=via) == tiny_model.decode(texts, 4, via=via)
    assert tiny_model.decode_embeddings(torch.from_numpy(emb[0]), 4) == tiny_model.decode(texts[0], 4)
    centre = tiny_model.decode_embeddings(emb.mean(0), 4)  # a point no text was encoded to
    assert isinstance(centre, str)
    for bad, message in ((emb[:, :5], "must be \\[n, 32\\]"), (emb[:0], "n >= 1"), (emb * 0, "non-zero"),
                         (emb * np.nan, "finite")):
        with pytest.raises(ValueError, match=message):
            tiny_model.decode_embeddings(bad)
    with pytest.raises(ValueError, match="belongs to a text"):
        tiny_model.decode_embeddings(emb, via="soft-prompt")
    with pytest.raises(ValueError, match="max_new_tokens"):
        tiny_model.decode_embeddings(emb, 0)


def test_a_sharegpt_lens_keeps_ids_not_text_and_reads_the_text_back(tiny_model, tmp_path, monkeypatch):
    import shutil

    import genembed.query_lens
    from genembed.checkpoint import load_checkpoint, save_checkpoint
    from genembed.data import Conversation
    from genembed.query_lens import FILE, QueryLens

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "cache"))
    convs = [Conversation(f"id{i}", q, "") for i, q in enumerate(QUERIES + [QUERIES[0]])]  # a repeat: kept once
    monkeypatch.setattr(genembed.query_lens, "load_sharegpt", lambda split="train": convs)
    tiny_model.query_lens = QueryLens.build_sharegpt(tiny_model)
    assert tiny_model.query_lens.sharegpt_ids == ["id0", "id1", "id2", "id3"]
    save_checkpoint(tiny_model, tmp_path / "ckpt")
    assert QUERIES[1].encode() not in (tmp_path / "ckpt" / FILE).read_bytes()  # no query text in the file
    model = load_checkpoint(tmp_path / "ckpt")
    assert model.query_lens.queries == QUERIES  # read back from the data, on first use
    emb = model.encode(QUERIES[2])[None]
    assert model.query_lens.nearest(emb)[0][0][0] == QUERIES[2]

    def unread(split="train"):
        raise AssertionError("the data set was read again")

    monkeypatch.setattr(genembed.query_lens, "load_sharegpt", unread)  # later loads: the cached texts
    assert load_checkpoint(tmp_path / "ckpt").query_lens.queries == QUERIES
    (kept,) = (tmp_path / "cache" / "query-lens").glob("*.json")
    kept.write_text('["altered", "texts", "in", "the cache"]')  # an altered cache is not trusted
    monkeypatch.setattr(genembed.query_lens, "load_sharegpt", lambda split="train": convs)
    assert load_checkpoint(tmp_path / "ckpt").query_lens.queries == QUERIES

    shutil.rmtree(tmp_path / "cache")
    convs[2] = Conversation("id2", "a different question", "")  # another version of the data
    with pytest.raises(ValueError, match="differ from those it was built on"):
        load_checkpoint(tmp_path / "ckpt").query_lens.queries
    convs.pop(3)
    with pytest.raises(ValueError, match="lacks.*'id3'"):
        load_checkpoint(tmp_path / "ckpt").query_lens.queries
