"""Training: the frozen LLM stays untouched; the special tokens, `recon` and `align` learn.

Each step:  queries ─► student ─► (soft prompt, embedding)
            loss = w_rec · CE(response | soft prompt)  +  w_align · align(embedding, teacher(response))

The run folder holds: `log.jsonl` (every step's loss components), `resume/` (latest checkpoint
plus optimizer/scheduler state, written atomically every `save_every` steps), and at the end
`model/` (the final checkpoint: `config.json`, `model.safetensors`) and `losses.png`.
Data order is a pure function of (seed, step), so a resumed run reaches the same weights as an
uninterrupted one.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import distributed
from .atomic import file_digest, replace_file, write_text
from .backbone import load_backbone
from .checkpoint import load_checkpoint, recover, save_checkpoint
from .inputs import pad, prompt_ids, response_ids
from .jsonl import append_rows, read_rows
from .losses import alignment_loss, margin_loss, reconstruction_loss
from .model import GenEmbed
from .recipe import RESULT_NEUTRAL, TrainConfig
from .ridge import ridge_fit
from .teachers import load_teacher, training_targets


def example_order(n: int, seed: int, position: int) -> int:
    """Index of the example at a global position in an endless stream of seeded permutations."""
    epoch, offset = divmod(position, n)
    return int(np.random.default_rng(seed + epoch).permutation(n)[offset])


def lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


@torch.no_grad()
def scale_recon_to_embeddings(model: GenEmbed, query_rows: list[list[int]], bf16: bool = False) -> float:
    """Scale `recon` (identity at creation) so the soft prompt's vectors have the mean norm of the
    backbone's token embeddings: last-layer states are ~10x larger than any input embedding, so an
    identity `recon` feeds the LLM a prompt far outside what it was trained to read. Returns the scale."""
    pad_id = model.backbone.tokenizer.pad_token_id
    autocast = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16)
    ids, mask = pad(query_rows, pad_id, side="left")
    with autocast:
        soft, _ = model(ids, mask)
    table = model.backbone.model.get_input_embeddings().weight.float()
    scale = (table.norm(dim=-1).mean() / soft.float().norm(dim=-1).mean()).item()
    model.recon.weight.mul_(scale)
    model.recon.bias.mul_(scale)
    return scale


@torch.no_grad()
def initial_states(model: GenEmbed, query_rows: list[list[int]], batch_size: int = 16,
                   bf16: bool = False) -> torch.Tensor:
    """Compression states [N, C, hidden] (float32) of these queries under the training precision,
    computed once for the fits below (they do not depend on `recon` or `align`)."""
    pad_id = model.backbone.tokenizer.pad_token_id
    autocast = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16)
    states = []
    for start in range(0, len(query_rows), batch_size):
        ids, mask = pad(query_rows[start:start + batch_size], pad_id, side="left")
        with autocast:
            states.append(model.compression_states(ids, mask, split_prefix=False).float())
    return torch.cat(states)


@torch.no_grad()
def fit_state_statistics(model: GenEmbed, states: torch.Tensor) -> float:
    """For recon_form "centered": each compression position's mean over these states, and the mean
    norm of a state's deviation from it (returned)."""
    mean = states.mean(0)
    model.state_mean.copy_(mean)
    model.state_scale.fill_((states - mean).norm(dim=-1).mean().clamp(min=1e-6))
    return model.state_scale.item()


@torch.no_grad()
def fit_align_by_ridge(model: GenEmbed, states: torch.Tensor, targets: np.ndarray) -> float:
    """Set `align` to the ridge solution from the mean soft prompt of these states to the targets;
    return the R². The states come from initial_states, under the training precision."""
    feats = model.soft_prompt(states).mean(1).cpu().double()
    w, b, r2 = ridge_fit(feats, torch.as_tensor(targets))
    model.align.weight.copy_(w.T.float())
    model.align.bias.copy_(b.float())
    return r2


