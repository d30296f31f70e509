"""The one place where moeguard touches routers: a hook registry per model.

Every model gets one :class:`RouterHooks` (``RouterHooks.of(model)``), shared by everything that reads or
edits its routing. The registry puts at most one torch forward hook on each router, and only while
something is registered on that layer, so an untouched model runs hook-free. On every router call the hook

1. combines the active *edits* of the layer (:class:`~moeguard.routing.edits.ExpertEdit`, in registration
   order) and, if there are any, re-routes with the adapter (``steer_output``: the family's ``edited_route``
   written back in the router's own output format);
2. passes the final decision to every *reader* as a :class:`RouterCall`.

Registration returns a tracked :class:`HookHandle` (``remove()`` is idempotent). ``with hooks.context():``
opens a level: everything added inside it and still registered is removed on exit, also on exceptions, so
nested uses compose (steering inside a capture is seen by the capture; a capture inside steering records
steered routing) and clean up in reverse order.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from moeguard.routing.edits import ExpertEdit, combine

if TYPE_CHECKING:
    from moeguard.adapters import MoEModel

#: An edit, or a callable returning this call's edit (None: no edit now), e.g. per-step training noise.
EditSource = ExpertEdit | Callable[[], ExpertEdit | None]


@dataclass
class RouterCall:
    """One router call as readers see it: decoder ``layer`` (row ``position`` among MoE layers), the
    router's input ``hidden`` and its final decision (after edits): ``logits [N, E]`` (the router's own,
    also under edits), ``weights [N, k]``, ``indices [N, k]``. ``edited`` tells whether an edit changed the
    router's own decision."""

    layer: int
    position: int
    router: nn.Module
    hidden: torch.Tensor
    logits: torch.Tensor
    weights: torch.Tensor
    indices: torch.Tensor
    edited: bool
    #: The router call's positional arguments after ``hidden`` (a block's selection bias, token ids, ...).
    extra: tuple = ()


Reader = Callable[[RouterCall], None]


class HookHandle:
    """A registered edit or reader; ``remove()`` unregisters it (idempotent)."""

    __slots__ = ("_registry", "_kind", "_layers", "_entry", "level")

    def __init__(self, registry: RouterHooks, kind: str, layers: tuple[int, ...], entry: Any, level: int):
        self._registry = registry
        self._kind = kind
        self._layers = layers
        self._entry = entry
        self.level = level

    @property
    def active(self) -> bool:
        return self._entry is not None

    def remove(self) -> None:
        if self._entry is not None:
            self._registry._remove(self)
            self._entry = None


def is_compiled(model: object) -> bool:
    """Whether ``model`` is a ``torch.compile`` wrapper."""
    return isinstance(getattr(model, "_orig_mod", None), nn.Module)


_hook_guards_on = False


def _guard_compiled_hooks() -> None:
    """Make ``torch.compile`` guard on module hooks (off by default: hooks added after compilation would be
    ignored), and drop graphs compiled without those guards, once per process."""
    global _hook_guards_on
    if _hook_guards_on:
        return
    import torch._dynamo

    torch._dynamo.config.skip_nnmodule_hook_guards = False
    torch._dynamo.reset()
    _hook_guards_on = True


