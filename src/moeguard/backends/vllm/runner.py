"""Hooks on vLLM's V1 model runner and worker: install the router wrappers after loading, tell them each step
which token of the flattened batch belongs to which request, and answer the client's calls.

V1 ``GPUModelRunner`` (``CPUModelRunner`` subclasses it) lays the scheduled tokens of the persistent batch
out in ``input_batch.req_ids`` order; ``query_start_loc.np[: num_reqs + 1]`` holds their offsets,
``input_batch.num_computed_tokens_cpu`` the position of each request's first scheduled token, and
``requests[req_id].sampling_params.extra_args`` what the request asked for. ``_model_forward`` is the one
call that runs the model of a real step (dummy/profile runs call the model directly), so it is wrapped:
``begin_step`` before, ``end_step`` after. The worker gets one method, ``moeguard_rpc(op, ...)``, reached
through ``LLM.collective_rpc`` (in-process or in an engine process alike).
"""

from __future__ import annotations

import functools
import logging

import torch

from moeguard.backends.vllm.router import RouterHook, RouterView, check_routing, shape_info
from moeguard.backends.vllm.state import DEFAULT_SPEC, SteeringState
from moeguard.errors import MoeguardError
from moeguard.routing.shape import MoEShape
from moeguard.steer import SteeringSpec

logger = logging.getLogger("moeguard.vllm")

#: ``additional_config`` key that switches the backend on (and keys vLLM's compile cache).
CONFIG_KEY = "moeguard"
#: ``additional_config["moeguard"]["mode"]``: ``auto`` (graph-safe when the engine compiles or replays CUDA
#: graphs, Python fast path when eager), ``graph`` (always graph-safe), ``python`` (eager engines only).
MODES = ("auto", "graph", "python")
OPTIONS = ("mode", "max_specs", "specs", "default_spec", "capture_dir", "capture_logits", "check_routing")


def backend_config(vllm_config) -> dict | None:
    """``additional_config['moeguard']`` if the backend is switched on for this engine."""
    extra = getattr(vllm_config, "additional_config", None) or {}
    value = extra.get(CONFIG_KEY) if isinstance(extra, dict) else None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MoeguardError("additional_config['moeguard'] must be an object, e.g. {} or {'max_specs': 16}")
    unknown = sorted(set(value) - set(OPTIONS))
    if unknown:
        raise MoeguardError(f"additional_config['moeguard'] has unknown option(s) {unknown}; use {', '.join(OPTIONS)}")
    return value


def moe_runners(model: torch.nn.Module) -> dict[int, torch.nn.Module]:
    """Decoder-layer index → vLLM ``MoERunner`` of that layer."""
    from vllm.model_executor.layers.fused_moe.runner.moe_runner_interface import MoERunnerInterface

    found = {}
    for module in model.modules():
        if isinstance(module, MoERunnerInterface):
            found[int(module.layer_id)] = module
    return found


def graph_kind(vllm_config) -> str | None:
    """Why the forward is a static graph (``"compiled"``, ``"CUDA-graph"``), or None when it runs eagerly."""
    from vllm.config import CompilationMode, CUDAGraphMode

    compilation = vllm_config.compilation_config
    if compilation.cudagraph_mode not in (None, CUDAGraphMode.NONE):
        return "CUDA-graph"
    if compilation.mode != CompilationMode.NONE:
        return "compiled"
    return None


def static_graph(mode: str, kind: str | None) -> bool:
    """Whether the wrappers must be graph-safe (never branch on Python state); refuses Python-branch
    steering in a compiled / CUDA-graph engine (the branch would be frozen at capture)."""
    if mode not in MODES:
        raise MoeguardError(f"additional_config['moeguard']['mode'] is {mode!r}; use one of {', '.join(MODES)}")
    if mode == "python" and kind is not None:
        raise MoeguardError(
            f"steering with Python branches (mode 'python') cannot run in a {kind} engine: the branch would be "
            "frozen at capture; use mode 'auto' or run the engine eagerly (enforce_eager=True)"
        )
    return mode == "graph" or (mode == "auto" and kind is not None)


