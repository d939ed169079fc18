"""The frozen backbone answers queries with its own chat template; the answers are the
reconstruction targets of training (and the text the teacher embeds).

Output is JSONL, one row per query: {"id", "query", "response", "finished"}. A rerun on the
same file skips ids already answered and repairs a torn last line, so a killed job loses at
most the batch in flight and never writes a row twice.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .backbone import Backbone
from .inputs import pad, prompt_ids
from .jsonl import append_rows, read_rows


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
    """Answer every (id, query) not yet in out_path; return all rows of out_path."""
    ids = [q[0] for q in queries]
    if len(set(ids)) != len(ids):
        raise ValueError("query ids must be unique")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = {row["id"] for row in read_rows(out_path, repair=True)}
    todo = [q for q in queries if q[0] not in done]
    tok, model = backbone.tokenizer, backbone.model
    prompts = prompt_ids(tok, [q[1] for q in todo], max_text_tokens=max_query_tokens)
    order = sorted(range(len(todo)), key=lambda i: -len(prompts[i]))  # similar lengths share a batch
    eos = tok.eos_token_id
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and backbone.device.type == "cpu")
    bar = tqdm(total=len(queries), initial=len(queries) - len(todo), desc="answering", unit="query",
               disable=not show_progress_bar)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        input_ids, mask = pad([prompts[i] for i in batch], tok.pad_token_id, side="left")
        if sample:  # a seed per batch content: a resumed run samples what the first run would have
            digest = hashlib.sha1("".join(todo[i][0] for i in batch).encode()).digest()
            torch.manual_seed(seed + int.from_bytes(digest[:4], "little"))
        with torch.no_grad(), autocast:
            out = model.generate(
                input_ids=input_ids.to(backbone.device), attention_mask=mask.to(backbone.device),
                max_new_tokens=max_new_tokens, do_sample=sample, pad_token_id=tok.pad_token_id,
                **({"temperature": temperature, "top_p": top_p} if sample else {"temperature": None, "top_p": None, "top_k": None}),
            )
        rows = []
        for row, i in enumerate(batch):
            new = out[row, input_ids.shape[1]:].tolist()
            finished = eos in new
            if finished:
                new = new[: new.index(eos)]
            rows.append({"id": todo[i][0], "query": todo[i][1],
                         "response": tok.decode(new, skip_special_tokens=True).strip(), "finished": finished})
        append_rows(out_path, rows)
        bar.update(len(rows))
    bar.close()
    return read_rows(out_path)
