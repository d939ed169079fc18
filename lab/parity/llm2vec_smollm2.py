"""Parity of genembed's LLM2Vec teacher reader (genembed.teachers.LLM2VecTeacher) with the `llm2vec`
package (0.2.3, the reference) on the real backbone, SmolLM2-135M-Instruct, for a teacher built by
`genembed teacher build` (BUILD/mntp, BUILD/simcse).

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice -n 19 .venv/bin/python lab/parity/llm2vec_smollm2.py [BUILD]

BUILD defaults to runs/self-supervised-teacher. The package runs in the side venv .venv-llm2vec
(scripts/llm2vec_env.sh; transformers 4.44.2, peft 0.13.2), in a subprocess. transformers 4.44 cannot read
genembed's de-quantised SmolLM2 folder (written by transformers 5.x), so a temporary copy is made first
(/work/shared/DATA.md, "Second peer"): config.json with `rope_theta` back at the top level (5.x keeps it only
under `rope_parameters`; 4.x would silently use its default 10000), tokenizer.json with its merges as
"a b" strings (5.x stores pairs), tokenizer_config.json naming PreTrainedTokenizerFast with
model_input_names [input_ids, attention_mask]; the weights are symlinked. BUILD/mntp and BUILD/simcse are
copied beside it with adapter_config.json naming the copies (simcse -> mntp copy -> base copy) and the
converted config/tokenizer files in mntp/.

Two configurations, float32 on CPU, one batch of the texts below on each side:
  mntp+simcse   LLM2Vec.from_pretrained(MNTP, peft_model_name_or_path=SIMCSE)  vs  LLM2VecTeacher("BUILD/mntp+BUILD/simcse")
  mntp          LLM2Vec.from_pretrained(MNTP)                                  vs  LLM2VecTeacher("BUILD/mntp")
Writes lab/parity/llm2vec-smollm2.md (overwritten).
"""
from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
SIDE_PYTHON = ROOT / ".venv-llm2vec" / "bin" / "python"
REPORT = ROOT / "lab" / "parity" / "llm2vec-smollm2.md"
BACKBONE = "smollm2-135m-instruct"
BATCH = 8
TEXTS = [
    "How do I reset a forgotten password on a Linux machine?",
    "The history of the printing press is usually told as the story of one man, Johannes Gutenberg, who "
    "around 1440 in Mainz combined movable metal type, an oil-based ink and a screw press adapted from "
    "wine making. Yet the invention drew on centuries of earlier work: woodblock printing in China, movable "
    "ceramic type under Bi Sheng, and metal type in Korea. What changed in Europe was scale. Within fifty "
    "years presses operated in more than two hundred cities, and millions of books circulated, from Bibles "
    "and grammars to pamphlets and calendars. Prices fell, literacy rose, and scholars could compare "
    "identical copies of a text for the first time, which helped the Reformation, the scientific revolution "
    "and the growth of vernacular languages. Historians still argue about how fast these effects arrived.",
    "Hello",
    "Le café de la gare ouvre à 7 h — naïve façade, crème brûlée; 東京の天気は晴れです。Привет, мир! 🍕",
    "def fibonacci(n: int) -> list[int]:\n    a, b = 0, 1\n    out = []\n    for _ in range(n):\n"
    "        out.append(a)\n        a, b = b, a + b\n    return out\n",
    "Summarize the causes of the French Revolution in three sentences.",
    "The quick brown fox jumps over the lazy dog.",
    "  SELECT name, COUNT(*) FROM orders GROUP BY name HAVING COUNT(*) > 5;  ",
]

