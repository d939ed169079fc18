"""The frozen backbone writes text: it answers queries with its own chat template (the answers are
the reconstruction targets of training, and the text the teacher embeds), and it continues any
prompt, token ids or input embeddings (a soft prompt), greedily (decoding).

Output is JSONL, one row per query: {"id", "query", "response", "finished"}. A rerun on the
same file skips ids already answered and repairs a torn last line, so a killed job loses at
most the batch in flight and never writes a row twice.
"""
from __future__ import annotations

import hashlib
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import distributed
from .atomic import writer_lock
from .backbone import Backbone, cache_keyword
from .errors import InputError
from .inputs import pad, positions, prompt_ids
from .jsonl import append_rows, numbered_rows, read_rows, string_field


def answer_queries(
    backbone: Backbone,
    queries: list[tuple[str, str]],
    out_path: str | Path,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    max_query_tokens: int = 256,
    sample: bool = False,
    temperature: float = 0.7,
    top_p: float = 0.9,
    seed: int = 0,
    bf16: bool = False,
    show_progress_bar: bool = True,
) -> list[dict]:
    """Answer every (id, query) not yet in out_path; return all rows of out_path.

    Under a launcher (`accelerate launch`, `torchrun`) each process answers every N-th query still
    to do into its own part file beside out_path (`<out>.part<rank>`); the main process then
    appends the parts' rows to out_path (each id once) and removes them. A killed run, under any
    number of processes, resumes from out_path plus whatever parts are left."""
    procs = distributed.current()
    if len({q[0] for q in queries}) != len(queries):
        raise InputError("query ids must be unique")
    out_path = Path(out_path)
    if procs.is_main:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    lock = out_path.with_name(f"{out_path.name}.lock")  # (the main process writes the output: it holds it)
    with writer_lock(lock, out_path, "generate run") if procs.is_main else nullcontext():
        with procs.main_first():  # the main process repairs torn tails; the others then read
            done = {row["id"] for path in [out_path, *part_files(out_path)]
                    for row in read_rows(path, repair=procs.is_main)}
        procs.barrier()  # every process has read the parts before any appends to them
        todo = [q for q in queries if q[0] not in done]
        mine = todo[procs.rank::procs.world]
        target = out_path if procs.world == 1 else out_path.with_name(f"{out_path.name}.part{procs.rank}")
        tok = backbone.tokenizer
        prompts = prompt_ids(tok, [q[1] for q in mine], max_text_tokens=max_query_tokens)
        order = sorted(range(len(mine)), key=lambda i: -len(prompts[i]))  # similar lengths share a batch
        bar = tqdm(total=len(queries), initial=len(queries) - len(todo), desc="answering", unit="query",
                   disable=not (show_progress_bar and procs.is_main))
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            if sample:  # a seed per batch content: a resumed run samples what the first run would have
                digest = hashlib.sha1("".join(mine[i][0] for i in batch).encode()).digest()
                torch.manual_seed(seed + int.from_bytes(digest[:4], "little"))
            texts, finished = generate_batch(backbone, [prompts[i] for i in batch], max_new_tokens, sample=sample,
                                             temperature=temperature, top_p=top_p, bf16=bf16)
            rows = [{"id": mine[i][0], "query": mine[i][1], "response": text, "finished": done}
                    for i, text, done in zip(batch, texts, finished)]
            append_rows(target, rows)
            bar.update(min(len(rows) * procs.world, bar.total - bar.n))  # (the main process stands for all)
        bar.close()
        procs.barrier()
        if procs.is_main:
            merge_parts(out_path)
        procs.barrier()
        return read_rows(out_path)


