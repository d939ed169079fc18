"""The unlabeled texts a teacher is built from, and how each phase lays them out.

* MNTP reads **blocks**: every text tokenized (with the special tokens the tokenizer adds, e.g. BOS),
  an EOS after each, all concatenated and cut into blocks of `mntp_max_length` tokens (the remainder
  dropped), as the original's `group_texts` packs its corpus: no padding anywhere.
* SimCSE reads **rows**: each text cut to `simcse_max_length` tokens as the teacher will tokenize it
  (genembed.teachers.LLM2VecTeacher: the tokenizer's special tokens added), with the number of its own
  tokens at the end (those are pooled); duplicates are dropped, since a duplicate in a batch would be a
  false negative.

Both are pure functions of the texts and the tokenizer, and the order in which a phase visits them is a
pure function of (seed, step) (phases.py), so a resumed build reads what an uninterrupted one reads.
"""
from __future__ import annotations

import hashlib

from .config import TeacherBuildConfig, TeacherBuildError


def read_texts(cfg: TeacherBuildConfig) -> list[str]:
    """The training texts: ShareGPT's training-split queries and answers (in file order, each query then
    its answer) or the lines / JSONL field of a file; blank ones and exact repeats dropped, the first
    cfg.max_texts kept."""
    if cfg.texts == "sharegpt":
        from ..data import load_sharegpt

        raw = [t for c in load_sharegpt("train") for t in (c.query, c.answer)]
    else:
        from ..reader import TextFile

        raw = list(TextFile(cfg.texts, field=cfg.field))
    seen, texts = set(), []
    for text in raw:
        text = text.strip()
        if text and text not in seen:
            seen.add(text)
            texts.append(text)
            if cfg.max_texts and len(texts) == cfg.max_texts:
                break
    if not texts:
        raise TeacherBuildError(f"texts {cfg.texts!r}: no non-blank text to train on")
    return texts


def texts_digest(texts: list[str]) -> str:
    """SHA-1 of the texts (a resumed build must read the very same ones)."""
    digest = hashlib.sha1()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def mntp_blocks(tokenizer, texts: list[str], length: int):
    """[blocks, length] token ids: the texts packed as described above. TeacherBuildError when the texts
    do not fill one block."""
    import torch

    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]:
        stream += ids + ([eos] if eos is not None else [])
    n = len(stream) // length
    if n == 0:
        raise TeacherBuildError(f"the texts hold {len(stream)} tokens, fewer than one MNTP block of {length}: "
                                f"give more texts or a smaller mntp_max_length")
    return torch.tensor(stream[:n * length], dtype=torch.long).view(n, length)


def simcse_rows(tokenizer, texts: list[str], length: int) -> tuple[list[list[int]], list[int]]:
    """(token rows, own-token counts): each distinct text as the teacher reads it, cut to `length` tokens."""
    rows, own, seen = [], [], set()
    whole = tokenizer(texts, truncation=True, max_length=length, verbose=False)["input_ids"]
    bare = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=length, verbose=False)["input_ids"]
    for ids, text_ids in zip(whole, bare):
        n = min(len(text_ids), len(ids))
        if n == 0 or tuple(ids) in seen:
            continue
        seen.add(tuple(ids))
        rows.append(list(ids))
        own.append(n)
    return rows, own


def check_texts(cfg: TeacherBuildConfig, tokenizer, texts: list[str]) -> None:
    """TeacherBuildError, before any training, when the texts cannot feed a phase that will run: fewer tokens
    than one MNTP block, fewer distinct texts than one SimCSE batch."""
    if cfg.mntp_steps:
        mntp_blocks(tokenizer, texts, cfg.mntp_max_length)
    if cfg.simcse_steps:
        rows, _ = simcse_rows(tokenizer, texts, cfg.simcse_max_length)
        if len(rows) < cfg.simcse_batch_size:
            raise TeacherBuildError(f"the texts hold {len(rows)} distinct texts, fewer than one SimCSE batch "
                                    f"({cfg.simcse_batch_size}): give more texts or a smaller simcse_batch_size")
