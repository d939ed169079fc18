"""Teachers give the alignment targets: an embedding of each training response (targets.py).

* a sentence-transformers model (sentence.py; default all-MiniLM-L6-v2), supervised, unit-normalised;
* `self` (mean_pool.py): the frozen backbone's mean-pooled last states, unit-normalised: no labelled data;
* an LLM2Vec model (llm2vec.py, its spec llm2vec_spec.py, its adapters adapters.py): the paper's teacher, the
  backbone made bidirectional, MNTP-trained, then SimCSE; raw pooled states, as the official trainer aligns to;
* `cls:PATH` (cls.py): a plain encoder read at its CLS token (BGE-M3-unsupervised), raw.
`load_teacher(spec)` opens any of them; each has `.embed(texts) -> [n, dim]`, `.dim`, `.name`.
"""
from __future__ import annotations

from pathlib import Path

from ..backbone import Backbone
from ..errors import InputError
from .cls import CLS_PREFIX, CLSTeacher
from .folders import ADAPTER_CONFIG, TeacherError
from .llm2vec import LLM2VecTeacher
from .llm2vec_spec import is_llm2vec_spec
from .mean_pool import SelfTeacher
from .sentence import SentenceTransformerTeacher
from .targets import alignment_targets, cached_targets

__all__ = ["BUNDLED_LLM2VEC", "CLSTeacher", "LLM2VecTeacher", "SelfTeacher", "SentenceTransformerTeacher",
           "TeacherError", "alignment_targets", "bundled_llm2vec_folder", "bundled_llm2vec_spec", "cached_targets",
           "is_llm2vec_spec", "load_teacher"]

# LLM2Vec teachers bundled with genembed (their adapters, in genembed/<folder>/{mntp,simcse}), by name
BUNDLED_LLM2VEC = {"smollm2-135m-llm2vec": "llm2vec-smollm2"}


def bundled_llm2vec_folder(name: str) -> Path:
    """Where a bundled LLM2Vec teacher's adapters live inside the package (BUNDLED_LLM2VEC)."""
    return Path(__file__).parent.parent / BUNDLED_LLM2VEC[name]


def bundled_llm2vec_spec(name: str) -> str:
    """The FIRST+SECOND spec of a bundled LLM2Vec teacher (BUNDLED_LLM2VEC), its folders inside the package."""
    folder = bundled_llm2vec_folder(name)
    if not (folder / "mntp" / ADAPTER_CONFIG).is_file():
        raise TeacherError(f"the bundled teacher {name!r} is missing from this install ({folder}); "
                           f"scripts/train_self_supervised.sh builds it")
    return f"{folder / 'mntp'}+{folder / 'simcse'}"


def load_teacher(name: str, backbone: Backbone | None = None, dtype: str | None = None):
    """The teacher a spec names: 'self'; a bundled LLM2Vec teacher by name (BUNDLED_LLM2VEC:
    'smollm2-135m-llm2vec'); an LLM2Vec model (`llm2vec:FIRST[+SECOND]`, a `+`, a folder with
    adapter_config.json or llm2vec_config.json, a McGill-NLP/LLM2Vec-* hub id); `cls:ENCODER`; else a
    sentence-transformers name or folder (the 'all-minilm-l6-v2' alias included). The LLM2Vec and cls
    teachers run on the backbone's device in its dtype (float32 without a backbone)."""
    if name == "self":
        if backbone is None:
            raise InputError("the 'self' teacher needs the backbone")
        return SelfTeacher(backbone)
    # on the training device: embedding tens of thousands of responses on a CPU beside a GPU is the slow part
    device = str(backbone.device) if backbone is not None else "cpu"
    if dtype is None:
        dtype = str(backbone.dtype).removeprefix("torch.") if backbone is not None else "float32"
    if name.startswith(CLS_PREFIX):
        return CLSTeacher(name, device=device, dtype=dtype)
    if name in BUNDLED_LLM2VEC:
        teacher = LLM2VecTeacher(bundled_llm2vec_spec(name), device=device, dtype=dtype)
        teacher.name = name  # (what a checkpoint's config records: the same on every install)
        return teacher
    if is_llm2vec_spec(name):
        return LLM2VecTeacher(name, device=device, dtype=dtype)
    return SentenceTransformerTeacher(name, device=device)
