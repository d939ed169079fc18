"""How inference runs: `backend=` on `genembed.load` and `--backend` on the commands that embed or decode.

* "torch": the backbone's own PyTorch forward (the reference; training always runs here).
* "onnx": the backbone through onnxruntime, in float32 (onnx_export.py makes the export once per
  backbone). Only the backbone's forward moves: the special tokens, `recon`, `align`, the
  shared-prefix cache and the decoding loop stay genembed's, so every feature works unchanged on
  every backend.
* "openvino": the same export run by OpenVINO, in float32, or in bf16 under bf16 autocast
  (`encode(..., bf16=True)`, `--bf16`) on a CPU with native bf16 (AVX-512 BF16 / AMX): the precision
  follows the same switch as on torch. There it is the fast path for encoding (docs/backends.md).

bf16 asked of a backend that cannot run it (onnx always; openvino on a CPU without native bf16) runs
float32 and says so once per loaded model and backend, with a UserWarning naming the backend and what
runs instead. A warning, not an error: the result is still right (float32 is the reference precision;
bf16 only trades accuracy for speed), so what is lost is the speed asked for, and that is what the warning
says. An error would break a pipeline that asks bf16 of every method as soon as its backend changes
(`genembed eval --bf16`), and openvino's bf16 depends on the CPU a job lands on: one script would run on
one machine and fail on the next.

An OnnxBackbone (or OpenVinoBackbone) answers the two calls genembed makes of a transformers model at inference —
`base(...)` (encode, the prefix cache) and `lm(...)` (greedy decoding) — with the same keywords
and the same KV cache type, so the call sites only choose which one to call.
"""
from __future__ import annotations

import json
import os
import time
import warnings
import weakref
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import torch

from .backbone import cache_keyword, kv_cache, kv_tensors
from .errors import InputError

NAMES = ("torch", "onnx", "openvino")
_runtimes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one per loaded backbone model


def check_name(name: str) -> None:
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(NAMES)}")


def attach(model, name: str) -> None:
    """Run `model`'s inference on backend `name` (the export is built first if needed)."""
    check_name(name)
    if name != "torch":
        backbone = model.backbone
        if backbone.device.type != "cpu":
            raise ValueError(f"the {name} backend runs on the CPU; this model is on {backbone.device} "
                             "(there, backend='torch' is the fast path)")
        runtimes = _runtimes.setdefault(backbone.model, {})
        if name not in runtimes:
            from .onnx_export import ensure_export

            kind = OnnxBackbone if name == "onnx" else OpenVinoBackbone
            if kind is OpenVinoBackbone:
                require_openvino()  # before an export is made for nothing
            runtimes[name] = kind(backbone, ensure_export(backbone))
        model.runtime = runtimes[name]
    else:
        model.runtime = None
    model.backend = name


def additive_mask(mask: torch.Tensor, new: int) -> np.ndarray:
    """[B, 1, new, total] float32: 0 where query i (the last `new` positions) may attend key j (j at or
    before it and not padding), the float32 minimum elsewhere."""
    total = mask.shape[1]
    query = torch.arange(total - new, total).unsqueeze(1)
    allowed = (torch.arange(total).unsqueeze(0) <= query).unsqueeze(0) & mask.bool().unsqueeze(1)
    out = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill_(~allowed, torch.finfo(torch.float32).min)
    return out.unsqueeze(1).numpy()


