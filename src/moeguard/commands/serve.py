"""``moeguard serve``: vLLM's OpenAI-compatible server with per-request steering (the vLLM backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import ModelArgument, TrustOption


def serve(
    ctx: typer.Context,
    model: ModelArgument,
    steer: Annotated[
        Path | None, typer.Option("--steer", help="Spec for requests that send none (vllm_xargs moeguard_steer).")
    ] = None,
    spec: Annotated[
        list[str] | None, typer.Option("--spec", help="NAME=FILE: a spec requests can name (repeatable).")
    ] = None,
    capture_dir: Annotated[
        Path | None, typer.Option("--capture-dir", help="Write routing of requests sent with moeguard_capture here.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the server command instead of running it.")] = False,
    trust_remote_code: TrustOption = False,
) -> None:
    """Serve MODEL with vLLM's OpenAI-compatible API; each request may steer with its own spec
    (extra_body={"vllm_xargs": {"moeguard_steer": "<spec JSON or name>"}}). Unknown options go to vLLM
    (e.g. --port 8000 --tensor-parallel-size 2 --enable-expert-parallel)."""
    import os
    import shlex

    from moeguard.backends.vllm.engine import require_vllm
    from moeguard.backends.vllm.server import parse_named_specs, serve_command, serve_environment

    require_vllm()
    named = parse_named_specs(spec or [])
    argv = serve_command(
        model, steer=steer, specs=named, capture_dir=capture_dir, extra=ctx.args, trust_remote_code=trust_remote_code
    )
    if dry_run:
        print(shlex.join(argv))
        return
    os.environ.update(serve_environment(model, named, trust_remote_code))
    os.execv(argv[0], argv)


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(serve)
