"""CLI command modules; each defines ``register(app)`` and is picked up automatically by ``moeguard.cli``.

Options shared by several commands live here so that every command spells them the same way.
"""

from typing import Annotated

import typer

MODEL_HELP = "Local folder (save_pretrained), hub id, or builtin:organism."
TrustOption = Annotated[bool, typer.Option("--trust-remote-code", help="Allow the model repo's own code.")]
