"""The vLLM backend's client: an in-process ``vllm.LLM`` with the moeguard plugin, behind the
:class:`~moeguard.backends.base.Backend` interface.

Prompts are encoded exactly as the HF path encodes them (chat template, no extra special tokens) and sent
as token ids; every request carries its own spec in ``SamplingParams(extra_args=...)``; specs are validated
here, against the served model's shape, before anything is submitted. Capture runs the sequence through
the model once (``max_tokens=1``: the forward covers every prompt token) and reads the per-request routing
back from the worker (``collective_rpc``), so the engine may also run in its own process.

Engine arguments: ``get_backend("vllm", **engine_args)`` (any ``vllm.LLM`` keyword, e.g.
``tensor_parallel_size``, ``enable_expert_parallel``, ``enforce_eager``) and ``$MOEGUARD_VLLM_ENGINE_ARGS``
(a JSON object, for the command line); ``moeguard={...}`` joins ``additional_config["moeguard"]``.
Defaults: ``dtype`` the checkpoint's (as transformers loads it; vLLM's ``auto`` would halve float32),
``enforce_eager=True`` (engine start in seconds, no compile), ``enable_prefix_caching=False``
(capture needs every token run; with prefix caching on, steered prompts carry a ``cache_salt`` per spec, so
cached key/values are only shared between requests with the same spec), ``seed=0``.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from moeguard.backends.base import Backend, BackendModel
from moeguard.backends.vllm.client import capture_args, steer_args
from moeguard.errors import MoeguardError

if TYPE_CHECKING:
    from moeguard.chat import Prompt
    from moeguard.data import Pair
    from moeguard.routing.shape import MoEShape
    from moeguard.routing.trace import RoutingTrace
    from moeguard.steer import SteeringSpec

INSTALL_HINT = 'pip install "moeguard[vllm]"'
ENGINE_ARGS_ENV = "MOEGUARD_VLLM_ENGINE_ARGS"
DEFAULT_ENGINE_ARGS: dict[str, Any] = {"enforce_eager": True, "enable_prefix_caching": False, "seed": 0}


def require_vllm():
    """Import vLLM (with its logs on stderr, warnings and up); one line naming the extra if it is missing."""
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    try:
        import vllm
    except ImportError:
        raise MoeguardError(f"the vLLM backend needs vLLM, which is not installed; {INSTALL_HINT}") from None
    except Exception as err:  # noqa: BLE001 - a broken install fails in many ways
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MoeguardError(f"vLLM is installed but cannot be imported ({first}); {INSTALL_HINT}") from None
    return vllm


def engine_args_from_env() -> dict[str, Any]:
    """``$MOEGUARD_VLLM_ENGINE_ARGS`` as a dict (one line if it is not a JSON object)."""
    text = os.environ.get(ENGINE_ARGS_ENV, "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise MoeguardError(
            f"${ENGINE_ARGS_ENV} is not valid JSON ({err.msg}); give an object, e.g. '{{\"tensor_parallel_size\": 2}}'"
        ) from None
    if not isinstance(value, dict):
        raise MoeguardError(f"${ENGINE_ARGS_ENV} must be a JSON object of vllm.LLM arguments")
    return value


def _moeguard_cause(err: BaseException | None) -> MoeguardError | None:
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, MoeguardError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def client_shape(info: dict) -> MoEShape:
    """The served model's :class:`~moeguard.routing.MoEShape` from the worker's ``shape`` answer."""
    from moeguard.adapters.registry import adapter_for_model_type
    from moeguard.backends.vllm.router import RouterParams
    from moeguard.routing.shape import MoEShape

    adapter = adapter_for_model_type(info["model_type"])
    if adapter is None:
        raise MoeguardError(f"the served model_type {info['model_type']!r} has no moeguard routing adapter")
    return MoEShape(
        adapter=adapter,
        routers={int(layer): RouterParams(**p) for layer, p in info["routers"].items()},
        num_experts=int(info["num_experts"]),
        top_k=int(info["top_k"]),
        num_decoder_layers=int(info["num_decoder_layers"]),
        shared_experts=int(info.get("shared_experts", 0)),
        model_type=info["model_type"],
    )


class VllmModel(BackendModel):
    """A model served by an in-process ``vllm.LLM`` with the moeguard backend switched on."""

    backend = "vllm"

    def __init__(self, name: str, trust_remote_code: bool = False, capture_logits: bool = False, **engine_args: Any):
        from moeguard.backends.vllm.checkpoint import checkpoint_dtype, vllm_model_path
        from moeguard.models import load_tokenizer

        vllm = require_vllm()
        self.name = name
        self.path = vllm_model_path(name)
        self.tokenizer = load_tokenizer(self.path, name, trust_remote_code)
        args = {
            **DEFAULT_ENGINE_ARGS,
            "dtype": checkpoint_dtype(self.path) or "auto",
            **engine_args_from_env(),
            **engine_args,
        }
        moeguard_config = {**dict(args.pop("moeguard", None) or {})}
        if capture_logits:
            moeguard_config["capture_logits"] = True
        self.capture_logits = bool(moeguard_config.get("capture_logits", False))
        additional = dict(args.pop("additional_config", None) or {})
        additional["moeguard"] = moeguard_config
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        set_threads = torch.set_num_threads  # vLLM's CPU worker replaces it process-wide; put it back
        try:
            self.llm = vllm.LLM(
                model=self.path,
                tokenizer=self.path,
                trust_remote_code=trust_remote_code,
                additional_config=additional,
                **args,
            )
        except Exception as err:
            cause = _moeguard_cause(err)
            if cause is not None:
                raise MoeguardError(str(cause)) from None
            raise
        finally:
            torch.set_num_threads = set_threads
        self.max_num_seqs = int(self.llm.llm_engine.vllm_config.scheduler_config.max_num_seqs)
        self.info = self.rpc("shape")
        self.shape = client_shape(self.info)

    # ------------------------------------------------------------------ engine calls
    def rpc(self, op: str, *args):
        """The moeguard worker call ``op`` (first worker's answer)."""
        return self.llm.collective_rpc("moeguard_rpc", args=(op, *args))[0]

    def stats(self) -> dict:
        """Steps run, steps with a steered token, steps mixing specs (or steered and plain requests)."""
        return self.rpc("stats")

    def _params(self, max_tokens: int, spec: SteeringSpec | None, tag: str | None, do_sample: bool, seed: int):
        from vllm import SamplingParams

        extra = steer_args(spec) | (capture_args(tag) if tag is not None else {})
        if do_sample:
            params = self.llm.get_default_sampling_params()
            params.max_tokens, params.seed, params.detokenize = max_tokens, seed, False
            params.extra_args = extra or None
            return params
        return SamplingParams(temperature=0.0, max_tokens=max_tokens, detokenize=False, extra_args=extra or None)

    def run(
        self,
        sequences: Sequence[Sequence[int]],
        specs: Sequence[SteeringSpec | None],
        max_tokens: int,
        capture: bool = False,
        do_sample: bool = False,
        seed: int = 0,
    ):
        """Submit token-id prompts (one spec each); returns vLLM's outputs and, with ``capture``, each
        request's routing ``{indices, weights[, logits]}`` ``[moe_layers, T, ...]``."""
        prefix = uuid.uuid4().hex[:12]
        tags = [f"mg-{prefix}-{i}" for i in range(len(sequences))] if capture else [None] * len(sequences)
        params = [
            self._params(max_tokens, spec, tag, do_sample, seed + i)
            for i, (spec, tag) in enumerate(zip(specs, tags, strict=True))
        ]
        outputs = self.llm.generate(
            [prompt_input(s, spec) for s, spec in zip(sequences, specs, strict=True)], params, use_tqdm=False
        )
        traces = None
        if capture:
            found = self.rpc("pop_traces", tags)
            traces = [found[tag] for tag in tags]
        return outputs, traces

    def _chunk(self, batch_size: int) -> int:
        # vLLM schedules its own batches; requests are submitted in chunks that keep it busy and bound the
        # routing traces held in the worker.
        return max(int(batch_size), self.max_num_seqs)

    # ------------------------------------------------------------------ the backend interface
    def generate(
        self,
        prompts: Sequence[Prompt],
        max_new_tokens: int = 64,
        steer: SteeringSpec | Sequence[SteeringSpec | None] | None = None,
        batch_size: int = 16,
        do_sample: bool = False,
        seed: int = 0,
    ) -> list[str]:
        from moeguard.chat import encode_texts, format_prompt

        specs = self.validate(steer, len(prompts))
        sequences = encode_texts(self.tokenizer, [format_prompt(self.tokenizer, p) for p in prompts])
        replies: list[str] = []
        chunk = self._chunk(batch_size)
        for start in range(0, len(sequences), chunk):
            outputs, _ = self.run(
                sequences[start : start + chunk],
                specs[start : start + chunk],
                max_new_tokens,
                do_sample=do_sample,
                seed=seed + start,
            )
            replies += [
                self.tokenizer.decode(list(o.outputs[0].token_ids), skip_special_tokens=True).strip() for o in outputs
            ]
        return replies

    def capture(
        self,
        prompts: Sequence[Prompt],
        logits: bool = False,
        steer: SteeringSpec | None = None,
        batch_size: int = 8,
        progress: bool = True,
    ) -> RoutingTrace:
        from moeguard.backends.vllm.state import request_trace
        from moeguard.capture_run import prompts_meta
        from moeguard.chat import encode_prompts
        from moeguard.routing.trace import RoutingTrace, trace_with_sequences

        if logits and not self.capture_logits:
            raise MoeguardError(
                "this vLLM engine keeps no router logits; load it with get_backend('vllm', capture_logits=True)"
            )
        self.validate(steer)
        sequences = encode_prompts(self.tokenizer, list(prompts))
        samples = []
        with _progress(progress, "capturing routing (vLLM)", len(sequences)) as advance:
            chunk = self._chunk(batch_size)
            for start in range(0, len(sequences), chunk):
                part = sequences[start : start + chunk]
                _, traces = self.run(part, [steer] * len(part), max_tokens=1, capture=True)
                for seq, tensors in zip(part, traces, strict=True):
                    sample = request_trace(tensors, self.shape, seq)
                    if not logits:
                        sample.logits = None
                    samples.append(sample)
                advance(len(part))
        trace = trace_with_sequences(RoutingTrace.cat(samples), sequences)
        trace.meta = prompts_meta(self.shape, self.name, steer, sequences, backend="vllm")
        return trace

    def capture_pairs(
        self,
        pairs: Iterable[Pair | dict],
        steer: SteeringSpec | None = None,
        batch_size: int = 8,
        progress: bool = True,
        total: int | None = None,
    ) -> RoutingTrace:
        from moeguard.capture_run import label_clusters, pair_labels, pairs_meta
        from moeguard.pair_routing import encoded_pair_batches
        from moeguard.routing.trace import RoutingTrace

        self.validate(steer)
        digest = hashlib.sha256()
        chunks = []
        keys: list[str] = []
        with _progress(progress, "capturing pair routing (vLLM)", total) as advance:
            batches = encoded_pair_batches(self.tokenizer, pairs, self._chunk(batch_size), digest)
            for pair_ids, side, encoded, pair_keys in batches:
                sequences = [e.input_ids for e in encoded]
                _, traces = self.run(sequences, [steer] * len(sequences), max_tokens=1, capture=True)
                chunks.append(span_trace(self.shape, encoded, traces, pair_labels(pair_ids, side)))
                if side == "a":
                    keys.extend(pair_keys)
                if side == "b":
                    advance(len(pair_ids))
        trace = RoutingTrace.cat(chunks)
        label_clusters(trace, keys)
        trace.meta = pairs_meta(self.shape, self.name, steer, trace, digest.hexdigest(), backend="vllm")
        return trace

    def close(self) -> None:
        import gc

        llm = self.__dict__.pop("llm", None)
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
            del llm
            gc.collect()


def prompt_input(sequence: Sequence[int], spec: SteeringSpec | None) -> dict:
    """A token-id prompt; a steered one gets its spec's ``cache_salt``, so that vLLM's prefix cache never
    hands a request key/values computed under another spec (steering changes the hidden states)."""
    from moeguard.backends.base import spec_key

    prompt: dict[str, Any] = {"prompt_token_ids": list(map(int, sequence))}
    if spec is not None:
        prompt["cache_salt"] = "moeguard-" + hashlib.sha256(spec_key(spec).encode()).hexdigest()[:16]
    return prompt


def span_trace(shape: MoEShape, encoded, traces, labels) -> RoutingTrace:
    """The target-span rows of whole-conversation traces, one sample per conversation (as the HF recorder
    keeps them: selected token ids and their positions)."""
    from moeguard.routing.trace import RoutingTrace

    indices, weights, input_ids, positions, lengths = [], [], [], [], []
    for e, tensors in zip(encoded, traces, strict=True):
        mask = torch.tensor(e.span_mask, dtype=torch.bool)
        rows = mask.nonzero().squeeze(1)
        indices.append(tensors["indices"].permute(1, 0, 2)[rows].long())
        weights.append(tensors["weights"].permute(1, 0, 2)[rows])
        input_ids.append(torch.tensor(e.input_ids, dtype=torch.long)[rows])
        positions.append(rows)
        lengths.append(len(rows))
    return RoutingTrace(
        indices=torch.cat(indices),
        lengths=torch.tensor(lengths),
        layers=list(shape.layers),
        num_experts=shape.num_experts,
        weights=torch.cat(weights),
        input_ids=torch.cat(input_ids),
        positions=torch.cat(positions),
        labels=labels,
    )


class _progress:
    """A rich progress bar (or nothing); ``advance(n)`` moves it."""

    def __init__(self, show: bool, title: str, total: int | None):
        self.show, self.title, self.total = show, title, total
        self._bar = None

    def __enter__(self):
        if not self.show:
            return lambda n: None
        from moeguard.progress import progress_bar

        self._context = progress_bar()
        self._bar = self._context.__enter__()
        task = self._bar.add_task(self.title, total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._context.__exit__(*exc)


class VllmBackend(Backend):
    """vLLM engines with the moeguard plugin (options: ``vllm.LLM`` keywords, ``trust_remote_code``,
    ``capture_logits``; see the module docstring)."""

    name = "vllm"

    def __init__(self, **options: Any):
        require_vllm()
        super().__init__(**options)

    def _load(self, model_name: str) -> BackendModel:
        return VllmModel(model_name, **self.options)