@torch.no_grad()
def generate_batch(backbone: Backbone, prompts: list[list[int]], max_new_tokens: int, sample: bool = False,
                   temperature: float = 0.7, top_p: float = 0.9, bf16: bool = False) -> tuple[list[str], list[bool]]:
    """The backbone's continuation of each prompt (token ids, one batch): (texts, whether each ended
    with the end-of-turn token rather than at max_new_tokens). Greedy unless `sample`."""
    tok = backbone.tokenizer
    input_ids, mask = pad(prompts, tok.pad_token_id, side="left")
    with torch.autocast(backbone.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = backbone.model.generate(
            input_ids=input_ids.to(backbone.device), attention_mask=mask.to(backbone.device),
            max_new_tokens=max_new_tokens, do_sample=sample, pad_token_id=tok.pad_token_id,
            **({"temperature": temperature, "top_p": top_p} if sample else {"temperature": None, "top_p": None, "top_k": None}),
        )
    texts, finished = [], []
    for row in out[:, input_ids.shape[1]:].tolist():
        finished.append(tok.eos_token_id in row)
        texts.append(tok.decode(row[: row.index(tok.eos_token_id)] if finished[-1] else row,
                                skip_special_tokens=True).strip())
    return texts, finished


def generate_texts(backbone: Backbone, prompts: list[list[int]], max_new_tokens: int, batch_size: int,
                   bf16: bool = False) -> list[str]:
    """Greedy continuations of many prompts (token ids), `batch_size` at a time, in order."""
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        texts += generate_batch(backbone, prompts[start:start + batch_size], max_new_tokens, bf16=bf16)[0]
    return texts


@torch.no_grad()
def greedy_from_embeddings(backbone: Backbone, prompt: torch.Tensor, max_new_tokens: int,
                           use_cache: bool = True, mask: torch.Tensor | None = None, lm=None) -> list[list[int]]:
    """Greedy tokens the frozen LLM writes after prompts of input embeddings [B, P, hidden] (KV-cached
    by default), each row cut at the end-of-turn token. mask: [B, P] for left-padded prompts (positions
    then count real tokens only, as `generate` does). lm: what runs the model's forward (default: the
    backbone's own; backends.py has another that takes the same call)."""
    embed, tok = backbone.model.get_input_embeddings(), backbone.tokenizer
    lm, cache_kw = lm or backbone.model, cache_keyword(backbone.model)
    prompt = prompt.to(embed.weight.dtype)
    eos = tok.eos_token_id
    tokens = torch.empty(prompt.shape[0], 0, dtype=torch.long, device=prompt.device)
    finished = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    past = None
    for _ in range(max_new_tokens):
        inputs = torch.cat([prompt, embed(tokens)], dim=1) if past is None or not use_cache else embed(tokens[:, -1:])
        placed = {}
        if mask is not None:
            full = torch.cat([mask, mask.new_ones(mask.shape[0], tokens.shape[1])], dim=1)
            placed = {"attention_mask": full, "position_ids": positions(full)[:, -inputs.shape[1]:]}
        out = lm(inputs_embeds=inputs, use_cache=use_cache, logits_to_keep=1, **placed, **{cache_kw: past})
        past = getattr(out, cache_kw, None) if use_cache else None
        next_token = out.logits[:, -1].argmax(-1)
        next_token = torch.where(finished, torch.full_like(next_token, tok.pad_token_id), next_token)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        finished |= next_token == eos
        if finished.all():
            break
    return [row[: row.index(eos)] if eos in row else row for row in tokens.tolist()]


def read_responses(path: str | Path) -> list[dict]:
    """The (query, response) rows of a responses file someone may have edited: a row without a string
    query or response is an error naming its line; a row with an empty response is skipped (nothing to
    reconstruct or embed)."""
    rows = []
    for number, row in numbered_rows(path):
        for key in ("query", "response"):
            string_field(path, number, row, key)
        if row["response"].strip():
            rows.append(row)
    return rows


def part_files(out_path: Path) -> list[Path]:
    """The per-process files a multi-process run left beside out_path (any number of processes)."""
    return sorted(out_path.parent.glob(f"{out_path.name}.part*"))


def merge_parts(out_path: Path) -> None:
    """Append the parts' rows that out_path lacks (each id once), force them to disk, then remove
    the parts. A kill in between leaves rows in both places; the next merge skips those ids."""
    have = {row["id"] for row in read_rows(out_path, repair=True)}
    for part in part_files(out_path):
        rows = [r for r in read_rows(part, repair=True) if r["id"] not in have]
        append_rows(out_path, rows)
        have.update(r["id"] for r in rows)
    for part in part_files(out_path):
        part.unlink()
