"""A genembed model where sentence-transformers code expects a model: a real
sentence-transformers evaluator runs on it unchanged, and the encode keywords such code passes
are honoured or refused with the reason."""
import numpy as np
import pytest
import torch

from genembed.testing import CORPUS


def test_information_retrieval_evaluator_runs_unchanged(tiny_model):
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    from genembed.eval.metrics import ndcg_at_k, rank_by_cosine

    questions, answers = CORPUS[0:10:2], CORPUS[1:10:2]
    queries = {f"q{i}": q for i, q in enumerate(questions)}
    corpus = {f"d{i}": a for i, a in enumerate(answers + ["an unrelated passage about trains", "and one about tea"])}
    relevant = {f"q{i}": {f"d{i}"} for i in range(len(questions))}
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, name="tiny", show_progress_bar=False,
                                              write_csv=False)
    results = evaluator(tiny_model)
    # the same figure from genembed's own encode_query / encode_document and metrics
    q = tiny_model.encode_query(list(queries.values()))
    d = tiny_model.encode_document(list(corpus.values()))
    expected = ndcg_at_k(rank_by_cosine(q, d, 10), [[i] for i in range(len(questions))], 10)
    assert results["tiny_cosine_ndcg@10"] == pytest.approx(expected, abs=1e-6)
    assert tiny_model.model_card_data.eval_results[-1]["evaluator"] == "InformationRetrievalEvaluator"


def test_sentence_transformers_encode_keywords(tiny_model):
    texts = ["how do I boil an egg", "paris is the capital of france"]
    base = tiny_model.encode(texts)
    as_tensor = tiny_model.encode(texts, convert_to_tensor=True, normalize_embeddings=True, batch_size=1,
                                  show_progress_bar=False, truncate_dim=None, precision="float32")
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.device == tiny_model.device
    np.testing.assert_allclose(as_tensor.cpu().numpy(), base / np.linalg.norm(base, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(tiny_model.encode(texts, prompt_name="document"),
                               tiny_model.encode(texts, instruction="document"), atol=1e-6)
    np.testing.assert_allclose(tiny_model.encode_query(texts, prompt="Say it: "),
                               tiny_model.encode(texts, instruction="Say it: "), atol=1e-6)
    rows = tiny_model.encode(texts, convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 2 and isinstance(rows[0], torch.Tensor)
    scores = tiny_model.similarity(base, base)
    assert scores.shape == (2, 2) and torch.allclose(scores.diagonal(), torch.ones(2), atol=1e-5)
    assert tiny_model.get_sentence_embedding_dimension() == base.shape[1]


@pytest.mark.parametrize("kwargs, message", [
    ({"prompt_name": "passage"}, "unknown prompt_name 'passage'"),
    ({"prompt_name": "query", "prompt": "x"}, "give one of"),
    ({"truncate_dim": 4}, "not trained to be truncated"),
    ({"precision": "int8"}, "float32 embeddings only"),
    ({"output_value": "token_embeddings"}, "'sentence_embedding' only"),
    ({"device": "meta"}, "this model is on"),
    ({"convert_to_tensor": True, "output_path": "x.npy"}, "cannot be combined"),
])
def test_keywords_genembed_cannot_honour_are_refused(tiny_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_model.encode(["a text"], **kwargs)
    with pytest.raises(TypeError, match="unexpected keyword"):
        tiny_model.encode(["a text"], pool=None)


def test_max_seq_length_sets_how_far_encode_reads(tiny_model):
    long_text = " ".join(["word"] * 300)
    assert tiny_model.max_seq_length == tiny_model.config.max_text_tokens
    frame = len(tiny_model.token_rows([""])[0])  # the chat template's ids around the text (and the instruction's)
    tiny_model.max_seq_length = 32
    rows, short = tiny_model.token_rows([long_text])[0], tiny_model.encode([long_text])
    assert len(rows) - frame == 32 and tiny_model.config.max_text_tokens == 32
    tiny_model.max_seq_length = np.int64(96)  # any whole number, numpy's too
    assert len(tiny_model.token_rows([long_text])[0]) - frame == 96 and type(tiny_model.max_seq_length) is int
    assert not np.allclose(tiny_model.encode([long_text]), short, atol=1e-6)  # it reads further
    for bad in (0, -5, 12.5, "256", True, None):
        with pytest.raises(ValueError, match="max_seq_length must be a positive whole number"):
            tiny_model.max_seq_length = bad
    assert tiny_model.max_seq_length == 96  # a refused value changes nothing
