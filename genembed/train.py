"""Training: the frozen LLM stays untouched; the special tokens, `recon` and `align` learn.

Each step:  queries ─► student ─► (soft prompt, embedding)
            loss = w_rec · CE(response | soft prompt)  +  w_align · MSE(embedding, teacher(response))
With `documents`, each response is also a row of its own (under the "document" instruction, toward
teacher(response)), so the side that retrieval encodes its documents with is trained too.

The run folder holds: `log.jsonl` (every step's loss components), `resume/` (latest checkpoint
plus optimizer/scheduler state, written atomically every `save_every` steps), and at the end
`model/` (the final checkpoint: `config.json`, `model.safetensors`, the query lens) and `losses.png`.
Data order is a pure function of (seed, step), so a resumed run reaches the same weights as an
uninterrupted one.
"""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import distributed
from .atomic import file_digest, folder_lock, recover_folder, write_text
from .backbone import load_backbone
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import InputError
from .generate import read_responses
from .inputs import official_response_ids, pad, response_ids
from .jsonl import append_rows, read_rows
from .losses import alignment_loss, reconstruction_loss
from .model import GenEmbed
from .query_lens import QueryLens
from .recipe import RESULT_NEUTRAL, TrainConfig
from .ridge import ridge_fit
from .teachers import alignment_targets, cached_targets, load_teacher
from .vectors import unit


def example_order(n: int, seed: int, position: int) -> int:
    """Index of the example at a global position in an endless stream of seeded permutations."""
    epoch, offset = divmod(position, n)
    return int(np.random.default_rng(seed + epoch).permutation(n)[offset])


def lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


@torch.no_grad()
def fit_align_by_ridge(model: GenEmbed, query_rows: list[list[int]], targets: np.ndarray, batch_size: int = 16,
                       bf16: bool = False) -> float:
    """Set `align` to the ridge solution from the mean initial soft prompt of these queries (under the
    training precision) to their targets; return the R²."""
    autocast = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16)
    states = []
    for start in range(0, len(query_rows), batch_size):
        ids, mask = pad(query_rows[start:start + batch_size], model.backbone.tokenizer.pad_token_id, side="left")
        with autocast:
            states.append(model.compression_states(ids, mask, split_prefix=False).float())
    feats = model.recon(torch.cat(states)).mean(1).cpu().double()
    w, b, r2 = ridge_fit(feats, torch.as_tensor(targets))
    model.align.weight.copy_(w.T.float())
    model.align.bias.copy_(b.float())
    return r2


def input_texts(model: GenEmbed, texts: list[str]) -> list[str]:
    """Texts as the student reads them in training: the official collator strips each one, so in its
    layout training does too."""
    return [t.strip() for t in texts] if model.config.input_layout == "official" else list(texts)


def with_document_rows(model: GenEmbed, rows: list[dict], teacher, queries, responses, targets, cache_dir: Path,
                       show_progress_bar: bool, unit_targets: bool):
    """The training rows followed by one document row per response (TrainConfig.documents): the response
    text under the "document" instruction, aligned to the teacher's embedding of that response (whatever
    TrainConfig.target is: a document's own content is what a query's answer should land on), and, for
    reconstruction, the response again."""
    documents = model.token_rows(input_texts(model, [r["response"] for r in rows]),
                                 model.resolve_instruction("document"))
    with distributed.current().main_first():  # cached already unless the query rows' target is "query" alone
        own = cached_targets(teacher, [r["response"] for r in rows], cache_dir, show_progress_bar)
    return queries + documents, responses + responses, np.concatenate([targets, unit(own) if unit_targets else own])


def batch_loss(model: GenEmbed, query_rows: list[list[int]], response_rows: list[list[int]], targets: torch.Tensor,
               w_rec: float, w_align: float, bf16: bool = False, checkpointing: bool = False,
               rows_total: int | None = None, tokens_total: int | None = None):
    """(total, reconstruction, alignment) losses of one batch of tokenised queries and responses.
    w_rec = 0 skips the reconstruction pass (rec is then None). rows_total / tokens_total: these rows
    are one process's share of a batch of that many rows / response tokens; each loss is then this
    share's part of the whole batch's mean (the parts add up)."""
    pad_id = model.backbone.tokenizer.pad_token_id
    q_ids, q_mask = pad(query_rows, pad_id, side="left")
    with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
        soft_prompt, embedding = model(q_ids, q_mask)
        rec = None
        if w_rec:
            r_ids, r_mask = (t.to(model.device) for t in pad(response_rows, pad_id, side="right"))
            # the official collator scores no target equal to the pad id (with SmolLM2 that is the BOS every
            # target starts with): in its layout, neither does training
            scored = (r_ids != pad_id).long() if model.config.input_layout == "official" else None
            rec = reconstruction_loss(model.backbone.model, soft_prompt, r_ids, r_mask, checkpointing,
                                      tokens_total=tokens_total, target_mask=scored)
    align = alignment_loss(embedding, targets.to(model.device), rows_total)
    return (w_rec * rec if w_rec else 0) + w_align * align, rec, align


