"""The part of the sentence-transformers model interface that its evaluators and user code reach:
`encode(..., prompt_name=, prompt=, convert_to_tensor=, normalize_embeddings=, ...)`,
`encode_query` / `encode_document`, `similarity`, `similarity_fn_name`, `max_seq_length`, `model_card_data`.

GenEmbed inherits it, so a genembed checkpoint can be handed to sentence-transformers code
(e.g. `InformationRetrievalEvaluator(...)(model)`) unchanged. Keywords whose meaning genembed
cannot honour are refused with the reason, never silently ignored.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch
from .errors import InputError


def st_instruction(model, instruction: str | None, prompt_name: str | None, prompt: str | None) -> str | None:
    """The instruction for encode(): genembed's `instruction`, or sentence-transformers' `prompt_name`
    (a name in the checkpoint's instructions) or `prompt` (the text itself) — at most one of them."""
    given = [(k, v) for k, v in (("instruction", instruction), ("prompt_name", prompt_name), ("prompt", prompt))
             if v is not None]
    if len(given) > 1:
        raise InputError(f"give one of instruction / prompt_name / prompt, got {', '.join(k for k, _ in given)}")
    if prompt_name is not None and prompt_name not in model.config.instructions:
        raise InputError(f"unknown prompt_name {prompt_name!r}: this checkpoint's prompts are "
                         f"{sorted(model.config.instructions)} (or pass the text as prompt=)")
    return given[0][1] if given else None


def check_st_options(model, truncate_dim, precision, output_value, device) -> None:
    dim = model.config.embedding_dim
    if truncate_dim is not None and truncate_dim != dim:
        raise InputError(f"truncate_dim={truncate_dim}: genembed embeddings are not trained to be truncated "
                         f"(Matryoshka); use None or {dim}")
    if precision != "float32":
        raise InputError(f"precision={precision!r}: genembed returns float32 embeddings only")
    if output_value != "sentence_embedding":
        raise InputError(f"output_value={output_value!r}: genembed returns 'sentence_embedding' only")
    if device is not None and torch.device(device) != model.device:
        raise InputError(f"device={device!r}: this model is on {model.device}; load it there instead "
                         f"(genembed.load(path, device=...))")


def st_output(out: np.ndarray, device, convert_to_tensor: bool, convert_to_numpy: bool):
    """encode()'s array as sentence-transformers returns it: a tensor on the model's device
    (convert_to_tensor), a list of row tensors (convert_to_numpy=False), else the array itself."""
    if convert_to_tensor:
        return torch.from_numpy(np.asarray(out)).to(device)
    if not convert_to_numpy:
        return list(torch.from_numpy(np.asarray(out)).to(device))
    return out


def _default_prompt(name: str, kwargs: dict) -> dict:
    if all(kwargs.get(k) is None for k in ("instruction", "prompt_name", "prompt")):
        kwargs = {**kwargs, "instruction": name}
    return kwargs


class ModelCardData:
    """Where sentence-transformers evaluators leave their metrics (`model.model_card_data`)."""

    def __init__(self):
        self.eval_results: list[dict] = []

    def set_evaluation_metrics(self, evaluator, metrics: dict, epoch: int = 0, step: int = 0) -> None:
        self.eval_results.append({"evaluator": type(evaluator).__name__, "metrics": dict(metrics),
                                  "epoch": epoch, "step": step})


class SentenceTransformerAPI:
    """Mixed into GenEmbed: the model-level attributes sentence-transformers code reads."""

    similarity_fn_name = "cosine"

    def encode_query(self, texts, **kwargs):
        """encode() with the query instruction (unless instruction / prompt_name / prompt names another)."""
        return self.encode(texts, **_default_prompt("query", kwargs))

    def encode_document(self, texts, **kwargs):
        """encode() with the document instruction (unless instruction / prompt_name / prompt names another)."""
        return self.encode(texts, **_default_prompt("document", kwargs))

    @property
    def model_card_data(self) -> ModelCardData:
        if "_model_card_data" not in self.__dict__:
            self.__dict__["_model_card_data"] = ModelCardData()
        return self.__dict__["_model_card_data"]

    def get_sentence_embedding_dimension(self) -> int:
        return self.config.embedding_dim

    @property
    def max_seq_length(self) -> int:
        """How many tokens of each text encode reads (config.max_text_tokens: of the text alone in the chat
        layout; of the whole row in the official one); a checkpoint genembed trains keeps the length it
        trained at."""
        return self.config.max_text_tokens

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise InputError(f"max_seq_length must be a positive whole number of tokens, got {value!r}")
        self.config.max_text_tokens = int(value)

    @staticmethod
    def similarity(a, b) -> torch.Tensor:
        """Cosine similarity matrix [len(a), len(b)] of numpy arrays or tensors."""
        a, b = (torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float() for x in (a, b))
        a, b = (x.unsqueeze(0) if x.ndim == 1 else x for x in (a, b))
        return torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T

    @staticmethod
    def similarity_pairwise(a, b) -> torch.Tensor:
        a, b = (torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float() for x in (a, b))
        return torch.nn.functional.cosine_similarity(a, b, dim=-1)
