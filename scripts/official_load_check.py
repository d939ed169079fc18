"""Load an official-layout folder with the OFFICIAL llm2vec-gen code and write what it computes: the
check that a folder written by genembed (genembed.official.write_official, `genembed export --format
llm2vec-gen`) is usable by the official tools.

    .venv-official/bin/python scripts/official_load_check.py DIR --texts-json TEXTS.json --out EMB.npy

Runs only in .venv-official (bash scripts/official_env.sh: llm2vec-gen 0.1.3, transformers 4.56.2,
peft 0.18.0, torch 2.13.0), CPU, float32 (whatever run_config.yml's torch_dtype says is what the
official code loads; genembed writes float32), one thread.

TEXTS.json: a JSON list of strings, each already carrying its instruction (the official encode()
prefixes nothing). Writes
    EMB.npy             LLM2VecGenModel.from_pretrained(DIR).encode(texts) as one left-padded batch
                        (max_length 512), float32 [n, dim]
    EMB.npy.json        the decode ids (also printed as one JSON line), the tokenizer's special tokens
                        and padding side, the encoder config's eos_token_id, versions, timings

The decode is EncoderDecoderModel.generate of the first text's soft prompt (encoded alone), with the
arguments LLM2VecGenModel.generate builds (that wrapper moves its inputs to "cuda" unconditionally,
so on CPU the call is made one level down, as scripts/official_fixture.py does).

The official loader hands run_config.yml's model_name_or_path to from_pretrained as it is, so a
relative path resolves against the current directory: this script loads with the current
directory set to DIR (an absolute path is unaffected).
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_fixture import cwd, offline_torch  # noqa: E402  (the scripts' shared set-up)


def rope_theta(model):
    """The RoPE base the loaded encoder really uses (its rotary embedding's config), or None."""
    try:
        return float(model.get_base_model().rotary_emb.config.rope_theta)
    except AttributeError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="an official-layout model folder (run_config.yml, encoder/, ...)")
    ap.add_argument("--texts-json", required=True, help="JSON list of texts, instructions already prefixed")
    ap.add_argument("--out", required=True, help=".npy file for the embeddings")
    ap.add_argument("--decode-tokens", type=int, default=24, help="greedy tokens decoded from the first text")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    t0 = time.time()

    torch = offline_torch(args.threads, deterministic=False)
    import numpy as np
    from llm2vec_gen.models import LLM2VecGenModel

    folder = Path(args.folder).resolve()
    texts = json.loads(Path(args.texts_json).read_text(encoding="utf-8"))
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        sys.exit(f"{args.texts_json}: expected a non-empty JSON list of strings")

    with cwd(folder):  # run_config's model_name_or_path resolves from here, as the official code expects
        lm = LLM2VecGenModel.from_pretrained(str(folder))
    t_load = time.time() - t0
    lm.model.eval()
    tok = lm.tokenizer
    specials = list(tok.additional_special_tokens)
    n_special = lm.model.config.num_special_tokens
    if len(specials) != n_special:
        # encode() appends tokenizer.additional_special_tokens: anything else than the run_config's N
        # tokens means the official model reads the wrong positions
        print(f"WARNING: the tokenizer's additional_special_tokens {specials} are not the {n_special} special "
              f"tokens of run_config.yml", file=sys.stderr)

    t1 = time.time()
    emb, soft = lm.encode(texts, max_length=args.max_length, get_recon_hidden_states=True)
    emb = emb.float().cpu().numpy()
    t_encode = time.time() - t1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, emb)

    t2 = time.time()
    _, soft_first = lm.encode(texts[0], max_length=args.max_length, get_recon_hidden_states=True)
    prompt = tok(["" + "".join(specials)], return_tensors="pt")  # what LLM2VecGenModel.generate('') tokenizes
    with torch.no_grad():
        ids = lm.model.generate(input_ids=prompt["input_ids"], attention_mask=prompt["attention_mask"],
                                max_new_tokens=args.decode_tokens, decoder_inputs_embeds=soft_first)
    ids = ids[0].tolist()
    t_decode = time.time() - t2

    report = {
        "folder": str(folder),
        "n_texts": len(texts),
        "embedding_shape": list(emb.shape),
        "soft_prompt_shape": list(soft.shape),
        "decode_ids": ids,
        "decode_text": tok.decode(ids, skip_special_tokens=True),
        "tokenizer": {"class": type(tok).__name__, "additional_special_tokens": specials,
                      "padding_side": tok.padding_side, "pad_token_id": tok.pad_token_id, "len": len(tok)},
        "num_special_tokens": n_special,
        "encoding_mode": lm.model.encoding_mode,
        "eos_token_id": lm.model.config.eos_token_id,
        "rope_theta_of_encoder": rope_theta(lm.model.encoder_model),
        "versions": {p: md.version(p) for p in ("torch", "transformers", "peft", "llm2vec-gen", "tokenizers")},
        "seconds": {"load": round(t_load, 2), "encode": round(t_encode, 2), "decode": round(t_decode, 2),
                    "total": round(time.time() - t0, 2)},
    }
    Path(str(out) + ".json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({"decode_ids": ids}))
    print(f"official: {len(texts)} texts -> {out} {list(emb.shape)}; decode {len(ids)} ids; "
          f"load {t_load:.1f}s encode {t_encode:.1f}s decode {t_decode:.1f}s")


if __name__ == "__main__":
    main()
