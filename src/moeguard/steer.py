"""Expert steering (SteerMoE semantics, DESIGN §1.3): force chosen experts on or off in the router.

>>> spec = SteeringSpec(activate=[(3, 17)], deactivate=[(5, 2)])
>>> with spec.apply(model):
...     model.generate(**inputs)

The spec becomes one :class:`~moeguard.routing.ExpertEdit` per steered layer, registered with the model's
:class:`~moeguard.routing.RouterHooks`; edits are removed on exit, also on exceptions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import nn

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.artifacts import write_json_atomic
from moeguard.errors import MoeguardError
from moeguard.routing.edits import ExpertEdit
from moeguard.routing.hooks import HookHandle, RouterHooks
from moeguard.routing.shape import MoEShape

Mode = Literal["steermoe", "soft"]
_MODES = ("steermoe", "soft")


def _pairs(value, name: str, source: str) -> list[tuple[int, int]]:
    if value is None:
        return []
    if not isinstance(value, list):
        kind = type(value).__name__
        raise MoeguardError(f"{source}: '{name}' must be a list of [layer, expert] pairs, got {kind}")
    pairs = []
    for item in value:
        if (
            not isinstance(item, (list, tuple))
            or len(item) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)
        ):
            raise MoeguardError(f"{source}: '{name}' entry {item!r} is not a [layer, expert] pair of integers")
        pairs.append((int(item[0]), int(item[1])))
    return pairs


@dataclass
class SteeringSpec:
    """Which (decoder layer, expert) pairs to force on (``activate``) or off (``deactivate``).

    ``mode="steermoe"`` puts activated experts just above the best score and deactivated ones just
    below the worst (the paper's hard switch); ``mode="soft"`` adds ``+alpha`` / ``-alpha`` to their
    log-probabilities instead, so the router can still overrule the nudge.
    """

    activate: list[tuple[int, int]] = field(default_factory=list)
    deactivate: list[tuple[int, int]] = field(default_factory=list)
    mode: Mode = "steermoe"
    alpha: float = 1.0
    model: str | None = None

    def __post_init__(self) -> None:
        self.activate = [(int(layer), int(e)) for layer, e in self.activate]
        self.deactivate = [(int(layer), int(e)) for layer, e in self.deactivate]
        if self.mode not in _MODES:
            raise MoeguardError(f"unknown steering mode {self.mode!r}; use one of {', '.join(_MODES)}")
        both = set(self.activate) & set(self.deactivate)
        if both:
            raise MoeguardError(f"experts {sorted(both)} are both activated and deactivated; keep each in one list")

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        data: dict[str, Any] = {
            "activate": [list(p) for p in self.activate],
            "deactivate": [list(p) for p in self.deactivate],
            "mode": self.mode,
        }
        if self.mode == "soft":
            data["alpha"] = self.alpha
        if self.model is not None:
            data["model"] = self.model
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "spec") -> SteeringSpec:
        """Build from the JSON spec format; raises a one-line MoeguardError on malformed input."""
        if not isinstance(data, dict):
            raise MoeguardError(f"{source}: a steering spec must be a JSON object with 'activate'/'deactivate'")
        allowed = ("activate", "deactivate", "mode", "alpha", "model")
        unknown = set(data) - set(allowed)
        if unknown:
            raise MoeguardError(f"{source}: unknown field(s) {sorted(unknown)}; allowed: {', '.join(allowed)}")
        alpha = data.get("alpha", 1.0)
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool):
            raise MoeguardError(f"{source}: 'alpha' must be a number")
        model = data.get("model")
        if model is not None and not isinstance(model, str):
            raise MoeguardError(f"{source}: 'model' must be a string")
        return cls(
            activate=_pairs(data.get("activate"), "activate", source),
            deactivate=_pairs(data.get("deactivate"), "deactivate", source),
            mode=data.get("mode", "steermoe"),
            alpha=float(alpha),
            model=model,
        )

    def save(self, path: str | Path) -> Path:
        """Write the JSON spec atomically."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> SteeringSpec:
        """Read a JSON spec; missing or malformed files raise a one-line MoeguardError."""
        from moeguard.textio import read_text

        path = Path(path)
        text = read_text(path, "steering spec", "pass the spec.json written by 'moeguard detect'")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MoeguardError(f"steering spec {path} is not valid JSON ({err.msg} at line {err.lineno})") from None
        return cls.from_dict(data, source=str(path))

    # ------------------------------------------------------------------ validation
    def check_model(self, model_name: str | None, force: bool = False, source: str = "the steering spec") -> str | None:
        """Refuse a spec detected on another model (one line), unless ``force``; returns a note of the forced
        mismatch for the run's metadata (None when the spec names no model or the same one)."""
        if self.model is None or model_name is None or same_model(self.model, model_name):
            return None
        message = f"{source} was detected on {self.model}, not {model_name}"
        if not force:
            raise MoeguardError(f"{message}; use a spec of this model, or pass --force to use it anyway")
        return message

    def by_layer(self) -> dict[int, tuple[list[int], list[int]]]:
        """``{layer: (activated experts, deactivated experts)}`` for every steered layer."""
        layers: dict[int, tuple[list[int], list[int]]] = {}
        for layer, expert in self.activate:
            layers.setdefault(layer, ([], []))[0].append(expert)
        for layer, expert in self.deactivate:
            layers.setdefault(layer, ([], []))[1].append(expert)
        return layers

    def validate(self, moe: MoEShape) -> None:
        """Check layers, expert ranges and per-layer limits against the model (any engine's
        :class:`~moeguard.routing.shape.MoEShape`, e.g. a loaded ``MoEModel``); MoeguardError if wrong."""
        for layer, (act, deact) in sorted(self.by_layer().items()):
            if not 0 <= layer < moe.num_decoder_layers:
                raise MoeguardError(
                    f"steering layer {layer} is out of range: the model has decoder layers "
                    f"0..{moe.num_decoder_layers - 1}"
                )
            moe.layer_position(layer)  # raises for a dense layer
            for expert in act + deact:
                if not 0 <= expert < moe.num_experts:
                    raise MoeguardError(
                        f"expert {expert} in layer {layer} is out of range: the model has experts "
                        f"0..{moe.num_experts - 1}"
                    )
            if self.mode == "steermoe" and len(set(act)) > moe.top_k:
                raise MoeguardError(
                    f"layer {layer} activates {len(set(act))} experts but only top_k={moe.top_k} are routed per "
                    "token; activate at most top_k experts per layer"
                )
            if self.mode == "steermoe" and moe.num_experts - len(set(deact)) < moe.top_k:
                raise MoeguardError(
                    f"layer {layer} deactivates {len(set(deact))} of {moe.num_experts} experts, leaving fewer "
                    f"than top_k={moe.top_k}; deactivate fewer experts"
                )
            problem = moe.adapter.validate_steering(moe.routers[layer], act, deact)
            if problem:
                raise MoeguardError(f"layer {layer}: {problem}")

    # ------------------------------------------------------------------ application
    def edits(self, moe: MoEShape) -> dict[int, ExpertEdit]:
        """This spec as one :class:`~moeguard.routing.ExpertEdit` per steered decoder layer."""
        alpha = self.alpha if self.mode == "soft" else None
        return {
            layer: ExpertEdit.from_experts(moe.num_experts, act, deact, alpha)
            for layer, (act, deact) in self.by_layer().items()
        }

    def patch(self, model: nn.Module | MoEModel) -> SteeringHandle:
        """Validate and register the steering edits; call ``handle.remove()`` to undo."""
        moe = model if isinstance(model, MoEModel) else inspect_moe(model)
        self.validate(moe)
        hooks = RouterHooks.of(moe)
        handles = []
        try:
            for layer, edit in self.edits(moe).items():
                handles.append(hooks.add_edit(layer, edit))
        except BaseException:
            for handle in handles:
                handle.remove()
            raise
        return SteeringHandle(handles)

    @contextmanager
    def apply(self, model: nn.Module | MoEModel) -> Iterator[SteeringSpec]:
        """Context manager: the model routes with this spec inside the block, normally after it."""
        handle = self.patch(model)
        try:
            yield self
        finally:
            handle.remove()

    def __len__(self) -> int:
        return len(self.activate) + len(self.deactivate)

    def random_like(self, model: nn.Module | MoEShape, seed: int) -> SteeringSpec:
        """A control spec: random experts with the same number activated and deactivated in every layer.

        Seeded; used to show that an effect comes from the selected experts, not from steering as such.
        """
        import random

        moe = model if isinstance(model, MoEShape) else inspect_moe(model)
        rng = random.Random(seed)
        activate, deactivate = [], []
        for layer, (act, deact) in sorted(self.by_layer().items()):
            chosen = rng.sample(range(moe.num_experts), len(set(act)) + len(set(deact)))
            activate += [(layer, e) for e in chosen[: len(set(act))]]
            deactivate += [(layer, e) for e in chosen[len(set(act)) :]]
        return SteeringSpec(
            activate=activate, deactivate=deactivate, mode=self.mode, alpha=self.alpha, model=self.model
        )


def same_model(a: str, b: str) -> bool:
    """Whether two model names (builtin names, local paths, hub ids) denote the same model."""
    if a == b:
        return True
    from moeguard.models import resolve_model_path

    def key(name: str) -> str:
        try:
            resolved = resolve_model_path(name)
        except MoeguardError:
            return name
        path = Path(resolved).expanduser()
        return str(path.resolve()) if path.exists() else resolved

    return key(a) == key(b)


@dataclass
class SteeringHandle:
    """Registered steering edits; ``remove()`` restores the model's own routing."""

    handles: list[HookHandle]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
