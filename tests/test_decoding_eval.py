"""The decoding task: prompt specificity, decoded-text retrieval, distinct share (eval/decoding.py)."""
import numpy as np
import pytest
import torch


class WordTeacher:
    """A deterministic stand-in for a sentence embedder: a bag of hashed words."""
    name, dim = "words", 64

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, sum(map(ord, w)) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def _task(tmp_path):
    from genembed.eval.decoding import DecodingTask

    queries = ["how do I boil an egg", "what is the capital of france", "write a poem about the sea"]
    corpus = ["put the egg in boiling water", "paris is the capital of france", "the sea is wide and blue", "unrelated"]
    task = DecodingTask("tiny decoding", queries, corpus, [[0], [1], [2]], cache_dir=tmp_path)
    task._teachers["self"] = WordTeacher()
    task._teachers["all-minilm-l6-v2"] = WordTeacher()
    return task


def test_answer_cross_entropy_ignores_left_padding(tiny_backbone):
    """A prefix padded on the left scores its answer exactly as the same prefix alone."""
    from genembed.decoders import answer_cross_entropy
    from genembed.losses import reconstruction_loss

    lm = tiny_backbone.model
    embed = lm.get_input_embeddings()
    dev = lm.device
    prefix_ids = torch.tensor([[5, 6, 7]], device=dev)
    answer = torch.tensor([[8, 9, 10, 11]], device=dev)
    ones = torch.ones_like
    alone = reconstruction_loss(lm, embed(prefix_ids), answer, ones(answer), per_row=True, prompt_mask=ones(prefix_ids))
    padded_ids = torch.tensor([[0, 0, 5, 6, 7]], device=dev)
    padded = reconstruction_loss(lm, embed(padded_ids), answer, ones(answer), per_row=True,
                                 prompt_mask=torch.tensor([[0, 0, 1, 1, 1]], device=dev))
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-5)
    # and it is the plain next-token cross-entropy of the answer after the prefix
    logits = lm(input_ids=torch.cat([prefix_ids, answer], 1)).logits[0, 2:-1]
    torch.testing.assert_close(alone[0], torch.nn.functional.cross_entropy(logits, answer[0]), atol=1e-5, rtol=1e-5)
    # the decoders' scorer pads token-id prompts on the left itself: a longer row beside changes nothing
    rows = answer_cross_entropy(tiny_backbone, [[5, 6, 7], [1, 2, 3, 4, 5]], [[8, 9, 10, 11], [8, 9]], batch_size=2)
    other = answer_cross_entropy(tiny_backbone, [[1, 2, 3, 4, 5]], [[8, 9]])
    assert rows == pytest.approx((float(alone[0]) + other) / 2, abs=1e-5)


def test_retrieval_ceiling_and_floor(tmp_path):
    from genembed.eval.decoding import _retrieval

    task = _task(tmp_path)
    right = _retrieval(task, WordTeacher(), ["egg boiling water", "paris capital france", "sea wide blue"])
    assert right["ndcg@10"] == pytest.approx(1.0) and right["ndcg@10 shuffled"] < 0.7 and right["distinct"] == 1.0
    same = _retrieval(task, WordTeacher(), ["the the", "the the", ""])
    assert same["distinct"] == pytest.approx(2 / 3)


