"""mteb's real evaluation (mteb.evaluate → its retrieval and STS evaluators) on tasks built here from
in-memory data, with the hub switched off: a change in mteb's encoder interface breaks this test."""
from __future__ import annotations

import pytest

mteb = pytest.importorskip("mteb")

from datasets import Dataset, DatasetDict  # noqa: E402  (installed with mteb)
from mteb.abstasks.retrieval import AbsTaskRetrieval  # noqa: E402
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData  # noqa: E402
from mteb.abstasks.sts import AbsTaskSTS  # noqa: E402

from genembed.eval.mteb_adapter import MTEBEncoder  # noqa: E402

QUERIES = ["how do I boil an egg", "what is the capital of france", "write a poem about the sea",
           "explain how a neural network learns", "summarize the following passage"]
DOCS = ["put the egg in boiling water for nine minutes", "paris is the capital of france",
        "the sea is wide and blue and deep", "it adjusts weights to reduce a loss by gradient descent",
        "generate a passage that best answers this question"]  # document i answers query i
STS_PROMPT = "Retrieve semantically similar text."
COMMON = dict(reference="https://example.com", dataset={"path": "local/none", "revision": "1"}, category="t2t",
              eval_splits=["test"], eval_langs=["eng-Latn"], date=("2026-01-01", "2026-01-01"),
              dialect=["Written"], domains=[], task_subtypes=[], license="cc-by-4.0",
              annotations_creators="derived", modalities=["text"], sample_creation="found", bibtex_citation="")


class TinyRetrieval(AbsTaskRetrieval):
    metadata = mteb.TaskMetadata(name="GenEmbedTinyRetrieval", type="Retrieval", main_score="ndcg_at_10",
                                 description="Five questions and their answers.", **COMMON)

    def load_data(self, num_proc=None, **kwargs):
        split = RetrievalSplitData(
            queries=Dataset.from_dict({"id": [f"q{i}" for i in range(5)], "text": QUERIES}),
            corpus=Dataset.from_dict({"id": [f"d{i}" for i in range(5)], "title": [""] * 5, "text": DOCS}),
            relevant_docs={f"q{i}": {f"d{i}": 1} for i in range(5)}, top_ranked=None)
        self.dataset = {"default": {"test": split}}
        self.data_loaded = True


class TinySTS(AbsTaskSTS):
    metadata = mteb.TaskMetadata(name="GenEmbedTinySTS", type="STS", main_score="cosine_spearman",
                                 description="Five pairs scored 0-5.", prompt=STS_PROMPT, **COMMON)
    min_score, max_score = 0, 5

    def load_data(self, num_proc=None, **kwargs):
        self.dataset = DatasetDict({"test": Dataset.from_dict(
            {"sentence1": QUERIES, "sentence2": DOCS[::-1], "score": [0.0, 1.0, 5.0, 3.0, 2.0]})})
        self.data_loaded = True


def test_mteb_evaluate_runs_offline(tiny_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    encoder = MTEBEncoder(tiny_model)
    assert isinstance(encoder, mteb.EncoderProtocol)
    assert encoder.mteb_model_meta.embed_dim == 32

    seen = []  # (instruction, number of texts) for every encode call mteb makes
    encode = tiny_model.encode
    monkeypatch.setattr(tiny_model, "encode", lambda texts, instruction=None, **kw: (
        seen.append((instruction, len(texts))), encode(texts, instruction=instruction, **kw))[1])

    result = mteb.evaluate(encoder, [TinyRetrieval(), TinySTS()], cache=None, co2_tracker=False,
                           show_progress_bar=False, encode_kwargs={"batch_size": 4})

    assert not result.exceptions
    scores = {r.task_name: r.scores["test"][0] for r in result.task_results}
    assert 0.0 < scores["GenEmbedTinyRetrieval"]["ndcg_at_10"] <= 1.0
    assert -1.0 <= scores["GenEmbedTinySTS"]["cosine_spearman"] <= 1.0
    assert sorted(set(seen)) == sorted({("query", 5), ("document", 5), ("Retrieve semantically similar text: ", 5)})
