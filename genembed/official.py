"""The official llm2vec-gen checkpoint layout (docs/official-format.md), read and written here.

    <folder>/run_config.yml               model_name_or_path, torch_dtype, special_tokens, ...
            encoder_decoder_config.json   {"encoding_mode": "last_K_tokens", "save_decoder": false}
            encoder/adapter_config.json   PEFT trainable tokens: token_indices
            encoder/adapter_model.safetensors   ...embed_tokens.base_layer.weight [V+N, H] (the whole resized
                                          table) and ...trainable_tokens_delta [N, H] (the N special rows)
            encoder/config.json           the backbone's config, vocab_size V+N
            reconstruction_mlp, alignment_mlp   torch.save({"state_dict": projection.weight/bias, "config"})
            tokenizer files               the backbone's tokenizer plus <question1> ... <questionN>

`read_official` rebuilds a GenEmbed from such a folder: PEFT replaces rows token_indices[i] of the
table by delta[i], so the special tokens are the delta's rows in input order; the base rows must be
the backbone's own embeddings; recon and align are the two projections. The model records the
official input layout (inputs.py) and decodes through the soft prompt by default. Nothing pickled
is executed: the projections are read with torch.load(weights_only=True), YAML with a safe loader.
What genembed cannot honour (a LoRA-adapted encoder, a projection mode other than linear, a saved
separate decoder) is refused naming the file and the option.

`write_official` writes a genembed model trained in the official layout as such a folder, which
the official `LLM2VecGenModel.from_pretrained` loads. The folder names its backbone as another machine
can load it: a hub id (for a bundled alias, the hub model it stands for), or a folder the user named,
never a folder of this machine's caches; its tokenizer has a pad token (the official encode() pads).
"""
from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError, safe_open
from transformers import AutoTokenizer

from .atomic import write_folder, write_text
from .backbone import ALIASES, Backbone, cache_root, gguf_digest, load_backbone
from .checkpoint import CheckpointError
from .data import package_file
from .errors import InputError
from .inputs import added_ids
from .jsonl import read_json_object
from .model import DEFAULT_INSTRUCTIONS, GenEmbed, GenEmbedConfig
from .tensorfile import save_tensors

RUN_CONFIG, ENCODER_DECODER = "run_config.yml", "encoder_decoder_config.json"
RECON, ALIGN = "reconstruction_mlp", "alignment_mlp"
ADAPTER_CONFIG, ADAPTER = "encoder/adapter_config.json", "encoder/adapter_model.safetensors"
BASE_KEY = "base_model.model.embed_tokens.base_layer.weight"
DELTA_KEY = "base_model.model.embed_tokens.trainable_tokens_delta"
MAX_LENGTH = 512  # the official encode()'s max_length: the whole row, special tokens included
SAME_ROWS, OTHER_MODEL = 5e-3, 0.5  # relative distance of the base rows to the backbone's: rounding / another model
# The model each bundled alias stands for on the Hugging Face hub (genembed runs the alias on a quantised GGUF
# of it): what an exported folder names, for the official code loads its backbone with from_pretrained.
HUB_IDS = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}


def is_official(folder) -> bool:
    """Whether `folder` is in the official layout (a run_config.yml and an encoder/ adapter)."""
    folder = Path(folder)
    return (folder / RUN_CONFIG).is_file() and (folder / "encoder").is_dir()


# -- reading -------------------------------------------------------------------------------------
class _RunConfigLoader(yaml.SafeLoader):
    """Safe YAML; a `!!python/...` tag becomes its plain value (what the official reader keeps), never an object."""


_RunConfigLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/",
    lambda loader, suffix, node: (loader.construct_sequence(node)[0] if isinstance(node, yaml.SequenceNode)
                                  and node.value else loader.construct_scalar(node)
                                  if isinstance(node, yaml.ScalarNode) else None))


def _run_config(folder: Path) -> dict:
    path = folder / RUN_CONFIG
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_RunConfigLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt: not valid YAML ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} is corrupt: not a mapping of settings")
    for key in ("model_name_or_path", "special_tokens"):
        if key not in config:
            raise CheckpointError(f"{path} has no '{key}'")
    if not isinstance(config["special_tokens"], list) or not config["special_tokens"]:
        raise CheckpointError(f"{path}: 'special_tokens' must be a non-empty list, got {config['special_tokens']!r}")
    return config


