"""The trainable part of LLM2Vec-Gen, around a frozen backbone that it never changes.

    input ids ──embed──► [text embeddings][T thought][C compression] ──frozen LLM──► last-layer states
    compression states ──recon──► soft prompt (C vectors in the LLM's input space)
    soft prompt ──align──► mean over C ──► the embedding

Trainable: the T + C token embeddings, `recon` (hidden → hidden) and `align` (hidden → dim).
The backbone is held by reference (not a submodule), so `state_dict()` holds only what trains.
Reading an embedding back as text is decoders.py's; looking into one is inspection.py's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import batching
from .arrays import NpyWriter
from .backbone import Backbone, cache_keyword
from .errors import InputError, InputTypeError
from .inputs import encoder_ids, pad, positions
from .prefix_cache import SharedPrefixCache, drop_head
from .st_compat import SentenceTransformerAPI, check_st_options, st_instruction, st_output

# The paper's instruction style: a query asks for its answer, a document for its summary.
DEFAULT_INSTRUCTIONS = {
    "query": "Generate a passage that best answers this question: ",
    "document": "Summarize the following passage: ",
}


@dataclass
class GenEmbedConfig:
    backbone: str = "smollm2-135m-instruct"  # alias, .gguf path, folder or hub id
    backbone_signature: dict = field(default_factory=dict)  # model_type / sizes, checked on load
    hidden_size: int = 576  # the backbone's hidden size
    embedding_dim: int = 384  # the teacher's dimension = the embedding's
    teacher: str = "all-minilm-l6-v2"  # what the alignment targets came from
    num_thought_tokens: int = 0  # T: scratch tokens whose states are discarded (the paper: 10)
    num_compression_tokens: int = 10  # C: their states become the soft prompt
    max_text_tokens: int = 256  # input texts are cut to this many tokens
    instructions: dict = field(default_factory=lambda: dict(DEFAULT_INSTRUCTIONS))
    default_instruction: str = "query"  # the instruction name encode() uses when given none
    input_layout: str = "chat"  # how a text becomes ids (inputs.py): "chat" (genembed's), "official" (llm2vec-gen's)
    decoder: str | None = None  # decode()'s default decoder (decoders.py); None: the query lens, else the words

    def to_dict(self) -> dict:
        return asdict(self)


class GenEmbed(SentenceTransformerAPI, nn.Module):
    def __init__(self, config: GenEmbedConfig, backbone: Backbone):
        super().__init__()
        if config.num_compression_tokens < 1 or config.num_thought_tokens < 0:
            raise ValueError("need at least 1 compression token and a non-negative number of thought tokens")
        if backbone.hidden_size != config.hidden_size:
            raise ValueError(f"config hidden_size {config.hidden_size} != backbone's {backbone.hidden_size}")
        self.config = config
        object.__setattr__(self, "backbone", backbone)  # a reference, never a submodule
        self.prefix_cache = SharedPrefixCache()  # keys/values of the prompt head all inputs share
        self.query_lens = None  # the checkpoint's bank of training queries, if it has one (query_lens.py)
        self.backend, self.runtime = "torch", None  # how inference runs (backends.py): set_backend
        self.num_threads = None  # torch threads for decoding (backends.threads); None: follow the free cores
        self.special_tokens = nn.Parameter(torch.zeros(config.num_thought_tokens + config.num_compression_tokens,
                                                       config.hidden_size))
        self.recon = nn.Linear(config.hidden_size, config.hidden_size)
        self.align = nn.Linear(config.hidden_size, config.embedding_dim)
        self.to(backbone.device)

    @classmethod
    def create(cls, backbone: Backbone, embedding_dim: int, teacher: str, seed: int = 0, **overrides) -> "GenEmbed":
        """A freshly initialised student: special tokens at the mean token embedding plus a little noise
        (so they differ), `recon` = identity (the states pass through unchanged), `align` random."""
        config = GenEmbedConfig(backbone=backbone.name, backbone_signature=backbone.signature(),
                                hidden_size=backbone.hidden_size, embedding_dim=embedding_dim,
                                teacher=teacher, **overrides)
        model = cls(config, backbone)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            table = backbone.model.get_input_embeddings().weight.float().cpu()
            noise = torch.randn(model.special_tokens.shape, generator=gen) * 0.1 * table.std(0).mean()
            model.special_tokens.copy_(table.mean(0) + noise)
            model.recon.weight.copy_(torch.eye(config.hidden_size))
            model.recon.bias.zero_()
            bound = config.hidden_size ** -0.5
            model.align.weight.copy_(torch.rand(model.align.weight.shape, generator=gen) * 2 * bound - bound)
            model.align.bias.zero_()
        return model

    @property
    def device(self) -> torch.device:
        return self.special_tokens.device

    def set_backend(self, name: str) -> "GenEmbed":
        """Run inference on backend `name`: "torch" (the default), "onnx" or "openvino" (backends.py). Training and
        anything with gradients always runs in torch."""
        from .backends import attach

        attach(self, name)
        self.prefix_cache.clear()  # a head computed by the other backend
        return self

    # -- the forward pass ----------------------------------------------------------------
    def token_rows(self, texts: list[str], instruction: str = "") -> list[list[int]]:
        """The ids of each text's input in the checkpoint's layout (inputs.py), the special tokens not yet appended."""
        c = self.config
        return encoder_ids(self.backbone.tokenizer, texts, instruction, c.max_text_tokens, c.input_layout,
                           c.num_thought_tokens + c.num_compression_tokens)

    def tokenize(self, texts: list[str], instruction: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, mask), left-padded."""
        return pad(self.token_rows(texts, instruction), self.backbone.tokenizer.pad_token_id, side="left")

    def compression_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                           split_prefix: bool | None = None) -> torch.Tensor:
        """Last-layer states [B, C, hidden] of the compression tokens appended to left-padded ids.

        split_prefix (default: when gradients are on): the text, which precedes the special tokens,
        runs once without autograd into a KV cache and only the T + C special positions run with
        gradients (same result: causal attention). The head all rows share comes from the prefix cache.
        """
        split = torch.is_grad_enabled() if split_prefix is None else split_prefix
        base = self.backbone.model.base_model
        cache_kw = cache_keyword(base)
        on_runtime = self.runtime is not None and not torch.is_grad_enabled()
        if on_runtime:
            base = self.runtime.base  # the same call, run by another engine (backends.py)
        ids, text_mask = input_ids.to(self.device), attention_mask.to(self.device)
        head, head_kv = self.prefix_cache.find(base, ids, text_mask, cache_kw)
        if head:  # the shared head is in head_kv; only the rest of each row runs
            ids, text_mask = drop_head(ids, text_mask, head, self.backbone.tokenizer.pad_token_id)
        text = self.backbone.model.get_input_embeddings()(ids)
        special = self.special_tokens.to(text.dtype).unsqueeze(0).expand(text.shape[0], -1, -1)
        mask = torch.cat([text_mask.new_ones(text.shape[0], head), text_mask,
                          text_mask.new_ones(special.shape[:2])], dim=1)
        pos = positions(mask)[:, head:]
        past = {cache_kw: head_kv} if head else {}
        if not split:
            hidden = base(inputs_embeds=torch.cat([text, special], dim=1), attention_mask=mask,
                          position_ids=pos, use_cache=bool(head) and not on_runtime, **past).last_hidden_state
        else:
            width = head + text.shape[1]
            with torch.no_grad():
                prefix = base(inputs_embeds=text, attention_mask=mask[:, :width], position_ids=pos[:, : text.shape[1]],
                              use_cache=True, **past)
            hidden = base(inputs_embeds=special, attention_mask=mask, position_ids=pos[:, text.shape[1]:],
                          use_cache=True, **{cache_kw: getattr(prefix, cache_kw)}).last_hidden_state
        return hidden[:, -self.config.num_compression_tokens:]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(soft prompt [B, C, hidden], embedding [B, dim])."""
        states = self.compression_states(input_ids, attention_mask)
        # the projections are tiny: keep them in float32 even under bf16 autocast, so the
        # embedding carries no extra rounding on top of the backbone's
        with torch.autocast(self.device.type, enabled=False):
            soft_prompt = self.recon(states.float())
            embedding = self.align(soft_prompt).mean(dim=1)
        return soft_prompt, embedding

    # -- encode --------------------------------------------------------------------------
    def resolve_instruction(self, instruction: str | None) -> str:
        """None → the config's default; a name in config.instructions → its text; else the string itself."""
        if instruction is None:
            instruction = self.config.default_instruction
        return self.config.instructions.get(instruction, instruction)

    def batches(self, texts, instruction: str | None, batch_size: int = 32, show_progress_bar: bool | None = None,
                desc: str = "encode", windowed: bool = False):
        """(row indices, ids, mask) per batch of texts with `instruction` (batching.py); windowed: per
        window of rows instead, (offset, n, batches of indices within the window)."""
        text = self.resolve_instruction(instruction)
        args = (texts, lambda chunk: self.token_rows(chunk, text), self.backbone.tokenizer.pad_token_id,
                batch_size, show_progress_bar, desc)
        return batching.windows(*args) if windowed else batching.batches(*args)

    @torch.no_grad()
    def encode(self, texts, instruction: str | None = None, batch_size: int = 32, normalize: bool = False,
               show_progress_bar: bool | None = None, bf16: bool = False,
               output_path: str | Path | None = None, *, prompt_name: str | None = None, prompt: str | None = None,
               normalize_embeddings: bool | None = None, convert_to_tensor: bool = False,
               convert_to_numpy: bool = True, truncate_dim: int | None = None, precision: str = "float32",
               output_value: str | None = "sentence_embedding", device: str | None = None):
        """Embed texts → float32 array [n, dim] (a single string → [dim]), in input order.

        texts: a string, a list of strings, or a sized iterable read once in order (reader.TextFile).
        instruction: None → the default ("query"); a name of config.instructions → its text; any
        other string is the instruction itself ("" for none). bf16: bf16 autocast, faster, within
        ~1e-2 cosine of float32. output_path: rows go into this .npy file window by window and it is
        returned memory-mapped: memory stays flat in corpus size. The keyword-only arguments are
        sentence-transformers' (st_compat.py); those genembed cannot honour are refused.
        """
        instruction = st_instruction(self, instruction, prompt_name, prompt)
        check_st_options(self, truncate_dim, precision, output_value, device)
        if (convert_to_tensor or not convert_to_numpy) and output_path is not None:
            raise InputError("output_path writes a .npy file: it cannot be combined with convert_to_tensor / "
                             "convert_to_numpy=False")
        if not isinstance(texts, str) and (isinstance(texts, (bytes, bytearray)) or not hasattr(texts, "__iter__")):
            raise InputTypeError(f"encode() expects a string or a list of strings, got {type(texts).__name__}")
        texts, single = batching.as_sized(texts)
        shape, normalize = (len(texts), self.config.embedding_dim), normalize or bool(normalize_embeddings)
        windows = self.batches(texts, instruction, batch_size, show_progress_bar, windowed=True)
        was_training = self.training
        self.eval()
        try:
            if output_path is None:
                out = np.zeros(shape, dtype=np.float32)
                for offset, n, window in windows:
                    out[offset:offset + n] = self._embed_window(window, n, normalize, bf16)
            else:
                with NpyWriter(output_path, shape) as sink:  # rows of a window are consecutive input rows
                    for _, n, window in windows:
                        sink.write(self._embed_window(window, n, normalize, bf16))
                out = sink.result()
        finally:
            self.train(was_training)
        out = st_output(out, self.device, convert_to_tensor, convert_to_numpy)
        return out[0] if single else out

    def _embed_window(self, window, n: int, normalize: bool, bf16: bool) -> np.ndarray:
        block = np.zeros((n, self.config.embedding_dim), dtype=np.float32)
        for idx, ids, mask in window:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
                emb = self(ids, mask)[1].float()
            block[idx] = (torch.nn.functional.normalize(emb, dim=-1) if normalize else emb).cpu().numpy()
        return block

    # -- reading an embedding (decoders.py, inspection.py) ------------------------------------
    def decode(self, texts, max_new_tokens: int = 64, instruction: str | None = None, batch_size: int = 32,
               show_progress_bar: bool | None = None, via: str | None = None, repetition_penalty: float = 1.0,
               no_repeat_ngram_size: int = 0):
        """What each text's embedding "says", as text the frozen LLM writes: decoders.decode. Greedy, as the
        paper's decoder; repetition_penalty > 1 and no_repeat_ngram_size >= 1 (as transformers' options of
        those names, over the tokens written) keep a looping answer from repeating itself."""
        from .decoders import decode

        return decode(self, texts, via=via, max_new_tokens=max_new_tokens, instruction=instruction,
                      batch_size=batch_size, show_progress_bar=show_progress_bar,
                      repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size)

    def decode_embeddings(self, embeddings, max_new_tokens: int = 64, batch_size: int = 32, via: str | None = None,
                          repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0):
        """Decode vectors of this model's embedding space: decoders.decode_embeddings."""
        from .decoders import decode_embeddings

        return decode_embeddings(self, embeddings, via=via, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                 repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size)