class OnnxBackbone:
    """The export run by onnxruntime. Graphs are asked for by role: "encode" (the body, for encoding and
    the prefix cache), "decode" (the body, for the steps of greedy decoding) and "head" (the LM head)."""
    NAME = "onnx"
    GRAPHS = {"encode": "body.onnx", "decode": "body.onnx", "head": "head.onnx"}

    def __init__(self, backbone, folder):
        from .onnx_export import require_onnx

        _, self.ort = require_onnx()
        self.folder, self.manifest = folder, json.loads((folder / "manifest.json").read_text())
        self.embed = backbone.model.get_input_embeddings()
        self.cache_kw = cache_keyword(backbone.model.base_model)
        self._sessions: dict[str, tuple] = {}
        self._bf16_checked = False  # whether a call under bf16 autocast has been checked (and warned about)

    def bf16_unavailable(self) -> str | None:
        """Why bf16 autocast cannot reach this engine, or None where it runs bf16."""
        return "onnxruntime runs the export in float32 only"

    def _check_precision(self) -> None:
        """Under bf16 autocast, warn once if this engine runs float32 instead (the module's docstring: why not an
        error)."""
        if self._bf16_checked or not bf16_requested():
            return
        self._bf16_checked = True
        reason = self.bf16_unavailable()
        if reason is not None:
            warnings.warn(f"bf16 was asked for on the {self.NAME} backend; it runs in float32 instead ({reason})",
                          UserWarning)

    def session(self, role: str):
        """(a session of the graph that does `role`, its input names), made on first use (the head only
        if one decodes)."""
        name = self.GRAPHS[role]
        if name not in self._sessions:
            options = self.ort.SessionOptions()
            options.intra_op_num_threads = configured_threads()
            # no spin-waiting between calls: decoding alternates the body and head sessions, each with its own
            # thread pool, and a pool left spinning takes a core from the other (a decode step 83 -> 44 ms on
            # 2 cores; benchmarks/decode_profile.py)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = self.ort.InferenceSession(str(self.folder / name), options, providers=["CPUExecutionProvider"])
            self._sessions[name] = session, [i.name for i in session.get_inputs()]
        return self._sessions[name]

    def _body(self, role: str, input_ids, inputs_embeds, attention_mask, position_ids, cache: dict, want_cache: bool):
        """The body graph on one call's arguments → (last-layer states, the KV cache after them, or None
        without want_cache)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        self._check_precision()
        past = cache.pop(self.cache_kw, None)
        if cache:
            raise TypeError(f"unexpected arguments {sorted(cache)}")
        embeds = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        m = self.manifest
        batch, new = embeds.shape[:2]
        if past is None:
            empty = np.zeros((batch, m["kv_heads"], 0, m["head_dim"]), dtype=np.float32)
            past_arrays = [empty] * (2 * m["layers"])
        else:
            past_arrays = [t.detach().float().numpy() for t in kv_tensors(past)]
        total = new + past_arrays[0].shape[2]
        if attention_mask is None:
            attention_mask = torch.ones(batch, total, dtype=torch.long)
        if position_ids is None:
            position_ids = torch.arange(total - new, total).expand(batch, -1)
        session, names = self.session(role)
        feed = dict(zip(names, [embeds.detach().float().contiguous().numpy(), additive_mask(attention_mask, new),
                                position_ids.to(torch.long).contiguous().numpy(), *past_arrays]))
        if not want_cache:  # the new keys/values stay in the session (SmolLM2: 1.4 MiB a position in 32 rows)
            return torch.from_numpy(session.run(["hidden"], feed)[0]), None
        hidden, *present = session.run(None, feed)
        return torch.from_numpy(hidden), kv_cache([torch.from_numpy(a) for a in present])

    def base(self, input_ids=None, inputs_embeds=None, attention_mask=None, position_ids=None, use_cache=False,
             **cache):
        """transformers' base-model call: → .last_hidden_state (and the KV cache under the cache keyword)."""
        hidden, present = self._body("encode", input_ids, inputs_embeds, attention_mask, position_ids, cache, use_cache)
        return SimpleNamespace(last_hidden_state=hidden, **{self.cache_kw: present})

    def lm(self, input_ids=None, inputs_embeds=None, attention_mask=None, position_ids=None, use_cache=True,
           logits_to_keep=1, **cache):
        """transformers' causal-LM call for greedy decoding: → .logits [B, 1, vocab] of the last position
        and the KV cache."""
        if logits_to_keep != 1:
            raise ValueError(f"the {self.NAME} backend computes the logits of the last position only (logits_to_keep=1)")
        hidden, present = self._body("decode", input_ids, inputs_embeds, attention_mask, position_ids, cache, use_cache)
        head, _ = self.session("head")
        logits = head.run(None, {"hidden": hidden[:, -1:].numpy()})[0]
        return SimpleNamespace(logits=torch.from_numpy(logits), **{self.cache_kw: present})


OPENVINO_EXTRA = "the openvino backend needs openvino, and onnx and onnxruntime for its export: pip install 'genembed[openvino]'"


def require_openvino():
    try:
        import openvino
    except ImportError as e:
        raise ImportError(f"{OPENVINO_EXTRA} ({e})") from None
    return openvino


def bf16_requested() -> bool:
    """Whether the call made now runs under bf16 autocast on the CPU (`encode(..., bf16=True)`)."""
    return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def autocast_precision() -> str:
    """OpenVINO's inference precision for a call made now: bf16 under bf16 autocast on a CPU with native
    bf16, else float32 (OpenVINO has no emulated bf16 path, and an emulated one would be slower)."""
    from .backbone import bf16_is_native

    return "bf16" if bf16_requested() and bf16_is_native() else "f32"


class _OpenVinoSession:
    """One compiled graph with onnxruntime's `run(None, feed) -> [outputs]` (the model is owned by one
    thread, serve.py, so one infer request serves every call)."""

    def __init__(self, compiled):
        self.compiled, self.request = compiled, compiled.create_infer_request()

    def run(self, names: list[str] | None, feed: dict) -> list[np.ndarray]:
        """The outputs called `names` (None: all), as copies: the request's own buffers are reused by the next
        call, and only what is asked for is copied out of them."""
        results = self.request.infer(feed, share_inputs=True, share_outputs=True)
        wanted = self.compiled.outputs if names is None else [self.compiled.output(n) for n in names]
        return [results[o].copy() for o in wanted]


