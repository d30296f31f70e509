"""Ground truth for routing tests: what each layer's experts module actually receives.

Most MoE blocks call their experts module as ``experts(hidden, top_k_index, top_k_weights)``. The others, and
how their consumption is read here (independently of the adapters' own read/write code):

* ZAYA: a skipped token reaches the experts as ``(index 0, weight 0)``; moeguard calls the skip class expert E.
* Llama-4: every expert runs on ``hidden × score`` (``[E·N, H]``): the selection is where that input is not 0,
  the weights are the dense scores the block folded in (checked by recomputing the experts' input).
* JetMoE: the experts get ``(hidden[batch_index], expert_size)`` from the router's dispatch plan; the plan
  the block used is the router's final output (after moeguard's hook), decoded here.
* Inkling: the shared experts also get ``gammas`` (router-weighted shared experts).
* LongCat-Flash: zero-computation experts (index ``>= n_routed``) never reach the experts module as such. The
  block adds ``hidden × (sum of their weights)`` itself and (transformers >= 5.25) hands the experts a spread-out
  routed index with weight 0 in their place: here that slot is mapped back to its zero expert, and the experts'
  ``hidden`` and output are kept with the block's output so that the identity part can be checked.
* Doge: no experts module; ``down_embed`` receives the expert indices.
"""

from __future__ import annotations

import torch

from moeguard import inspect_moe

DENSE_SCORES = {"llama4", "llama4_text"}
PLAN = {"jetmoe"}
SKIP_CLASS = {"zaya"}
PRODUCT_KEYS = {"doge"}
ZERO_EXPERTS = {"longcat_flash"}


def kind_of(model_type: str) -> str:
    kinds = (
        ("dense", DENSE_SCORES),
        ("plan", PLAN),
        ("skip", SKIP_CLASS),
        ("keys", PRODUCT_KEYS),
        ("zero", ZERO_EXPERTS),
    )
    for kind, types in kinds:
        if model_type in types:
            return kind
    return "standard"


def _arguments(args, kwargs) -> list:
    return list(args) + list(kwargs.values())


def experts_inputs(model):
    """Forward hooks on every MoE layer's experts side (not its router): ``seen[layer]`` is a dict with
    ``indices`` / ``weights`` ``[N, k]`` as the experts consumed them, in moeguard's convention (ZAYA's skip
    = expert E), plus ``gammas`` (Inkling), ``routed_in`` / ``hidden`` (Llama-4) or ``plan`` (JetMoE);
    returns ``(seen, handles)``. For plain blocks ``seen[layer]`` also unpacks as ``(indices, weights)``."""
    moe = inspect_moe(model)
    kind = kind_of(model.config.model_type)
    seen: dict[int, Seen] = {}
    handles = []
    for layer, router in moe.routers.items():
        block = moe.adapter.parent(router)
        entry = seen.setdefault(layer, Seen())
        if kind in ("standard", "skip"):

            def keep(module, args, kwargs, entry=entry):
                _, indices, weights = _arguments(args, kwargs)[:3]
                if kind == "skip":
                    skipped = (indices == 0) & (weights == 0)
                    indices = indices.masked_fill(skipped, moe.num_experts - 1)
                entry.indices, entry.weights = indices.reshape(-1, moe.top_k), weights.reshape(-1, moe.top_k)

            handles.append(block.experts.register_forward_pre_hook(keep, with_kwargs=True))
            shared = getattr(block, "shared_experts", None)
            if shared is not None:

                def gammas(module, args, kwargs, entry=entry):
                    if "gammas" in kwargs:
                        entry.gammas = kwargs["gammas"]

                handles.append(shared.register_forward_pre_hook(gammas, with_kwargs=True))
        elif kind == "zero":
            routed, zero = int(block.num_routed_experts), int(block.zero_expert_num)

            def zero_in(module, args, kwargs, entry=entry, routed=routed, zero=zero):
                hidden, indices, weights = _arguments(args, kwargs)[:3]
                # transformers >= 5.25: zero expert j arrives as routed index floor(j * routed / zero), weight 0
                spread = (weights == 0) & (indices < routed)
                back = routed + torch.div(-indices * zero, routed, rounding_mode="floor").neg()
                entry.indices = torch.where(spread, back, indices).reshape(-1, moe.top_k)
                entry.weights, entry.hidden = weights.reshape(-1, moe.top_k), hidden

            def zero_out(module, args, kwargs, output, entry=entry):
                entry.experts_output = output

            def block_out(module, args, kwargs, output, entry=entry):
                entry.block_output = output.reshape(entry.experts_output.shape)

            handles.append(block.experts.register_forward_pre_hook(zero_in, with_kwargs=True))
            handles.append(block.experts.register_forward_hook(zero_out, with_kwargs=True))
            handles.append(block.register_forward_hook(block_out, with_kwargs=True))
        elif kind == "dense":

            def dense(module, args, kwargs, entry=entry):
                routed_in = args[0]
                n = routed_in.shape[0] // moe.num_experts
                selected = routed_in.view(moe.num_experts, n, -1).abs().sum(-1).T != 0
                entry.routed_in, entry.selected = routed_in, selected

            handles.append(block.experts.register_forward_pre_hook(dense, with_kwargs=True))
        elif kind == "plan":

            def plan(module, args, kwargs, output, entry=entry):
                order, _, gates, expert_size, _ = output
                experts = torch.repeat_interleave(torch.arange(len(expert_size)), torch.tensor(expert_size))
                indices = torch.empty_like(order).scatter_(0, order, experts)
                weights = torch.empty_like(gates).scatter_(0, order, gates)
                entry.indices, entry.weights = indices.view(-1, moe.top_k), weights.view(-1, moe.top_k)
                entry.plan = output

            def plan_inputs(module, args, kwargs, entry=entry):
                entry.expert_inputs, entry.expert_size = args[0], args[1]

            handles.append(router.register_forward_hook(plan, with_kwargs=True))  # runs after moeguard's hook
            handles.append(block.input_linear.register_forward_pre_hook(plan_inputs, with_kwargs=True))
        else:  # product keys

            def embed(module, args, kwargs, entry=entry):
                entry.indices = args[0].reshape(-1, moe.top_k)

            def block_io(module, args, kwargs, output, entry=entry):
                entry.block_input, entry.block_output = args[0], output[0]

            handles.append(block.down_embed.register_forward_pre_hook(embed, with_kwargs=True))
            handles.append(block.register_forward_hook(block_io, with_kwargs=True))
    return seen, handles


class Seen:
    """What one layer's experts side received (fields as :func:`experts_inputs` says)."""

    indices: torch.Tensor
    weights: torch.Tensor

    def __iter__(self):
        return iter((self.indices, self.weights))
