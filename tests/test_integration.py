"""The real backbone (SmolLM2-135M-Instruct GGUF) and teacher (all-MiniLM-L6-v2) from their
packages, end to end: generate one answer, two training steps, encode, decode, bundled default."""
import json

import numpy as np
import pytest

pytestmark = pytest.mark.integration

SMOLLM = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def backbone():
    from genembed.backbone import load_backbone

    return load_backbone(SMOLLM)


def test_backbone_is_frozen_and_shared(backbone):
    from genembed.backbone import load_backbone

    assert load_backbone(SMOLLM) is backbone
    assert backbone.hidden_size == 576 and backbone.config.num_hidden_layers == 30
    assert not backbone.model.training
    assert not any(p.requires_grad for p in backbone.model.parameters())


def test_generate_one_answer(backbone, tmp_path):
    from genembed.generate import answer_queries

    rows = answer_queries(backbone, [("q", "What is the capital of France?")], tmp_path / "a.jsonl",
                          max_new_tokens=12, show_progress_bar=False)
    assert "Paris" in rows[0]["response"]


def test_two_train_steps_then_encode_and_decode(backbone, tmp_path):
    from genembed import load
    from genembed.jsonl import read_rows
    from genembed.train import TrainConfig, train

    data = tmp_path / "responses.jsonl"
    pairs = [("What is the capital of France?", "The capital of France is Paris."),
             ("How do I boil an egg?", "Put the egg in boiling water for about nine minutes."),
             ("Write a haiku about rain.", "Soft rain on the roof, / the garden drinks in silence, / clouds drift out to sea."),
             ("What is 2 + 2?", "2 + 2 equals 4.")]
    data.write_text("".join(json.dumps({"id": str(i), "query": q, "response": r}) + "\n" for i, (q, r) in enumerate(pairs)))
    cfg = TrainConfig(responses=str(data), out_dir=str(tmp_path / "run"), steps=2, batch_size=2, warmup_steps=1,
                      ridge_examples=4, max_response_tokens=24, bf16=True, w_rec=1.0)  # both passes (the paper)
    train(cfg, show_progress_bar=False)
    log = read_rows(tmp_path / "run" / "log.jsonl")
    assert len(log) == 2 and all(np.isfinite(r["rec"]) and np.isfinite(r["align"]) for r in log)
    model = load(tmp_path / "run" / "model")
    assert model.backbone is backbone
    vectors = model.encode(["What is the capital of France?", "Paris is in France."], normalize=True)
    assert vectors.shape == (2, 384) and np.isfinite(vectors).all()
    said = model.decode("What is the capital of France?", max_new_tokens=8)
    assert isinstance(said, str)


def test_bundled_default_encodes_and_decodes():
    import genembed

    model = genembed.load()
    assert model.config.backbone == SMOLLM and model.config.teacher == "all-minilm-l6-v2"
    q = model.encode_query(["How do I boil an egg?", "What is the capital of France?"], normalize=True)
    d = model.encode_document(["Boil the egg for nine minutes, then cool it in cold water.",
                               "Paris is the capital and largest city of France."], normalize=True)
    sims = q @ d.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0], sims
    assert model.decode("How do I boil an egg?", max_new_tokens=16).strip()


