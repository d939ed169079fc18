"""Fault trials: `kill -9` of `genembed generate` and `genembed train` at random moments, then
the resume a user would run, until the job completes. Each trial is compared with an
uninterrupted run of the same command:
  generate  every query answered exactly once (no row lost or duplicated, every line parses)
            and each answer equal to the uninterrupted run's;
  train     every step logged exactly once and the final weights equal the uninterrupted run's.

    .venv/bin/python lab/reliability/kill_trials.py                          # tiny model: 20 + 20 trials
    .venv/bin/python lab/reliability/kill_trials.py --model real --trials 3  # the bundled backbone (minutes per trial)

Writes lab/reliability/kill-trials-<model>.md / .json (the README's reliability figures).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENEMBED = [sys.executable, "-c", "from genembed.cli import main; main()"]


def run(args: list[str], kill_after: float | None = None, watch: Path | None = None) -> tuple[bool, float, float]:
    """Run genembed with args; kill -9 its process group after kill_after seconds if still running.
    Returns (completed, seconds, second at which `watch` first existed)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(GENEMBED + args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    first_output = None
    while proc.poll() is None:
        elapsed = time.perf_counter() - start
        if first_output is None and watch is not None and watch.exists():
            first_output = elapsed
        if kill_after is not None and elapsed >= kill_after:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return False, elapsed, first_output
        time.sleep(0.02)
    err = proc.stderr.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"genembed {' '.join(args)} failed ({proc.returncode}):\n{err[-3000:]}")
    return True, time.perf_counter() - start, first_output


def interrupted(args_for, progress, reset, rng: random.Random, window: tuple[float, float], max_kills: int) -> dict:
    """Run to completion, killed 1..max_kills times at moments uniform over `window` (seconds);
    `progress()` (rows or steps on disk) is recorded at each kill. A run that finishes before its
    first kill moment (the machine was faster than the reference) is `reset()` and drawn again:
    every trial is killed at least once."""
    kills, at, attempt = rng.randint(1, max_kills), [], 0
    while True:
        moment = rng.uniform(*window) if len(at) < kills else None
        done, _, _ = run(args_for(attempt), kill_after=moment)
        attempt += 1
        if done and not at and moment is not None:
            reset()
            continue
        if done:
            return {"kills": len(at), "killed_at": at}
        at.append({"second": round(moment, 2), "progress": progress()})


def lines_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


# -- generate ------------------------------------------------------------------------------
def generate_trials(backbone: str, work: Path, trials: int, queries: int, rng: random.Random, max_kills: int):
    from genembed.data import load_sharegpt
    from genembed.jsonl import read_rows

    source = work / "queries.jsonl"
    source.write_text("".join(json.dumps({"query": c.query}) + "\n" for c in load_sharegpt("train")[:queries]))
    common = ["generate", "--backbone", backbone, "--input", str(source), "--max-new-tokens", "16",
              "--batch-size", "4"]
    reference_out = work / "generate-reference.jsonl"
    _, seconds, first = run(common + ["--out", str(reference_out)], watch=reference_out)
    reference = {r["id"]: r["response"] for r in read_rows(reference_out)}
    results = []
    for trial in range(trials):
        out = work / f"generate-{trial}.jsonl"
        info = interrupted(lambda attempt: common + ["--out", str(out)], lambda: lines_in(out), out.unlink, rng,
                           (first / 2, seconds), max_kills)
        lines = out.read_bytes().split(b"\n")
        rows = [json.loads(line) for line in lines if line.strip()]  # every line must parse
        ids = [r["id"] for r in rows]
        results.append({**info, "rows": len(rows), "duplicates": len(ids) - len(set(ids)),
                        "lost": len(set(reference) - set(ids)),
                        "answers_equal": sum(reference.get(r["id"]) == r["response"] for r in rows)})
        print(f"generate trial {trial}: {results[-1]}", flush=True)
    return {"reference_seconds": seconds, "first_output_seconds": first, "queries": len(reference), "trials": results}


