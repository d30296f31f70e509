"""CLI command modules; each defines ``register(app)`` and is picked up automatically by ``moeguard.cli``.

Options shared by several commands live here so that every command spells them the same way.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

MODEL_HELP = "Local folder (save_pretrained), LoRA output folder, hub id, or builtin:organism."


class Dtype(str, Enum):
    """Weights' dtype when loading a model."""

    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


ModelArgument = Annotated[str, typer.Argument(help=MODEL_HELP, metavar="MODEL", show_default=False)]
TrustOption = Annotated[
    bool, typer.Option("--trust-remote-code", help="Allow the model repo's own code (off unless you ask).")
]
AllowUnregisteredOption = Annotated[
    bool,
    typer.Option(
        "--allow-unregistered",
        help="Use a model type moeguard has no adapter for when a known routing family reproduces its routers "
        "exactly on a probe (the family is reported).",
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="Where to run the model: auto (cuda if available), cpu, cuda, cuda:N, mps.")
]
DtypeOption = Annotated[Dtype, typer.Option("--dtype", help="Weights' dtype (auto: as saved).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout instead of tables.")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Use a spec whose 'model' names another model (noted in the outputs).")
]


def _apply_threads(value: str) -> str:
    """``--threads``' callback: check the value and set torch's thread count as the command line is parsed
    (Click calls it for the default too), so every command that takes the option runs with it applied."""
    from moeguard.threads import apply_threads

    apply_threads(value)
    return value


ThreadsOption = Annotated[
    str,
    typer.Option(
        "--threads",
        help="CPU threads: a number, or auto (the cores other work leaves free).",
        callback=_apply_threads,
    ),
]


def int_list(text: str | None, option: str, example: str) -> tuple[int, ...]:
    """A comma-separated option value as integers (empty or None: ``()``); a one-line error otherwise."""
    from moeguard.errors import MoeguardError

    if not text:
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise MoeguardError(f"{option} must be comma-separated integers like {example}, got {text!r}") from None


def load(model: str, trust_remote_code: bool, device: str, dtype: Dtype, allow_unregistered: bool = False):
    """``(model, tokenizer)`` with the shared loading options."""
    from moeguard.models import load_model

    return load_model(
        model,
        trust_remote_code=trust_remote_code,
        dtype=dtype.value,
        device=device,
        allow_unregistered=allow_unregistered,
    )


def print_json(data) -> None:
    """One JSON document on stdout."""
    import json

    print(json.dumps(data, indent=2, default=str))


class BackendName(str, Enum):
    """Engines behind ``--backend`` (see :mod:`moeguard.backends`)."""

    hf = "hf"
    vllm = "vllm"


BackendOption = Annotated[
    BackendName,
    typer.Option(
        "--backend",
        help='Engine: hf (transformers, default) or vllm (pip install "moeguard[vllm]"; engine arguments in '
        "$MOEGUARD_VLLM_ENGINE_ARGS as JSON). Same greedy text and selected experts.",
    ),
]


def load_engine(
    backend: BackendName,
    model: str,
    trust_remote_code: bool,
    device: str,
    dtype: Dtype,
    allow_unregistered: bool = False,
    **engine_options,
):
    """``model`` loaded in ``backend`` with the shared loading options (vLLM picks its own device; a dtype other
    than auto is passed on, auto keeps the checkpoint's dtype); ``engine_options`` go to the backend.
    ``allow_unregistered`` (transformers backend only) is :func:`moeguard.models.load_model`'s."""
    from moeguard.backends import get_backend

    options: dict = {"trust_remote_code": trust_remote_code, **engine_options}
    if backend is BackendName.hf:
        options.update(device=device, dtype=dtype.value, allow_unregistered=allow_unregistered)
    elif allow_unregistered:
        from moeguard.errors import MoeguardError

        raise MoeguardError("--allow-unregistered needs --backend hf (vLLM serves registered families only)")
    elif dtype is not Dtype.auto:
        options["dtype"] = dtype.value
    return get_backend(backend.value, **options).load(model)