def _compression_count(folder: Path, run_config: dict) -> int:
    path = folder / ENCODER_DECODER
    config = read_json_object(path, CheckpointError) if path.exists() else _missing(path)
    if config.get("save_decoder"):
        raise CheckpointError(f"{path}: save_decoder is true (a separately trained decoder in decoder/); genembed "
                              f"decodes with the frozen backbone only and cannot honour it")
    mode = config.get("encoding_mode", run_config.get("encoding_mode", "last_10_tokens"))
    match = re.fullmatch(r"last_(\d+)_tokens", str(mode))
    if not match or int(match.group(1)) < 1:
        raise CheckpointError(f"{path}: encoding_mode {mode!r} is not supported (only last_K_tokens, K >= 1)")
    return int(match.group(1))


def _missing(path: Path):
    raise CheckpointError(f"{path.parent} is not a complete official llm2vec-gen folder: {path.name} is missing")


def _projection(path: Path, expected_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight [out, in], bias [out]) of a saved ProjectionModel, read without executing pickled code."""
    if not path.exists():
        _missing(path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (torch raises several kinds for a bad archive)
        why = "it holds pickled objects, not weights only" if "weights_only" in str(e) or "Unpickl" in type(e).__name__ \
            else "not a readable torch.save archive"
        raise CheckpointError(f"{path} is corrupt or unsafe: {why} ({type(e).__name__})") from None
    if not isinstance(saved, dict) or not {"state_dict", "config"} <= set(saved):
        raise CheckpointError(f"{path} is not a projection: expected a dict with 'state_dict' and 'config'")
    config, state = saved["config"], saved["state_dict"]
    if config.get("pooling_mode", "linear") != "linear":
        raise CheckpointError(f"{path}: pooling_mode {config.get('pooling_mode')!r} is not supported (only 'linear')")
    if config.get("size", 1) != 1:
        raise CheckpointError(f"{path}: size {config.get('size')} (one projection per position) is not supported")
    weight, bias = state.get("projection.weight"), state.get("projection.bias")
    if not isinstance(weight, torch.Tensor) or not isinstance(bias, torch.Tensor) or weight.ndim != 2 \
            or bias.shape != weight.shape[:1] or weight.shape[1] != expected_in:
        raise CheckpointError(f"{path}: expected projection.weight [out, {expected_in}] and projection.bias [out], got "
                              f"{sorted(state)} with shapes {[tuple(v.shape) for v in state.values()]}")
    return weight.float(), bias.float()


def _adapter(folder: Path, n_special: int) -> tuple[list[int], torch.Tensor, object]:
    """(token_indices, delta [N, H], an open handle on the base table) of the PEFT trainable-tokens adapter."""
    config_path = folder / ADAPTER_CONFIG
    config = read_json_object(config_path, CheckpointError) if config_path.exists() else _missing(config_path)
    if config.get("peft_type") != "TRAINABLE_TOKENS":
        raise CheckpointError(f"{config_path}: peft_type {config.get('peft_type')!r} (e.g. a LoRA-adapted encoder) is "
                              f"not supported: genembed keeps the backbone untouched and trains only the special tokens")
    indices = config.get("token_indices")
    if not isinstance(indices, list) or len(indices) != n_special or not all(isinstance(i, int) for i in indices):
        raise CheckpointError(f"{config_path}: token_indices must list the {n_special} special-token ids of "
                              f"{RUN_CONFIG}, got {indices!r}")
    path = folder / ADAPTER
    if not path.exists():
        _missing(path)
    try:
        handle = safe_open(str(path), framework="pt")
        keys = set(handle.keys())
        delta = handle.get_tensor(DELTA_KEY).float() if DELTA_KEY in keys else None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is corrupt or not a safetensors file ({e})") from None
    if delta is None or BASE_KEY not in keys:
        raise CheckpointError(f"{path} lacks {DELTA_KEY if delta is None else BASE_KEY}: not a trainable-tokens adapter")
    if delta.shape[0] != n_special:
        raise CheckpointError(f"{path}: {DELTA_KEY} has {delta.shape[0]} rows for {n_special} special tokens")
    return indices, delta, handle


def _check_backbone(folder: Path, backbone: Backbone, tokenizer, specials: list[str], table) -> None:
    """The backbone must be the one the adapter was trained on: its vocabulary plus the special tokens is the
    folder's tokenizer, the same rule of added tokens (BOS), the same width, and the adapter's base rows are
    its own embeddings (up to rounding; a different quantisation of it is let through with a warning)."""
    base = table.get_slice(BASE_KEY)
    rows, width = base.get_shape()
    if width != backbone.hidden_size:
        raise CheckpointError(f"{folder / ADAPTER}: embeddings of width {width}, backbone '{backbone.name}' has "
                              f"{backbone.hidden_size}")
    own, theirs = backbone.tokenizer.get_vocab(), tokenizer.get_vocab()
    extra = set(theirs) - set(own)
    if extra != set(specials) or any(theirs[t] != i for t, i in own.items() if t in theirs):
        raise CheckpointError(f"{folder}: the tokenizer does not match backbone '{backbone.name}': beyond its "
                              f"vocabulary it has {sorted(extra)[:5]}{'…' if len(extra) > 5 else ''}, expected exactly "
                              f"the special tokens {specials[:3]}…, and every other token at the backbone's id")
    if added_ids(backbone.tokenizer) != added_ids(tokenizer):
        raise CheckpointError(f"{folder}: the tokenizer adds {added_ids(tokenizer)} around a text, backbone "
                              f"'{backbone.name}''s adds {added_ids(backbone.tokenizer)}: not the same tokenizer")
    n = min(len(own), rows, backbone.vocab_size)
    weight = backbone.model.get_input_embeddings().weight
    diff = norm = 0.0
    for start in range(0, n, 8192):  # chunked: an 8B model's table is a gigabyte or more
        theirs_rows = base[start:min(start + 8192, n)].float()
        ours = weight[start:start + len(theirs_rows)].detach().float().cpu()
        diff += float((theirs_rows - ours).pow(2).sum())
        norm += float(ours.pow(2).sum())
    distance = (diff / max(norm, 1e-30)) ** 0.5
    if distance > OTHER_MODEL:
        raise CheckpointError(f"{folder / ADAPTER}: its base embeddings differ from backbone '{backbone.name}''s by "
                              f"{distance:.0%}: another model")
    if distance > SAME_ROWS:
        warnings.warn(f"backbone '{backbone.name}': its embeddings differ from the adapter's base rows by {distance:.1%} "
                      f"(another quantisation of the same model?): embeddings will not equal the official model's")


def _backbone_name(folder: Path, run_config: dict) -> str:
    """run_config's model_name_or_path: a path relative to the folder, or to the current directory (where the
    official code looks), else a hub id or alias as given."""
    name = str(run_config["model_name_or_path"])
    for base in (folder, Path.cwd()):
        if (base / name).exists():
            return str((base / name).resolve())
    return name


def _added_special_tokens(tokenizer) -> list[str]:
    """The tokenizer's added special tokens in order (transformers 5 names them extra_special_tokens, 4.x
    additional_special_tokens)."""
    for name in ("extra_special_tokens", "additional_special_tokens"):
        try:
            value = getattr(tokenizer, name)
        except AttributeError:
            continue
        if isinstance(value, (list, tuple)):
            return [str(t) for t in value]
    return []


def read_official(folder: str | Path, backbone: str | Backbone | None = None, dtype: str = "float32",
                  device: str | None = None) -> GenEmbed:
    """A GenEmbed computing what the official LLM2VecGenModel.from_pretrained(folder) computes.
    backbone: a local copy of the backbone (a folder, a GGUF, or a loaded Backbone) instead of
    run_config's model_name_or_path; checked against the folder's tokenizer and adapter."""
    folder = Path(folder)
    run_config = _run_config(folder)
    n_special = len(run_config["special_tokens"])
    n_compression = _compression_count(folder, run_config)
    if n_compression > n_special:
        raise CheckpointError(f"{folder / ENCODER_DECODER}: last_{n_compression}_tokens but only {n_special} special tokens")
    indices, delta, table = _adapter(folder, n_special)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{folder}: its tokenizer cannot be read ({e})") from None
    specials = _added_special_tokens(tokenizer)
    ids = tokenizer.convert_tokens_to_ids(specials)
    if len(specials) != n_special or sorted(ids) != sorted(indices):
        raise CheckpointError(f"{folder}: the tokenizer's special tokens {specials} (ids {ids}) do not match the "
                              f"adapter's token_indices {indices} in {ADAPTER_CONFIG}")
    if not isinstance(backbone, Backbone):
        backbone = load_backbone(backbone or _backbone_name(folder, run_config), dtype=dtype, device=device)
    _check_backbone(folder, backbone, tokenizer, specials, table)
    recon_w, recon_b = _projection(folder / RECON, backbone.hidden_size)
    align_w, align_b = _projection(folder / ALIGN, recon_w.shape[0])
    config = GenEmbedConfig(backbone=backbone.name, backbone_signature=backbone.signature(),
                            hidden_size=backbone.hidden_size, embedding_dim=align_w.shape[0],
                            teacher="unknown",  # (its teacher, an LLM2Vec model, is not one genembed can load)
                            num_thought_tokens=n_special - n_compression, num_compression_tokens=n_compression,
                            max_text_tokens=int(run_config.get("max_input_length") or MAX_LENGTH),
                            instructions=dict(DEFAULT_INSTRUCTIONS), input_layout="official", decoder="soft-prompt")
    model = GenEmbed(config, backbone)
    with torch.no_grad():
        model.special_tokens.copy_(delta[[indices.index(i) for i in ids]])  # PEFT replaces row indices[i] by delta[i]
        model.recon.weight.copy_(recon_w)
        model.recon.bias.copy_(recon_b)
        model.align.weight.copy_(align_w)
        model.align.bias.copy_(align_b)
    return model.eval()


# -- writing -------------------------------------------------------------------------------------
def write_official(model: GenEmbed, out_dir: str | Path, backbone_path: str | None = None) -> Path:
    """Write `model` as an official llm2vec-gen folder (float32 tensors). backbone_path: what run_config's
    model_name_or_path should say (a hub id or folder the official code can load); default:
    exported_backbone_name of the backbone the model records."""
    if model.config.input_layout != "official":
        raise InputError("this checkpoint uses genembed's chat layout (each text inside the backbone's chat template, "
                         "only the text truncated), which the official code cannot reproduce: it tokenizes "
                         "instruction + text as one raw string. Train with `genembed train --input-layout official` "
                         "to publish for the official tools")
    n = model.config.num_thought_tokens + model.config.num_compression_tokens
    specials = [f"<question{i + 1}>" for i in range(n)]
    if backbone_path is None:
        backbone_path = exported_backbone_name(model.backbone.name)
    elif _is_under(Path(backbone_path).expanduser(), cache_root()) and Path(backbone_path).expanduser().is_dir():
        readable_by_transformers4(Path(backbone_path).expanduser())  # genembed's de-quantised GGUF, named on purpose
    _check_rope(backbone_path)
    staging = Path(tempfile.mkdtemp(prefix="genembed-export-"))
    try:
        tokenizer = copy.deepcopy(model.backbone.tokenizer)  # as loaded: with the pad token load_backbone gives it
        if tokenizer.pad_token is None:  # (a Backbone built otherwise) the official trainer's rule: EOS pads
            tokenizer.pad_token = tokenizer.eos_token
        original = len(tokenizer)
        tokenizer.add_special_tokens({"additional_special_tokens": specials})
        tokenizer.init_kwargs["padding_side"] = tokenizer.padding_side = "left"  # saved, unlike the official trainer's
        tokenizer.save_pretrained(staging)
        _tokenizer_config_for_transformers4(staging / "tokenizer_config.json")
        files = {p.name: _copier(p) for p in staging.iterdir()}
        files.update(_official_files(model, tokenizer, specials, original, backbone_path))
        return write_folder(out_dir, files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def exported_backbone_name(name: str) -> str:
    """What an exported folder names as the backbone a model records as `name`: a name the official code
    (from_pretrained) can load on another machine. A bundled alias, its GGUF, or genembed's de-quantised
    copy of it: the hub model the alias stands for (with a warning: the official code then runs the
    unquantised weights); a snapshot folder of the Hugging Face cache: its hub id; a hub id: itself; a
    folder: its absolute path. Any other GGUF, or another folder of genembed's cache, is refused: only
    the user knows what to name for it (backbone_path)."""
    alias = _alias_of(name)
    if alias is not None and alias in HUB_IDS:
        gguf = package_file(*ALIASES[alias])
        warnings.warn(f"backbone '{name}' is {gguf.name}; the exported folder names {HUB_IDS[alias]}, whose "
                      f"unquantised weights the official code loads, so its embeddings will differ from genembed's "
                      f"(for the same numbers on this machine pass --backbone-path "
                      f"{cache_root() / 'backbones' / gguf_digest(gguf)}, genembed's de-quantised copy)", stacklevel=3)
        return HUB_IDS[alias]
    path = Path(name).expanduser()
    hub_id = _hub_id_of_snapshot(path)
    if hub_id is not None:
        return hub_id
    if alias is not None or name.endswith(".gguf") or _is_under(path, cache_root()):
        what = ("a bundled alias" if name in ALIASES else "a GGUF file" if name.endswith(".gguf")
                else "a folder of genembed's cache")
        raise CheckpointError(f"backbone '{name}' is {what}, which the official code cannot load on another machine "
                              f"and genembed knows no hub id for: pass --backbone-path (its hub id, or a folder "
                              f"transformers 4.56 can load)")
    return str(path.resolve()) if path.is_dir() else name


def _alias_of(name: str) -> str | None:
    """The bundled alias `name` is, or whose GGUF file or de-quantised folder in genembed's cache it is."""
    if name in ALIASES:
        return name
    path = Path(name).expanduser()
    in_cache = _is_under(path, cache_root() / "backbones")
    if not (name.endswith(".gguf") or in_cache):
        return None
    for alias, where in ALIASES.items():
        try:
            gguf = package_file(*where)
        except FileNotFoundError:  # its package is not installed
            continue
        if (path.resolve() == gguf.resolve()) if name.endswith(".gguf") else path.name == gguf_digest(gguf):
            return alias
    return None