def batch_loss(model: GenEmbed, query_rows: list[list[int]], response_rows: list[list[int]], targets: torch.Tensor,
               w_rec: float, w_align: float, align_kind: str = "mse", bf16: bool = False,
               checkpointing: bool = False, w_margin: float = 0.0, margin: float = 0.5,
               rows_total: int | None = None, tokens_total: int | None = None):
    """(total, reconstruction, alignment, other) losses of one batch of tokenised queries and
    responses; `other` is the reconstruction loss under the next row's soft prompt (only computed
    when w_margin > 0, else None). w_rec = 0 skips the reconstruction passes (rec is then None).
    rows_total / tokens_total: these rows are one process's share of a batch of that many rows /
    response tokens; each loss is then this share's part of the whole batch's mean (the parts add up)."""
    pad_id = model.backbone.tokenizer.pad_token_id
    q_ids, q_mask = pad(query_rows, pad_id, side="left")
    r_ids, r_mask = pad(response_rows, pad_id, side="right")
    r_ids, r_mask = r_ids.to(model.device), r_mask.to(model.device)
    autocast = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16)
    lm = model.backbone.model
    rec = other = None
    total = 0
    with autocast:
        soft_prompt, embedding = model(q_ids, q_mask)
        if w_rec and w_margin:
            own_rows = reconstruction_loss(lm, model.decoder_input(soft_prompt), r_ids, r_mask, checkpointing,
                                           per_row=True)
            other_rows = reconstruction_loss(lm, model.decoder_input(soft_prompt.roll(1, 0)), r_ids, r_mask,
                                             checkpointing, per_row=True)
            tokens = r_mask.sum(1).float()  # rec stays the mean over tokens, as without the margin
            denominator = tokens.sum() if tokens_total is None else tokens_total
            rec, other = (own_rows * tokens).sum() / denominator, (other_rows * tokens).sum() / denominator
            total = w_rec * rec + w_margin * margin_loss(own_rows, other_rows, margin, rows_total)
        elif w_rec:
            rec = reconstruction_loss(lm, model.decoder_input(soft_prompt), r_ids, r_mask, checkpointing,
                                      tokens_total=tokens_total)
            total = w_rec * rec
    align = alignment_loss(embedding, targets.to(model.device), align_kind, rows_total)
    return total + w_align * align, rec, align, other


def alignment_weight(cfg: TrainConfig, dim: int) -> float:
    """The alignment loss's weight: cfg.w_align, or by default 4 x dim for "mse", 1 for "cosine"."""
    if cfg.w_align is not None:
        return cfg.w_align
    return 4.0 * dim if cfg.align_loss == "mse" else 1.0


def changed_settings(saved: dict, cfg: TrainConfig) -> list[str]:
    """Settings of `cfg` that differ from a saved run's and change its results (a setting the
    saved run predates counts as its default)."""
    current, defaults = asdict(cfg), asdict(TrainConfig(responses="", out_dir=""))
    return [k for k in current if k not in RESULT_NEUTRAL and saved.get(k, defaults[k]) != current[k]]


def loss_summary(log: list[dict], key: str, k: int = 10) -> tuple[float, float] | None:
    """Mean of `key` over the first and the last k logged steps that have it (steps that skipped
    reconstruction log none); None when no step has it."""
    values = [r[key] for r in log if r.get(key) is not None]
    if not values:
        return None
    return float(np.mean(values[:k])), float(np.mean(values[-k:]))


