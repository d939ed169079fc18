"""The model of each phase and one optimiser step's gradients, from the step number alone.

Both phases put a LoRA (peft) on the bare transformer under bidirectional attention, as the original
code does (the MNTP adapter is over the transformer of the causal LM, its head frozen; the SimCSE one
over the transformer with the MNTP adapter merged in). A step's batch, its masking and its dropout are
functions of (seed, phase, step), so a resumed phase computes what an uninterrupted one computes.
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import torch

from ..backbone import _quiet_loading
from ..bidirectional import check_family, make_bidirectional, padding_mask
from ..inputs import pad
from .config import TeacherBuildConfig
from .layout import base_reference, base_side_files, write_adapter
from .objectives import IGNORE, mask_token_id, mask_tokens, mean_pool_last, mntp_loss, simcse_loss
from .texts import check_texts, mntp_blocks, simcse_rows

# LoRA on every projection of every layer (the original's modules for Llama, Mistral, Gemma and Qwen2; Qwen3 names
# them alike)
LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def step_seed(seed: int, phase: str, step: int) -> int:
    """The seed of one step's masking and dropout."""
    return int(np.random.SeedSequence([seed, {"mntp": 1, "simcse": 2}[phase], step]).generate_state(1)[0])


def example_order(n: int, seed: int, position: int) -> int:
    """The index at a position of an endless stream of seeded permutations of n (genembed.train's order,
    without importing the student's trainer)."""
    epoch, offset = divmod(position, n)
    return int(np.random.default_rng(seed + epoch).permutation(n)[offset])


def lora_config(cfg: TeacherBuildConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(LORA_MODULES), bias="none", task_type=None)


def load_model(where: str, cfg: TeacherBuildConfig, causal: bool):
    """(the model at `where`, sdpa attention, weights frozen; its tokenizer): the causal LM or the bare
    transformer. BidirectionalError (before any weight loads) for a family without bidirectional attention."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    check_family(AutoConfig.from_pretrained(where), f"backbone {cfg.backbone}")
    with _quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(where)
        model = (AutoModelForCausalLM if causal else AutoModel).from_pretrained(
            where, dtype=getattr(torch, cfg.dtype), attn_implementation="sdpa")
    model.requires_grad_(False)
    return model, tokenizer


@contextlib.contextmanager
def quiet_peft():
    """peft reads transformers' deprecated `is_gradient_checkpointing` when it wraps a model (a FutureWarning
    about their versions, nothing about this build); and transformers' bars stay off while peft saves."""
    with warnings.catch_warnings(), _quiet_loading():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def bidirectional_states(encoder, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Last hidden states of the (PEFT-wrapped) bidirectional transformer: every token sees every
    non-padding token of its row."""
    dtype = next(p for p in encoder.parameters() if not p.requires_grad).dtype
    out = encoder(input_ids=ids, attention_mask=padding_mask(mask, dtype), use_cache=False)
    return out.last_hidden_state


class Phase:
    """What both phases share: the PEFT encoder, its trainable tensors, the autocast."""

    name = ""

    def __init__(self, cfg: TeacherBuildConfig, model, tokenizer):
        from peft import get_peft_model

        self.cfg, self.tokenizer = cfg, tokenizer
        make_bidirectional(model, f"backbone {cfg.backbone}")
        torch.manual_seed(cfg.seed)  # the LoRA A matrices' initialisation
        with quiet_peft():
            self.encoder = get_peft_model(model, lora_config(cfg))
        if cfg.gradient_checkpointing:
            self.encoder.base_model.model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
        self.encoder.train()
        self.trainable = [p for p in self.encoder.parameters() if p.requires_grad]
        self.device = next(self.encoder.parameters()).device

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16)


class MNTPPhase(Phase):
    """Masked next-token prediction over packed blocks of the texts (texts.mntp_blocks)."""

    name = "mntp"

    def __init__(self, cfg: TeacherBuildConfig, texts: list[str], where: str):
        model, tokenizer = load_model(where, cfg, causal=True)
        self.where, self.head = where, model.get_output_embeddings()
        super().__init__(cfg, model.base_model, tokenizer)
        self.blocks = mntp_blocks(tokenizer, texts, cfg.mntp_max_length) if cfg.mntp_steps else None
        if self.blocks is not None:
            self.special = torch.isin(self.blocks, torch.tensor(sorted(set(tokenizer.all_special_ids))))
        self.mask_id = mask_token_id(tokenizer)
        self.vocab_size = min(len(tokenizer), self.head.weight.shape[0])

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) of a step: its blocks in the seeded order, masked."""
        size = self.cfg.mntp_batch_size
        idx = [example_order(len(self.blocks), self.cfg.seed, step * size + k) for k in range(size)]
        generator = torch.Generator().manual_seed(step_seed(self.cfg.seed, self.name, step))
        return mask_tokens(self.blocks[idx], self.special[idx], self.cfg.mask_rate, self.mask_id, self.vocab_size,
                           generator)

    def step(self, step: int) -> dict:
        """Back-propagate one step's loss; its loss and masked-token accuracy."""
        inputs, labels = self.batch(step)
        torch.manual_seed(step_seed(self.cfg.seed, self.name, step))  # the LoRA dropout
        total = max(1, int((labels[:, 1:] != IGNORE).sum()))
        micro = self.cfg.mntp_micro_batch or len(inputs)
        loss_sum, right = 0.0, 0
        for start in range(0, len(inputs), micro):
            ids = inputs[start:start + micro].to(self.device)
            with self.autocast():
                hidden = bidirectional_states(self.encoder, ids, torch.ones_like(ids))
                loss, _, n_right = mntp_loss(hidden, labels[start:start + micro].to(self.device), self.head, total)
            loss.backward()
            loss_sum, right = loss_sum + loss.item(), right + n_right
        return {"loss": loss_sum, "accuracy": right / total, "masked": total}

    def write(self, folder: Path) -> None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix=".base-files-") as tmp, quiet_peft():
            write_adapter(folder, self.encoder, base_reference(self.cfg.backbone, self.where), beside=base_side_files(self.where, Path(tmp)))