class RouterHooks:
    """Read and write interventions on the routers of one model (see the module docstring)."""

    _registries: weakref.WeakKeyDictionary[nn.Module, RouterHooks] = weakref.WeakKeyDictionary()

    def __init__(self, moe: MoEModel):
        self.adapter = moe.adapter
        self.routers = dict(moe.routers)
        self.positions = {layer: i for i, layer in enumerate(moe.layers)}
        self._edits: dict[int, list[tuple[HookHandle, EditSource]]] = {}
        self._readers: dict[int, list[tuple[HookHandle, Reader]]] = {}
        self._torch_handles: dict[int, Any] = {}
        #: Per layer, the edits combined once when they are all fixed ``ExpertEdit``s (None: evaluate per call).
        self._static: dict[int, ExpertEdit | None] = {}
        self._handles: list[HookHandle] = []
        self.level = 0

    @classmethod
    def of(cls, model: nn.Module | MoEModel) -> RouterHooks:
        """The registry of ``model`` (a transformers model, any wrapper of it, or its ``MoEModel``)."""
        from moeguard.adapters import MoEModel, inspect_moe
        from moeguard.routing.unwrap import unwrap

        if is_compiled(model) or getattr(model, "compiled", False):
            _guard_compiled_hooks()
        base = model.model if isinstance(model, MoEModel) else unwrap(model)
        registry = cls._registries.get(base)
        if registry is None:
            moe = model if isinstance(model, MoEModel) else inspect_moe(base)
            registry = cls(moe)
            cls._registries[base] = registry
        return registry

    # ------------------------------------------------------------------ registration
    def _check_layer(self, layer: int) -> None:
        if layer not in self.routers:
            from moeguard.errors import MoeguardError

            raise MoeguardError(f"decoder layer {layer} has no router; MoE layers: {sorted(self.routers)}")

    def add_edit(self, layer: int, edit: EditSource) -> HookHandle:
        """Edit the routing of decoder ``layer`` on every call until the handle is removed."""
        self._check_layer(layer)
        handle = HookHandle(self, "edit", (layer,), edit, self.level)
        self._edits.setdefault(layer, []).append((handle, edit))
        self._plan(layer)
        return self._track(handle)

    def _plan(self, layer: int) -> None:
        """Pre-combine a layer's edits when none of them changes between calls (the common, steering case)."""
        sources = [source for _, source in self._edits.get(layer, ())]
        if sources and all(isinstance(s, ExpertEdit) for s in sources):
            kept = [s for s in sources if isinstance(s, ExpertEdit) and not s.is_empty]
            self._static[layer] = combine(kept) if kept else None
        else:
            self._static.pop(layer, None)

    def add_reader(self, reader: Reader, layers: list[int] | None = None) -> HookHandle:
        """Call ``reader(RouterCall)`` after every call of the routers of ``layers`` (default: all)."""
        chosen = tuple(sorted(self.routers)) if layers is None else tuple(layers)
        for layer in chosen:
            self._check_layer(layer)
        handle = HookHandle(self, "reader", chosen, reader, self.level)
        for layer in chosen:
            self._readers.setdefault(layer, []).append((handle, reader))
        return self._track(handle)

    def _track(self, handle: HookHandle) -> HookHandle:
        self._handles.append(handle)
        for layer in handle._layers:
            if layer not in self._torch_handles:
                self._torch_handles[layer] = self.routers[layer].register_forward_hook(
                    self._hook(layer), prepend=True, with_kwargs=True
                )
        return handle

    def _remove(self, handle: HookHandle) -> None:
        table: dict[int, list[Any]] = self._edits if handle._kind == "edit" else self._readers  # type: ignore[assignment]
        for layer in handle._layers:
            entries = [e for e in table.get(layer, []) if e[0] is not handle]
            if entries:
                table[layer] = entries
            else:
                table.pop(layer, None)
            if handle._kind == "edit":
                self._plan(layer)
            if layer not in self._edits and layer not in self._readers and layer in self._torch_handles:
                self._torch_handles.pop(layer).remove()
        self._handles = [h for h in self._handles if h is not handle]

    def remove_all(self) -> None:
        """Unregister everything (every level)."""
        for handle in list(self._handles):
            handle.remove()

    @property
    def active(self) -> bool:
        """Whether anything is registered."""
        return bool(self._handles)

    @contextmanager
    def context(self) -> Iterator[RouterHooks]:
        """A level: whatever is added inside and still registered is removed on exit (also on errors)."""
        self.level += 1
        level = self.level
        try:
            yield self
        finally:
            for handle in reversed([h for h in self._handles if h.level >= level]):
                handle.remove()
            self.level = level - 1

    # ------------------------------------------------------------------ the torch hook
    def _hook(self, layer: int):
        position = self.positions[layer]
        adapter = self.adapter

        def current_edit() -> ExpertEdit | None:
            if layer in self._static:
                return self._static[layer]
            edits = []
            for _, source in self._edits.get(layer, ()):
                edit = source if isinstance(source, ExpertEdit) else source()
                if edit is not None and not edit.is_empty:
                    edits.append(edit)
            return combine(edits) if edits else None

        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
            edit = current_edit() if layer in self._edits else None
            readers = self._readers.get(layer)
            if edit is None and not readers:
                return None
            decision = adapter.read_output(module, output)
            hidden: torch.Tensor = args[0] if args else next(iter(kwargs.values()))
            extra = tuple(args[1:])
            if edit is not None:
                output = adapter.steer_output(module, output, hidden, edit.to(decision.logits.device), extra)
                if readers:  # readers keep the router's own logits
                    steered = adapter.read_output(module, output)
                    decision = type(decision)(decision.logits, steered.weights, steered.indices)
            if readers:
                call = RouterCall(
                    layer,
                    position,
                    module,
                    hidden,
                    decision.logits,
                    decision.weights,
                    decision.indices,
                    edit is not None,
                    extra,
                )
                for _, reader in readers:
                    reader(call)
            return output if edit is not None else None

        return hook
