"""One resolver for ``builtin:`` names: models, pair sets, prompt sets and conversation sets.

Packages register what they ship (``register(kind, name, loader)``); the core resolves names without
knowing who provides them. moeguard's own provider is the model organism
(:mod:`moeguard.organism.builtins`); other installed packages can add theirs through the
``moeguard.builtins`` entry-point group (a callable run once before the first lookup).

Kinds and loader signatures:

* ``model``: ``loader() -> str`` (a folder);
* ``pairs``: ``loader(n: int | None, seed: int) -> list[dict]`` (pair records, see :mod:`moeguard.data`);
* ``prompts``: ``loader(n: int | None, seed: int) -> list[str | messages]``;
* ``conversations``: ``loader(n: int | None, seed: int) -> list[messages]`` (fine-tuning data);
* ``benchmark``: ``loader(split: str | None) -> list[BenchmarkItem]`` (:mod:`moeguard.eval.benchmarks`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moeguard.errors import MoeguardError

PREFIX = "builtin:"
KINDS = ("model", "pairs", "prompts", "conversations", "benchmark")
#: Providers shipped with moeguard, imported on first lookup.
PROVIDERS = ("moeguard.organism.builtins",)
_WORDS = {
    "model": "model",
    "pairs": "pair set",
    "prompts": "prompt set",
    "conversations": "conversation set",
    "benchmark": "benchmark",
}


@dataclass(frozen=True)
class Builtin:
    """A registered built-in: its loader and a one-line description."""

    kind: str
    name: str
    loader: Callable[..., Any]
    description: str = ""


_REGISTRY: dict[tuple[str, str], Builtin] = {}
_loaded = False


def register(kind: str, name: str, loader: Callable[..., Any], description: str = "") -> Builtin:
    """Register ``builtin:NAME`` of ``kind``; a second registration of the same name is an error."""
    if kind not in KINDS:
        raise ValueError(f"unknown built-in kind {kind!r}; one of {', '.join(KINDS)}")
    if not name or name.startswith(PREFIX) or any(c.isspace() for c in name):
        raise ValueError(f"invalid built-in name {name!r}")
    key = (kind, name)
    if key in _REGISTRY and _REGISTRY[key].loader is not loader:
        raise ValueError(f"built-in {kind} {name!r} is already registered")
    _REGISTRY[key] = Builtin(kind, name, loader, description)
    return _REGISTRY[key]


def _load_providers() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in PROVIDERS:
        try:
            importlib.import_module(module).register_builtins()
        except ImportError:  # a trimmed install without the organism
            continue
    from importlib.metadata import entry_points

    for entry in entry_points(group="moeguard.builtins"):
        entry.load()()


def available(kind: str) -> list[str]:
    """``builtin:`` names of ``kind``, sorted."""
    _load_providers()
    return sorted(PREFIX + name for k, name in _REGISTRY if k == kind)


def is_builtin(text: object) -> bool:
    """Whether ``text`` is spelled as a ``builtin:`` name."""
    return isinstance(text, str) and text.startswith(PREFIX)


def lookup(kind: str, name: str) -> Builtin:
    """The registered built-in (``name`` with or without the ``builtin:`` prefix); one-line error if unknown."""
    _load_providers()
    bare = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    found = _REGISTRY.get((kind, bare))
    if found is None:
        names = ", ".join(available(kind)) or "none installed"
        raise MoeguardError(f"unknown built-in {_WORDS[kind]} {PREFIX}{bare!r}; available: {names}")
    return found


def resolve(kind: str, name: str, **kwargs: Any) -> Any:
    """Load built-in ``name`` of ``kind`` (``n=``, ``seed=`` for data sets)."""
    return lookup(kind, name).loader(**kwargs)
