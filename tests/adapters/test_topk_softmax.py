"""top-k → softmax adapters: GraniteMoE's router output in both transformers orders."""

from __future__ import annotations

import torch

from moeguard.adapters.topk_softmax import GraniteMoeAdapter


def test_granite_reads_and_writes_both_output_orders():
    adapter = GraniteMoeAdapter()
    logits = torch.randn(3, 8)
    weights = torch.rand(3, 2, dtype=torch.bfloat16)
    indices = torch.randint(0, 8, (3, 2))
    new_weights, new_indices = torch.rand(3, 2), torch.randint(0, 8, (3, 2))
    for output in ((logits, weights, indices), (indices, weights, logits)):  # transformers >= 5.20, 5.19
        read = adapter.read_output(None, output)
        assert read.logits is logits and read.weights is weights and read.indices is indices
        written = adapter.write_output(output, new_weights, new_indices)
        positions = (0, 2) if output[0] is logits else (2, 0)
        assert written[positions[0]] is logits and written[positions[1]] is new_indices
        assert written[1].dtype == torch.bfloat16 and torch.equal(written[1], new_weights.to(torch.bfloat16))