class OpenVinoBackbone(OnnxBackbone):
    """The same export run by OpenVINO; a graph is compiled once per precision, on first use."""
    NAME = "openvino"

    def __init__(self, backbone, folder):
        super().__init__(backbone, folder)
        self.ov = require_openvino()
        self.core = self.ov.Core()

    def bf16_unavailable(self) -> str | None:
        from .backbone import bf16_is_native

        return None if bf16_is_native() else ("this CPU has no native bf16, AVX-512 BF16 or AMX, and OpenVINO "
                                              "does not emulate it")

    def session(self, role: str):
        name, precision = self.GRAPHS[role], autocast_precision()
        key = f"{name}@{precision}"
        if key not in self._sessions:
            compiled = self.core.compile_model(str(self.folder / name), "CPU", {
                "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": configured_threads(),
                "PERFORMANCE_HINT": "LATENCY"})
            self._sessions[key] = _OpenVinoSession(compiled), [i.get_any_name() for i in compiled.inputs]
        return self._sessions[key]


# -- threads ------------------------------------------------------------------------------------
# torch runs each operation on a team of intra-op threads (by default one per core) that meet at a
# barrier after every parallel region. When another process holds some of those cores, a region waits
# for its descheduled thread, hundreds of times per decoding step, and a batched step collapses
# (lab/benchmarks/decode_batch.py). So genembed runs no more threads than there are free cores:
# `num_threads` (genembed.load, --threads) fixes the count; by default (None) it follows the cores the
# other processes leave free, measured while it runs.

_configured: list[int] = []  # the process's own thread count, while a `threads` context is entered


def configured_threads() -> int:
    """The process's intra-op thread count outside genembed's choices (the onnx and openvino sessions are
    sized by it, whenever they are made)."""
    return _configured[0] if _configured else torch.get_num_threads()


def check_threads(num_threads) -> None:
    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                    or num_threads < 1):
        raise InputError(f"num_threads must be a whole number >= 1, or None (follow the free cores), got "
                         f"{num_threads!r}")


def _cpu_ticks(cpus) -> tuple[int, int] | None:
    """(busy, total) clock ticks of the given CPUs since boot, from /proc/stat; None where unreadable."""
    try:
        with open("/proc/stat") as f:
            rows = [line.split() for line in f if line.startswith("cpu") and not line.startswith("cpu ")]
    except OSError:
        return None
    busy = total = 0
    for fields in rows:
        if int(fields[0][3:]) in cpus:
            ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
            total += sum(ticks)
            busy += sum(ticks) - ticks[3] - ticks[4]
    return (busy, total) if total else None


class FreeCores:
    """How many of this process's CPUs the other processes leave free, from /proc/stat: the CPUs' busy
    time over an interval less this process's own CPU time over it. The first reading samples `window`
    seconds; later ones cover the time since the previous reading (a reading younger than `window`
    is reused)."""

    def __init__(self, window: float = 0.1):
        self.window, self.last, self.free = window, None, None
        try:
            self.cpus = os.sched_getaffinity(0)
        except (AttributeError, OSError):
            self.cpus = set(range(os.cpu_count() or 1))

    def _snapshot(self):
        ticks = _cpu_ticks(self.cpus)
        return None if ticks is None else (time.monotonic(), time.process_time(), *ticks)

    def __call__(self) -> float | None:
        """Free cores (a float), or None where /proc/stat cannot be read (not Linux)."""
        now = self._snapshot()
        if now is None:
            return None
        if self.last is None or now[0] - self.last[0] > 60:  # no recent reading: sample one window
            self.last = now
            time.sleep(self.window)
            now = self._snapshot()
        elif now[0] - self.last[0] < self.window:
            return self.free
        (t0, own0, busy0, _), (t1, own1, busy1, _) = self.last, now
        self.last = now
        others = max((busy1 - busy0) / os.sysconf("SC_CLK_TCK") - (own1 - own0), 0.0) / max(t1 - t0, 1e-6)
        self.free = max(len(self.cpus) - others, 0.0)
        return self.free


_meter = FreeCores()


def choose_threads(num_threads: int | None = None) -> int:
    """The intra-op thread count to run with now: `num_threads` if given; else the process's count
    (configured_threads) capped at the cores the other processes leave free, at least 1."""
    if num_threads is not None:
        return num_threads
    most, free = configured_threads(), _meter()
    return most if free is None else max(1, min(most, int(free + 0.5)))


@contextmanager
def threads(num_threads: int | None = None):
    """torch's CPU work inside runs with choose_threads(num_threads) threads; the count is restored after.
    The yielded object's `rechoose()` chooses again (a long decode calls it every few steps)."""
    outer = not _configured
    if outer:
        _configured.append(torch.get_num_threads())
    state = SimpleNamespace(count=None)

    def rechoose() -> int:
        state.count = choose_threads(num_threads)
        if state.count != torch.get_num_threads():
            torch.set_num_threads(state.count)
        return state.count

    state.rechoose = rechoose
    try:
        rechoose()
        yield state
    finally:
        if outer:
            torch.set_num_threads(_configured.pop())
