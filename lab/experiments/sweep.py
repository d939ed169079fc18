"""Recipe experiments: train short runs from a TOML spec, score each with the eval harness, and
write one table (markdown + JSON + PNG) of every variant with the command that reproduces it.

    python lab/experiments/sweep.py lab/experiments/specs/recipe.toml            # all variants
    python lab/experiments/sweep.py lab/experiments/specs/recipe.toml --only a,b  # some of them

Spec:
    responses = "runs/default/train.jsonl"    # training rows (from `genembed generate`); a variant may set its own
    tasks = ["qa", "safety", "classification", "clustering"]
    reference = "lab/reports/eval-default.json"      # baseline rows (teacher, mean-pool, ridge, HyDE) to compare with
    [base]                                    # TrainConfig fields every variant shares
    steps = 150
    [[variant]]
    name = "paper"                            # a variant = a name + TrainConfig fields that differ
    [[variant]]
    name = "recon-rms"
    recon_init = "rms"
    [[variant]]                               # a run trained and scored elsewhere (e.g. the bundled default):
    name = "default"                          # its own out_dir, and its row from a `genembed eval` results file
    out_dir = "runs/default/run"
    scores = "lab/reports/eval-default.json#genembed default"  # or another sweep's: "lab/experiments/results/x.json#name"

Resumable: a variant whose model exists is not retrained, one whose eval row exists is not
re-scored (delete runs/experiments/<spec>/<variant> or its row to redo it). Runs live under
runs/experiments/<spec>/ (git-ignored); the table goes to lab/experiments/results/<spec>.{md,json,png}.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tomllib
from dataclasses import fields
from pathlib import Path

import numpy as np

from genembed.eval.run import PRIMARY
from genembed.recipe import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
# each setting's flag, as `genembed train` names it (recipe.py)
FLAG = {f.name: (lambda flag: flag if isinstance(flag, str) else flag[0])(f.metadata.get("flag", "--" + f.name.replace("_", "-")))
        for f in fields(TrainConfig)}
# reference rows: the input-centric baselines every variant must beat, and the upper bound
TEACHER, MEANPOOL, HYDE = "teacher on input", "backbone mean-pool", "HyDE"


def train_command(settings: dict) -> str:
    """The `genembed train` command line that trains this variant."""
    parts = ["genembed train", f"--responses {settings['responses']}", f"--out {settings['out_dir']}"]
    defaults = TrainConfig(responses="", out_dir="")
    for key, value in settings.items():
        if key in ("responses", "out_dir") or getattr(defaults, key) == value:
            continue
        flag = FLAG[key]
        parts.append(flag if value is True else f"--no-{flag[2:]}" if value is False else f"{flag} {value}")
    return " ".join(parts)


def variant_settings(spec: dict, variant: dict, out_dir: str) -> dict:
    """TrainConfig fields of one variant: the spec's responses and [base], then the variant's own
    fields (its own responses or out_dir included) on top."""
    return {"responses": spec["responses"], "out_dir": out_dir, **spec.get("base", {}),
            **{k: x for k, x in variant.items() if k not in ("name", "scores")}}


def scored_row(ref: str, root: Path = ROOT) -> tuple[dict, dict]:
    """The tasks and the row named by "path#method": a `genembed eval` results.json, or another
    sweep's table (lab/experiments/results/<spec>.json, which holds one under "results")."""
    path, method = ref.split("#", 1)
    scored = json.loads((root / path).read_text())
    scored = scored.get("results", scored)
    if method not in scored["methods"]:
        raise SystemExit(f"{path} has no row {method!r} (it has: {', '.join(scored['methods'])})")
    return scored["tasks"], scored["methods"][method]


def find_row(rows: dict, prefix: str) -> dict | None:
    return next((row for name, row in rows.items() if name.startswith(prefix)), None)


def bars(row: dict, reference: dict, teacher: str) -> dict:
    """The sweeps' bars for one variant: margins over the input-centric baselines of the same
    backbone (mean-pool, ridge) per primary task, Q→A as a share of HyDE, and the average ratio
    to its own teacher used on the input. The reference ridge and HyDE rows use the MiniLM
    teacher, so a `self`-teacher variant is held to the mean-pooled states (its own teacher on
    the input) only."""
    supervised = teacher != "self"
    names = [MEANPOOL, "ridge"] if supervised else [MEANPOOL]
    baselines = [r for r in (find_row(reference, n) for n in names) if r]
    margins = [row[t][m] - b[t][m] for t, m in PRIMARY.items() if t in row for b in baselines if t in b]
    hyde = find_row(reference, HYDE) if supervised else None
    own = find_row(reference, TEACHER if supervised else MEANPOOL)
    ratios = [row[t][m] / own[t][m] for t, m in PRIMARY.items() if own and t in row and t in own]
    return {"min margin over mean-pool/ridge": min(margins) if margins else None,
            "qa ÷ HyDE": row["qa"]["ndcg@10"] / hyde["qa"]["ndcg@10"] if hyde and "qa" in row else None,
            "avg ÷ own teacher on input": float(np.mean(ratios)) if len(ratios) == len(PRIMARY) else None}