def _hub_id_of_snapshot(path: Path) -> str | None:
    """'org/name' for a folder .../models--org--name/snapshots/<revision> of the Hugging Face cache."""
    repo = path.parent.parent.name
    if path.parent.name == "snapshots" and repo.startswith("models--") and repo.count("--") >= 2:
        return repo[len("models--"):].replace("--", "/", 1)
    return None


def _is_under(path: Path, folder: Path) -> bool:
    """Whether `path` is a local path inside `folder` (a hub id, relative and absent, is no path)."""
    return (path.is_absolute() or path.exists()) and path.resolve().is_relative_to(folder.resolve())


# The official code pins transformers 4.56; genembed runs on 5.x, whose files 4.56 misreads in two places
# (found by scripts/official_parity.py, docs/official-parity.md): the tokenizer class name and the list of
# added tokens, and the RoPE base, which 5.x keeps only under rope_parameters (4.56 then silently uses 10000).
def _tokenizer_config_for_transformers4(path: Path) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("tokenizer_class") == "TokenizersBackend":  # a 5.x-only class name
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
    if isinstance(config.get("extra_special_tokens"), list):  # 4.x wants a dict there; the list is its additional_
        config["additional_special_tokens"] = config.pop("extra_special_tokens")
    write_text(path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def _rope_for_transformers4(config: dict) -> dict:
    rope = config.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope and "rope_theta" not in config:
        scaling = None if rope.get("rope_type", "default") == "default" else {k: v for k, v in rope.items()
                                                                              if k != "rope_theta"}
        config = {**config, "rope_theta": rope["rope_theta"], "rope_scaling": scaling}
    return config


def readable_by_transformers4(folder: Path) -> None:
    """Add to a backbone folder written by transformers 5.x what 4.x needs to read it as 5.x does (5.x reads
    the added keys the same way)."""
    config_path, tokenizer_config = folder / "config.json", folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if _rope_for_transformers4(config) != config:
        write_text(config_path, json.dumps(_rope_for_transformers4(config), indent=2) + "\n")
    if tokenizer_config.exists():
        _tokenizer_config_for_transformers4(tokenizer_config)


def _check_rope(backbone_path: str) -> None:
    config_path = Path(backbone_path) / "config.json"
    if config_path.exists():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if _rope_for_transformers4(config) != config:
            raise InputError(f"{config_path} keeps its RoPE base only under rope_parameters (transformers 5.x): the "
                             f"official code (transformers 4.56) would silently use 10000. Add rope_theta to it, or "
                             f"name the backbone by its hub id (--backbone-path)")


def _copier(source: Path):
    return lambda path: shutil.copyfile(source, path)


def _official_files(model: GenEmbed, tokenizer, specials: list[str], original: int, backbone_path: str) -> dict:
    """name -> writer of every file but the tokenizer's."""
    c, backbone = model.config, model.backbone
    ids = tokenizer.convert_tokens_to_ids(specials)
    tokens = model.special_tokens.detach().float().cpu()
    table = torch.cat([backbone.model.get_input_embeddings().weight.detach().float().cpu()[:original], tokens])
    encoder_config = {**_rope_for_transformers4(backbone.config.to_dict()), "vocab_size": len(tokenizer), "num_special_tokens": len(specials),
                      "special_tokens": ids, "special_tokens_ids": ids, "tokenizer_original_num_tokens": original,
                      "num_tokens": len(tokenizer)}
    encoder_config.pop("quantization_config", None)
    base = type(backbone.model.base_model)
    adapter_config = {"peft_type": "TRAINABLE_TOKENS", "target_modules": "embed_tokens", "token_indices": ids,
                      "init_weights": True, "inference_mode": True, "base_model_name_or_path": backbone_path,
                      "revision": None, "task_type": None,
                      "auto_mapping": {"base_model_class": base.__name__, "parent_library": base.__module__}}
    run_config = {"model_name_or_path": backbone_path, "torch_dtype": "float32", "special_tokens": specials,
                  "encoding_mode": f"last_{c.num_compression_tokens}_tokens", "max_input_length": c.max_text_tokens,
                  "tokenizer_padding_side": "left", "add_reconstruction_mlp": True, "add_alignment_mlp": True,
                  "pretrained_teacher_path": c.teacher, "written_by": "genembed export --format llm2vec-gen"}

    def json_file(value):
        return lambda path: path.write_text(json.dumps(value, indent=2) + "\n")

    def projection(layer: torch.nn.Linear):
        state = OrderedDict([("projection.weight", layer.weight.detach().float().cpu().contiguous()),
                             ("projection.bias", layer.bias.detach().float().cpu().contiguous())])
        config = {"input_dim": layer.in_features, "output_dim": layer.out_features, "dtype": "torch.float32",
                  "size": 1, "pooling_mode": "linear"}
        return lambda path: torch.save({"state_dict": state, "config": config}, path)

    def adapter(path: Path):
        path.parent.mkdir(exist_ok=True)
        save_tensors({BASE_KEY: table.contiguous(), DELTA_KEY: tokens.contiguous()}, path, metadata={"format": "pt"})

    def in_encoder(write):
        def wrapped(path: Path):
            path.parent.mkdir(exist_ok=True)
            write(path)
        return wrapped

    return {RUN_CONFIG: lambda path: path.write_text(yaml.safe_dump(run_config, sort_keys=False)),
            ENCODER_DECODER: json_file({"encoding_mode": run_config["encoding_mode"], "save_decoder": False}),
            RECON: projection(model.recon), ALIGN: projection(model.align), ADAPTER: adapter,
            ADAPTER_CONFIG: in_encoder(json_file(adapter_config)),
            "encoder/config.json": in_encoder(json_file(encoder_config))}
