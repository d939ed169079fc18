"""Several genembed models against the baselines, on the tasks, in one call (what `genembed eval` runs).

    from genembed.eval.suite import evaluate_models
    evaluate_models(["runs/x/run/model"], out_dir="runs/eval")   # + the bundled default and every baseline

The baselines run on the first model's backbone and teacher (MiniLM for a `self` student).
"""
from __future__ import annotations

from pathlib import Path

from ..checkpoint import DEFAULT_CHECKPOINT
from ..errors import InputError
from ..loading import load_model
from ..teachers import load_teacher
from .methods import BackboneMeanPool, FusedWithInput, HyDE, RidgeOnMeanPool, Student, TeacherOnInput
from .run import TASKS, evaluate

BASELINES = ("teacher", "backbone", "ridge", "hyde", "fused")
DEFAULT_BASELINES = BASELINES[:4]  # fused is asked for by name
DEFAULT_TASKS = ("qa", "safety", "classification", "clustering", "decoding")


def check_names(kind: str, names, allowed) -> list[str]:
    names = [n for n in names if n]
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise InputError(f"unknown {kind}(s) {unknown}; choose from {sorted(allowed)}")
    return names


def build_methods(models: list, baselines=DEFAULT_BASELINES, include_default: bool = True,
                  ridge_responses: str | Path | None = None, hyde_tasks: set[str] | None = None,
                  cache_dir: str | Path = "runs/eval/cache", bf16: bool = True, backend: str | None = None,
                  teacher: str | None = None) -> list:
    """The students (the bundled default first unless include_default=False; then `models`: checkpoint
    folders or loaded models) and the baselines named, on the first student's backbone and teacher (or the
    teacher spec `teacher`: any genembed.teachers.load_teacher accepts); every one that runs the backbone in
    bf16 autocast or not (bf16); the students on `backend` (None: as they are)."""
    baselines = check_names("baseline", baselines, BASELINES)
    if "ridge" in baselines and ridge_responses is None:
        raise InputError("the ridge baseline needs ridge_responses (--ridge-responses: the student's training "
                         "JSONL), or leave 'ridge' out of the baselines")
    paths = ([DEFAULT_CHECKPOINT] if include_default else []) + list(models)
    students = [p if not isinstance(p, (str, Path)) else load_model(p) for p in paths]
    if backend:
        for student in students:
            student.set_backend(backend)
    methods = [Student(m, "genembed default" if p is DEFAULT_CHECKPOINT else f"genembed {p}", bf16=bf16)
               for m, p in zip(students, paths)]
    reference = students[0].config if students else None
    backbone = reference.backbone if reference else "smollm2-135m-instruct"
    teacher_name = teacher or (reference.teacher if reference and reference.teacher != "self" else "all-minilm-l6-v2")
    if teacher_name == "self":
        raise InputError("the 'self' teacher on the input is the backbone baseline: use baselines 'backbone'")
    teacher = load_teacher(teacher_name) if {"teacher", "ridge", "hyde"} & set(baselines) else None
    if "teacher" in baselines:
        methods.append(TeacherOnInput(teacher))
    if "backbone" in baselines:
        methods.append(BackboneMeanPool(backbone, bf16=bf16))
    if "ridge" in baselines:
        methods.append(RidgeOnMeanPool(backbone, teacher, ridge_responses, cache_dir, bf16=bf16))
    if "hyde" in baselines:
        methods.append(HyDE(backbone, teacher, cache_dir, tasks=hyde_tasks, bf16=bf16))
    if "fused" in baselines:  # each student beside its embedding averaged with its own teacher's of the input
        # one input-side method per teacher, shared with the baselines above (its embeddings are reused)
        on_input = {("self", m.backbone_name) if isinstance(m, BackboneMeanPool) else m.teacher.name: m
                    for m in methods if isinstance(m, (TeacherOnInput, BackboneMeanPool))}
        for student, model in zip(methods[:len(students)], students):
            config = model.config
            key = ("self", config.backbone) if config.teacher == "self" else config.teacher
            if key not in on_input:
                on_input[key] = (BackboneMeanPool(config.backbone, bf16=bf16) if config.teacher == "self"
                                 else TeacherOnInput(load_teacher(config.teacher)))
            methods.append(FusedWithInput(student, on_input[key]))
    if not methods:
        raise InputError("nothing to evaluate: no model and no baseline")
    return methods


def evaluate_models(models: list = (), tasks=DEFAULT_TASKS, baselines=DEFAULT_BASELINES, out_dir: str | Path = "runs/eval",
                    include_default: bool = True, ridge_responses: str | Path | None = None,
                    hyde_tasks: set[str] | None = {"qa", "decoding"}, cost_texts: int = 32,
                    cost_only: bool = False, skip_cost: bool = False, bf16: bool = True,
                    backend: str = "torch") -> dict:
    """Score the models and baselines on the tasks; results accumulate in OUT_DIR/results.{json,md,png}
    (run.evaluate). hyde_tasks None: HyDE on every task (its generation is slow on a CPU). bf16: autocast
    for every method that runs the backbone; backend: how the students run (genembed.backends)."""
    tasks = check_names("task", tasks, TASKS)
    methods = build_methods(list(models), baselines, include_default, ridge_responses, hyde_tasks,
                            Path(out_dir) / "cache", bf16=bf16, backend=backend)
    return evaluate(methods, tasks, out_dir, cost_texts=cost_texts, cost_only=cost_only, skip_cost=skip_cost)