def write_table(spec_name: str, spec: dict, results: dict, reference: dict, runs: dict) -> Path:
    from genembed.eval.run import markdown_table, plot

    out = ROOT / "lab" / "experiments" / "results"
    out.mkdir(parents=True, exist_ok=True)
    rows = {name: results["methods"][name] for name in runs if name in results["methods"]}
    table = {"tasks": results["tasks"], "methods": {**rows, **reference}}
    lines = [f"# Recipe experiments: `{spec_name}`", "",
             f"Made by `python lab/experiments/sweep.py lab/experiments/specs/{spec_name}.toml` "
             f"(2-core CPU, no GPU). Baseline rows come from `{spec.get('reference')}`.", "",
             markdown_table(table).split("\nInstructions")[0], "",
             "Bars: the margin is the variant's worst primary score minus the baseline's on the same "
             "task (positive = beats mean-pool and ridge on every task; a `self` variant: mean-pool only); "
             "own teacher on input = MiniLM on the input, or the mean-pooled states for `self`.", "",
             "| variant | min margin over mean-pool / ridge (primary tasks) | Q→A ÷ HyDE | avg ÷ own teacher on input "
             "| train s | rec first→last 10 | command |", "|---|---|---|---|---|---|---|"]
    def fmt(x, signed=False):
        return "–" if x is None else f"{x:+.3f}" if signed else f"{x:.3f}"

    for name, info in runs.items():
        if name not in rows:
            continue
        b = bars(rows[name], reference, info["teacher"])
        lines.append(f"| {name} | {fmt(b['min margin over mean-pool/ridge'], signed=True)} | {fmt(b['qa ÷ HyDE'])} | "
                     f"{fmt(b['avg ÷ own teacher on input'])} | {info['train_seconds']:.0f} | {info['rec']} | "
                     f"`{info['command']}` |")
    (out / f"{spec_name}.md").write_text("\n".join(lines) + "\n")
    (out / f"{spec_name}.json").write_text(json.dumps({"results": table, "runs": runs}, indent=2) + "\n")
    plot(table, out / f"{spec_name}.png")
    return out / f"{spec_name}.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("--only", default="", help="comma-separated variant names")
    args = parser.parse_args()
    spec = tomllib.loads(args.spec.read_text())
    spec_name = args.spec.stem
    known = {f.name for f in fields(TrainConfig)}
    variants = spec.get("variant", [])
    for v in variants:
        unknown = set(v) - known - {"name", "scores"}
        if unknown or "name" not in v:
            raise SystemExit(f"{args.spec}: variant {v.get('name', '?')!r} has no name or unknown fields {sorted(unknown)}")
    unknown = set(spec.get("base", {})) - known
    if unknown:
        raise SystemExit(f"{args.spec}: [base] has unknown fields {sorted(unknown)}")
    only = set(filter(None, args.only.split(",")))

    from genembed import load
    from genembed.eval.methods import Student
    from genembed.eval.run import evaluate
    from genembed.jsonl import read_rows
    from genembed.train import loss_summary, train

    run_root = ROOT / "runs" / "experiments" / spec_name
    eval_dir = run_root / "eval"
    reference = json.loads((ROOT / spec["reference"]).read_text())["methods"] if spec.get("reference") else {}
    reference = {k: v for k, v in reference.items() if not k.startswith("genembed")}
    runs = {}
    for v in variants:
        name = v["name"]
        settings = variant_settings(spec, v, str((run_root / name).relative_to(ROOT)))
        cfg = TrainConfig(**settings)
        if not only or name in only:
            if not (ROOT / cfg.out_dir / "model" / "model.safetensors").exists():
                print(f"== training {name}: {train_command(settings)}", flush=True)
                out = ROOT / cfg.out_dir
                resume = (out / "resume" / "trainer.pt").exists()
                if not resume and out.exists():  # killed before its first save: start it again
                    shutil.rmtree(out)
                train(cfg, resume=resume)
            results = json.loads((eval_dir / "results.json").read_text()) if (eval_dir / "results.json").exists() else {}
            if "scores" in v:  # scored elsewhere (`genembed eval` or another sweep): "file.json#row name"
                tasks, row = scored_row(v["scores"])
                results.setdefault("tasks", tasks).update(tasks)
                results.setdefault("methods", {})[name] = row
                eval_dir.mkdir(parents=True, exist_ok=True)
                (eval_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
            elif name not in results.get("methods", {}):
                print(f"== scoring {name}", flush=True)
                evaluate([Student(load(ROOT / cfg.out_dir / "model"), name)], spec["tasks"], eval_dir)
        log = read_rows(ROOT / cfg.out_dir / "log.jsonl") if (ROOT / cfg.out_dir / "log.jsonl").exists() else []
        if log:
            rec = loss_summary(log, "rec")
            runs[name] = {"command": train_command(settings), "teacher": cfg.teacher,
                          "train_seconds": sum(r["seconds"] for r in log),
                          "rec": f"{rec[0]:.2f}→{rec[1]:.2f}" if rec else "–"}
    results = json.loads((eval_dir / "results.json").read_text()) if (eval_dir / "results.json").exists() else None
    if results:
        print((write_table(spec_name, spec, results, reference, runs)).read_text())


if __name__ == "__main__":
    main()
