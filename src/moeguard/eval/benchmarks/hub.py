"""Benchmark rows from the Hugging Face hub — only when the hub can answer, and failing fast when not.

``datasets.load_dataset`` retries an unreachable hub for about 20 seconds and prints a warning per retry.
Before calling it, :func:`hub_problem` checks the offline switches (``HF_HUB_OFFLINE``,
``HF_DATASETS_OFFLINE``) and sends one HTTP ``HEAD`` request to the hub endpoint (``HF_ENDPOINT``,
through the usual proxy variables) with a short timeout (``MOEGUARD_HUB_TIMEOUT`` seconds, default 3,
DNS included). Any HTTP answer counts as reachable; a refused, silent or unresolvable endpoint does not.
Offline mode still reads the local ``datasets`` cache (no network); everything else that fails is one
:class:`MoeguardError` line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from moeguard.errors import MoeguardError
from moeguard.hub import hub_problem, offline_switch

__all__ = ["hub_problem", "hub_rows", "offline_switch"]


def _library_offline() -> bool | None:
    """Whether the already imported ``datasets`` runs offline (None when it is not imported yet)."""
    config = sys.modules.get("datasets.config")
    if config is None:
        return None
    return bool(getattr(config, "HF_HUB_OFFLINE", False) or getattr(config, "HF_DATASETS_OFFLINE", False))


def hub_rows(
    repo: str, config: str | None, split: str, fix: str
) -> tuple[tuple[str, ...], Iterator[tuple[str, dict[str, Any]]]]:
    """``(columns, rows)`` of one split of a hub dataset; ``rows`` streams ``(where, record)``.

    ``fix`` is the advice appended to every error (e.g. "download harmful_behaviors.csv and pass
    advbench:PATH").
    """
    switch = offline_switch()
    if switch is not None and _library_offline() is False:
        raise MoeguardError(
            f"{switch} was set after `datasets` was imported, so it would still go online for {repo}; "
            f"set {switch}=1 before starting Python, or {fix}"
        )
    if switch is None:
        problem = hub_problem()
        if problem is not None:
            raise MoeguardError(
                f"cannot reach the Hugging Face hub for {repo} ({problem}); {fix} "
                "(or set HF_HUB_OFFLINE=1 to read a copy in the local datasets cache)"
            )
    try:
        import datasets

        args = (repo, config) if config else (repo,)
        dataset = datasets.load_dataset(*args, split=split)
    except Exception as err:  # the hub raises many types (connection, offline, gated, not found, bad split)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = "in the local datasets cache" if switch else "from the Hugging Face hub"
        raise MoeguardError(f"could not load {repo} (split {split!r}) {where}: {first[:200]}; {fix}") from None
    label = f"{repo}[{split}]"
    return tuple(dataset.column_names), ((f"{label} row {i}", dict(r)) for i, r in enumerate(dataset))
