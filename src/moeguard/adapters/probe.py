"""The load-time routing check: an adapter is used only after it reproduced the model's own routers.

The first time :func:`moeguard.adapters.inspect_moe` sees a model, :func:`check` runs a few random token ids
through it (eval mode, no gradients, no KV cache), reads every router call through a
:class:`~moeguard.routing.RouterHooks` reader and compares the adapter's ``route`` with the router's own
decision (``torch.equal`` on weights and indices, equal dtypes). A mismatch is a one-line
:class:`~moeguard.errors.MoeguardError` — moeguard never steers with a rule it has not seen reproduce the
model. The verdict is cached per model object (and per router dtype: casting the model re-checks).

A model type without a registered adapter can be used with ``allow_unregistered=True``
(``--allow-unregistered``): :func:`match_unregistered` tries every registered family on the model's
router-like modules and keeps the first one that reproduces every router exactly.
"""

from __future__ import annotations

import copy
import re
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from moeguard.adapters.base import RoutingAdapter
from moeguard.errors import MoeguardError

if TYPE_CHECKING:
    from moeguard.adapters import MoEModel

#: Probe size: ``PROBE_ROWS`` sequences of ``PROBE_TOKENS`` random token ids.
PROBE_ROWS, PROBE_TOKENS = 2, 8
#: Class names that look like routers when a model type is not registered (gates of linear attention and
#: residual streams are not routers).
ROUTER_LIKE = re.compile(r"(Router|Gate|Gating)$|Top[Kk]")
NOT_ROUTER = re.compile(r"ForgetGate|ResidualGate|MessageGate|Norm|Projection|MLP|Mlp")

_VERDICTS: weakref.WeakKeyDictionary[nn.Module, dict[str, Any]] = weakref.WeakKeyDictionary()
#: Seconds spent in probe forward passes, per model class name (for measurements).
timings: dict[str, float] = {}


def _signature(moe: MoEModel) -> tuple:
    dtypes = {str(t.dtype) for r in moe.routers.values() for t in list(r.parameters()) + list(r.buffers())}
    first = next(moe.model.parameters(), None)
    return id(moe.adapter), tuple(sorted(dtypes)), None if first is None else str(first.dtype)


def matched_adapter(model: nn.Module) -> RoutingAdapter | None:
    """The adapter an earlier ``allow_unregistered`` match chose for ``model`` (None: none yet)."""
    verdict = _VERDICTS.get(model)
    return verdict.get("matched") if verdict else None


def check(moe: MoEModel) -> None:
    """Raise MoeguardError unless ``moe.adapter`` reproduces every router of ``moe.model`` (cached)."""
    verdict = _VERDICTS.setdefault(moe.model, {})
    signature = _signature(moe)
    if signature in verdict.setdefault("checked", set()):
        return
    problem = _problem(moe)
    if problem:
        model_type = getattr(getattr(moe.model, "config", None), "model_type", None)
        raise MoeguardError(
            f"routing check failed for {type(moe.model).__name__} (model_type={model_type!r}): the "
            f"{moe.adapter.family} rule {problem}; this model's routing is not supported by that adapter"
        )
    verdict["checked"].add(signature)


def match_unregistered(model: nn.Module, build: Callable[..., MoEModel]) -> tuple[RoutingAdapter, MoEModel]:
    """The first registered family whose rule reproduces the routers of ``model`` (an unregistered type)."""
    from moeguard.adapters import decoder_layers, registered_adapters

    classes = sorted(
        {
            type(m).__name__
            for layer in decoder_layers(model)
            for m in layer.modules()
            if ROUTER_LIKE.search(type(m).__name__) and not NOT_ROUTER.search(type(m).__name__)
        }
    )
    tried = []
    for registered in registered_adapters():
        for name in classes:
            candidate = copy.copy(registered)
            candidate.router_class_names = (name,)
            try:
                moe = build(model, candidate)
            except Exception:  # noqa: BLE001 - another family's attributes are missing: not this family
                continue
            tried.append(registered.family)
            if _problem(moe) is None:
                moe.matched_family = registered.family
                verdict = _VERDICTS.setdefault(model, {})
                verdict["matched"] = candidate
                verdict.setdefault("checked", set()).add(_signature(moe))
                return candidate, moe
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    found = ", ".join(classes) or "none"
    raise MoeguardError(
        f"{type(model).__name__} (model_type={model_type!r}) is not registered and no known routing family "
        f"reproduces its routers (router-like modules: {found}); it needs its own adapter"
    )


