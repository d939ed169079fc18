"""A GenEmbed as an mteb (2.x) encoder:

    import mteb
    from genembed.eval.mteb_adapter import MTEBEncoder
    results = mteb.evaluate(MTEBEncoder(genembed.load()), mteb.get_tasks(tasks=["SciFact", "STS12"]))

mteb is imported inside the methods, so `import genembed` never loads it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class MTEBEncoder:
    """mteb's `EncoderProtocol` (encode / similarity / similarity_pairwise / mteb_model_meta) around a GenEmbed."""

    def __init__(self, model, name: str | None = None, revision: str | None = None):
        self.model = model
        self.name = name or f"genembed/{Path(model.config.backbone).name}"  # mteb requires "org/model"
        self.revision = revision

    @property
    def mteb_model_meta(self):
        from mteb.models.model_meta import ModelMeta, ScoringFunction

        return ModelMeta.create_empty(overwrites=dict(
            name=self.name, revision=self.revision, embed_dim=self.model.config.embedding_dim,
            max_tokens=self.model.config.max_text_tokens, similarity_fn_name=ScoringFunction.COSINE,
            use_instructions=True, framework=["PyTorch"], modalities=["text"]))

    def instruction(self, task_metadata, prompt_type) -> str | None:
        """The genembed instruction for one side of one task."""
        from mteb.types import PromptType

        # Queries and documents get the paper's two instructions, the ones the model was trained with.
        # Symmetric tasks (STS, classification, clustering) get mteb's own per-task instruction when the
        # task has one (it says what the embedding is for), else the model's default instruction (None).
        if prompt_type is not None:
            return {PromptType.query: "query", PromptType.document: "document"}[PromptType(prompt_type)]
        prompt = task_metadata.prompt
        return prompt.strip().rstrip(".:") + ": " if isinstance(prompt, str) and prompt.strip() else None

    def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        return self.model.encode(texts, instruction=self.instruction(task_metadata, prompt_type),
                                 batch_size=kwargs.get("batch_size", 32),
                                 show_progress_bar=kwargs.get("show_progress_bar"))

    def similarity(self, embeddings1, embeddings2):
        from mteb.similarity_functions import cos_sim

        return cos_sim(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1, embeddings2):
        from mteb.similarity_functions import pairwise_cos_sim

        return pairwise_cos_sim(embeddings1, embeddings2)
