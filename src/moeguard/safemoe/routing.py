"""Router logits of prompts at chosen tokens (the reader SafeMoE's reference, drift and loss share).

``token_routing`` runs pre-tokenised prompts through a model with a :class:`~moeguard.routing.RoutingRecorder`
and returns a :class:`~moeguard.routing.RoutingTrace` with the logits and selected experts at the last
prompt token (``scope="last"``) or at every prompt token (``scope="all"``), one sample per prompt, plus the
token sequences that were run. Pads are never selected, whichever side the batch is padded on; position
ids come from the attention mask, so left and right padding give the same routing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.chat import Prompt, encode_prompts
from moeguard.errors import MoeguardError
from moeguard.routing.recorder import RoutingRecorder
from moeguard.routing.trace import RoutingTrace, trace_with_sequences
from moeguard.routing.unwrap import input_device, routing_forward_kwargs
from moeguard.tokens import Scope, check_scope, pad_batch, pad_id_of, position_ids_from_mask, scope_mask


@torch.no_grad()
def token_routing(
    model: nn.Module,
    sequences: Sequence[Sequence[int]],
    pad_id: int,
    scope: Scope = "last",
    batch_size: int = 8,
    padding_side: str = "left",
    moe: MoEModel | None = None,
    progress=None,
) -> RoutingTrace:
    """Routing (detached, float32 logits on CPU) at the selected tokens of pre-tokenised prompts.

    Rows are ordered prompt by prompt (and, for ``scope="all"``, token by token within a prompt).
    ``progress(n)`` is called after every batch with the number of prompts done.
    """
    scope = check_scope(scope)
    if not sequences:
        raise MoeguardError("the prompt set is empty; give at least one prompt")
    moe = moe or inspect_moe(model)
    recorder = RoutingRecorder(moe, counts=False, traces=True, logits=True)
    device = input_device(model)
    was_training = model.training
    model.eval()
    chunks = []
    try:
        with recorder:
            for start in range(0, len(sequences), batch_size):
                ids, mask = pad_batch(sequences[start : start + batch_size], pad_id, padding_side)
                with recorder.selecting(mask=scope_mask(mask, scope), input_ids=ids):
                    model(
                        input_ids=ids.to(device),
                        attention_mask=mask.to(device),
                        position_ids=position_ids_from_mask(mask).to(device),
                        **routing_forward_kwargs(model),
                    )
                chunk = recorder.last
                chunk.indices = chunk.indices.cpu()
                chunk.weights = chunk.weights.cpu() if chunk.weights is not None else None
                assert chunk.logits is not None  # the recorder keeps logits
                chunk.logits = chunk.logits.float().cpu()
                chunks.append(chunk)
                if progress is not None:
                    progress(min(start + batch_size, len(sequences)))
    finally:
        model.train(was_training)
    trace = RoutingTrace.cat(chunks)
    trace.meta["scope"] = scope
    return trace_with_sequences(trace, sequences)


def prompt_routing(
    model: nn.Module,
    tokenizer,
    prompts: Sequence[Prompt],
    scope: Scope = "last",
    batch_size: int = 8,
    padding_side: str = "left",
    progress=None,
) -> RoutingTrace:
    """Routing of every prompt (chat template + generation prompt); the trace records the token ids run."""
    if not prompts:
        raise MoeguardError("the prompt set is empty; give at least one prompt")
    sequences = encode_prompts(tokenizer, prompts)
    return token_routing(model, sequences, pad_id_of(tokenizer), scope, batch_size, padding_side, progress=progress)
