"""`genembed teacher build`: an LLM2Vec teacher made offline from a causal LM, the LLM2Vec recipe
(BehnamGhader et al. 2024, arXiv 2404.05961), on unlabeled text only.

    1. bidirectional attention (genembed.bidirectional);
    2. MNTP: masked next-token prediction through a LoRA on the transformer (objectives.py), the
       adapter written as the `-mntp` folder (layout.py);
    3. unsupervised SimCSE: a second LoRA over the MNTP-merged model, the same text twice under
       dropout, mean-pooled, in-batch negatives; written as the `simcse` folder.

The result is read by `genembed.teachers.load_teacher("OUT/mntp+OUT/simcse")` (`--teacher` of
`genembed train`) and by the `llm2vec` package (`LLM2Vec.from_pretrained(OUT/mntp,
peft_model_name_or_path=OUT/simcse)`). Files: config.py (the settings), texts.py (the unlabeled
texts and how each phase batches them), objectives.py (masking and both losses), phases.py (the
models of each phase), layout.py (the llm2vec folders), build.py (the resumable run).

Light on import: torch and transformers load when build_teacher runs.
"""
from __future__ import annotations

from .config import TeacherBuildConfig

__all__ = ["TeacherBuildConfig", "build_teacher"]


def build_teacher(cfg: TeacherBuildConfig, resume: bool = False, show_progress_bar: bool = True, on_step=None) -> str:
    """Build the teacher into cfg.out_dir (see build.build_teacher); returns its teacher spec."""
    from .build import build_teacher as run

    return run(cfg, resume=resume, show_progress_bar=show_progress_bar, on_step=on_step)
