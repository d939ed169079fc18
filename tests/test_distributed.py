"""Training under a launcher: two processes on this CPU over gloo, started by
`accelerate launch`, reach the weights of one process; a run killed under two resumes under one."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from safetensors.torch import load_file

BIN = Path(sys.executable).parent
LAUNCH = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", str(BIN / "genembed")]
ONE = [sys.executable, "-c", "from genembed.cli import main; main()"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


def common(backbone, responses, steps, save_every):
    return ["train", "--responses", str(responses), "--backbone", backbone, "--teacher", "self", "--steps", str(steps),
            "--batch-size", "4", "--thought-tokens", "2", "--compression-tokens", "3", "--w-rec", "1",
            "--warmup-steps", "2", "--save-every", str(save_every)]


def run(cmd):
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def kill_launch(proc):
    """SIGKILL to a launcher and every worker it started. The workers run in sessions of their own, so
    killing the launcher's process group alone would leave them working on (and holding the folder)."""
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert len(workers) >= 2, "the launcher had not started its workers"
    for p in [psutil.Process(proc.pid), *workers]:
        p.send_signal(signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(workers, timeout=30)


def assert_close(a_dir, b_dir, rtol=1e-4):
    a, b = (load_file(Path(d) / "model" / "model.safetensors") for d in (a_dir, b_dir))
    assert a.keys() == b.keys()
    for k in a:
        assert float((a[k] - b[k]).norm() / a[k].norm().clamp_min(1e-12)) < rtol, k


def test_two_processes_reach_the_weights_of_one(tiny_backbone_path, tiny_responses, tmp_path):
    args = common(tiny_backbone_path, tiny_responses, steps=4, save_every=2)
    run(ONE + args + ["--out", str(tmp_path / "one")])
    run(LAUNCH + args + ["--out", str(tmp_path / "two")])
    assert_close(tmp_path / "one", tmp_path / "two")
    assert json.loads((tmp_path / "two" / "train_config.json").read_text())["num_processes"] == 2
    steps = [json.loads(line)["step"] for line in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3], "only the main process writes the log"


def test_a_run_killed_under_two_processes_resumes_under_one(tiny_backbone_path, tiny_responses, tmp_path):
    args = common(tiny_backbone_path, tiny_responses, steps=80, save_every=5)
    run(ONE + args + ["--out", str(tmp_path / "whole")])
    killed = tmp_path / "killed"
    proc = subprocess.Popen(LAUNCH + args + ["--out", str(killed)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        log = killed / "log.jsonl"
        if (killed / "resume").exists() and log.exists() and log.read_text().count("\n") >= 12:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    kill_launch(proc)
    saved = torch.load(killed / "resume" / "trainer.pt", weights_only=False)["step"]
    assert 0 < saved < 80
    run(ONE + args + ["--out", str(killed), "--resume"])
    # 80 steps under one process and under two differ by rounding, up to 1.9e-4 of a tensor's norm on an
    # AVX-512 CPU; a resume that drops Adam's moments or skips a step lands 0.16-0.47 away (2026-12-08,
    # lab/reliability/resume_tolerance.py)
    assert_close(tmp_path / "whole", killed, rtol=1e-2)
    steps = [json.loads(line)["step"] for line in (killed / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(80))
    assert json.loads((killed / "train_config.json").read_text())["num_processes"] == 1


def test_a_batch_that_does_not_split_evenly_is_refused():
    from genembed.distributed import Processes

    with pytest.raises(ValueError, match="cannot be split evenly over 2 processes"):
        Processes(rank=1, world=2).share(list(range(5)))
    assert Processes(rank=1, world=2).share(list(range(6))) == [3, 4, 5]


def generate_args(backbone, queries, out):
    return ["generate", "--backbone", backbone, "--input", str(queries), "--max-new-tokens", "8", "--batch-size", "2",
            "--out", str(out)]


def test_generation_shared_by_two_processes_loses_and_repeats_nothing(tiny_backbone_path, tmp_path):
    """Each process answers its share into a part file; the parts are merged into the
    output, each id once; a run killed under two processes resumes under one."""
    from genembed.jsonl import read_rows
    from genembed.testing import CORPUS

    queries = tmp_path / "q.txt"
    queries.write_text("\n".join(f"{t} {i}" for i, t in enumerate(CORPUS[:120])) + "\n")
    run(ONE + generate_args(tiny_backbone_path, queries, tmp_path / "one.jsonl"))
    reference = {r["id"]: r["response"] for r in read_rows(tmp_path / "one.jsonl")}
    run(LAUNCH[:-1] + [str(BIN / "genembed")] + generate_args(tiny_backbone_path, queries, tmp_path / "two.jsonl"))
    rows = read_rows(tmp_path / "two.jsonl")
    assert sorted(r["id"] for r in rows) == sorted(reference) and not list(tmp_path.glob("two.jsonl.part*"))
    assert {r["id"]: r["response"] for r in rows} == reference

    killed = tmp_path / "killed.jsonl"
    proc = subprocess.Popen(LAUNCH + generate_args(tiny_backbone_path, queries, killed), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if sum(p.read_bytes().count(b"\n") for p in tmp_path.glob("killed.jsonl.part*")) >= 20:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    kill_launch(proc)
    assert len(list(tmp_path.glob("killed.jsonl.part*"))) == 2
    run(ONE + generate_args(tiny_backbone_path, queries, killed))
    rows = read_rows(killed)
    assert sorted(r["id"] for r in rows) == sorted(reference), "every query once"
    assert not list(tmp_path.glob("killed.jsonl.part*"))


def test_a_half_precision_backbone_trains_float32_tensors(tiny_backbone_path, tiny_responses, tmp_path):
    """--dtype bfloat16 holds the frozen backbone in bf16; what trains stays float32."""
    from genembed import load

    run(ONE + common(tiny_backbone_path, tiny_responses, steps=2, save_every=2) + ["--dtype", "bfloat16",
                                                                                   "--out", str(tmp_path / "bf16")])
    weights = load_file(tmp_path / "bf16" / "model" / "model.safetensors")
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())
    model = load(tmp_path / "bf16" / "model", dtype="bfloat16")
    vector = model.encode(["an egg"])
    assert model.backbone.dtype == torch.bfloat16 and vector.shape == (1, 32) and np.isfinite(vector).all()


def test_corpus_encoding_shared_by_two_processes(tiny_model, tmp_path):
    """`index build` under two processes (each encodes every other chunk, the main one
    appends them in order) gives the one-process index; killed under two, it resumes under one."""
    from genembed.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": f"passage {i} " + "word " * (i % 13)}) + "\n"
                              for i in range(1500)))

    def build(out):
        return ["index", "build", str(corpus), "--out", str(out), "--model", str(ckpt), "--chunk-size", "50"]

    run(ONE + build(tmp_path / "one"))
    run(LAUNCH + build(tmp_path / "two"))
    one, two = tmp_path / "one", tmp_path / "two"
    assert (one / "rows.jsonl").read_bytes() == (two / "rows.jsonl").read_bytes()
    a, b = (np.fromfile(d / "vectors.f32", dtype="<f4") for d in (one, two))
    np.testing.assert_allclose(a, b, atol=1e-5)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(LAUNCH + build(killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads((killed / "index.json").read_text())["rows_done"] >= 300:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "the build ended before it could be killed"
    kill_launch(proc)
    run(ONE + build(killed))
    assert (killed / "rows.jsonl").read_bytes() == (one / "rows.jsonl").read_bytes(), "every row once, in order"
    np.testing.assert_allclose(np.fromfile(killed / "vectors.f32", dtype="<f4"), a, atol=1e-5)
    assert not list((killed / "parts").glob("*.f32"))
