"""The README and the guides are part of the product: their links resolve, their code runs as written,
and the project speaks of itself, not of the work that made it."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\(([^)]+)\)\s*-->\s*$")


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--", *patterns], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / p for p in out.stdout.split() if (REPO / p).is_file()]


def anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[`*_]|<[^>]+>", lambda m: "_" if m.group(0) == "_" else "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {anchor(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    problems = []
    text = FENCE.sub("", path.read_text())
    for m in LINK.finditer(text):
        target = m.group(1) or m.group(2)
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        file_part, _, frag = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{path.relative_to(root)}: {target} (no such file)")
        elif frag and dest.suffix == ".md" and frag not in anchors(dest):
            problems.append(f"{path.relative_to(root)}: {target} (no such heading)")
    return problems


def test_the_anchor_rule_is_githubs():
    assert anchor("Inference backends: `backend=\"onnx\"` / `\"openvino\"`") == "inference-backends-backendonnx--openvino"
    assert anchor("2.1 `run_config.yml`") == "21-run_configyml"


def test_every_link_of_the_readme_the_guides_and_the_lab_resolves():
    pages = tracked("README.md", "docs/*.md", "lab/*.md", "lab/**/*.md")
    assert REPO / "README.md" in pages and len(pages) > 10
    problems = [p for page in pages for p in broken_links(page)]
    assert not problems, "\n".join(problems)


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# A heading\n")
    page.write_text("[ok](other.md#a-heading) [gone](missing.md) [bad anchor](other.md#nope)\n")
    found = broken_links(page, root=tmp_path)
    assert len(found) == 2 and "missing.md" in found[0] and "nope" in found[1]


# the project speaks of itself: no labels of the work process that made it (numbered work items)
HISTORY = re.compile(r"\b(st" r"ops?|iss" r"ues?)[ -]?\d+(\.\d+)?\b", re.I)


def history_words() -> list[str]:
    hits = []
    for path in tracked("*"):
        if path.suffix in {".png", ".safetensors", ".gz", ".npy", ".bz2"} or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if HISTORY.search(line):
                hits.append(f"{path.relative_to(REPO)}:{i}: {line.strip()[:120]}")
    return hits


def test_no_work_history_words_anywhere_in_the_project():
    hits = history_words()
    assert not hits, f"{len(hits)} lines:\n" + "\n".join(hits[:40])


def test_the_history_pattern_catches_what_it_should():
    for line in ["since st" "op 44", "(Iss" "ue 27.2)", "st" "ops 36-40", "st" "op-48 reading"]:
        assert HISTORY.search(line), line
    for line in ["stop the command", "an issue with the file", "issues were found"]:
        assert not HISTORY.search(line), line


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of each python / bash block of the README that the test runs, in order."""
    text = (REPO / "README.md").read_text()
    blocks = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if m.group(1) in ("python", "bash") and not SKIP.search(before):
            blocks.append((m.group(1), m.group(2)))
    return blocks


def test_every_skipped_readme_block_says_why():
    text = (REPO / "README.md").read_text()
    skipped = [m for m in re.finditer(r"<!--\s*readme-test:[^>]*-->", text)]
    assert skipped and all(SKIP.search(m.group(0)) for m in skipped)
    assert len(readme_blocks()) >= 4


@pytest.mark.integration
def test_every_readme_snippet_runs_as_written(tmp_path):
    """The README's Python and shell blocks, in order, in one empty folder, with the set-up's .venv on
    PATH: what a user pastes after the set-up command (files a block needs are made by an earlier one)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for i, (language, code) in enumerate(readme_blocks()):
        cmd = [sys.executable, "-c", code] if language == "python" else ["bash", "-euo", "pipefail", "-c", code]
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"README block {i} ({language}) failed:\n{code}\n--- output:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def test_every_shell_script_parses():
    """`bash -n` on each tracked shell script: a comment line that lost its `#` is a syntax error that would
    otherwise show only when the script runs, after whatever it did first."""
    tracked = subprocess.run(["git", "ls-files", "*.sh", ".ci/run"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked, "no shell scripts found"
    broken = {}
    for name in tracked:
        result = subprocess.run(["bash", "-n", name], cwd=REPO, capture_output=True, text=True)
        if result.returncode:
            broken[name] = result.stderr.strip()
    assert not broken, broken
