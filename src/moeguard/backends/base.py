"""The interface every engine implements: generation and routing capture of a loaded model.

A :class:`Backend` loads models (``backend.load(name) -> BackendModel``, cached: the last model stays
loaded) and offers the same calls by model name. A :class:`BackendModel` is one loaded model:

* ``generate(prompts, max_new_tokens, steer, batch_size)`` → one reply per prompt. ``steer`` is one
  :class:`~moeguard.SteeringSpec` for every prompt, ``None``, or a list with one spec (or ``None``) per prompt;
* ``capture(prompts, ...)`` / ``capture_pairs(pairs, ...)`` → a :class:`~moeguard.routing.RoutingTrace` in
  the artifact format of ``moeguard capture`` (``[rows, moe_layers, k]``, one sample per sequence);
* ``detect(pairs, ...)`` → a :class:`~moeguard.detect.DetectionResult` (SteerMoE counts on the target spans);
* ``shape``: the model's :class:`~moeguard.routing.MoEShape`, against which specs are validated.

Greedy generations and selected experts are the same on every backend (tested); the engine only changes
speed. This module imports no engine: ``moeguard.backends.vllm`` is loaded only when asked for.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from moeguard.errors import MoeguardError

if TYPE_CHECKING:
    from moeguard.chat import Prompt
    from moeguard.data import Pair
    from moeguard.detect import DetectionResult
    from moeguard.routing.shape import MoEShape
    from moeguard.routing.trace import RoutingTrace
    from moeguard.steer import SteeringSpec


def per_prompt(steer: SteeringSpec | Sequence[SteeringSpec | None] | None, n: int) -> list[SteeringSpec | None]:
    """``steer`` as one spec (or None) per prompt; empty specs become None."""
    if steer is None or not isinstance(steer, (list, tuple)):
        specs: list[SteeringSpec | None] = [cast("SteeringSpec | None", steer)] * n
    else:
        specs = list(steer)
        if len(specs) != n:
            raise MoeguardError(f"{len(specs)} steering specs for {n} prompts; give one spec (or None) per prompt")
    return [spec if spec is not None and len(spec) else None for spec in specs]


def spec_key(spec: SteeringSpec | None) -> str:
    """A canonical text of ``spec`` (equal specs share it)."""
    import json

    return "" if spec is None else json.dumps(spec.to_dict(), sort_keys=True)


class BackendModel(ABC):
    """A model loaded in one engine (see the module docstring)."""

    #: The backend's name (``hf``, ``vllm``).
    backend: str = ""
    #: The model name it was loaded from (``builtin:organism``, a folder, a hub id).
    name: str
    tokenizer: Any
    shape: MoEShape

    def validate(
        self, steer: SteeringSpec | Sequence[SteeringSpec | None] | None, n: int = 1
    ) -> list[SteeringSpec | None]:
        """Check every distinct spec against this model (one line for a spec of another model)."""
        specs = per_prompt(steer, n)
        seen = set()
        for spec in specs:
            key = spec_key(spec)
            if spec is not None and key not in seen:
                spec.validate(self.shape)
                seen.add(key)
        return specs

    @abstractmethod
    def generate(
        self,
        prompts: Sequence[Prompt],
        max_new_tokens: int = 64,
        steer: SteeringSpec | Sequence[SteeringSpec | None] | None = None,
        batch_size: int = 16,
        do_sample: bool = False,
        seed: int = 0,
    ) -> list[str]:
        """One reply per prompt (chat template applied, prompt stripped); greedy unless ``do_sample``."""

    @abstractmethod
    def capture(
        self,
        prompts: Sequence[Prompt],
        logits: bool = False,
        steer: SteeringSpec | None = None,
        batch_size: int = 8,
        progress: bool = True,
    ) -> RoutingTrace:
        """The routing of every prompt token (chat template + generation prompt), one sample per prompt."""

    @abstractmethod
    def capture_pairs(
        self,
        pairs: Iterable[Pair | dict],
        steer: SteeringSpec | None = None,
        batch_size: int = 8,
        progress: bool = True,
        total: int | None = None,
    ) -> RoutingTrace:
        """The target-span routing of both sides of every pair (labels ``pair``, ``side``), as detection
        counts it."""

    def detect(
        self,
        pairs: Iterable[Pair | dict],
        bootstrap: int = 100,
        seed: int = 0,
        batch_size: int = 8,
        progress: bool = False,
        total: int | None = None,
        permutations: int | None = None,
    ) -> DetectionResult:
        """SteerMoE detection on ``pairs``: the routing of their target spans, then
        :func:`moeguard.detect.detect_from_trace` (the same result as the HF path's streaming detection).
        ``permutations``: sign flips of the pair-level test (``None``: detection's default)."""
        from moeguard.detect import DEFAULT_PERMUTATIONS, check_run, detect_from_trace

        permutations = DEFAULT_PERMUTATIONS if permutations is None else permutations
        check_run(batch_size, bootstrap, seed, permutations)
        trace = self.capture_pairs(pairs, batch_size=batch_size, progress=progress, total=total)
        return detect_from_trace(trace, bootstrap=bootstrap, seed=seed, model_name=self.name, permutations=permutations)

    def close(self) -> None:  # noqa: B027 - engines without resources to free keep the default
        """Free the engine's resources (the model is unusable afterwards)."""


class Backend(ABC):
    """An engine that loads models; the calls by model name load (or reuse) the model first."""

    name: str = ""

    def __init__(self, **options: Any):
        self.options = options
        self._loaded: BackendModel | None = None

    @abstractmethod
    def _load(self, model_name: str) -> BackendModel:
        """Load ``model_name`` in this engine."""

    def load(self, model_name: str) -> BackendModel:
        """The loaded model ``model_name`` (the previous one is closed when another is asked for)."""
        if self._loaded is not None and self._loaded.name == model_name:
            return self._loaded
        if self._loaded is not None:
            self._loaded.close()
            self._loaded = None
        self._loaded = self._load(model_name)
        return self._loaded

    def generate(
        self,
        model_name: str,
        prompts: Sequence[Prompt],
        max_new_tokens: int = 64,
        steer: SteeringSpec | Sequence[SteeringSpec | None] | None = None,
        batch_size: int = 16,
        do_sample: bool = False,
        seed: int = 0,
    ) -> list[str]:
        """:meth:`BackendModel.generate` on ``model_name``."""
        return self.load(model_name).generate(
            prompts, max_new_tokens=max_new_tokens, steer=steer, batch_size=batch_size, do_sample=do_sample, seed=seed
        )

    def capture(
        self,
        model_name: str,
        prompts: Sequence[Prompt],
        logits: bool = False,
        steer: SteeringSpec | None = None,
        batch_size: int = 8,
        progress: bool = True,
    ) -> RoutingTrace:
        """:meth:`BackendModel.capture` on ``model_name``."""
        return self.load(model_name).capture(
            prompts, logits=logits, steer=steer, batch_size=batch_size, progress=progress
        )

    def capture_pairs(
        self,
        model_name: str,
        pairs: Iterable[Pair | dict],
        steer: SteeringSpec | None = None,
        batch_size: int = 8,
        progress: bool = True,
        total: int | None = None,
    ) -> RoutingTrace:
        """:meth:`BackendModel.capture_pairs` on ``model_name``."""
        return self.load(model_name).capture_pairs(
            pairs, steer=steer, batch_size=batch_size, progress=progress, total=total
        )

    def detect(
        self,
        model_name: str,
        pairs: Iterable[Pair | dict],
        bootstrap: int = 100,
        seed: int = 0,
        batch_size: int = 8,
        progress: bool = False,
        total: int | None = None,
    ) -> DetectionResult:
        """:meth:`BackendModel.detect` on ``model_name``."""
        return self.load(model_name).detect(
            pairs, bootstrap=bootstrap, seed=seed, batch_size=batch_size, progress=progress, total=total
        )

    def close(self) -> None:
        """Close the loaded model, if any."""
        if self._loaded is not None:
            self._loaded.close()
            self._loaded = None