def changed_settings(saved: dict, cfg: TrainConfig) -> list[str]:
    """Settings of `cfg` that differ from a saved run's and change its results (a setting the
    saved run predates counts as its default)."""
    current, defaults = asdict(cfg), asdict(TrainConfig(responses="", out_dir=""))
    return [k for k in current if k not in RESULT_NEUTRAL and saved.get(k, defaults[k]) != current[k]]


def unknown_settings(saved: dict) -> list[str]:
    """Settings a saved run recorded that TrainConfig does not have (removed since, or from another version)."""
    return sorted(set(saved) - set(TrainConfig.__dataclass_fields__))


def loss_summary(log: list[dict], key: str, k: int = 10) -> tuple[float, float] | None:
    """Mean of `key` over the first and the last k logged steps that have it (steps that skipped
    reconstruction log none); None when no step has it."""
    values = [r[key] for r in log if r.get(key) is not None]
    if not values:
        return None
    return float(np.mean(values[:k])), float(np.mean(values[-k:]))


def plot_losses(log_path: Path, png_path: Path) -> None:
    """losses.png: each trained loss per step, raw and smoothed."""
    rows = read_rows(log_path)
    # a panel per loss the run trained (a run without reconstruction has no cross-entropy to show)
    plot_curves(rows, [(key, title) for key, title in (("rec", "reconstruction cross-entropy"),
                                                       ("align", "alignment loss"))], png_path)


