"""CLI command modules; each defines ``register(app)`` and is picked up automatically by ``moeguard.cli``.

Options shared by several commands live here so that every command spells them the same way.
"""

from enum import Enum
from typing import Annotated

import typer

MODEL_HELP = "Local folder (save_pretrained), hub id, or builtin:organism."
TrustOption = Annotated[bool, typer.Option("--trust-remote-code", help="Allow the model repo's own code.")]


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
