"""Does a readout of the input's own low-layer states add to the student? A screen, with no retraining.

The layer probe (layer_probe.py) found that, with fresh tokens, a ridge readout of the compression tokens'
last-layer states together with the mean of the text's own states at layer 2 picks its held-out target far
more often (top-1 0.78 of 500) than the compression tokens alone (0.68), though R² barely moves. Layer 2 is
in the same forward pass the student already runs, so such a head would cost nothing at encode time.

This asks whether the trained default keeps that gain: its embedding e, plus a ridge readout from the
layer-2 text mean x (through the final norm) fit to what e leaves of its training target,
    e' = e + x W + b,    W, b = ridge(x, target - e) over the 2,400 training rows,
scored on the broad benchmark's selection set beside the default itself (one run, one results file).

    .venv/bin/python lab/experiments/text_readout.py --responses runs/recipes/data/train.jsonl \
        --targets runs/recipes/mixed-lr02/cache --out runs/bench-text2
"""
from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from tqdm import tqdm

import genembed
from genembed.eval import benchmark
from genembed.eval.methods import Student, memo_encode
from genembed.generate import read_responses
from genembed.inputs import pad, positions
from genembed.ridge import ridge_fit
from genembed.teachers import alignment_targets, load_teacher

LAYER = 2  # the text mean's best layer in the layer probe (held-out top-1), fixed before this screen


class TextMean:
    """The mean over an input's own tokens (instruction included, as the student reads it) of the backbone's
    states after LAYER layers, through the final norm: a copy of the backbone cut to its first LAYER layers."""

    def __init__(self, model):
        self.model = model
        self.base = copy.deepcopy(model.backbone.model.base_model)
        self.base.layers = self.base.layers[:LAYER]  # last_hidden_state: norm(the states after LAYER layers)
        self.embed = self.base.get_input_embeddings()

    @torch.no_grad()
    def __call__(self, texts: list[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        rows = self.model.token_rows(texts, self.model.resolve_instruction(instruction))
        out = []
        for start in tqdm(range(0, len(rows), batch_size), desc=f"layer-{LAYER} mean", leave=False):
            ids, mask = pad(rows[start:start + batch_size], self.model.backbone.tokenizer.pad_token_id, side="left")
            h = self.base(inputs_embeds=self.embed(ids), attention_mask=mask, position_ids=positions(mask)).last_hidden_state
            m = mask.float()[:, :, None]
            out.append(((h * m).sum(1) / m.sum(1)).float().numpy())
        return np.concatenate(out)


class WithTextReadout:
    """The student's embedding plus the ridge readout of the layer-2 text mean."""

    def __init__(self, student: Student, text: TextMean, w: np.ndarray, b: np.ndarray):
        self.student, self.text, self.w, self.b = student, text, w, b
        self.name = f"{student.name} + layer-{LAYER} text readout"

    def identity(self) -> dict:
        return {"student": self.student.identity(), "layer": LAYER,
                "readout": float(np.abs(self.w).sum() + np.abs(self.b).sum())}

    def encode(self, texts, instruction: str, side: str) -> np.ndarray:
        texts = list(texts)
        return memo_encode(self.student, texts, instruction, side) + self.text(texts, instruction) @ self.w + self.b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--responses", required=True)
    ap.add_argument("--targets", required=True, help="a run's cache folder holding the mixed targets of these rows")
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", default="onnx")
    a = ap.parse_args()
    model = genembed.load(backend=a.backend)  # the bundled default
    rows = read_responses(a.responses)
    teacher = load_teacher(model.config.teacher, model.backbone)
    queries = [r["query"] for r in rows]
    y = alignment_targets(teacher, queries, [r["response"] for r in rows], "query+response", a.targets)
    student, text = Student(model, "genembed default", bf16=False), TextMean(model)
    e = model.encode(queries, batch_size=16, show_progress_bar=True)  # the default instruction, as training reads them
    x = text(queries, None)
    w, b, r2 = ridge_fit(torch.as_tensor(x), torch.as_tensor(y - e))
    print(f"student fit to its training targets: cosine {np.mean(np.sum(e * y, 1) / np.linalg.norm(e, axis=1)):.4f}; "
          f"readout of the residual: train R² {r2:.4f}", flush=True)
    method = WithTextReadout(student, text, w.float().numpy(), b.float().numpy())
    results = benchmark.run([student, method], benchmark.task_names(["selection"]), a.out)
    for m in (student, method):
        s = benchmark.summary(results["methods"][m.name], "selection")
        print(f"{m.name}: mean of type means {s['mean']:.4f}", {t: round(v, 3) for t, v in s["types"].items()})


if __name__ == "__main__":
    main()
