"""How far apart may a run killed under two processes and resumed under one land from a one-process run?

tests/test_distributed.py compares the two within a tolerance. This measures both sides of it on the tiny
test model (80 steps, both losses, the test's settings): the rounding gap between one and two processes,
and how far a resume that is wrong moves the weights (Adam's moments dropped, one step skipped; injected
into the resumed process only).

    .venv/bin/python lab/reliability/resume_tolerance.py        # prints one line a case: the largest
                                                                 # relative difference of any trained tensor
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from safetensors.torch import load_file

from genembed.testing import CORPUS, build_tiny_backbone

BIN = Path(sys.executable).parent
LAUNCH = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", str(BIN / "genembed")]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
BUGS = {
    "correct": "",
    "moments dropped": ("real = t.optimiser\n"
                        "def optimiser(*a):\n"
                        "    o, s, start = real(*a)\n"
                        "    o.state.clear()\n"
                        "    return o, s, start\n"
                        "t.optimiser = optimiser\n"),
    "one step skipped": ("real = t.optimiser\n"
                         "def optimiser(*a):\n"
                         "    o, s, start = real(*a)\n"
                         "    return o, s, start + (1 if start else 0)\n"
                         "t.optimiser = optimiser\n"),
}


def one(bug: str = "") -> list[str]:
    return [sys.executable, "-c", "import genembed.train as t\n" + bug + "from genembed.cli import main\nmain()"]


def run(cmd, args, out):
    done = subprocess.run(cmd + args + ["--out", str(out)], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def killed_two(args, out):
    """Two processes, every one of them killed with SIGKILL once 12 steps are logged (saved at 10)."""
    proc = subprocess.Popen(LAUNCH + args + ["--out", str(out)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    while proc.poll() is None:
        log = out / "log.jsonl"
        if (out / "resume").exists() and log.exists() and log.read_text().count("\n") >= 12:
            break
        time.sleep(0.01)
    workers = psutil.Process(proc.pid).children(recursive=True)
    for p in [psutil.Process(proc.pid), *workers]:
        p.send_signal(signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(workers, timeout=30)


def gap(a_dir, b_dir) -> float:
    a, b = (load_file(Path(d) / "model" / "model.safetensors") for d in (a_dir, b_dir))
    return max(float((a[k] - b[k]).norm() / a[k].norm()) for k in a)


def main():
    root = Path(tempfile.mkdtemp())
    backbone = build_tiny_backbone(root / "backbone")
    responses = root / "responses.jsonl"
    pairs = [(CORPUS[i], CORPUS[i + 1]) for i in range(0, 10, 2)]
    responses.write_text("".join(json.dumps({"id": str(i), "query": q, "response": r, "finished": True}) + "\n"
                                 for i, (q, r) in enumerate(pairs)))
    args = ["train", "--responses", str(responses), "--backbone", str(backbone), "--teacher", "self", "--steps",
            "80", "--batch-size", "4", "--thought-tokens", "2", "--compression-tokens", "3", "--w-rec", "1",
            "--warmup-steps", "2", "--save-every", "5"]
    run(one(), args, root / "one")
    run(LAUNCH, args, root / "two")
    print(f"two processes, uninterrupted: {gap(root / 'one', root / 'two'):.2e}")
    for name, bug in BUGS.items():
        out = root / name.replace(" ", "-")
        killed_two(args, out)
        run(one(bug), args + ["--resume"], out)
        print(f"killed under two, resumed under one, {name}: {gap(root / 'one', out):.2e}")


if __name__ == "__main__":
    main()
