"""The build folder and its resumable run, phase by phase.

    OUT/build_config.json   the settings and the texts' digest (a resumed build must match them)
    OUT/log.jsonl           one row per step: phase, step, loss (MNTP: masked-token accuracy), lr, seconds
    OUT/mntp-loss.png, OUT/simcse-loss.png   each phase's loss per step, raw and smoothed
    OUT/resume/PHASE/       the running phase's LoRA weights, optimiser, scheduler and step, written
                            whole every save_every steps (genembed.atomic.write_folder)
    OUT/mntp/, OUT/simcse/  the teacher (layout.py), each written once its phase ends

A phase whose folder exists is done and skipped; a `kill -9` at any moment loses at most the steps since
the last save, and the resumed build reaches the same weights as an uninterrupted one (a step's data,
masking and dropout are functions of the step number: phases.py).
"""
from __future__ import annotations

import gc
import json
import shutil
import time
from contextlib import ExitStack
from dataclasses import asdict, fields
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..atomic import folder_lock, recover_folder, write_folder, write_text
from ..jsonl import append_rows, read_json_object, read_rows
from .config import RESULT_NEUTRAL, TeacherBuildConfig, TeacherBuildError
from .layout import ADAPTER_WEIGHTS
from .texts import check_texts, read_texts, texts_digest

CONFIG_FILE, LOG_FILE = "build_config.json", "log.jsonl"
PHASES = ("mntp", "simcse")


def teacher_spec(cfg: TeacherBuildConfig) -> str:
    """The teacher spec of a finished build (genembed.teachers.load_teacher, `genembed train --teacher`)."""
    out = Path(cfg.out_dir)
    return f"{out / 'mntp'}+{out / 'simcse'}" if cfg.simcse_steps else str(out / "mntp")


def phase_done(out: Path, name: str) -> bool:
    recover_folder(out / name)  # a kill mid-swap of the folder left it aside
    return (out / name / ADAPTER_WEIGHTS).is_file()


