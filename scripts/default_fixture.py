"""The bundled default's recorded embeddings (tests/fixtures/default-embeddings-<kind>.npz), which
tests/test_integration.py checks bit for bit: a change that should not move a number must not.

    .venv/bin/python scripts/default_fixture.py         # after the default is retrained (train_default.sh)
    .venv/bin/python scripts/default_fixture.py --add   # this CPU kind's file too, for the same default

Encodes the texts of tests/fixtures/default-embeddings.json (every kind: empty, a special-token
string, one past max_text_tokens) with genembed.load() in float32 on the CPU, for both instructions
and batched two ways, in full batches of the length-sorted rows (the test's reference cut), after
the same first calls as the test (they leave the shared prompt head cached, which changes rounding). torch's
float32 kernels round differently per CPU kind (genembed.testing.cpu_kind: AVX2, AVX512,
AVX512-AMX), so the file is named by the kind it was made on; the other kinds' files are removed (they
hold the previous default's numbers) and the test compares those kinds to this file within 1e-6.
With --add, the reference and the other kinds' files stay: this kind's file is added beside them, for
the same default (refused otherwise) and only if it is within 1e-6 of the reference, so that this kind
is then checked bit for bit too.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import genembed
from genembed import batching
from genembed.atomic import file_digest
from genembed.checkpoint import DEFAULT_CHECKPOINT
from genembed.testing import cpu_kind

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--add", action="store_true", help="add this CPU kind's file beside the reference kind's")
args = ap.parse_args()
spec_path = FIXTURES / "default-embeddings.json"
spec = json.loads(spec_path.read_text())
kind = cpu_kind()
weights = file_digest(DEFAULT_CHECKPOINT / "model.safetensors")
if args.add and weights != spec["default_sha256"]:
    raise SystemExit("the fixture was made for another bundled default: rerun without --add (it remakes the reference)")
model = genembed.load()


def both():
    return {"query": model.encode(spec["texts"], instruction="query"),
            "document": model.encode(spec["texts"], instruction="document", batch_size=2)}


both()  # as in the test: the first calls (batches cut by cost) leave the shared prompt head cached
batching.plan_batches = lambda lengths, size, cost: list(range(0, len(lengths), size))  # the reference cut
got = both()
if args.add:
    reference = np.load(FIXTURES / f"default-embeddings-{spec['kind']}.npz")
    for name, value in got.items():
        np.testing.assert_allclose(value, reference[name], rtol=0, atol=1e-6, err_msg=f"{name} against {spec['kind']}")
    np.savez(FIXTURES / f"default-embeddings-{kind}.npz", **got)
    print(f"added: default-embeddings-{kind}.npz (within 1e-6 of {spec['kind']}'s)")
    raise SystemExit(0)
for old in FIXTURES.glob("default-embeddings-*.npz"):
    old.unlink()
np.savez(FIXTURES / f"default-embeddings-{kind}.npz", **got)
spec.pop("commit", None)
spec.update(kind=kind, default_sha256=weights, note=(
    "genembed.load().encode(texts, instruction=...) in float32 on the CPU (scripts/default_fixture.py), made on "
    f"CPU kind {kind} (genembed.testing.cpu_kind()) with the bundled default whose model.safetensors has the "
    "SHA-256 default_sha256; other kinds are compared to it within 1e-6"))
spec_path.write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n")
print(f"written: {FIXTURES / f'default-embeddings-{kind}.npz'} (CPU kind {kind}, default {weights[:12]})")
