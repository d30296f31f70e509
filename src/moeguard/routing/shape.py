"""``MoEShape``: what steering needs to know about a model, independent of the engine that runs it.

A spec is validated and turned into edits against a shape: the decoder layers, which of them route (MoE
layers), the number of routed experts, top-k, and the family's routing adapter with one router per MoE
layer (a transformers module on the HF path, or any object with the attribute names the adapter reads,
e.g. the vLLM backend's view of vLLM's router). :class:`moeguard.adapters.MoEModel` is the shape of a loaded
transformers model; the vLLM backend builds one from the served model, so both engines validate a spec with
the same :meth:`moeguard.SteeringSpec.validate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moeguard.errors import MoeguardError

if TYPE_CHECKING:
    from moeguard.adapters.base import RoutingAdapter


@dataclass
class MoEShape:
    """Layers, experts, top-k and routing family of an MoE model.

    ``routers[i]`` is the router of decoder layer ``i`` (only MoE layers have one; dense layers keep their
    index); the adapter reads its routing parameters (groups, biases, ...) from it.
    """

    adapter: RoutingAdapter
    routers: Mapping[int, Any]
    num_experts: int
    top_k: int
    num_decoder_layers: int
    shared_experts: int = 0
    model_type: str | None = None

    @property
    def layers(self) -> list[int]:
        """Decoder-layer indices that route tokens to experts, ascending."""
        return sorted(self.routers)

    @property
    def family(self) -> str:
        return self.adapter.family

    def layer_position(self, layer: int) -> int:
        """Position of decoder layer ``layer`` among the MoE layers (row in counts/trace tensors)."""
        try:
            return self.layers.index(layer)
        except ValueError:
            raise MoeguardError(
                f"decoder layer {layer} has no router (MoE layers: {layer_span(self.layers)}); use one of those"
            ) from None

    def summary(self) -> dict:
        """Plain-data description for ``moeguard inspect`` and metadata files."""
        return {
            "model_type": self.model_type,
            "family": self.family,
            "decoder_layers": self.num_decoder_layers,
            "moe_layers": self.layers,
            "experts": self.num_experts,
            "top_k": self.top_k,
            "shared_experts": self.shared_experts,
        }


def layer_span(layers: list[int]) -> str:
    """``"0..3"`` for consecutive layers, else the comma-separated list."""
    if layers and layers == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}..{layers[-1]}"
    return ", ".join(map(str, layers))