# -- train ---------------------------------------------------------------------------------
def train_trials(backbone: str, teacher: str, responses: Path, work: Path, trials: int, steps: int,
                 rng: random.Random, max_kills: int, extra: list[str]):
    from safetensors.torch import load_file

    common = ["train", "--responses", str(responses), "--backbone", backbone, "--teacher", teacher,
              "--steps", str(steps), "--save-every", "2", "--warmup-steps", "2", *extra]
    reference_dir = work / "train-reference"
    _, seconds, first = run(common + ["--out", str(reference_dir)], watch=reference_dir / "log.jsonl")
    reference = load_file(reference_dir / "model" / "model.safetensors")
    results = []
    for trial in range(trials):
        out = work / f"train-{trial}"

        def args_for(attempt, out=out):  # the user's rule: a started run is continued with --resume
            return common + ["--out", str(out)] + (["--resume"] if (out / "log.jsonl").exists() else [])

        info = interrupted(args_for, lambda: lines_in(out / "log.jsonl"), lambda: shutil.rmtree(out), rng,
                           (first / 2, seconds),
                           max_kills)
        weights = load_file(out / "model" / "model.safetensors")
        steps_logged = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
        diff = max(float((weights[k] - reference[k]).abs().max()) for k in reference)
        results.append({**info, "steps_logged_once": sorted(steps_logged) == list(range(steps)),
                        "max_abs_weight_diff": diff, "weights_equal": diff == 0.0 and weights.keys() == reference.keys()})
        print(f"train trial {trial}: {results[-1]}", flush=True)
    return {"reference_seconds": seconds, "first_output_seconds": first, "steps": steps, "trials": results}


def summary(name: str, report: dict) -> str:
    t = report["trials"]
    kills = sum(x["kills"] for x in t)
    total = report["queries"] if name == "generate" else report["steps"]
    # a kill "mid-work" found some rows / steps on disk but not all
    mid = sum(0 < k["progress"] < total for x in t for k in x["killed_at"])
    kills = f"{kills} ({mid} mid-work)"
    if name == "generate":
        ok = sum(x["duplicates"] == 0 and x["lost"] == 0 for x in t)
        equal = sum(x["answers_equal"] == report["queries"] for x in t)
        return (f"| generate | {len(t)} | {kills} | {report['reference_seconds']:.1f} | {len(t)} completed; "
                f"{ok} with no row lost or duplicated; {equal} with every answer equal to the uninterrupted run's |")
    ok = sum(x["steps_logged_once"] for x in t)
    equal = sum(x["weights_equal"] for x in t)
    worst = max(x["max_abs_weight_diff"] for x in t)
    return (f"| train | {len(t)} | {kills} | {report['reference_seconds']:.1f} | {len(t)} completed; {ok} with every "
            f"step logged once; {equal} with weights bit-equal to the uninterrupted run's (max abs diff {worst:.1e}) |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["tiny", "real"], default="tiny",
                    help="tiny: a random 2-layer llama built here, teacher 'self'; real: SmolLM2-135M-Instruct + MiniLM.")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--what", default="generate,train")
    ap.add_argument("--max-kills", type=int, default=2, help="Kills per trial: 1..N, each at a random moment.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="Report stem (default lab/reliability/kill-trials-<model>).")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    out = args.out or ROOT / "lab" / "reliability" / f"kill-trials-{args.model}"
    report = {"command": "python lab/reliability/kill_trials.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "model": args.model}
    with tempfile.TemporaryDirectory(prefix="genembed-kill-") as work:
        work = Path(work)
        if args.model == "tiny":
            from genembed.testing import build_tiny_backbone

            backbone, teacher, queries, steps = build_tiny_backbone(work / "backbone"), "self", 240, 300
            extra = ["--thought-tokens", "2", "--compression-tokens", "3", "--batch-size", "4", "--w-rec", "1"]
        else:
            backbone, teacher, queries, steps = "smollm2-135m-instruct", "all-minilm-l6-v2", 24, 6
            extra = ["--batch-size", "4", "--w-rec", "1"]
        if "generate" in args.what:
            report["generate"] = generate_trials(backbone, work, args.trials, queries, rng, args.max_kills)
        if "train" in args.what:
            responses = work / "generate-reference.jsonl"
            if not responses.exists():
                generate_trials(backbone, work, 0, queries, rng, args.max_kills)
            report["train"] = train_trials(backbone, teacher, responses, work, args.trials, steps, rng,
                                           args.max_kills, extra)
    lines = ["| job | trials | kills (mid-work: some output on disk, not all) | uninterrupted run (s) | outcome |", "|---|---:|---:|---:|---|"]
    lines += [summary(name, report[name]) for name in ("generate", "train") if name in report]
    text = (f"# kill -9 trials ({args.model} model)\n\n`{report['command'].strip()}`\n\n" + "\n".join(lines) + "\n\n"
            "Each trial kills the job 1..max-kills times at moments drawn uniformly between half the time the "
            "uninterrupted run took to write its first output and the time it took to finish, then reruns the same command (train: with --resume once a log "
            "exists) until it completes.\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(text)


if __name__ == "__main__":
    main()
