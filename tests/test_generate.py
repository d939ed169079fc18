import json

import pytest

from genembed.generate import answer_queries

QUERIES = [(f"q{i}", text) for i, text in enumerate(
    ["how do I boil an egg", "what is the capital of france", "write a poem about the sea",
     "explain how a neural network learns", "paris", "the sea"])]


def test_answers_every_query_once_and_resumes_after_a_kill(tiny_backbone, tmp_path):
    out = tmp_path / "answers.jsonl"
    first = answer_queries(tiny_backbone, QUERIES[:3], out, max_new_tokens=4, batch_size=2, show_progress_bar=False)
    assert sorted(r["id"] for r in first) == ["q0", "q1", "q2"]
    assert all(set(r) == {"id", "query", "response", "finished"} for r in first)
    with open(out, "a") as f:  # a kill in the middle of writing a row
        f.write('{"id": "q3", "query": "expl')
    rows = answer_queries(tiny_backbone, QUERIES, out, max_new_tokens=4, batch_size=2, show_progress_bar=False)
    ids = [r["id"] for r in rows]
    assert sorted(ids) == sorted(q[0] for q in QUERIES) and len(ids) == len(set(ids))
    assert [r for r in rows if r["id"] in ("q0", "q1", "q2")] == first, "old rows are kept as they were"
    for line in out.read_text().splitlines():
        json.loads(line)  # no torn line left behind
    again = answer_queries(tiny_backbone, QUERIES, out, max_new_tokens=4, batch_size=2, show_progress_bar=False)
    assert again == rows, "a finished file is returned as it is"


def test_greedy_answers_are_reproducible_and_batch_independent(tiny_backbone, tmp_path):
    a = answer_queries(tiny_backbone, QUERIES, tmp_path / "a.jsonl", max_new_tokens=5, batch_size=1, show_progress_bar=False)
    b = answer_queries(tiny_backbone, QUERIES, tmp_path / "b.jsonl", max_new_tokens=5, batch_size=4, show_progress_bar=False)
    by_id = lambda rows: {r["id"]: r["response"] for r in rows}
    assert by_id(a) == by_id(b)


def test_duplicate_ids_are_refused(tiny_backbone, tmp_path):
    with pytest.raises(ValueError, match="unique"):
        answer_queries(tiny_backbone, [("x", "a"), ("x", "b")], tmp_path / "o.jsonl", show_progress_bar=False)


def test_sampling_is_seeded(tiny_backbone, tmp_path):
    kw = dict(max_new_tokens=6, batch_size=3, sample=True, temperature=1.0, top_p=1.0, seed=3, show_progress_bar=False)
    a = answer_queries(tiny_backbone, QUERIES, tmp_path / "a.jsonl", **kw)
    b = answer_queries(tiny_backbone, QUERIES, tmp_path / "b.jsonl", **kw)
    assert [r["response"] for r in a] == [r["response"] for r in b]


def test_an_output_another_run_is_writing_is_refused_and_left_as_it_is(tiny_backbone, tmp_path):
    from genembed.atomic import writer_lock

    out = tmp_path / "answers.jsonl"
    answer_queries(tiny_backbone, QUERIES[:2], out, max_new_tokens=3, show_progress_bar=False)
    before = out.read_bytes()
    with writer_lock(tmp_path / "answers.jsonl.lock", out, "generate run"):  # a run still answering into it
        with pytest.raises(ValueError, match=r"answers.jsonl is in use by another generate run"):
            answer_queries(tiny_backbone, QUERIES, out, max_new_tokens=3, show_progress_bar=False)
    assert out.read_bytes() == before
    rows = answer_queries(tiny_backbone, QUERIES, out, max_new_tokens=3, show_progress_bar=False)  # once it ended
    assert sorted(r["id"] for r in rows) == sorted(q[0] for q in QUERIES)
