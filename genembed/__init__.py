"""genembed: LLM2Vec-Gen embeddings from a frozen chat LLM.

    import genembed
    model = genembed.load()                 # the bundled default (SmolLM2-135M-Instruct + MiniLM)
    vectors = model.encode(["how do I boil an egg?"])
    model.decode("how do I boil an egg?")   # what the embedding "says"

Heavy libraries (torch, transformers) load on first use, not on `import genembed`.
"""
from __future__ import annotations

from .errors import GenembedError  # light: the base of every error genembed raises for a user's mistake

__version__ = "0.1.0"
# training: `from genembed.train import train` (genembed.train is the module, so the function is
# not re-exported under the same name)
__all__ = ["load", "GenEmbed", "GenEmbedConfig", "TrainConfig", "load_backbone", "GenembedError"]


def load(path=None, backbone=None, dtype: str = "float32", device: str | None = None, backend: str = "torch",
         num_threads: int | None = None):
    """A trained GenEmbed: path None (the bundled default), a genembed checkpoint folder, an official
    llm2vec-gen folder or a hub id of either (loading.py); backbone: a local copy of its backbone;
    backend: how inference runs, "torch", "onnx" or "openvino" (backends.py); num_threads: torch's
    threads while decoding (None: as many as the other processes leave cores free)."""
    from .loading import load_model

    return load_model(path, backbone=backbone, dtype=dtype, device=device, backend=backend, num_threads=num_threads)


def __getattr__(name):
    if name in ("GenEmbed", "GenEmbedConfig"):
        from . import model

        return getattr(model, name)
    if name == "TrainConfig":
        from .recipe import TrainConfig

        return TrainConfig
    if name == "load_backbone":
        from .backbone import load_backbone

        return load_backbone
    raise AttributeError(f"module 'genembed' has no attribute {name!r}")
