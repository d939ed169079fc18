"""The levers for a decodable soft prompt: per-row reconstruction, the margin against another
row's prompt, and the centred recon form (losses.py, model.py, train.py)."""
import pytest
import torch

from genembed.inputs import pad, prompt_ids, response_ids
from genembed.jsonl import read_rows
from genembed.losses import margin_loss, reconstruction_loss

from test_train import config


def _batch(model):
    tok = model.backbone.tokenizer
    q = prompt_ids(tok, ["how do I boil an egg", "paris", "write a poem"], "", 32)
    r = response_ids(tok, ["put the egg in boiling water", "paris is the capital of france", "the sea"], 16)
    return q, r


@pytest.mark.parametrize("checkpointing", [False, True])
def test_per_row_reconstruction_matches_each_row_alone(tiny_model, checkpointing, monkeypatch):
    import genembed.losses as losses

    monkeypatch.setattr(losses, "CE_CHUNK", 5)
    lm = tiny_model.backbone.model
    q, r = _batch(tiny_model)
    dev = lm.device
    prompt = torch.randn(3, 3, tiny_model.config.hidden_size).to(dev)
    r_ids, r_mask = (t.to(dev) for t in pad(r, tiny_model.backbone.tokenizer.pad_token_id, side="right"))
    rows = reconstruction_loss(lm, prompt, r_ids, r_mask, checkpointing, per_row=True)
    alone = torch.stack([reconstruction_loss(lm, prompt[i:i + 1], torch.tensor([r[i]], device=dev),
                                             torch.ones(1, len(r[i]), dtype=torch.long, device=dev))
                         for i in range(3)])
    torch.testing.assert_close(rows, alone, rtol=1e-5, atol=1e-5)
    tokens = r_mask.sum(1).float()  # weighted by length, the rows give the plain mean over tokens
    torch.testing.assert_close((rows * tokens).sum() / tokens.sum(),
                               reconstruction_loss(lm, prompt, r_ids, r_mask), rtol=1e-5, atol=1e-6)


def test_margin_loss():
    own, other = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 2.1])
    assert margin_loss(own, other, 0.5).item() == pytest.approx((0 + 0.4) / 2)
    assert margin_loss(own, other, 0.0).item() == 0


def test_margin_term_trains_and_logs_the_other_prompt(tiny_backbone_path, tiny_responses, tmp_path):
    from genembed.train import train

    train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=3, w_margin=1.0), show_progress_bar=False)
    log = read_rows(tmp_path / "run" / "log.jsonl")
    assert all(row["rec_other"] is not None and row["rec"] is not None for row in log)
    train(config(tiny_backbone_path, tiny_responses, tmp_path / "plain", steps=1), show_progress_bar=False)
    assert read_rows(tmp_path / "plain" / "log.jsonl")[0]["rec_other"] is None  # no second pass without it


def test_centered_recon_removes_the_shared_state_and_round_trips(tiny_backbone_path, tiny_responses, tmp_path):
    import genembed
    from genembed.train import train

    model = train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=2, recon_form="centered"),
                  show_progress_bar=False)
    assert model.config.recon_form == "centered" and model.state_scale.item() > 0
    q, _ = _batch(model)
    ids, mask = pad(q, model.backbone.tokenizer.pad_token_id, side="left")
    with torch.no_grad():
        states = model.compression_states(ids, mask, split_prefix=False)
        soft, emb = model(ids, mask)
        expected = model.prompt_base + model.recon((states - model.state_mean) / model.state_scale)
    torch.testing.assert_close(soft, expected)
    assert torch.count_nonzero(model.state_mean) > 0, "the mean state was fitted from data"
    loaded = genembed.load(tmp_path / "run" / "model")
    assert loaded.config.recon_form == "centered"
    torch.testing.assert_close(loaded.state_mean, model.state_mean)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, mask)[1], emb)


def test_centered_recon_starts_at_the_token_embeddings_scale(tiny_backbone):
    from genembed.model import GenEmbed
    from genembed.train import fit_state_statistics, initial_states

    model = GenEmbed.create(tiny_backbone, embedding_dim=32, teacher="self", recon_form="centered",
                            num_compression_tokens=3)
    q, _ = _batch(model)
    fit_state_statistics(model, initial_states(model, q))
    ids, mask = pad(q, model.backbone.tokenizer.pad_token_id, side="left")
    with torch.no_grad():
        soft, _ = model(ids, mask)
    table_norm = tiny_backbone.model.get_input_embeddings().weight.float().norm(dim=-1).mean()
    deviation = (soft - soft.mean(0)).norm(dim=-1).mean()
    assert 0.3 < deviation / table_norm < 3  # inputs differ at the scale the LLM reads tokens at
    with pytest.raises(ValueError, match="recon_form"):
        GenEmbed.create(tiny_backbone, embedding_dim=32, teacher="self", recon_form="mlp")


def test_chat_frame_puts_the_soft_prompt_in_the_user_turn(tiny_backbone, tiny_backbone_path, tiny_responses, tmp_path):
    from genembed.inputs import chat_wrapping
    from genembed.model import GenEmbed
    from genembed.train import train

    model = GenEmbed.create(tiny_backbone, embedding_dim=32, teacher="self", prompt_frame="chat",
                            num_compression_tokens=3)
    before, after = chat_wrapping(tiny_backbone.tokenizer)
    soft = torch.randn(2, 3, model.config.hidden_size).to(model.device)
    framed = model.decoder_input(soft)
    embed = tiny_backbone.model.get_input_embeddings()
    assert framed.shape[1] == len(before) + 3 + len(after)
    torch.testing.assert_close(framed[1, len(before):len(before) + 3], soft[1])
    torch.testing.assert_close(framed[0, :len(before)], embed(torch.tensor(before, device=model.device)))
    plain = GenEmbed.create(tiny_backbone, embedding_dim=32, teacher="self", num_compression_tokens=3)
    assert plain.decoder_input(soft) is soft  # the paper's layout: the soft prompt alone
    # decoding reads the same frame as training: the greedy text equals generation from the framed prompt
    lm = tiny_backbone.model
    with torch.no_grad():
        tokens = model.generate_from_soft_prompt(soft[:1], max_new_tokens=3, use_cache=False)[0]
        first = lm(inputs_embeds=framed[:1]).logits[0, -1].argmax().item()
    assert tokens[0] == first
    trained = train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=1, prompt_frame="chat"),
                    show_progress_bar=False)
    assert trained.config.prompt_frame == "chat"
    with pytest.raises(ValueError, match="prompt_frame"):
        GenEmbed.create(tiny_backbone, embedding_dim=32, teacher="self", prompt_frame="system")
