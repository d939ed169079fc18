"""GPU paths. They run wherever a CUDA device exists (scripts/gpu_check.sh) and are
skipped elsewhere: this CPU machine never exercises them."""
import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_and_cuda0_share_one_backbone_copy(tiny_backbone_path):
    from genembed.backbone import load_backbone

    a = load_backbone(tiny_backbone_path, device="cuda")
    assert load_backbone(tiny_backbone_path, device=f"cuda:{torch.cuda.current_device()}") is a
    assert a.device.type == "cuda"


def test_encode_on_the_gpu_matches_the_cpu(tiny_backbone_path, tmp_path):
    from genembed import load
    from genembed.backbone import load_backbone
    from genembed.checkpoint import save_checkpoint
    from genembed.model import GenEmbed

    ckpt = save_checkpoint(GenEmbed.create(load_backbone(tiny_backbone_path, device="cpu"), 16, "self"), tmp_path / "c")
    texts = ["how do I boil an egg", "paris is the capital of france", ""]
    cpu = load(ckpt, device="cpu").encode(texts)
    gpu = load(ckpt, device="cuda").encode(texts)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)


def test_bf16_training_on_the_gpu_resumes_on_a_cpu(tiny_backbone_path, tiny_responses, tmp_path):
    """A bf16 backbone trains on the GPU; its resume state and checkpoint load on the CPU."""
    from test_train import config

    from genembed.checkpoint import load_checkpoint
    from genembed.train import train

    cfg = config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=2, save_every=1, dtype="bfloat16",
                 bf16=True)
    model = train(cfg, show_progress_bar=False)
    assert model.device.type == "cuda" and model.backbone.dtype == torch.bfloat16
    state = torch.load(tmp_path / "run" / "resume" / "trainer.pt", weights_only=False, map_location="cpu")
    assert state["step"] == 2
    on_cpu = load_checkpoint(tmp_path / "run" / "resume", device="cpu")
    assert on_cpu.device.type == "cpu" and on_cpu.encode(["an egg"]).shape == (1, 32)
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["dtype"] == "bfloat16"


def test_generate_in_bf16_on_the_gpu(tiny_backbone_path, tmp_path):
    from genembed.backbone import load_backbone
    from genembed.generate import answer_queries

    backbone = load_backbone(tiny_backbone_path, dtype="bfloat16", device="cuda")
    rows = answer_queries(backbone, [("a", "how do I boil an egg"), ("b", "write a poem")], tmp_path / "a.jsonl",
                          max_new_tokens=6, bf16=True, show_progress_bar=False)
    assert sorted(r["id"] for r in rows) == ["a", "b"]


@pytest.mark.integration  # the real backbone and teacher
def test_the_teacher_runs_on_the_training_device():
    from genembed.backbone import load_backbone
    from genembed.teachers import load_teacher

    backbone = load_backbone("smollm2-135m-instruct", device="cuda")
    teacher = load_teacher("all-minilm-l6-v2", backbone)
    assert teacher.model.device.type == "cuda"
    assert teacher.embed(["an egg"]).shape == (1, 384)