def open_build(cfg: TeacherBuildConfig, resume: bool) -> dict | None:
    """Check the build folder before any work: a new (or empty) folder, or with resume a started build
    with the same settings. Returns the saved build_config.json of a resumed build (None for a new one)."""
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise TeacherBuildError(f"{out} is a file; the build folder must be a folder")
    saved_path = out / CONFIG_FILE
    if resume and not saved_path.is_file():
        raise TeacherBuildError(f"nothing to resume in {out}: no build was started there (start without --resume)")
    if not resume:
        leftovers = sorted(p.name for p in out.iterdir() if p.name != ".lock") if out.is_dir() else []
        if leftovers:
            raise TeacherBuildError(f"{out} already holds something ({', '.join(leftovers[:4])}): pass --resume to "
                                    f"continue a build, or choose a new --out")
        return None
    saved = read_json_object(saved_path, TeacherBuildError)
    settings = saved.get("settings")
    if not isinstance(settings, dict):
        raise TeacherBuildError(f"{saved_path} is corrupt: it has no 'settings' object")
    known = {f.name for f in fields(TeacherBuildConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TeacherBuildError(f"{saved_path} records settings this genembed does not have ({', '.join(unknown)}): "
                                f"the build cannot be resumed; use a new --out")
    current = asdict(cfg)
    changed = [k for k in current if k not in RESULT_NEUTRAL and k in settings and settings[k] != current[k]]
    if changed:
        raise TeacherBuildError(f"{out} was started with other settings ({', '.join(changed)}): resume it with "
                                f"the same ones, or use a new --out")
    return saved


def build_teacher(cfg: TeacherBuildConfig, resume: bool = False, show_progress_bar: bool = True, on_step=None) -> str:
    """Build the LLM2Vec teacher into cfg.out_dir: a new (or empty) folder, or with resume=True the folder of
    a build to continue (its finished phases skipped, the running one from its resume state). on_step(phase,
    steps_done) is called after every step (and its save, when there is one). Returns the teacher spec."""
    out = Path(cfg.out_dir)
    with ExitStack() as hold:  # one build per folder at a time, from before it is read until the build ends
        if out.is_dir():
            hold.enter_context(folder_lock(out, "teacher build"))
        saved = open_build(cfg, resume)
        return _build(cfg, out, saved, hold, show_progress_bar, on_step)


def _build(cfg: TeacherBuildConfig, out: Path, saved: dict | None, hold: ExitStack, show_progress_bar: bool,
           on_step) -> str:
    """The build, in the folder open_build checked (held by `hold` once it exists)."""
    from transformers import AutoConfig, AutoTokenizer

    from ..backbone import transformers_path
    from ..bidirectional import check_family

    where = transformers_path(cfg.backbone)  # (a GGUF is de-quantised once, into the cache)
    check_family(AutoConfig.from_pretrained(where), f"backbone {cfg.backbone}")
    texts = read_texts(cfg)
    digest = texts_digest(texts)
    if saved is not None and saved.get("texts_sha1") != digest:
        raise TeacherBuildError(f"the texts ({cfg.texts}) differ from those {out} was started on: use a new --out")
    check_texts(cfg, AutoTokenizer.from_pretrained(where), texts)  # (an hour of MNTP must not end in this error)
    if saved is None:
        if not out.is_dir():
            out.mkdir(parents=True)
            hold.enter_context(folder_lock(out, "teacher build"))
        write_text(out / CONFIG_FILE, json.dumps({"settings": asdict(cfg), "texts_sha1": digest,
                                                  "texts": len(texts)}, indent=2) + "\n")
    say = print if show_progress_bar else (lambda *a, **k: None)
    say(f"teacher build: {len(texts)} texts, backbone {cfg.backbone}")

    from .phases import MNTPPhase, SimCSEPhase

    plan = [("mntp", cfg.mntp_steps, cfg.mntp_lr, lambda: MNTPPhase(cfg, texts, where))]
    if cfg.simcse_steps:
        plan.append(("simcse", cfg.simcse_steps, cfg.simcse_lr, lambda: SimCSEPhase(cfg, texts, where, out / "mntp")))
    for name, steps, lr, make in plan:
        if phase_done(out, name):
            say(f"{name}: done already ({out / name})")
            shutil.rmtree(out / "resume" / name, ignore_errors=True)
            continue
        phase = make()
        run_phase(phase, out, steps, lr, show_progress_bar, on_step)
        phase.write(out / name)
        plot_phase(out / LOG_FILE, name, out / f"{name}-loss.png")
        shutil.rmtree(out / "resume" / name, ignore_errors=True)
        del phase
        gc.collect()
    if (out / "resume").is_dir() and not any((out / "resume").iterdir()):
        (out / "resume").rmdir()
    spec = teacher_spec(cfg)
    say(f"teacher: {spec}")
    return spec


def run_phase(phase, out: Path, steps: int, lr: float, show_progress_bar: bool, on_step) -> None:
    """Train one phase from its resume state (or from step 0) to `steps`, saving every save_every steps."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    cfg, name = phase.cfg, phase.name
    state_dir = out / "resume" / name
    recover_folder(state_dir)
    optimizer = torch.optim.AdamW(phase.trainable, lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, (steps - s) / max(1, steps)))
    start = 0
    if (state_dir / "trainer.pt").is_file():
        state = torch.load(state_dir / "trainer.pt", map_location="cpu", weights_only=True)
        result = set_peft_model_state_dict(phase.encoder, load_file(str(state_dir / ADAPTER_WEIGHTS)))
        if [k for k in result.unexpected_keys if "lora_" in k]:
            raise TeacherBuildError(f"{state_dir}: its LoRA weights do not fit this phase's model: use a new --out")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = int(state["step"])
    log_path = out / LOG_FILE
    if log_path.exists():  # the log keeps the steps the resume state has, no more
        rows = [r for r in read_rows(log_path, repair=True) if r.get("phase") != name or r["step"] < start]
        write_text(log_path, "".join(json.dumps(r) + "\n" for r in rows))

    bar = tqdm(range(start, steps), initial=start, total=steps, desc=f"teacher {name}", disable=not show_progress_bar)
    for step in bar:
        t0 = time.time()
        totals = phase.step(step)
        torch.nn.utils.clip_grad_norm_(phase.trainable, cfg.clip_grad_norm)
        lr_now = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        append_rows(log_path, [{"phase": name, "step": step, **totals, "lr": lr_now,
                                "seconds": round(time.time() - t0, 3)}])
        bar.set_postfix(loss=f"{totals['loss']:.4f}")
        if (step + 1) % cfg.save_every == 0 or step + 1 == steps:
            weights = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(phase.encoder).items()}
            trainer = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step + 1}
            write_folder(state_dir, {ADAPTER_WEIGHTS: lambda p: save_file(weights, str(p)),
                                     "trainer.pt": lambda p: torch.save(trainer, p)})
        if on_step is not None:
            on_step(name, step + 1)


def plot_phase(log_path: Path, name: str, png_path: Path) -> None:
    """A phase's loss (and, for MNTP, masked-token accuracy) per step, raw and smoothed."""
    from ..train import plot_curves

    rows = [r for r in read_rows(log_path) if r.get("phase") == name]
    plot_curves(rows, [(k, t) for k, t in (("loss", f"{name} loss"), ("accuracy", "masked-token accuracy"))
                       if rows and all(k in r for r in rows)], png_path)