def plot_curves(rows: list[dict], panels: list[tuple[str, str]], png_path: Path) -> None:
    """One panel per (key, title) that some row records: the value per step, raw and smoothed (a moving
    mean over a twentieth of the rows). A Figure on its own Agg canvas: the matplotlib backend is untouched.
    Nothing is written where no panel has values."""
    from .eval.results import figure, save_png

    panels = [(key, title) for key, title in panels if any(r.get(key) is not None for r in rows)]
    if not panels:
        return
    fig = figure((5 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        kept = [r for r in rows if r.get(key) is not None]
        steps, values = [r["step"] for r in kept], [r[key] for r in kept]
        ax.plot(steps, values, lw=0.8, alpha=0.5)
        window = max(1, len(kept) // 20)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, lw=2)
        ax.set_title(title)
        ax.set_xlabel("step")
    save_png(fig, png_path)


def open_run(cfg: TrainConfig, resume: bool, procs, hold: ExitStack) -> bool:
    """Check the run folder before any work: a new (or empty) folder, or with resume a started run.
    The main process holds the folder (folder_lock) until `hold` closes, from before it reads or repairs
    anything in it. Returns whether a resume state exists."""
    out, resume_dir = Path(cfg.out_dir), Path(cfg.out_dir) / "resume"
    if procs.is_main and out.is_dir():
        hold.enter_context(folder_lock(out, "training run"))
        recover_folder(resume_dir)  # a kill mid-swap of resume/ left the previous state aside
    procs.barrier()
    has_state = (resume_dir / "trainer.pt").exists()
    started = has_state or (out / "log.jsonl").exists()  # killed before its first save: a log, no state
    if resume and not started:
        raise InputError(f"nothing to resume in {out}: no run was started there (start without --resume)")
    # (cache/ holds teacher targets keyed by content: safe to share)
    leftovers = sorted(p.name for p in out.iterdir() if p.name not in ("cache", ".lock")) if out.is_dir() else []
    if not resume and leftovers:
        raise InputError(f"{out} already holds a run ({', '.join(leftovers)}): pass --resume to continue it, "
                         f"or choose a new --out")
    if cfg.batch_size % procs.world:
        raise InputError(f"batch size {cfg.batch_size} cannot be split evenly over {procs.world} processes")
    procs.barrier()  # every process has checked the folder before the main one writes into it
    if procs.is_main and not out.is_dir():
        out.mkdir(parents=True)
        hold.enter_context(folder_lock(out, "training run"))
    return has_state


def student(cfg: TrainConfig, backbone, teacher, resume_dir: Path, has_state: bool, responses_sha1: str):
    """(model, saved trainer state or None): resumed from resume/ (same settings and responses, else
    refused), or fresh."""
    if not has_state:
        model = GenEmbed.create(backbone, embedding_dim=teacher.dim, teacher=teacher.name, seed=cfg.seed,
                                num_thought_tokens=cfg.num_thought_tokens,
                                num_compression_tokens=cfg.num_compression_tokens,
                                max_text_tokens=cfg.max_query_tokens, default_instruction=cfg.instruction,
                                input_layout=cfg.input_layout)
        return model, None
    model = load_checkpoint(resume_dir, backbone=backbone)
    state = torch.load(resume_dir / "trainer.pt", weights_only=False, map_location="cpu")
    if state.get("responses_sha1", responses_sha1) != responses_sha1:
        raise InputError(f"{cfg.responses} changed since {cfg.out_dir} was started (its contents differ from the "
                         f"file the run trained on): use a new --out")
    unknown = unknown_settings(state["train_config"])
    if unknown:
        raise InputError(f"{resume_dir} was written with settings this genembed does not have "
                         f"({', '.join(unknown)}): it cannot be resumed; use a new --out")
    changed = changed_settings(state["train_config"], cfg)
    if changed:
        raise InputError(f"{resume_dir} was written by a run with other settings ({', '.join(changed)}); "
                         f"use a new --out")
    return model, state


def optimiser(cfg: TrainConfig, model: GenEmbed, state: dict | None):
    """(AdamW with the tokens and the projections in their own groups, its warm-up + linear-decay
    schedule, the first step to run): fresh, or restored from a resume state."""
    groups = [{"params": [model.special_tokens], "lr": cfg.lr_tokens},
              {"params": [*model.recon.parameters(), *model.align.parameters()], "lr": cfg.lr_projections}]
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps))
    if state is None:
        return optimizer, scheduler, 0
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return optimizer, scheduler, state["step"]


def train(cfg: TrainConfig, show_progress_bar: bool = True, resume: bool = False) -> GenEmbed:
    """Train into the run folder cfg.out_dir: a new (or empty) folder, or with resume=True the
    folder of a run to continue from its resume/ state. Anything else is refused before any work, and
    so is a folder another run is writing into.

    Under a launcher (`accelerate launch`, `torchrun`) each of N processes computes its share of
    every batch (batch_size stays the global batch), the trainable tensors' gradients are summed
    across processes, and only the main process writes; the weights equal a one-process run's up
    to float rounding, and a run may resume under another number of processes."""
    procs = distributed.current()
    with ExitStack() as hold:  # the run folder, held by the main process until the run ends
        has_state = open_run(cfg, resume, procs, hold)
        return _run(cfg, procs, has_state, show_progress_bar, resume)


def _run(cfg: TrainConfig, procs, has_state: bool, show_progress_bar: bool, resume: bool) -> GenEmbed:
    """The run, in the folder open_run checked (and the main process holds)."""
    out = Path(cfg.out_dir)
    resume_dir = out / "resume"
    responses_sha1 = file_digest(cfg.responses, "sha1")
    show_progress_bar = show_progress_bar and procs.is_main
    say = print if procs.is_main else (lambda *a, **k: None)
    torch.manual_seed(cfg.seed)

    # -- data: queries, responses, teacher targets (cached) --------------------------------
    rows = read_responses(cfg.responses)[: cfg.limit or None]
    if len(rows) < cfg.batch_size:
        raise InputError(f"{cfg.responses} has {len(rows)} usable rows, fewer than one batch ({cfg.batch_size})")
    backbone = load_backbone(cfg.backbone, dtype=cfg.dtype, device=procs.device)
    teacher = load_teacher(cfg.teacher, backbone)
    with procs.main_first():  # the main process fills the targets cache; the others read it
        targets = alignment_targets(teacher, [r["query"] for r in rows], [r["response"] for r in rows], cfg.target,
                                    out / "cache", show_progress_bar)
        if cfg.unit_targets:
            targets = unit(targets)

    # -- the student: fresh (align warm-started by least squares), or resumed ---------------
    model, state = student(cfg, backbone, teacher, resume_dir, has_state, responses_sha1)
    tok = backbone.tokenizer
    queries = model.token_rows(input_texts(model, [r["query"] for r in rows]),
                               model.resolve_instruction(cfg.instruction))
    targets_of = official_response_ids if model.config.input_layout == "official" else response_ids
    responses = targets_of(tok, [r["response"] for r in rows], cfg.max_response_tokens)
    if state is None:  # (on the queries alone: a run with document rows starts where one without does)
        pick = np.random.default_rng(cfg.seed).permutation(len(rows))[: cfg.ridge_examples]
        r2 = fit_align_by_ridge(model, [queries[i] for i in pick], targets[pick], bf16=cfg.bf16)
        say(f"align initialised by ridge on {len(pick)} queries (train R² {r2:.3f})")
    if cfg.documents:
        queries, responses, targets = with_document_rows(model, rows, teacher, queries, responses, targets,
                                                         out / "cache", show_progress_bar, cfg.unit_targets)
        if cfg.unit_targets:
            targets = unit(targets)

    # -- optimiser: tokens and projections in their own groups ----------------------------
    optimizer, scheduler, start = optimiser(cfg, model, state)
    if procs.is_main and resume:  # the log keeps the steps the resume state has, no more
        if state is None:
            say(f"{out}: the run stopped before its first save: starting again from step 0")
        log_rows = [r for r in read_rows(out / "log.jsonl", repair=True) if r["step"] < start]
        write_text(out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in log_rows))

    # -- the loop -------------------------------------------------------------------------
    model.train()
    step_fn = Steps(cfg, model, queries, responses, torch.as_tensor(targets), procs)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="training", disable=not show_progress_bar)
    for step in bar:
        t0 = time.time()
        totals = step_fn(step)
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
            model.query_lens = QueryLens.build_rows(model, rows, show_progress_bar=show_progress_bar,
                                                    bf16=cfg.bf16)
            say(f"query lens: {len(model.query_lens.queries)} training queries")
        save_checkpoint(model, out / "model")
        write_text(out / "train_config.json", json.dumps({**asdict(cfg), "num_processes": procs.world}, indent=2) + "\n")
        plot_losses(out / "log.jsonl", out / "losses.png")
    procs.barrier()  # no process returns before the checkpoint exists
    return model