def served_shape(routers: dict[int, RouterView], hf_config) -> MoEShape:
    """The served model's shape, with the adapter of its ``model_type`` (the HF path's adapter)."""
    from moeguard.adapters import _shared_experts
    from moeguard.adapters.registry import adapter_for_model_type, supported_model_types

    model_type = getattr(hf_config, "model_type", None)
    adapter = adapter_for_model_type(model_type) if model_type else None
    if adapter is None:
        raise MoeguardError(
            f"vLLM serves model_type {model_type!r}, which has no moeguard routing adapter; supported: "
            f"{', '.join(supported_model_types())}"
        )
    try:
        sizes = {(adapter.num_experts(r), adapter.top_k(r)) for r in routers.values()}  # type: ignore[arg-type]
    except (AttributeError, KeyError, MoeguardError) as err:  # the adapter reads what vLLM's router lacks
        raise MoeguardError(
            f"model_type {model_type!r} ({adapter.family}) cannot be steered on vLLM: its routing adapter reads "
            f"router attributes vLLM's router does not provide ({err}); use --backend hf"
        ) from None
    if len(sizes) != 1:
        raise MoeguardError(f"MoE layers disagree on (experts, top_k): {sorted(sizes)}; not supported")
    ((experts, top_k),) = sizes
    return MoEShape(
        adapter=adapter,
        routers=dict(routers),
        num_experts=experts,
        top_k=top_k,
        num_decoder_layers=int(hf_config.num_hidden_layers),
        shared_experts=_shared_experts(hf_config, adapter),
        model_type=model_type,
    )


def install(model: torch.nn.Module, vllm_config, config: dict) -> SteeringState:
    """Wrap the router of every MoE layer of ``model``; returns the worker's steering state."""
    runners = moe_runners(model)
    if not runners:
        raise MoeguardError("the served model has no fused-MoE layers; moeguard steers MoE models only")
    for layer, runner in runners.items():
        if type(runner).__name__ == "TransformersMoERunner":
            raise MoeguardError(
                "vLLM runs this model's router in its Transformers backend (external routing), so router logits "
                "never reach vLLM's fused-MoE router; moeguard cannot steer it on vLLM (use --backend hf)"
            )
        if runner.is_monolithic:
            raise MoeguardError(
                f"layer {layer} uses a monolithic MoE kernel that routes inside the kernel; choose a modular "
                "backend (e.g. --moe-backend triton) to steer"
            )
    hf_config = vllm_config.model_config.hf_text_config
    views = {layer: RouterView(runner.router, hf_config) for layer, runner in sorted(runners.items())}
    shape = served_shape(views, hf_config)
    device = next(model.parameters()).device
    if config.get("check_routing", True):
        for layer, runner in sorted(runners.items()):
            check_routing(
                runner.router._compute_routing,  # type: ignore[union-attr,arg-type]
                shape.adapter,
                views[layer],
                int(hf_config.hidden_size),
                vllm_config.model_config.dtype,
                device,
                layer,
            )
    named = {name: SteeringSpec.load(path) for name, path in (config.get("specs") or {}).items()}
    if config.get("default_spec"):
        named[DEFAULT_SPEC] = SteeringSpec.load(config["default_spec"])
    scheduler = vllm_config.scheduler_config
    state = SteeringState(
        shape,
        max_tokens=int(scheduler.max_num_batched_tokens),
        max_slots=int(config.get("max_specs", scheduler.max_num_seqs)) + 1,
        device=device,
        static_graph=static_graph(str(config.get("mode", "auto")), graph_kind(vllm_config)),
        named_specs=named,
        capture_dir=config.get("capture_dir"),
        capture_logits=bool(config.get("capture_logits", False)),
    )
    state.hooks = [
        RouterHook(
            runners[layer].router,
            layer,
            shape.layer_position(layer),
            state,
            shape.adapter,
            views[layer],
            output_scale=float(getattr(runners[layer], "routed_scaling_factor", 1.0)),
        )
        for layer in shape.layers
    ]
    logger.info(
        "moeguard: steering hooks on %d MoE layers (%s), graph-safe: %s",
        len(state.hooks),
        shape.family,
        state.static_graph,
    )
    return state


