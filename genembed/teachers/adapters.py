"""PEFT LoRA adapters over a base model: found (a folder or a hub id), their weights read without running
code, checked against the base's modules and shapes, and merged into its weights."""
from __future__ import annotations

from pathlib import Path

import torch

from .folders import ADAPTER_CONFIG, TeacherError, hub_file, looks_local


def adapter_folder(part: str, what: str) -> Path:
    """The local folder of an adapter given as a folder or a hub id."""
    path = Path(part).expanduser()
    if path.is_dir():
        return path
    if looks_local(part):
        raise TeacherError(f"{what} {part!r} is not a folder")
    if hub_file(part, ADAPTER_CONFIG, what) is None:
        raise TeacherError(f"{what} {part!r} is not a PEFT adapter: the hub repo has no {ADAPTER_CONFIG}")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(part, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.model", "*.txt"]))


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
