"""Per-row reconstruction (losses.py): what the decoding evaluation scores a prompt by. The levers
tried for a decodable soft prompt (margin, centred recon, chat frame) lost and were removed
(lab/reports/removed-settings.md); tests/test_recipe.py checks that a checkpoint or run recording a
setting the schema does not know is refused by name."""
import pytest
import torch

from genembed.inputs import pad, prompt_ids, response_ids
from genembed.losses import reconstruction_loss


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