class Steps:
    """The gradients of one optimiser step (its micro-batches, this process's share of each, summed
    across processes, clipped) and the step's losses, from the step number alone."""

    def __init__(self, cfg: TrainConfig, model: GenEmbed, queries, responses, targets: torch.Tensor, procs):
        self.cfg, self.model, self.procs = cfg, model, procs
        self.queries, self.responses, self.targets = queries, responses, targets
        self.w_align = cfg.alignment_weight(model.config.embedding_dim)
        self.trainable = [p for p in model.parameters() if p.requires_grad]

    def __call__(self, step: int) -> dict:
        cfg, procs = self.cfg, self.procs
        totals = {"loss": 0.0, "rec": 0.0, "align": 0.0}
        # the schedule: reconstruction may train alone for the first steps (rec_only_steps)
        w_align = 0.0 if step < cfg.rec_only_steps else self.w_align
        for micro in range(cfg.grad_accum):
            first = (step * cfg.grad_accum + micro) * cfg.batch_size
            idx = [example_order(len(self.queries), cfg.seed, first + k) for k in range(cfg.batch_size)]
            # several processes: each takes its slice, and each loss is its slice's part of the batch's mean
            whole = {} if procs.world == 1 else {
                "rows_total": len(idx), "tokens_total": sum(len(self.responses[i]) for i in idx)}
            idx = procs.share(idx)
            loss, rec, align = batch_loss(self.model, [self.queries[i] for i in idx], [self.responses[i] for i in idx],
                                          self.targets[idx], cfg.w_rec, w_align, cfg.bf16, cfg.gradient_checkpointing,
                                          **whole)
            (loss / cfg.grad_accum).backward()
            for key, value in (("loss", loss), ("rec", rec), ("align", align)):
                totals[key] = None if value is None else totals[key] + value.item() / cfg.grad_accum
        procs.sum_([p.grad for p in self.trainable if p.grad is not None])  # the parts add up to the batch's gradient
        if procs.world > 1:  # the logged losses too
            parts = torch.tensor([v or 0.0 for v in totals.values()], dtype=torch.float64, device=self.model.device)
            procs.sum_([parts])
            totals = {k: (None if totals[k] is None else v) for k, v in zip(totals, parts.tolist())}
        torch.nn.utils.clip_grad_norm_(self.trainable, cfg.clip_grad_norm)
        return totals
