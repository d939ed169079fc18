"""Wall time of `genembed encode "hello"` on the bundled default: the first call into an empty
backbone cache (it de-quantises the GGUF once) and the calls after it (they read the cache).

    .venv/bin/python lab/benchmarks/startup.py            # 1 first + 3 later calls, each a fresh process
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(later: int = 3) -> None:
    with tempfile.TemporaryDirectory(prefix="genembed-startup-") as cache:
        env = {**os.environ, "GENEMBED_CACHE": cache, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        times = []
        for _ in range(1 + later):
            start = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "genembed"), "encode", "hello", "--out",
                            str(Path(cache) / "v.npy")], env=env, check=True, capture_output=True, cwd=ROOT)
            times.append(time.perf_counter() - start)
    print(f"first call (empty cache: de-quantise + encode): {times[0]:.1f} s")
    print("later calls (cache read): " + ", ".join(f"{t:.1f} s" for t in times[1:]))


if __name__ == "__main__":
    main()
