"""Copy a finished `genembed teacher build` into the package as a bundled LLM2Vec teacher, which
`genembed.teachers.load_teacher(NAME)` then opens from a clean install (genembed.teachers.BUNDLED_LLM2VEC).

    .venv/bin/python scripts/bundle_teacher.py runs/self-supervised-teacher smollm2-135m-llm2vec

Each adapter (mntp/, simcse/) keeps its adapter_config.json and llm2vec_config.json; its weights are stored in
float16 (half the size; they are added to float32 weights when merged). The mntp adapter names its base by the
backbone's alias (a build made over a bundled backbone's de-quantised folder names that folder, which is
per machine), the simcse one names "../mntp" as the llm2vec layout does. The tokenizer and config files a
build keeps beside the mntp adapter are left out: the base's own are read. Prints how far the bundled
teacher's embeddings of a few texts are from the build's.
"""
import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from genembed.teachers import BUNDLED_LLM2VEC, LLM2VecTeacher, bundled_llm2vec_folder, bundled_llm2vec_spec

KEEP = ("adapter_config.json", "llm2vec_config.json")
TEXTS = ["How do I boil an egg?", "Photosynthesis turns light into chemical energy.", "Write a haiku about rain."]

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("build", type=Path, help="the --out folder of a finished `genembed teacher build`")
ap.add_argument("name", choices=sorted(BUNDLED_LLM2VEC), help="the bundled teacher's name")
ap.add_argument("--backbone", default="smollm2-135m-instruct", help="the alias the build's --backbone was")
args = ap.parse_args()

dest = bundled_llm2vec_folder(args.name)
with tempfile.TemporaryDirectory(prefix=".bundle-", dir=dest.parent) as tmp:
    for part, base in (("mntp", args.backbone), ("simcse", "../mntp")):
        source, target = args.build / part, Path(tmp) / part
        target.mkdir()
        for name in KEEP:
            shutil.copyfile(source / name, target / name)
        config = json.loads((target / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = base
        (target / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        weights = load_file(str(source / "adapter_model.safetensors"))
        save_file({k: v.to(torch.float16).contiguous() for k, v in weights.items()},
                  str(target / "adapter_model.safetensors"))
    for path in [Path(tmp), *Path(tmp).rglob("*")]:  # (a temporary folder is private to its owner)
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.move(tmp, dest)
    Path(tmp).mkdir()  # (the context manager removes it again)

built = LLM2VecTeacher(f"{args.build / 'mntp'}+{args.build / 'simcse'}").embed(TEXTS)
bundled = LLM2VecTeacher(bundled_llm2vec_spec(args.name)).embed(TEXTS)
cosine = (built * bundled).sum(1) / np.linalg.norm(built, axis=1) / np.linalg.norm(bundled, axis=1)
print(f"{dest}: {sum(f.stat().st_size for f in dest.rglob('*') if f.is_file()) / 1e6:.1f} MB; "
      f"bundled vs built on {len(TEXTS)} texts: max |Δ| {np.abs(built - bundled).max():.2e}, "
      f"min cosine {cosine.min():.6f}")