# ---------------------------------------------------------------------------------------------- the client's calls
def rpc(state: SteeringState | None, op: str, *args):
    """One client call on the worker's state: ``shape``, ``pop_traces(tags)``, ``stats``."""
    if state is None:
        raise MoeguardError(
            "this vLLM engine runs without the moeguard backend; build it with additional_config={'moeguard': {}}"
        )
    if op == "shape":
        return {**shape_info(state.shape), "static_graph": state.static_graph}
    if op == "pop_traces":
        return state.pop_traces(args[0])
    if op == "stats":
        return dict(state.stats)
    raise MoeguardError(f"unknown moeguard call {op!r}")


# ---------------------------------------------------------------------------------------------- patches
def _once(cls, name: str, make) -> None:
    original = cls.__dict__.get(name)
    if original is None or getattr(original, "_moeguard", False):
        return
    wrapped = make(original)
    wrapped._moeguard = True
    setattr(cls, name, wrapped)


def _load_model(original):
    @functools.wraps(original)
    def load_model(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        config = backend_config(self.vllm_config)
        if config is not None and getattr(self, "_moeguard", None) is None:
            self._moeguard = install(self.get_model(), self.vllm_config, config)
        return result

    return load_model


def _model_forward(original):
    @functools.wraps(original)
    def model_forward(self, *args, **kwargs):
        state: SteeringState | None = getattr(self, "_moeguard", None)
        if state is None:
            return original(self, *args, **kwargs)
        batch = self.input_batch
        num_reqs = batch.num_reqs
        live = {
            rid: (req.sampling_params.extra_args if req.sampling_params is not None else None)
            for rid, req in self.requests.items()
        }
        state.begin_step(
            list(batch.req_ids[:num_reqs]),
            self.query_start_loc.np[: num_reqs + 1].copy(),
            batch.num_computed_tokens_cpu[:num_reqs].copy(),
            live,
        )
        output = original(self, *args, **kwargs)
        state.end_step()
        return output

    return model_forward


def _execute_model(original):
    @functools.wraps(original)
    def execute_model(self, scheduler_output, *args, **kwargs):
        state: SteeringState | None = getattr(self, "_moeguard", None)
        if state is not None and scheduler_output.finished_req_ids:
            finished = {}
            for rid in scheduler_output.finished_req_ids:
                req = self.requests.get(rid)
                finished[rid] = (list(req.prompt_token_ids or []) + list(req.output_token_ids)) if req else []
            state.finish(finished)
        return original(self, scheduler_output, *args, **kwargs)

    return execute_model


def _refuse_v2(original):
    @functools.wraps(original)
    def load_model(self, *args, **kwargs):
        if backend_config(self.vllm_config) is not None:
            raise MoeguardError("moeguard's vLLM backend hooks the V1 model runner; set VLLM_USE_V2_MODEL_RUNNER=0")
        return original(self, *args, **kwargs)

    return load_model


def moeguard_rpc(self, op: str, *args):
    """Worker method behind ``LLM.collective_rpc("moeguard_rpc", args=(op, ...))``."""
    return rpc(getattr(self.model_runner, "_moeguard", None), op, *args)


def patch_model_runners() -> None:
    """Patch vLLM's model-runner and worker classes once per process (safe to call again)."""
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    _once(GPUModelRunner, "load_model", _load_model)
    _once(GPUModelRunner, "_model_forward", _model_forward)
    _once(GPUModelRunner, "execute_model", _execute_model)
    try:
        from vllm.v1.worker.cpu_model_runner import CPUModelRunner
    except ImportError:  # GPU-only builds
        CPUModelRunner = None
    if CPUModelRunner is not None:
        _once(CPUModelRunner, "load_model", _load_model)
    from vllm.v1.worker.gpu_worker import Worker

    if "moeguard_rpc" not in Worker.__dict__:
        Worker.moeguard_rpc = moeguard_rpc
    try:
        from vllm.v1.worker.gpu.model_runner import GPUModelRunner as GPUModelRunnerV2
    except ImportError:
        return
    _once(GPUModelRunnerV2, "load_model", _refuse_v2)