class SimCSEPhase(Phase):
    """Unsupervised SimCSE over the MNTP-merged model, attention dropout on."""

    name = "simcse"

    def __init__(self, cfg: TeacherBuildConfig, texts: list[str], where: str, mntp_folder: Path):
        from peft import PeftModel

        model, tokenizer = load_model(where, cfg, causal=False)
        with quiet_peft():
            model = PeftModel.from_pretrained(model, str(mntp_folder)).merge_and_unload()
        model.requires_grad_(False)
        for module in model.modules():  # the noise of the two views (read by the attention only in training)
            if hasattr(module, "attention_dropout") and hasattr(module, "o_proj"):
                module.attention_dropout = cfg.simcse_dropout
        super().__init__(cfg, model, tokenizer)
        check_texts(cfg, tokenizer, texts)
        self.rows, self.own = simcse_rows(tokenizer, texts, cfg.simcse_max_length)
        # llm2vec pads with EOS, on the left
        self.pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id

    def batch_indices(self, step: int) -> list[int]:
        """A step's texts: epoch after epoch of seeded permutations, cut into whole batches (no text twice in a
        batch: it would be its own negative)."""
        size, n = self.cfg.simcse_batch_size, len(self.rows)
        per_epoch = n // size
        epoch, offset = divmod(step, per_epoch)
        return np.random.default_rng(self.cfg.seed + epoch).permutation(n)[offset * size:(offset + 1) * size].tolist()

    def step(self, step: int) -> dict:
        idx = self.batch_indices(step)
        torch.manual_seed(step_seed(self.cfg.seed, self.name, step))  # the two views' dropout
        ids, mask = pad([self.rows[i] for i in idx], self.pad_id, side="left")
        own = torch.tensor([self.own[i] for i in idx])
        ids, mask, own = torch.cat([ids, ids]).to(self.device), torch.cat([mask, mask]).to(self.device), torch.cat([own, own])
        with self.autocast():
            pooled = mean_pool_last(bidirectional_states(self.encoder, ids, mask), own)
        loss = simcse_loss(pooled[:len(idx)], pooled[len(idx):], self.cfg.temperature)
        loss.backward()
        return {"loss": loss.item()}

    def write(self, folder: Path) -> None:
        with quiet_peft():
            write_adapter(folder, self.encoder, "../mntp")  # (read beside it: the folder this adapter goes on)