def test_the_bundled_default_embeds_bit_for_bit_as_recorded(monkeypatch):
    """A change that should move no number moves none. The fixture holds the bundled
    default's float32 embeddings (scripts/default_fixture.py, rerun whenever the default is retrained)
    for both instructions, texts of every kind (empty, a special-token string, one past
    max_text_tokens), batched two ways. torch's float32 kernels round differently per CPU kind (AVX2,
    AVX512, AVX512 with AMX: by up to 3.4e-7; genembed.testing.cpu_kind), so the check is bit-exact on
    each kind that has its own file (the reference kind's, and those added by `default_fixture.py --add`)
    and within 1e-6 of the reference on the others. The batches are cut as the fixture was (full batches of the
    length-sorted rows): the same batches must give the same bits. Batches cut by cost
    (batching.plan_batches) round differently, within 1e-6 (checked after)."""
    from pathlib import Path

    import genembed
    from genembed import batching
    from genembed.atomic import file_digest
    from genembed.checkpoint import DEFAULT_CHECKPOINT
    from genembed.testing import cpu_kind

    fixtures = Path(__file__).parent / "fixtures"
    spec = json.loads((fixtures / "default-embeddings.json").read_text())
    texts = spec["texts"]
    assert file_digest(DEFAULT_CHECKPOINT / "model.safetensors") == spec["default_sha256"], \
        "the fixture was made for another bundled default: rerun scripts/default_fixture.py after retraining it"
    kind = cpu_kind()
    own = (fixtures / f"default-embeddings-{kind}.npz").exists()
    expected = np.load(fixtures / f"default-embeddings-{kind if own else spec['kind']}.npz")
    model = genembed.load()

    def both():
        return {"query": model.encode(texts, instruction="query"),
                "document": model.encode(texts, instruction="document", batch_size=2)}

    planned = both()
    with monkeypatch.context() as m:
        m.setattr(batching, "plan_batches", lambda lengths, size, cost: list(range(0, len(lengths), size)))
        got = both()
    for name, value in got.items():
        if own:
            np.testing.assert_array_equal(value, expected[name], err_msg=f"{name}, CPU kind {kind}")
        else:
            np.testing.assert_allclose(value, expected[name], rtol=0, atol=1e-6, err_msg=f"{name}, CPU kind {kind}")
        np.testing.assert_allclose(planned[name], expected[name], rtol=0, atol=1e-6, err_msg=f"{name}, planned batches")


def test_the_gguf_is_dequantised_once_and_the_cache_reads_back_the_same_model(tmp_path, monkeypatch):
    """The first load converts the GGUF into a safetensors folder keyed by its SHA-256;
    a later load reads that folder (no conversion) and gets the very weights and tokenizer."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genembed.backbone import ALIASES, gguf_cache, gguf_digest
    from genembed.data import package_file

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "cache"))
    gguf = package_file(*ALIASES[SMOLLM])
    folder = gguf_cache(gguf)
    assert folder.endswith(gguf_digest(gguf)) and not list((tmp_path / "cache" / "backbones").glob(".*"))
    real = transformers.AutoModelForCausalLM.from_pretrained

    def no_conversion(*a, **k):
        assert "gguf_file" not in k, "converted again"
        return real(*a, **k)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_conversion)
    assert gguf_cache(gguf) == folder
    monkeypatch.undo()
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    cached = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    a, b = direct.state_dict(), cached.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    tok_direct, tok_cached = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name), AutoTokenizer.from_pretrained(folder)
    texts = ["How do I boil an egg?", "naïve café <|im_end|> 東京 \t\n  x", ""]
    assert tok_direct(texts)["input_ids"] == tok_cached(texts)["input_ids"]
    chat = [{"role": "user", "content": "hi"}]
    assert tok_direct.apply_chat_template(chat, tokenize=False) == tok_cached.apply_chat_template(chat, tokenize=False)


def test_hnsw_recall_against_exact_search_on_real_answers():
    """On a real corpus: the held-out ShareGPT answers and queries (MiniLM vectors,
    cheap to compute here); the approximate index finds the exact top 10 almost always."""
    from genembed.eval.datasets import sharegpt_qa
    from genembed.index import make_faiss_index
    from genembed.teachers import load_teacher

    task = sharegpt_qa()
    teacher = load_teacher("all-minilm-l6-v2")
    corpus, queries = teacher.embed(task.corpus), teacher.embed(task.queries)
    k = 10
    _, exact = make_faiss_index(corpus, "flat").search(queries, k)
    _, approx = make_faiss_index(corpus, "hnsw").search(queries, k)
    recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)])
    assert len(task.corpus) > 1000 and recall >= 0.98, recall


def test_bundled_self_supervised_checkpoint_opens_by_name_and_ranks():
    """The second bundled checkpoint (scripts/train_self_supervised.sh): its teacher is the LLM2Vec teacher
    bundled beside it (the backbone made bidirectional, MNTP- and SimCSE-trained), so its embeddings have the
    backbone's width; it opens by name and ranks an answer first."""
    import genembed

    model = genembed.load("self-supervised")
    assert model.config.backbone == SMOLLM and model.config.teacher == "smollm2-135m-llm2vec"
    q = model.encode_query(["How do I boil an egg?", "What is the capital of France?"], normalize=True)
    d = model.encode_document(["Boil the egg for nine minutes, then cool it in cold water.",
                               "Paris is the capital and largest city of France."], normalize=True)
    assert q.shape == (2, 576)
    sims = q @ d.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0], sims
