"""The Hugging Face transformers backend (the default): :func:`moeguard.generation.generate` and the routing
core's :class:`~moeguard.routing.RoutingRecorder`, behind the :class:`~moeguard.backends.base.Backend`
interface.

Per-prompt specs run as one ``generate`` call per distinct spec (prompts with the same spec batch together);
results come back in prompt order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from moeguard.backends.base import Backend, BackendModel, spec_key

if TYPE_CHECKING:
    from moeguard.adapters import MoEModel
    from moeguard.chat import Prompt
    from moeguard.data import Pair
    from moeguard.detect import DetectionResult
    from moeguard.routing.trace import RoutingTrace
    from moeguard.steer import SteeringSpec


class HfModel(BackendModel):
    """A transformers model loaded with :func:`moeguard.models.load_model`."""

    backend = "hf"

    def __init__(
        self,
        name: str,
        model=None,
        tokenizer=None,
        trust_remote_code: bool = False,
        dtype: str | None = None,
        device: str | None = None,
        allow_unregistered: bool = False,
        shape: MoEModel | None = None,
    ):
        """Load ``name`` (or wrap an already loaded ``model`` and ``tokenizer``; ``shape``: its
        :func:`~moeguard.adapters.inspect_moe`, when known)."""
        from moeguard.adapters import inspect_moe

        if model is None:
            from moeguard.models import load_model

            model, tokenizer = load_model(
                name,
                trust_remote_code=trust_remote_code,
                dtype=dtype,
                device=device,
                allow_unregistered=allow_unregistered,
            )
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.shape: MoEModel = shape if shape is not None else inspect_moe(model)

    def generate(
        self,
        prompts: Sequence[Prompt],
        max_new_tokens: int = 64,
        steer: SteeringSpec | Sequence[SteeringSpec | None] | None = None,
        batch_size: int = 16,
        do_sample: bool = False,
        seed: int = 0,
    ) -> list[str]:
        import torch

        from moeguard.generation import generate

        specs = self.validate(steer, len(prompts))
        groups: dict[str, list[int]] = {}
        for i, spec in enumerate(specs):
            groups.setdefault(spec_key(spec), []).append(i)
        replies: list[str | None] = [None] * len(prompts)
        if do_sample:
            torch.manual_seed(seed)
        for rows in groups.values():
            texts = generate(
                self.model,
                self.tokenizer,
                [prompts[i] for i in rows],
                max_new_tokens=max_new_tokens,
                steer=specs[rows[0]],
                batch_size=batch_size,
                do_sample=do_sample,
            )
            for i, text in zip(rows, texts, strict=True):
                replies[i] = text
        return replies  # type: ignore[return-value]

    def capture(
        self,
        prompts: Sequence[Prompt],
        logits: bool = False,
        steer: SteeringSpec | None = None,
        batch_size: int = 8,
        progress: bool = True,
    ) -> RoutingTrace:
        from moeguard.capture_run import record_prompts

        return record_prompts(
            self.model,
            self.tokenizer,
            list(prompts),
            logits=logits,
            batch_size=batch_size,
            steer=steer,
            model_name=self.name,
            progress=progress,
        )

    def capture_pairs(
        self,
        pairs: Iterable[Pair | dict],
        steer: SteeringSpec | None = None,
        batch_size: int = 8,
        progress: bool = True,
        total: int | None = None,
    ) -> RoutingTrace:
        from moeguard.capture_run import record_pairs

        return record_pairs(
            self.model,
            self.tokenizer,
            pairs,
            batch_size=batch_size,
            steer=steer,
            model_name=self.name,
            progress=progress,
            total=total,
        )

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
        """Streaming detection (memory does not grow with the number of pairs)."""
        from moeguard.detect import DEFAULT_PERMUTATIONS, detect_experts

        return detect_experts(
            self.shape,
            self.tokenizer,
            pairs,
            batch_size=batch_size,
            bootstrap=bootstrap,
            seed=seed,
            model_name=self.name,
            progress=progress,
            total=total,
            permutations=DEFAULT_PERMUTATIONS if permutations is None else permutations,
        )


class HfBackend(Backend):
    """Options: ``trust_remote_code``, ``dtype``, ``device``, ``allow_unregistered`` (as
    :func:`moeguard.models.load_model`)."""

    name = "hf"

    def _load(self, model_name: str) -> BackendModel:
        options: dict[str, Any] = self.options
        return HfModel(
            model_name,
            trust_remote_code=bool(options.get("trust_remote_code", False)),
            dtype=options.get("dtype"),
            device=options.get("device"),
            allow_unregistered=bool(options.get("allow_unregistered", False)),
        )
