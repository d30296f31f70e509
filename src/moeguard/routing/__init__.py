"""The routing core: THE way moeguard reads and edits what MoE routers emit.

Lifecycle of every intervention (capture, detection, steering, SafeMoE's routing loss, training noise,
and the vLLM backend's router wrapper, which applies the same edits in another engine):

1. **Find the routers.** :func:`moeguard.adapters.inspect_moe` unwraps the model
   (:func:`moeguard.routing.unwrap.unwrap`: PEFT, DDP/FSDP/DeepSpeed, ``torch.compile``), picks the routing
   adapter of its family and finds the router module of every MoE decoder layer.
2. **Say what to do.** An *edit* (:class:`ExpertEdit`: experts forced on / off, soft shifts) changes a
   layer's routing; a *reader* receives every router call's final decision (:class:`RouterCall`).
   :class:`moeguard.SteeringSpec` and :class:`RoutingNoise` produce edits; :class:`RoutingRecorder`
   is a reader that streams counts and builds :class:`RoutingTrace` objects.
3. **Register.** :class:`RouterHooks` (one per model, ``RouterHooks.of(model)``) tracks every edit and reader
   and keeps at most one torch forward hook per router, only while something is registered on it. On each
   call it combines the layer's edits in registration order, lets the adapter re-route
   (``edited_route``: the family's own rule on edited scores), then calls the readers.
4. **Remove.** Every registration returns a :class:`HookHandle`; ``with RouterHooks.of(model).context():``
   removes what was added inside it, in ``finally``, so nested uses compose and nothing outlives its block.
5. **Persist.** A :class:`RoutingTrace` (one axis order: ``[rows, moe_layers, ...]``) saves to and loads
   from a versioned safetensors file, so a capture feeds detection, drift and SafeMoE references without
   re-running the model.

No module outside this package registers hooks on routers (a test checks it).
"""

from moeguard.routing.edits import STEER_MARGIN, ExpertEdit, combine, edit_scores
from moeguard.routing.hooks import HookHandle, RouterCall, RouterHooks
from moeguard.routing.shape import MoEShape
from moeguard.routing.trace import TRACE_FILE, RoutingTrace, hit_counts
from moeguard.routing.unwrap import input_device, routing_forward_kwargs, unwrap

__all__ = [
    "STEER_MARGIN",
    "TRACE_FILE",
    "ExpertEdit",
    "HookHandle",
    "MoEShape",
    "RouterCall",
    "RouterHooks",
    "RoutingNoise",
    "RoutingRecorder",
    "RoutingTrace",
    "combine",
    "edit_scores",
    "hit_counts",
    "input_device",
    "routing_forward_kwargs",
    "unwrap",
]


def __getattr__(name: str):
    # The recorder and the noise import the adapters, which import ``routing.edits``: load them lazily.
    if name == "RoutingRecorder":
        from moeguard.routing.recorder import RoutingRecorder

        return RoutingRecorder
    if name == "RoutingNoise":
        from moeguard.routing.noise import RoutingNoise

        return RoutingNoise
    raise AttributeError(name)