# run in .venv-llm2vec: argv[1] is a JSON object {mntp, simcse, texts, out, batch}
SIDE_SCRIPT = r"""
import json, sys, time
import numpy as np
import torch
args = json.loads(sys.argv[1])
import importlib.metadata as md
from llm2vec import LLM2Vec

versions = {p: md.version(p) for p in ("llm2vec", "torch", "transformers", "peft", "tokenizers")}
texts, result = args["texts"], {"versions": versions, "seconds": {}, "ids": {}}
for name, second, merge in (("mntp+simcse", args["simcse"], False), ("mntp+simcse-merged", args["simcse"], True),
                            ("mntp", None, False)):
    start = time.time()
    model = LLM2Vec.from_pretrained(args["mntp"], peft_model_name_or_path=second, merge_peft=merge,
                                    pooling_mode="mean", max_length=512, torch_dtype=torch.float32)
    loaded = time.time()
    vectors = model.encode(texts, batch_size=args["batch"], show_progress_bar=False, convert_to_numpy=True,
                           device="cpu")
    np.save(f"{args['out']}/llm2vec-{name}.npy", vectors.astype(np.float32))
    result["seconds"][name] = [round(loaded - start, 1), round(time.time() - loaded, 1)]
    result["ids"][name] = [model.tokenize([model.prepare_for_tokenization(model._convert_to_str("", t))])
                           ["input_ids"][0].tolist() for t in texts]
    result["model_class"] = type(model.model).__name__
    result["attn"] = getattr(model.model.config, "_attn_implementation", None)
    result["rope_theta"] = getattr(model.model.config, "rope_theta", None)
    result["settings"] = {k: getattr(model, k) for k in ("pooling_mode", "max_length", "doc_max_length",
                                                           "skip_instruction")}
    del model
json.dump(result, open(f"{args['out']}/llm2vec.json", "w"))
"""


def compat_config(source: Path, target: Path) -> None:
    """config.json as transformers 4.x reads it: rope_theta at the top level, rope_scaling, torch_dtype."""
    config = json.loads(source.read_text(encoding="utf-8"))
    rope = config.pop("rope_parameters", None)
    if isinstance(rope, dict):
        rope = dict(rope)
        if "rope_theta" in rope:
            config["rope_theta"] = rope.pop("rope_theta")
        config["rope_scaling"] = None if rope.get("rope_type", "default") == "default" else rope
    if "rope_theta" not in config:
        raise SystemExit(f"{source}: no rope_theta (top level or rope_parameters)")
    if "dtype" in config:
        config["torch_dtype"] = config.pop("dtype")
    target.write_text(json.dumps(config, indent=2), encoding="utf-8")


