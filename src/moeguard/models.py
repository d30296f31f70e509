"""Loading models by path, hub name, ``builtin:`` name or LoRA adapter folder, with one-line errors.

A LoRA output folder of ``moeguard finetune`` (``adapter_config.json``) loads as its base model with the
adapter applied (a ``peft.PeftModel``, unmerged). The base is found in the folder's ``finetune.json``
(a ``builtin:`` name survives any move) or in ``adapter_config.json``'s ``base_model_name_or_path``
(written as an absolute path, so moving the adapter folder keeps it loadable; a relative one is tried
next to the adapter folder first).

Vision-language and omni models whose language model is an MoE load with the Auto class that maps their
``model_type`` (:func:`auto_class_name`: ``AutoModelForImageTextToText`` / ``AutoModelForMultimodalLM`` for
composite configs, ``AutoModelForCausalLM`` otherwise) and are used for text only; an omni model without a
forward of its own (Qwen3-Omni) is returned as its ``thinker`` (the talker is not built). A chat template
that only the processor files hold (``chat_template.json`` / ``chat_template.jinja``) is given to the
tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from moeguard.errors import MoeguardError

BUILTIN_PREFIX = "builtin:"
ADAPTER_CONFIG = "adapter_config.json"


def is_adapter_folder(path: str | Path) -> bool:
    """A PEFT adapter folder (has ``adapter_config.json``)."""
    return (Path(path).expanduser() / ADAPTER_CONFIG).is_file()


def adapter_base(folder: str | Path) -> str:
    """The base model of adapter ``folder``: ``finetune.json``'s model when it is a builtin name or an
    existing path, else ``base_model_name_or_path`` (relative paths resolved next to the folder)."""
    folder = Path(folder).expanduser()
    recorded = None
    meta = folder / "finetune.json"
    if meta.is_file():
        try:
            recorded = json.loads(meta.read_text(encoding="utf-8")).get("model")
        except (json.JSONDecodeError, UnicodeDecodeError):
            recorded = None
    if isinstance(recorded, str) and recorded.startswith(BUILTIN_PREFIX):
        return recorded
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        raise MoeguardError(f"{folder / ADAPTER_CONFIG} is not valid JSON; re-save the adapter") from None
    base = config.get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise MoeguardError(f"{folder / ADAPTER_CONFIG} names no base model (base_model_name_or_path)")
    candidate = Path(base).expanduser()
    if not candidate.is_absolute() and (folder / candidate).exists():
        return str((folder / candidate).resolve())
    return base


def resolve_model_path(name: str) -> str:
    """Turn a ``builtin:`` name into its folder; check local paths exist (hub ids pass through)."""
    if name.startswith(BUILTIN_PREFIX):
        from moeguard.builtin import resolve

        path = Path(resolve("model", name[len(BUILTIN_PREFIX) :]))
        if not (path / "config.json").is_file():
            raise MoeguardError(
                f"the built-in model {name} is not installed at {path}; run 'moeguard organism train --output {path}'"
            )
        return str(path)
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or path.exists() or name.count("/") != 1 or name.endswith("/")
    if looks_local:
        if not path.exists():
            raise MoeguardError(
                f"model path {name} does not exist (no such folder); pass a folder with config.json, a hub id "
                "or builtin:organism"
            )
        if not path.is_dir():
            raise MoeguardError(f"model path {name} is a file; pass the folder that holds config.json")
        if not (path / "config.json").is_file() and not is_adapter_folder(path):
            raise MoeguardError(f"{name} has no config.json; pass a folder written by save_pretrained")
    return str(path) if looks_local else name


def _torch_dtype(dtype: str | None):
    import torch

    if dtype is None or dtype == "auto":
        return dtype
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise MoeguardError(f"unknown dtype {dtype!r}; use float32, bfloat16, float16 or auto")
    return value


def resolve_device(device: str):
    """``auto`` (cuda, else mps, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` as a checked torch device."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise MoeguardError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps", param="device") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise MoeguardError(f"device {device} asked for but CUDA is not available here; use --device cpu")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise MoeguardError(f"device {device} does not exist ({torch.cuda.device_count()} CUDA devices)")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise MoeguardError(f"device {device} asked for but MPS is not available here; use --device cpu")
    return chosen


def _check_hub(name: str) -> dict:
    """Extra ``from_pretrained`` arguments for a hub id: local cache only when the hub cannot be reached, with
    a one-line error if the model is not cached either (instead of a long retry loop)."""
    from moeguard.hub import hub_problem, offline_switch

    if offline_switch() is not None:
        return {"local_files_only": True}
    problem = hub_problem()
    if problem is None:
        return {}
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(name, local_files_only=True)
    except Exception:  # not in the local cache
        raise MoeguardError(
            f"cannot download {name}: the Hugging Face hub is unreachable ({problem}) and the model is not in "
            "the local cache; pass a local folder (save_pretrained) or builtin:organism"
        ) from None
    return {"local_files_only": True}


#: Auto classes that load an MoE language model, in the order tried (``modeling_auto`` mapping names).
AUTO_CLASSES = {
    "CAUSAL_LM": "AutoModelForCausalLM",
    "IMAGE_TEXT_TO_TEXT": "AutoModelForImageTextToText",
    "MULTIMODAL_LM": "AutoModelForMultimodalLM",
}
#: transformers 5.24: ``Llama4ForConditionalGeneration.forward`` always fails (it reads ``image_outputs`` from
#: the text model's output); the text-only ``Llama4ForCausalLM`` loads the same checkpoint's language model.
AUTO_OVERRIDES = {"llama4": "AutoModelForCausalLM"}
#: Config overrides at load time: Qwen3-Omni's speech talker is not the language model (not built).
LOAD_OVERRIDES: dict[str, dict[str, Any]] = {"qwen3_omni_moe": {"enable_audio_output": False}}


def is_composite(config) -> bool:
    """Whether ``config`` nests its language model (``text_config`` / ``thinker_config``)."""
    subs = getattr(type(config), "sub_configs", None) or {}
    return bool({"text_config", "thinker_config"} & set(subs))


def auto_class_name(config) -> str:
    """The transformers Auto class that loads ``config``'s model as a language model."""
    from transformers.models.auto import modeling_auto

    model_type = getattr(config, "model_type", None)
    if model_type in AUTO_OVERRIDES:
        return AUTO_OVERRIDES[model_type]
    auto_map = getattr(config, "auto_map", None) or {}
    if "AutoModelForCausalLM" in auto_map:
        return "AutoModelForCausalLM"
    order = ("IMAGE_TEXT_TO_TEXT", "MULTIMODAL_LM", "CAUSAL_LM") if is_composite(config) else tuple(AUTO_CLASSES)
    for key in order:
        if model_type in getattr(modeling_auto, f"MODEL_FOR_{key}_MAPPING_NAMES", {}):
            return AUTO_CLASSES[key]
    return "AutoModelForCausalLM"


def auto_class(config):
    """The Auto class object of :func:`auto_class_name`."""
    import transformers

    return getattr(transformers, auto_class_name(config))


def language_model_of(model):
    """``model``, or its ``thinker`` when the model class has no forward of its own (omni models)."""
    from torch import nn

    if type(model).forward is nn.Module.forward and isinstance(getattr(model, "thinker", None), nn.Module):
        return model.thinker
    return model


def _processor_chat_template(folder: str) -> str | None:
    """A chat template kept with the processor files of a local folder, if any."""
    path = Path(folder).expanduser()
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    js = path / "chat_template.json"
    if js.is_file():
        try:
            value = json.loads(js.read_text(encoding="utf-8")).get("chat_template")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            return None
        return value if isinstance(value, str) else None
    return None


def load_model(
    name: str,
    trust_remote_code: bool = False,
    dtype: str | None = None,
    device_map: str | None = None,
    adapter: str | None = None,
    device: str | None = None,
    allow_unregistered: bool = False,
):
    """Load ``(model, tokenizer)`` in eval mode.

    ``name``: local folder, hub id, ``builtin:`` name, or a LoRA adapter folder (its base + the adapter).
    ``adapter``: apply this adapter folder to ``name`` instead of the base the folder records.
    ``device``: move the model there (``auto``: cuda if available); ``device_map`` dispatches it instead.
    ``trust_remote_code`` stays False unless the caller asks for it. ``allow_unregistered``: a model type
    without a registered routing adapter is inspected now and used with the known routing family that
    reproduces its routers exactly (:func:`moeguard.inspect_moe`); otherwise moeguard refuses it when it
    first inspects the model.
    """
    from transformers import AutoConfig

    target = resolve_device(device) if device is not None else None
    path = resolve_model_path(name)
    if adapter is None and is_adapter_folder(path):
        adapter, path = path, resolve_model_path(adapter_base(path))
    elif adapter is not None and not is_adapter_folder(adapter):
        raise MoeguardError(f"{adapter} is not a LoRA adapter folder (no {ADAPTER_CONFIG})")
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if not Path(path).expanduser().exists():
        kwargs.update(_check_hub(path))
    torch_dtype = _torch_dtype(dtype)
    if torch_dtype is not None:
        kwargs["dtype"] = torch_dtype
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        config = AutoConfig.from_pretrained(
            path, trust_remote_code=trust_remote_code, **{k: v for k, v in kwargs.items() if k == "local_files_only"}
        )
        kwargs.update(LOAD_OVERRIDES.get(str(getattr(config, "model_type", "")), {}))
        model = auto_class(config).from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MoeguardError(f"could not load model {name!r}: {first}") from None
    model = language_model_of(model)
    tokenizer_source = adapter if adapter is not None and (Path(adapter) / "tokenizer_config.json").is_file() else path
    tokenizer = load_tokenizer(
        tokenizer_source, name, trust_remote_code, local_files_only=bool(kwargs.get("local_files_only", False))
    )
    if adapter is not None:
        model = apply_adapter(model, adapter)
    if target is not None and device_map is None:
        model = model.to(target)
    model.eval()
    if allow_unregistered:
        from moeguard.adapters import inspect_moe

        inspect_moe(model, allow_unregistered=True)
    return model, tokenizer


def load_tokenizer(
    source: str | Path, name: str | None = None, trust_remote_code: bool = False, local_files_only: bool = False
):
    """The tokenizer of the model folder (or hub id) ``source``, with a pad token (eos when it has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(source), trust_remote_code=trust_remote_code, local_files_only=local_files_only
        )
    except (OSError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MoeguardError(f"could not load a tokenizer for {name or source!r}: {first}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "chat_template", None) is None:  # composite models keep it with the processor
        tokenizer.chat_template = _processor_chat_template(str(source))
    return tokenizer


def apply_adapter(model, adapter: str | Path):
    """``model`` with the LoRA adapter folder ``adapter`` applied (a ``peft.PeftModel``, not merged)."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(adapter)).eval()
    except (ValueError, RuntimeError, KeyError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MoeguardError(f"could not apply the adapter {adapter}: {first}") from None


def record_adapter_base(folder: str | Path, base: str) -> None:
    """Make ``adapter_config.json`` of ``folder`` name the local base ``base`` by its absolute path, so that
    moving the adapter folder keeps it loadable. Builtin names stay in ``finetune.json``; hub ids and names
    that are not local paths leave PEFT's entry as it is."""
    from moeguard.artifacts import write_json_atomic

    local = Path(base).expanduser()
    if base.startswith(BUILTIN_PREFIX) or not local.is_dir():
        return
    config_path = Path(folder) / ADAPTER_CONFIG
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(local.resolve())
    write_json_atomic(config_path, config)