def test_student_and_reference_rows(tiny_model, tiny_backbone, tmp_path, monkeypatch):
    from genembed.eval.decoding import score_backbone_reference, score_student

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "word-cache"))
    task = _task(tmp_path)
    row = score_student(tiny_model, task, bf16=False)
    for scores in (row, row["soft prompt"]):  # read through the word lens, and through the soft prompt
        for key in ("ce own", "ce other", "ce mean", "ndcg@10", "ndcg@10 shuffled", "distinct"):
            assert np.isfinite(scores[key]), key
        assert scores["gap other"] == pytest.approx(scores["ce other"] - scores["ce own"])
        assert scores["gap mean"] == pytest.approx(scores["ce mean"] - scores["ce own"])
    assert row["ce own"] != row["soft prompt"]["ce own"]  # two decoders, two readings
    assert len(row["examples"]) == 3 and row["examples"][0]["query"] == task.queries[0]
    assert list(tmp_path.glob("decoding-answers-*.jsonl")), "the backbone's answers are cached"
    ref = score_backbone_reference(tiny_backbone, WordTeacher(), task, bf16=False)
    assert ref["ce own"] > 0 and "ce mean" not in ref
    # the reference reads the query the answer was generated from: on its own greedy answer it is
    # at least as sure as when reading another query
    assert ref["ce own"] <= ref["ce other"] + 1e-6


def test_decoding_task_in_the_evaluation_table(tiny_model, tmp_path, monkeypatch):
    from genembed.eval import run
    from genembed.eval.methods import Student

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "word-cache"))
    task = _task(tmp_path / "cache")
    monkeypatch.setattr(run, "TASKS", {"decoding": lambda: task})
    results = run.evaluate([Student(tiny_model, "tiny")], ["decoding"], tmp_path, cost_texts=2)
    assert "gap other" in results["methods"]["tiny"]["decoding"]
    text = (tmp_path / "results.md").read_text()
    assert "decoding gap other" in text and "Decoded examples, tiny" in text and "ndcg@10 shuffled" in text
    assert "| tiny, soft prompt (the paper's decoder) |" in text and "| tiny, word lens |" not in text


def test_a_model_with_a_query_lens_is_scored_through_it_and_through_its_word_lens(tiny_model, tmp_path, monkeypatch):
    from genembed.eval import run
    from genembed.eval.decoding import score_student
    from genembed.eval.methods import Student
    from genembed.query_lens import QueryLens

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "word-cache"))
    task = _task(tmp_path / "cache")
    plain = score_student(tiny_model, task, bf16=False)
    tiny_model.query_lens = QueryLens.build(tiny_model, ["boil an egg", "a poem about the sea", "paris"])
    row = score_student(tiny_model, task, bf16=False)
    assert plain["decoder"] == "words" and row["decoder"] == "queries"
    for key in ("ce own", "ce other", "ndcg@10", "distinct"):  # the word lens row is the plain model's reading
        assert row["word lens"][key] == pytest.approx(plain[key], abs=1e-6), key
    assert row["ce own"] != plain["ce own"]
    monkeypatch.setattr(run, "TASKS", {"decoding": lambda: task})
    run.evaluate([Student(tiny_model, "tiny")], ["decoding"], tmp_path, cost_texts=2)
    text = (tmp_path / "results.md").read_text()
    assert "| tiny, word lens |" in text and "| tiny, soft prompt (the paper's decoder) |" in text


def test_scoring_a_new_task_keeps_a_rows_other_scores_and_cost(tiny_model, tmp_path, monkeypatch):
    """Adding the decoding task to an existing table must not wipe the row's earlier tasks."""
    import json

    from genembed.eval import run
    from genembed.eval.methods import Student

    earlier = {"tasks": {"qa": {"title": "qa", "instructions": {}}},
               "methods": {"tiny": {"qa": {"ndcg@10": 0.5, "recall@10": 0.6}, "seconds_per_1k": 1.0,
                                    "ms_per_query_alone": 2.0, "avg": None}}}
    (tmp_path / "results.json").write_text(json.dumps(earlier))
    task = _task(tmp_path / "cache")
    monkeypatch.setattr(run, "TASKS", {"decoding": lambda: task})
    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "word-cache"))
    row = run.evaluate([Student(tiny_model, "tiny")], ["decoding"], tmp_path, skip_cost=True)["methods"]["tiny"]
    assert row["qa"] == {"ndcg@10": 0.5, "recall@10": 0.6} and "decoding" in row
    assert row["seconds_per_1k"] == 1.0 and row["ms_per_query_alone"] == 2.0