def probe_ids(model: nn.Module) -> torch.Tensor:
    """``[PROBE_ROWS, PROBE_TOKENS]`` seeded random token ids that avoid every special token id of the config."""
    from moeguard.adapters import text_config

    config = getattr(model, "config", None)
    vocab = int(getattr(text_config(config), "vocab_size", 0) or getattr(config, "vocab_size", 0) or 256)
    special = _special_ids(config)
    allowed = torch.tensor([i for i in range(min(vocab, 4096)) if i not in special] or [0])
    generator = torch.Generator().manual_seed(0)
    picks = torch.randint(len(allowed), (PROBE_ROWS, PROBE_TOKENS), generator=generator)
    return allowed[picks]


def _special_ids(config, depth: int = 0) -> set[int]:
    found: set[int] = set()
    if config is None or depth > 3:
        return found
    for key, value in vars(config).items():
        if key.endswith(("token_id", "token_index", "token_ids")):
            values = value if isinstance(value, (list, tuple)) else [value]
            found.update(v for v in values if isinstance(v, int))
        elif hasattr(value, "to_dict") and hasattr(value, "model_type"):
            found |= _special_ids(value, depth + 1)
    return found


def _problem(moe: MoEModel) -> str | None:
    """Why ``moe.adapter`` does not reproduce the routers on the probe, or None."""
    from moeguard.models import language_model_of
    from moeguard.routing import RouterHooks, input_device, routing_forward_kwargs

    model = moe.model
    runner = language_model_of(model)
    ids = probe_ids(model).to(input_device(model))
    calls: list = []
    hooks = RouterHooks(moe)  # a private registry: the probe must not reuse another adapter's
    training = {m: m.training for m in model.modules()}
    start = time.perf_counter()
    try:
        with hooks.context(), torch.no_grad():
            hooks.add_reader(calls.append)
            model.eval()
            runner(input_ids=ids, attention_mask=torch.ones_like(ids), **routing_forward_kwargs(runner))
    except MoeguardError:
        raise
    except Exception as err:  # noqa: BLE001 - the adapter's reader or the forward pass failed: report it
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        return f"cannot read its routers ({type(err).__name__}: {first})"
    finally:
        for module, mode in training.items():
            module.training = mode
        timings[type(model).__name__] = timings.get(type(model).__name__, 0.0) + time.perf_counter() - start
    seen = {call.layer for call in calls}
    if seen != set(moe.layers):
        return f"saw router calls in layers {sorted(seen)}, expected {moe.layers}"
    for call in calls:
        problem = _compare(moe.adapter, call)
        if problem:
            return f"does not reproduce decoder layer {call.layer}'s {type(call.router).__name__}: {problem}"
    return None


def _compare(adapter: RoutingAdapter, call) -> str | None:
    try:
        weights, indices = adapter.route(call.router, call.logits, call.hidden, call.extra)
    except Exception as err:  # noqa: BLE001
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        return f"its rule raised {type(err).__name__}: {first}"
    tokens = call.indices.shape[0]
    if indices.shape != call.indices.shape:
        return f"selected {tuple(indices.shape)} experts where the model selected {tuple(call.indices.shape)}"
    if not torch.equal(indices, call.indices):
        return f"selected experts differ on {int((indices != call.indices).any(-1).sum())} of {tokens} tokens"
    if weights.dtype != call.weights.dtype:
        return f"weights are {weights.dtype} where the model's are {call.weights.dtype}"
    if not torch.equal(weights, call.weights):
        return f"weights differ on {int((weights != call.weights).any(-1).sum())} of {tokens} tokens"
    return None
