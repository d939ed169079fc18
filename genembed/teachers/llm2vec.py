"""The paper's teacher: an LLM2Vec model (the backbone made bidirectional, MNTP-trained, then SimCSE) with its
adapters merged, run bidirectionally, its last states pooled as the `llm2vec` package pools them (not
normalised: the official LLM2Vec-Gen trainer aligns to the raw pooled states). The spec's parts: llm2vec_spec.py.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..bidirectional import check_family, forward as bidirectional_forward, make_bidirectional
from .adapters import merge_adapter
from .folders import TeacherError
from .llm2vec_spec import resolve

# llm2vec's separator between an instruction and the text (the text alone is pooled)
_SEPARATOR = "!@#$%^&*()"
# chat wrappers llm2vec puts around a text for these base models (by the base's name), and whether the
# eos_token suffix is then left out
_CHAT_WRAPPERS = {
    "meta-llama/Meta-Llama-3-8B-Instruct": ("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>", True),
    "mistralai/Mistral-7B-Instruct-v0.2": ("[INST] ", " [/INST]", False),
    "meta-llama/Llama-2-7b-chat-hf": ("[INST] ", " [/INST]", False),
    "google/gemma-2-9b-it": ("<bos><start_of_turn>user\n", "<end_of_turn>", False),
    "Qwen/Qwen2-1.5B-Instruct": ("<|im_start|>user\n", "<|im_end|>", False),
    "Qwen/Qwen2-7B-Instruct": ("<|im_start|>user\n", "<|im_end|>", False),
}
# what llm2vec appends for eos_token pooling, by model_type (Meta-Llama-3-8B has its own)
_EOS_SUFFIX = {"llama": " </s>", "mistral": " </s>", "gemma": "<eos>", "qwen2": "<|endoftext|>",
               "qwen3": "<|endoftext|>"}
_EOS_SUFFIX_BY_NAME = {"meta-llama/Meta-Llama-3-8B": "<|end_of_text|>"}


class LLM2VecTeacher:
    """An LLM2Vec model: its base with the adapters merged, run bidirectionally, the last hidden states
    pooled over the text's own tokens as the `llm2vec` package (0.2.3) pools them, not normalised.

    As llm2vec does: the tokenizer is FIRST's (pad = eos, padding on the left, its special tokens added,
    e.g. BOS), a text longer than doc_max_length tokens is cut to fewer words, the whole row to max_length
    tokens; with skip_instruction (the default) only the text's own tokens are pooled (BOS left out). The
    base models llm2vec wraps in a chat turn (Meta-Llama-3-8B-Instruct, Mistral-7B-Instruct-v0.2, ...) are
    wrapped the same way. Pooling modes: mean (default), weighted_mean (weights 1..n over the text's
    tokens), eos_token / last_token (the last state; eos_token appends the family's EOS text first),
    bos_token (the state at the BOS token). Differences: an empty text is pooled over its own non-padding
    tokens, or read as the EOS token where it has none (llm2vec averages the whole padded row), and both
    adapters are merged (llm2vec keeps the second unmerged: the same up to rounding)."""

    def __init__(self, spec: str, device: str = "cpu", dtype: str = "float32", pooling_mode: str | None = None,
                 max_length: int | None = None):
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        self.name = spec
        parts = resolve(spec, pooling_mode, max_length)
        settings = parts.settings
        self.pooling_mode = settings["pooling_mode"]
        self.max_length, self.doc_max_length = int(settings["max_length"]), int(settings["doc_max_length"])
        self.skip_instruction = bool(settings["skip_instruction"])
        try:
            config = AutoConfig.from_pretrained(parts.base)
        except Exception as error:
            raise TeacherError(f"teacher {spec!r}: base model {parts.base!r} cannot be read "
                               f"({type(error).__name__})") from None
        self.model_type = check_family(config, f"teacher base model {parts.base}")
        self.tokenizer = AutoTokenizer.from_pretrained(parts.tokenizer_from)
        self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.base_name = parts.base_name

        model = AutoModel.from_pretrained(parts.base, dtype=getattr(torch, dtype), attn_implementation="sdpa")
        for adapter in parts.adapters:
            model = merge_adapter(model, adapter, parts.base)
        model = make_bidirectional(model, f"teacher {spec!r}")
        model.eval().requires_grad_(False)
        self.model = model.to(device)
        self.device = torch.device(device)
        self.dim = config.hidden_size
        self.cache_id = "llm2vec-" + "-".join(map(str, [
            spec, self.pooling_mode, self.max_length, self.doc_max_length, self.skip_instruction, dtype,
            parts.digest()]))

    def _cut(self, text: str) -> tuple[str, int]:
        """A text of more than doc_max_length tokens, cut to proportionally fewer words (as llm2vec does), and
        its number of tokens."""
        def length(t: str) -> int:
            return len(self.tokenizer(t, add_special_tokens=False, truncation=True,
                                      max_length=self.max_length)["input_ids"])

        n = length(text)
        while n > self.doc_max_length:
            words = text.split()
            text = " ".join(words[:int(len(words) * self.doc_max_length / n)])
            n = length(text)
        return text, n

    def _strings(self, text: str) -> tuple[str, str]:
        """(the string tokenized, the part of it that is pooled). A text with no tokens (empty, or blank where the
        tokenizer adds no BOS) is read as the EOS token, so that it still gets a vector, as the `self` teacher does."""
        text, n = self._cut(text)
        if n == 0 and not self.tokenizer("", add_special_tokens=True)["input_ids"]:
            text = self.tokenizer.eos_token
        whole = _SEPARATOR + text
        wrapper = _CHAT_WRAPPERS.get(self.base_name)
        if wrapper is not None:
            whole = wrapper[0] + whole.strip() + wrapper[1]
        if self.pooling_mode == "eos_token" and not (wrapper is not None and wrapper[2]):
            suffix = _EOS_SUFFIX_BY_NAME.get(self.base_name, _EOS_SUFFIX.get(self.model_type, ""))
            whole = whole.strip() + suffix
        pieces = whole.split(_SEPARATOR)
        return "".join(pieces), (pieces[1] if len(pieces) > 1 else "")

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 16, show_progress_bar: bool = False) -> np.ndarray:
        tok = self.tokenizer
        strings = [self._strings(t) for t in texts]
        order = sorted(range(len(strings)), key=lambda i: -len(strings[i][0]))
        out = np.zeros((len(strings), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(order), batch_size), desc="llm2vec teacher", disable=not show_progress_bar):
            idx = order[start:start + batch_size]
            batch = tok([strings[i][0] for i in idx], return_tensors="pt", padding=True, truncation=True,
                        max_length=self.max_length)
            ids, mask = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
            hidden = bidirectional_forward(self.model, ids, mask).float()
            rows = mask.sum(1).tolist()
            for row, i in enumerate(idx):
                own = len(tok(strings[i][1], add_special_tokens=False, truncation=True,
                              max_length=self.max_length)["input_ids"]) if self.skip_instruction else rows[row]
                n = min(own, rows[row]) or rows[row]  # an empty text: its non-padding tokens
                states = hidden[row, hidden.shape[1] - n:]
                out[i] = self._pool(states, ids[row, hidden.shape[1] - rows[row]:], hidden[row]).cpu().numpy()
        return out

    def _pool(self, states, row_ids, row_states):
        if self.pooling_mode == "mean":
            return states.mean(0)
        if self.pooling_mode == "weighted_mean":
            weights = torch.arange(1, states.shape[0] + 1, device=states.device, dtype=states.dtype)
            return (states * (weights / weights.sum())[:, None]).sum(0)
        if self.pooling_mode in ("eos_token", "last_token"):
            return row_states[-1]
        bos = self.tokenizer.bos_token_id
        where = (row_ids == bos).nonzero()
        if bos is None or len(where) == 0:
            raise TeacherError(f"teacher {self.name!r}: pooling_mode 'bos_token' but a text has no BOS token")
        return row_states[row_states.shape[0] - row_ids.shape[0] + int(where[0])]