def compat_tokenizer(folder: Path, target: Path) -> None:
    """tokenizer.json with "a b" merges, tokenizer_config.json naming PreTrainedTokenizerFast."""
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    merges = data.get("model", {}).get("merges")
    if merges and isinstance(merges[0], list):
        if any(" " in piece for pair in merges for piece in pair):
            raise SystemExit(f"{folder}/tokenizer.json: a merge holds a space; it cannot be written as 'a b'")
        data["model"]["merges"] = [" ".join(pair) for pair in merges]
    (target / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    keep = {k: settings[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token", "model_max_length")
            if k in settings}
    keep.update({"tokenizer_class": "PreTrainedTokenizerFast", "padding_side": "left",
                 "model_input_names": ["input_ids", "attention_mask"], "clean_up_tokenization_spaces": False})
    (target / "tokenizer_config.json").write_text(json.dumps(keep, indent=2), encoding="utf-8")


def resolve_base(name: str, adapter: Path) -> Path:
    from genembed.backbone import ALIASES, transformers_path

    if name in ALIASES:
        return Path(transformers_path(name))
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = (adapter / name).resolve()
    if not path.is_dir():
        raise SystemExit(f"{adapter}/adapter_config.json: base {name!r} is not a folder")
    return path


def link(source: Path, target: Path) -> None:
    try:
        target.symlink_to(source.resolve())
    except OSError:
        shutil.copyfile(source, target)


def compat_copies(build: Path, base: Path, tmp: Path) -> tuple[Path, Path, Path]:
    """(base copy, mntp copy, simcse copy) readable by transformers 4.44 / peft 0.13."""
    named = json.loads((build / "mntp" / "adapter_config.json").read_text())["base_model_name_or_path"]
    named_base = resolve_base(named, build / "mntp")
    if named_base.resolve() != base.resolve():
        print(f"note: mntp names base {named_base}, transformers_path gives {base}; using the adapter's")
        base = named_base
    out_base, out_mntp, out_simcse = tmp / "base", tmp / "mntp", tmp / "simcse"
    out_base.mkdir()
    compat_config(base / "config.json", out_base / "config.json")
    compat_tokenizer(base, out_base)
    for weights in base.glob("*.safetensors"):
        link(weights, out_base / weights.name)
    if (base / "model.safetensors.index.json").is_file():
        shutil.copyfile(base / "model.safetensors.index.json", out_base / "model.safetensors.index.json")

    for source, target, parent in ((build / "mntp", out_mntp, out_base), (build / "simcse", out_simcse, out_mntp)):
        target.mkdir()
        for name in ("adapter_model.safetensors", "adapter_model.bin"):
            if (source / name).is_file():
                link(source / name, target / name)
        config = json.loads((source / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = str(parent)
        (target / "adapter_config.json").write_text(json.dumps(config, indent=2))
        if (source / "llm2vec_config.json").is_file():
            shutil.copyfile(source / "llm2vec_config.json", target / "llm2vec_config.json")
        if (source / "config.json").is_file():
            compat_config(source / "config.json", target / "config.json")
        if (source / "tokenizer.json").is_file():
            compat_tokenizer(source, target)
    return out_base, out_mntp, out_simcse


def compare(ref: np.ndarray, ours: np.ndarray) -> dict:
    delta = np.abs(ref.astype(np.float64) - ours.astype(np.float64))
    ref, ours = ref.astype(np.float64), ours.astype(np.float64)
    cos = (ref * ours).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(ours, axis=1))
    return {"max_abs": float(delta.max()), "scale": float(np.abs(ref).max()),
            "rel": float(delta.max() / np.abs(ref).max()), "min_cos": float(cos.min()),
            "worst": int(delta.max(1).argmax())}


def max_lora_b(folder: Path) -> float:
    from safetensors.numpy import load_file

    weights = load_file(str(folder / "adapter_model.safetensors"))
    return float(max(np.abs(v).max() for k, v in weights.items() if "lora_B" in k))


def main() -> None:
    started = time.time()
    build = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/self-supervised-teacher")
    if not build.is_absolute():
        build = (Path.cwd() / build)
    for part in ("mntp", "simcse"):
        if not (build / part / "adapter_config.json").is_file():
            raise SystemExit(f"{build / part}: no adapter_config.json (is the build finished?)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    import torch

    from genembed.backbone import transformers_path
    from genembed.teachers import LLM2VecTeacher

    base = Path(transformers_path(BACKBONE))
    date = subprocess.run(["date", "-u", "+%F"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="llm2vec-smollm2-") as tmp_name:
        tmp = Path(tmp_name)
        _, mntp, simcse = compat_copies(build, base, tmp)

        # the package, in its own venv
        t0 = time.time()
        args = {"mntp": str(mntp), "simcse": str(simcse), "texts": TEXTS, "out": str(tmp), "batch": BATCH}
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        run = subprocess.run([str(SIDE_PYTHON), "-c", SIDE_SCRIPT, json.dumps(args)], cwd=tmp, env=env,
                             capture_output=True, text=True)
        if run.returncode != 0:
            error = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit code {run.returncode}"
            write_failure(date, build, base, f"the llm2vec package (in .venv-llm2vec) failed: {error}",
                          run.stderr[-3000:])
            raise SystemExit(run.stderr[-3000:])
        side = json.loads((tmp / "llm2vec.json").read_text())
        reference = {name: np.load(tmp / f"llm2vec-{name}.npy")
                     for name in ("mntp+simcse", "mntp+simcse-merged", "mntp")}
        side_seconds = time.time() - t0

    # genembed, here
    ours, ids_same, seconds, settings = {}, {}, {}, {}
    for name, spec in (("mntp+simcse", f"{build}/mntp+{build}/simcse"), ("mntp", f"{build}/mntp")):
        t0 = time.time()
        try:
            teacher = LLM2VecTeacher(spec, device="cpu", dtype="float32")
            t1 = time.time()
            ours[name] = teacher.embed(TEXTS, batch_size=BATCH)
        except Exception as error:
            write_failure(date, build, base, f"genembed's LLM2VecTeacher({spec!r}) failed: "
                          f"{type(error).__name__}: {error}", repr(error))
            raise
        seconds[name] = [round(t1 - t0, 1), round(time.time() - t1, 1)]
        ours_ids = [teacher.tokenizer(teacher._strings(t)[0])["input_ids"] for t in TEXTS]
        ids_same[name] = sum(a == b for a, b in zip(ours_ids, side["ids"][name]))
        settings[name] = (teacher.pooling_mode, teacher.max_length, teacher.doc_max_length,
                          teacher.skip_instruction)
        del teacher

    results = {name: compare(reference[name], ours[name.removesuffix("-merged")]) for name in reference}
    lora_b = {part: max_lora_b(build / part) for part in ("mntp", "simcse")}
    between = compare(ours["mntp"], ours["mntp+simcse"])
    ours_versions = {p: md.version(p) for p in ("torch", "transformers", "peft", "tokenizers")}
    total = time.time() - started
    lengths = [len(t) for t in side["ids"]["mntp"]]
    write_report(date, build, base, side, ours_versions, results, between, ids_same, lengths, settings,
                 seconds, side_seconds, total, torch.get_num_threads(), lora_b)


def rerun_command(build: Path) -> str:
    try:
        shown = build.relative_to(ROOT)
    except ValueError:
        shown = build
    return (f"HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice -n 19 .venv/bin/python "
            f"lab/parity/llm2vec_smollm2.py {shown}")


def write_failure(date: str, build: Path, base: Path, what: str, detail: str) -> None:
    text = (f"# LLM2Vec teacher parity with the llm2vec package on SmolLM2-135M-Instruct\n\n"
            f"Run {date} on build `{build}` (base `{base}`): no comparison was made, {what}.\n\n"
            f"```\n{detail.strip()}\n```\n\nRerun:\n\n```\n{rerun_command(build)}\n```\n")
    REPORT.write_text(text, encoding="utf-8")
    print(text)


def write_report(date, build, base, side, ours_versions, results, between, ids_same, lengths, settings,
                 seconds, side_seconds, total, threads, lora_b) -> None:
    sv, ov = side["versions"], ours_versions
    n = len(TEXTS)
    rows = []
    labels = {"mntp+simcse": "mntp+simcse", "mntp": "mntp alone",
              "mntp+simcse-merged": "mntp+simcse, llm2vec with `merge_peft=True`"}
    for name in ("mntp+simcse", "mntp", "mntp+simcse-merged"):
        r = results[name]
        rows.append(f"| {labels[name]} | {r['max_abs']:.3g} | {r['scale']:.3g} | {r['rel']:.3g} | {r['min_cos']:.12f} "
                    f"| {1 - r['min_cos']:.3g} | {ids_same[name.removesuffix('-merged')]}/{n} |")
    pooling, max_length, doc_max_length, skip = settings["mntp+simcse"]

    def sec(name, table):
        return f"{table[name][0]} / {table[name][1]}"

    unmerged, merged = results["mntp+simcse"]["max_abs"], results["mntp+simcse-merged"]["max_abs"]
    if merged < unmerged:
        residual = (f"llm2vec keeps the SimCSE adapter as a separate LoRA layer (W·x plus the scaled B·A·x, "
                    f"added after), genembed merges it into W: with `merge_peft=True` the package's vectors "
                    f"differ from genembed's by {merged:.3g} instead of {unmerged:.3g}, so the mntp+simcse "
                    f"difference is that rounding.")
    else:
        residual = (f"With `merge_peft=True` the package's vectors differ from genembed's by {merged:.3g} "
                    f"(unmerged: {unmerged:.3g}).")
    text = f"""# LLM2Vec teacher parity with the llm2vec package on SmolLM2-135M-Instruct

Run {date}. genembed's LLM2Vec teacher reader (`genembed.teachers.LLM2VecTeacher`) against the `llm2vec` package
(the reference implementation), both reading the LLM2Vec teacher that `genembed teacher build` wrote to
`{build}` (`mntp/`: LoRA adapter over the base; `simcse/`: second LoRA adapter), over genembed's de-quantised
SmolLM2-135M-Instruct (`{base}`). float32, CPU, {threads} thread(s), one batch of {n} texts (a question, a
{len(TEXTS[1].split())}-word paragraph, a one-word text, a line of accented, Japanese, Cyrillic text and an emoji,
Python code, an instruction, a pangram, SQL with surrounding spaces; {min(lengths)} to {max(lengths)} tokens).

- llm2vec side (`.venv-llm2vec`): llm2vec {sv['llm2vec']}, torch {sv['torch']}, transformers {sv['transformers']},
  peft {sv['peft']}, tokenizers {sv['tokenizers']}; model class {side['model_class']}, attention
  `{side['attn']}`, rope_theta {side['rope_theta']}.
  `LLM2Vec.from_pretrained(MNTP, peft_model_name_or_path=SIMCSE, pooling_mode="mean", max_length=512,
  torch_dtype=torch.float32)` (the MNTP adapter merged, the SimCSE adapter kept as a PEFT layer), then
  `encode(texts, batch_size={BATCH})`; for "mntp" the same without the second adapter.
- genembed side (`.venv`): torch {ov['torch']}, transformers {ov['transformers']}, peft {ov['peft']},
  tokenizers {ov['tokenizers']}. `LLM2VecTeacher("BUILD/mntp+BUILD/simcse").embed(texts, batch_size={BATCH})`
  (both adapters merged) and `LLM2VecTeacher("BUILD/mntp")`. Settings read: pooling {pooling}, max_length
  {max_length}, doc_max_length {doc_max_length}, skip_instruction {skip}.
- transformers 4.44 reads a copy of the base and adapter folders in a temporary folder: `rope_theta` moved
  back to the top level of config.json, tokenizer.json merges written as "a b" strings, tokenizer_config.json
  naming `PreTrainedTokenizerFast`; weights and adapters unchanged (symlinked), adapter_config.json pointing at
  the copies.

| configuration | max \\|Δ\\| | max \\|x\\| (llm2vec) | max \\|Δ\\| / max \\|x\\| | min cosine | 1 − min cosine | token ids identical |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Embeddings are the raw mean-pooled states (not normalised), as both sides return them; the cosine is computed
in float64. The adapters are not trivial: their LoRA B matrices reach |{lora_b['mntp']:.3g}| (mntp) and
|{lora_b['simcse']:.3g}| (simcse), and genembed's "mntp" and "mntp+simcse" vectors differ by up to
{between['max_abs']:.3g} (min cosine {between['min_cos']:.4f}). {residual}

Seconds, load / embed: llm2vec mntp+simcse {sec('mntp+simcse', side['seconds'])}, mntp+simcse merged
{sec('mntp+simcse-merged', side['seconds'])}, mntp {sec('mntp', side['seconds'])} (side venv subprocess
{side_seconds:.0f} s in all); genembed mntp+simcse {sec('mntp+simcse', seconds)}, mntp {sec('mntp', seconds)};
whole script {total:.0f} s, under `nice -n 19` on a 2-core machine.

Rerun:

```
{rerun_command(build)}
```
"""
    REPORT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
