import numpy as np
import pytest
import torch

from genembed.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from genembed.generate import greedy_from_embeddings


def test_encode_shapes_and_dtype(tiny_model):
    out = tiny_model.encode(["how do I boil an egg", "paris", "write a poem about the sea"])
    assert out.shape == (3, 32) and out.dtype == np.float32
    single = tiny_model.encode("paris")
    assert single.shape == (32,)
    np.testing.assert_allclose(single, out[1], atol=1e-5)
    unit = tiny_model.encode(["paris", "the sea"], normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)


def test_left_padding_does_not_change_an_embedding(tiny_model):
    short = "paris"
    alone = tiny_model.encode([short], batch_size=1)
    with_long = tiny_model.encode([short, "explain how a neural network learns " * 5], batch_size=2)
    np.testing.assert_allclose(alone[0], with_long[0], atol=1e-5)


def test_batch_order_is_restored(tiny_model):
    texts = ["a", "explain how a neural network learns", "paris is", "the sea is wide and blue"]
    together = tiny_model.encode(texts, batch_size=2)
    one_by_one = np.stack([tiny_model.encode(t) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_special_tokens_survive_truncation(tiny_model):
    tiny_model.config.max_text_tokens = 4
    long = "the sea is wide and blue and deep " * 40
    ids, mask = tiny_model.tokenize([long, "paris"])
    states = tiny_model.compression_states(ids, mask)
    assert states.shape == (2, tiny_model.config.num_compression_tokens, tiny_model.config.hidden_size)
    # the text was cut: two long texts that differ only after the cut embed identically
    a, b = tiny_model.encode([long, long + " and then something else entirely"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_instruction_changes_the_embedding(tiny_model):
    q = tiny_model.encode("paris", instruction="query")
    d = tiny_model.encode("paris", instruction="document")
    none = tiny_model.encode("paris", instruction="")
    assert not np.allclose(q, d) and not np.allclose(q, none)
    np.testing.assert_allclose(tiny_model.encode("paris"), q, atol=1e-6)  # default is "query"


def test_empty_and_bad_inputs_fail_clearly(tiny_model):
    with pytest.raises(ValueError, match="empty list"):
        tiny_model.encode([])
    with pytest.raises(TypeError, match="expects strings"):
        tiny_model.encode(["ok", 3])
    with pytest.raises(TypeError):
        tiny_model.encode(["ok"], pooling="mean")  # unknown keyword


def test_only_trained_tensors_are_parameters(tiny_model):
    names = {n for n, _ in tiny_model.named_parameters()}
    assert names == {"special_tokens", "recon.weight", "recon.bias", "align.weight", "align.bias"}
    assert not any(p.requires_grad for p in tiny_model.backbone.model.parameters())


def test_save_load_gives_identical_embeddings(tiny_model, tmp_path):
    with torch.no_grad():
        tiny_model.special_tokens.add_(0.3)  # not the initial state
    texts = ["how do I boil an egg", "paris"]
    before = tiny_model.encode(texts)
    save_checkpoint(tiny_model, tmp_path / "ckpt")
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["config.json", "model.safetensors"]
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.backbone is tiny_model.backbone, "the backbone is loaded once and shared"
    np.testing.assert_array_equal(before, loaded.encode(texts))


def test_wrong_backbone_and_corrupt_checkpoint_fail_clearly(tiny_model, other_backbone_path, tmp_path):
    folder = save_checkpoint(tiny_model, tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(folder, backbone=other_backbone_path)
    (folder / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nowhere")


def test_kv_cached_decode_equals_uncached(tiny_model):
    with torch.no_grad():
        tiny_model.special_tokens.normal_(0, 1.0)  # something to say
    ids, mask = tiny_model.tokenize(["how do I boil an egg", "paris", "write a poem"])
    soft_prompt, _ = tiny_model(ids, mask)
    cached = greedy_from_embeddings(tiny_model.backbone, soft_prompt, max_new_tokens=12, use_cache=True)
    uncached = greedy_from_embeddings(tiny_model.backbone, soft_prompt, max_new_tokens=12, use_cache=False)
    assert cached == uncached
    assert any(len(row) > 0 for row in cached)
    texts = tiny_model.decode(["how do I boil an egg", "paris"], max_new_tokens=5)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_prefix_cache_path_matches_the_full_pass(tiny_model):
    """Training runs the frozen text prefix once without autograd (KV cache) and only the special
    tokens with gradients; states and gradients must equal those of one plain pass."""
    with torch.no_grad():
        tiny_model.special_tokens.normal_(0, 0.5)
    ids, mask = tiny_model.tokenize(["how do I boil an egg", "paris", "explain how a neural network learns"])
    results = []
    direction = torch.randn(3, tiny_model.config.num_compression_tokens, tiny_model.config.hidden_size,
                            generator=torch.Generator().manual_seed(0)).to(tiny_model.device)
    for split in (False, True):
        tiny_model.zero_grad()
        states = tiny_model.compression_states(ids, mask, split_prefix=split)
        (states * direction).sum().backward()  # (not a norm: the final RMSNorm makes that flat)
        results.append((states.detach(), tiny_model.special_tokens.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    plain, split = results[0][1], results[1][1]
    assert plain.norm() > 0 and (plain - split).norm() / plain.norm() < 1e-5


def test_encode_streams_into_a_npy_file(tiny_model, tmp_path):
    texts = ["a", "explain how a neural network learns", "paris is", "the sea is wide and blue", "x y z"]
    path = tmp_path / "deep" / "vectors.npy"
    path.parent.mkdir()
    path.write_bytes(b"older results")
    streamed = tiny_model.encode(texts, batch_size=2, output_path=path)
    np.testing.assert_allclose(np.load(path), tiny_model.encode(texts, batch_size=2), atol=1e-6)
    np.testing.assert_allclose(np.asarray(streamed), np.load(path))
    assert not (tmp_path / "deep" / "vectors.npy.partial").exists()


def test_a_failed_streamed_encode_keeps_the_older_file(tiny_model, tmp_path):
    path = tmp_path / "vectors.npy"
    np.save(path, np.ones((2, 16), dtype=np.float32))
    with pytest.raises(TypeError):
        tiny_model.encode(["fine", 3], output_path=path)
    np.testing.assert_array_equal(np.load(path), np.ones((2, 16), dtype=np.float32))
    assert not (tmp_path / "vectors.npy.partial").exists()


def test_response_only_cross_entropy_equals_the_full_vocabulary_loss(tiny_model):
    """The reconstruction loss runs the LM head on response positions only; it must equal the
    library's own loss over full logits with the soft prompt and padding masked out (labels=-100)."""
    from genembed.losses import reconstruction_loss

    lm = tiny_model.backbone.model
    torch.manual_seed(0)
    soft = torch.randn(2, tiny_model.config.num_compression_tokens, tiny_model.config.hidden_size).to(lm.device)
    resp = torch.randint(5, lm.config.vocab_size, (2, 7)).to(lm.device)
    resp_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3], device=lm.device)
    ours = reconstruction_loss(lm, soft, resp, resp_mask)
    n = soft.shape[1]
    inputs = torch.cat([soft, lm.get_input_embeddings()(resp)], dim=1)
    mask = torch.cat([torch.ones(2, n, dtype=resp_mask.dtype, device=lm.device), resp_mask], dim=1)
    labels = torch.cat([torch.full((2, n), -100, device=lm.device), resp.masked_fill(resp_mask == 0, -100)], dim=1)
    reference = lm(inputs_embeds=inputs, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_bf16_encode_stays_within_the_stated_tolerance_of_float32(tiny_model):
    """bf16 autocast is the fast CPU path (benchmarks/); its embeddings must stay within 1e-2
    cosine distance of the plain float32 ones, as encode()'s docstring states."""
    with torch.no_grad():
        tiny_model.special_tokens.normal_(0, 0.5)
    texts = ["how do I boil an egg", "paris", "explain how a neural network learns " * 3]
    fp32 = tiny_model.encode(texts, normalize=True)
    bf16 = tiny_model.encode(texts, normalize=True, bf16=True)
    assert not np.array_equal(fp32, bf16)  # autocast really ran
    assert (fp32 * bf16).sum(1).min() > 1 - 1e-2


@pytest.mark.parametrize("grad", [False, True])
def test_shared_head_cache_matches_the_plain_pass(tiny_model, grad):
    """The prompt head every input shares (template + instruction) runs once and its keys/values
    are reused: states, embeddings and gradients must equal those of the plain pass."""
    with torch.no_grad():
        tiny_model.special_tokens.normal_(0, 0.5)
    texts = ["how do I boil an egg", "paris", "explain how a neural network learns " * 3]
    ids, mask = tiny_model.tokenize(texts, instruction="generate a passage that best answers this question")
    results = []
    for enabled in (False, True):
        tiny_model.prefix_cache.enabled = enabled
        tiny_model.prefix_cache.clear()
        tiny_model.zero_grad()
        with torch.set_grad_enabled(grad):
            states = tiny_model.compression_states(ids, mask)
        if grad:
            states.sum().backward()
        results.append((states.detach(), None if not grad else tiny_model.special_tokens.grad.clone()))
    tiny_model.prefix_cache.enabled = True
    assert len(tiny_model.prefix_cache.entries) == 1
    head = next(iter(tiny_model.prefix_cache.entries))[0]
    assert len(head) >= 10  # the template's opening and the instruction
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    if grad:
        torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-4, atol=1e-5)  # (GPU sums differ at 2e-6)


def test_shared_head_is_reused_across_calls_and_single_texts(tiny_model):
    tiny_model.prefix_cache.clear()
    texts = ["how do I boil an egg", "paris", "write a poem about the sea", "the sea"]
    batched = tiny_model.encode(texts, batch_size=2)
    assert len(tiny_model.prefix_cache.entries) == 1
    single = tiny_model.encode(texts[1])  # a batch of one finds the kept head
    np.testing.assert_allclose(single, batched[1], atol=1e-5)
    tiny_model.prefix_cache.enabled = False
    np.testing.assert_allclose(tiny_model.encode(texts, batch_size=2), batched, atol=1e-5)
    tiny_model.prefix_cache.enabled = True
    tiny_model.encode(texts, batch_size=4, bf16=True)
    assert len(tiny_model.prefix_cache.entries) == 2  # kept per precision


def test_special_tokens_start_at_the_mean_token_embedding(tiny_backbone):
    from genembed.model import GenEmbed

    table = tiny_backbone.model.get_input_embeddings().weight.detach().float()
    m = GenEmbed.create(tiny_backbone, embedding_dim=8, teacher="self", num_thought_tokens=3, num_compression_tokens=4)
    noise = 0.1 * table.std(0).mean()  # the noise create() adds so the tokens differ
    gap = (m.special_tokens.detach() - table.mean(0)).norm(dim=-1) / noise / table.shape[1] ** 0.5
    assert gap.max() < 2.5 and len(set(m.special_tokens.sum(1).tolist())) == 7
    torch.testing.assert_close(m.recon.weight, torch.eye(table.shape[1]))


def test_bundled_names_open_their_folders_and_a_missing_one_names_its_script(tiny_model, tmp_path, monkeypatch):
    """genembed.load("self-supervised") opens the second bundled checkpoint as load() opens the default;
    an installation without it says which script builds it (rather than looking for a folder or hub id)."""
    from genembed import checkpoint
    from genembed.loading import load_model, resolve

    folder = tmp_path / "self-supervised"
    monkeypatch.setitem(checkpoint.BUNDLED, "self-supervised", (folder, "scripts/train_self_supervised.sh"))
    with pytest.raises(CheckpointError, match="train_self_supervised.sh"):
        resolve("self-supervised")
    save_checkpoint(tiny_model, folder)
    assert resolve("self-supervised") == folder and checkpoint.bundled_name(folder) == "self-supervised"
    assert resolve(None) == resolve("default") == checkpoint.DEFAULT_CHECKPOINT
    assert checkpoint.bundled_name(tmp_path) is None
    loaded = load_model("self-supervised", backbone=tiny_model.backbone)
    np.testing.assert_allclose(loaded.encode(["paris"]), tiny_model.encode(["paris"]), atol=1e-6)