def plot_losses(log_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_rows(log_path)
    # a panel per loss the run trained (a run without reconstruction has no cross-entropy to show)
    panels = [(key, title) for key, title in (("rec", "reconstruction cross-entropy"), ("align", "alignment loss"))
              if any(r.get(key) is not None for r in rows)]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        kept = [r for r in rows if r.get(key) is not None]  # alignment-only steps have no reconstruction loss
        steps, values = [r["step"] for r in kept], [r[key] for r in kept]
        ax.plot(steps, values, lw=0.8, alpha=0.5)
        window = max(1, len(kept) // 20)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, lw=2)
        ax.set_title(title)
        ax.set_xlabel("step")
    fig.tight_layout()
    replace_file(png_path, lambda p: fig.savefig(p, dpi=120, format="png"))
    plt.close(fig)


def usable_rows(path: str | Path) -> list[dict]:
    """The (query, response) rows to train on; a row without a string query or response is an
    error naming its line, a row with an empty response is skipped (nothing to reconstruct)."""
    from .jsonl import numbered_rows

    rows = []
    for number, row in numbered_rows(path):
        for key in ("query", "response"):
            if not isinstance(row.get(key), str):
                raise ValueError(f"{path}:{number}: '{key}' is " + ("missing" if key not in row else
                                 f"{json.dumps(row[key])[:40]}, not a string"))
        if row["response"].strip():
            rows.append(row)
    return rows


def train(cfg: TrainConfig, show_progress_bar: bool = True, resume: bool = False) -> GenEmbed:
    """Train into the run folder cfg.out_dir: a new (or empty) folder, or with resume=True the
    folder of a run to continue from its resume/ state. Anything else is refused before any work.

    Under a launcher (`accelerate launch`, `torchrun`) each of N processes computes its share of
    every batch (batch_size stays the global batch), the trainable tensors' gradients are summed
    across processes, and only the main process writes; the weights equal a one-process run's up
    to float rounding, and a run may resume under another number of processes."""
    procs = distributed.current()
    out = Path(cfg.out_dir)
    resume_dir = out / "resume"
    if procs.is_main:
        recover(resume_dir)  # a kill mid-swap of resume/ left the previous state aside
    procs.barrier()
    has_state = (resume_dir / "trainer.pt").exists()
    started = has_state or (out / "log.jsonl").exists()  # killed before its first save: a log, no state
    if resume and not started:
        raise ValueError(f"nothing to resume in {out}: no run was started there (start without --resume)")
    leftovers = sorted(p.name for p in out.iterdir() if p.name != "cache") if out.is_dir() else []
    if not resume and leftovers:  # (cache/ holds teacher targets keyed by content: safe to share)
        raise ValueError(f"{out} already holds a run ({', '.join(leftovers)}): pass --resume to continue it, "
                         f"or choose a new --out")
    if cfg.batch_size % procs.world:
        raise ValueError(f"batch size {cfg.batch_size} cannot be split evenly over {procs.world} processes")
    procs.barrier()  # every process has checked the folder before the main one writes into it
    if procs.is_main:
        out.mkdir(parents=True, exist_ok=True)
    responses_sha1 = file_digest(cfg.responses, "sha1")
    show_progress_bar = show_progress_bar and procs.is_main
    say = print if procs.is_main else (lambda *a, **k: None)
    torch.manual_seed(cfg.seed)

    # -- data: queries, responses, teacher targets (cached) --------------------------------
    rows = usable_rows(cfg.responses)
    if cfg.limit:
        rows = rows[: cfg.limit]
    if len(rows) < cfg.batch_size:
        raise ValueError(f"{cfg.responses} has {len(rows)} usable rows, fewer than one batch ({cfg.batch_size})")
    backbone = load_backbone(cfg.backbone, dtype=cfg.dtype, device=procs.device)
    teacher = load_teacher(cfg.teacher, backbone)
    with procs.main_first():  # the main process fills the targets cache; the others read it
        targets = training_targets(teacher, [r["query"] for r in rows], [r["response"] for r in rows], cfg.target,
                                   out / "cache", show_progress_bar)

    # -- the student: fresh, or resumed from resume/ ----------------------------------------
    if has_state:
        model = load_checkpoint(resume_dir, backbone=backbone)
        state = torch.load(resume_dir / "trainer.pt", weights_only=False, map_location="cpu")
        if state.get("responses_sha1", responses_sha1) != responses_sha1:
            raise ValueError(f"{cfg.responses} changed since {out} was started (its contents differ from the "
                             f"file the run trained on): use a new --out")
        changed = changed_settings(state["train_config"], cfg)
        if changed:
            raise ValueError(f"{resume_dir} was written by a run with other settings ({', '.join(changed)}); "
                             f"use a new --out")
    else:
        model = GenEmbed.create(backbone, embedding_dim=teacher.dim, teacher=teacher.name, seed=cfg.seed,
                                token_init=cfg.token_init, recon_form=cfg.recon_form, prompt_frame=cfg.prompt_frame,
                                num_thought_tokens=cfg.num_thought_tokens,
                                num_compression_tokens=cfg.num_compression_tokens,
                                max_text_tokens=cfg.max_query_tokens, default_instruction=cfg.instruction)
        state = None
    instruction = model.resolve_instruction(cfg.instruction)
    tok = backbone.tokenizer
    queries = prompt_ids(tok, [r["query"] for r in rows], instruction, cfg.max_query_tokens)
    responses = response_ids(tok, [r["response"] for r in rows], cfg.max_response_tokens)
    pick = np.random.default_rng(cfg.seed).permutation(len(rows))[: cfg.ridge_examples]
    if state is None and cfg.recon_init == "rms":
        scale = scale_recon_to_embeddings(model, [queries[i] for i in pick[:32]], bf16=cfg.bf16)
        say(f"recon initialised as {scale:.4f} x identity (soft prompt at the token embeddings' norm)")
    if state is None and (cfg.recon_form == "centered" or cfg.align_init == "ridge"):
        states = initial_states(model, [queries[i] for i in pick], bf16=cfg.bf16)  # once, for both fits
    if state is None and cfg.recon_form == "centered":
        scale = fit_state_statistics(model, states)
        say(f"compression states centred on {len(pick)} queries (mean deviation norm {scale:.2f})")
    if state is None and cfg.align_init == "ridge":
        r2 = fit_align_by_ridge(model, states, targets[pick])
        say(f"align initialised by ridge on {len(pick)} queries (train R² {r2:.3f})")

    # -- optimiser: tokens and projections in their own groups ----------------------------
    groups = [{"params": [model.special_tokens], "lr": cfg.lr_tokens},
              {"params": [p for name, p in model.named_parameters() if name != "special_tokens"],
               "lr": cfg.lr_projections}]  # recon, align (and prompt_base)
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps))
    start = 0
    if state is None and resume and procs.is_main:
        say(f"{out}: the run stopped before its first save: starting again from step 0")
        write_text(out / "log.jsonl", "")
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["step"]
        if procs.is_main:
            log_rows = [r for r in read_rows(out / "log.jsonl", repair=True) if r["step"] < start]
            write_text(out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in log_rows))
    w_align = alignment_weight(cfg, teacher.dim)
    targets_t = torch.as_tensor(targets)
    trainable = [p for p in model.parameters() if p.requires_grad]

    # -- the loop -------------------------------------------------------------------------
    model.train()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="training", disable=not show_progress_bar)
    for step in bar:
        t0 = time.time()
        totals = {"loss": 0.0, "rec": 0.0, "align": 0.0, "rec_other": 0.0}
        # the schedule: one loss may train alone for the first steps (align_only_steps / rec_only_steps)
        step_w_rec = 0.0 if step < cfg.align_only_steps else cfg.w_rec
        step_w_align = 0.0 if step < cfg.rec_only_steps else w_align
        for micro in range(cfg.grad_accum):
            first = (step * cfg.grad_accum + micro) * cfg.batch_size
            idx = [example_order(len(rows), cfg.seed, first + k) for k in range(cfg.batch_size)]
            # several processes: each takes its slice, and each loss is its slice's part of the batch's mean
            totals_of_batch = {} if procs.world == 1 else {
                "rows_total": len(idx), "tokens_total": sum(len(responses[i]) for i in idx)}
            idx = procs.share(idx)
            loss, rec, align, other = batch_loss(model, [queries[i] for i in idx], [responses[i] for i in idx],
                                                 targets_t[idx], step_w_rec, step_w_align, cfg.align_loss, cfg.bf16,
                                                 cfg.gradient_checkpointing, cfg.w_margin, cfg.margin,
                                                 **totals_of_batch)
            (loss / cfg.grad_accum).backward()
            for key, value in (("loss", loss), ("rec", rec), ("align", align), ("rec_other", other)):
                if value is None:
                    totals[key] = None
                else:
                    totals[key] += value.item() / cfg.grad_accum
        procs.sum_([p.grad for p in trainable if p.grad is not None])  # the parts add up to the batch's gradient
        if procs.world > 1:  # the logged losses too
            parts = torch.tensor([totals[k] if totals[k] is not None else 0.0 for k in totals], dtype=torch.float64,
                                 device=model.device)
            procs.sum_([parts])
            totals = {k: (None if totals[k] is None else v) for k, v in zip(totals, parts.tolist())}
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if procs.is_main:
            append_rows(out / "log.jsonl", [{"step": step, **totals, "lr_tokens": optimizer.param_groups[0]["lr"],
                                            "seconds": round(time.time() - t0, 3)}])
        bar.set_postfix(rec="-" if totals["rec"] is None else f"{totals['rec']:.3f}", align=f"{totals['align']:.4f}")
        if procs.is_main and ((step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps):
            trainer_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                             "step": step + 1, "train_config": asdict(cfg), "responses_sha1": responses_sha1}
            save_checkpoint(model, resume_dir, extra={"trainer.pt": lambda p: torch.save(trainer_state, p)})

    # -- the result -----------------------------------------------------------------------
    model.eval()
    if procs.is_main:
        if cfg.query_lens:
            from .query_lens import QueryLens

            model.query_lens = QueryLens.build(model, [r["query"] for r in rows], show_progress_bar=show_progress_bar,
                                               bf16=cfg.bf16)
            say(f"query lens: {len(model.query_lens.queries)} training queries")
        save_checkpoint(model, out / "model")
        write_text(out / "train_config.json", json.dumps({**asdict(cfg), "num_processes": procs.world}, indent=2) + "\n")
        plot_losses(out / "log.jsonl", out / "losses.png")
    procs.barrier()  # no process returns before the checkpoint exists
    return model
