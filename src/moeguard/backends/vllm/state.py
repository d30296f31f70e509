"""Worker-side steering and capture state in preallocated tensors (one instance per vLLM worker).

Steering specs live in *slots*: slot 0 means "no steering" and is never written; every distinct spec in the
running batch occupies one slot, filled from :meth:`moeguard.SteeringSpec.edits` (the routing core's
:class:`~moeguard.routing.ExpertEdit` per layer): ``activate`` / ``deactivate`` ``[slot, moe_layer, expert]``
(hard edits), ``shift`` (soft edits) and ``steers[slot, moe_layer]``. Before each forward the model-runner
hook writes ``token_slot[t]`` for every token of the flattened batch; the router wrappers gather the
per-token edit ``[N, E]`` from it. All tensors keep their address for the life of the engine, so a traced /
compiled graph (or a CUDA graph) that reads them sees the values written for the current step.

Capture writes the selected expert ids and weights (and optionally the router logits) of every MoE layer
into ``ids`` / ``weights`` / ``logits`` ``[moe_layers, max_tokens, ...]``; after the forward the rows of
capturing requests are copied out with their token positions, so prefill chunks and decode steps join into
one trace per request.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from moeguard.errors import MoeguardError
from moeguard.routing.shape import MoEShape
from moeguard.steer import SteeringSpec

logger = logging.getLogger("moeguard.vllm")

#: ``SamplingParams.extra_args`` keys read by the backend (flat, so they also fit ``vllm_xargs``).
STEER_KEY = "moeguard_steer"
CAPTURE_KEY = "moeguard_capture"
#: The value of ``moeguard_steer`` that turns a server's default spec off for one request.
NO_STEER = "none"
#: The preloaded spec that requests without ``moeguard_steer`` use (``moeguard serve --steer``).
DEFAULT_SPEC = "default"


def request_spec(extra_args: dict | None, named: Mapping[str, SteeringSpec]) -> tuple[str, SteeringSpec] | None:
    """The steering spec a request carries: JSON text (or a dict), the name of a preloaded spec, ``"none"``;
    without one, the preloaded ``default`` spec if there is one. Returns ``(slot key, spec)`` or None."""
    value = (extra_args or {}).get(STEER_KEY)
    if value in (None, "", {}):
        value = DEFAULT_SPEC if DEFAULT_SPEC in named else None
    if value is None or value == NO_STEER:
        return None
    if isinstance(value, str) and value in named:
        spec = named[value]
    else:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                known = ", ".join(sorted(named)) or "none"
                raise MoeguardError(
                    f"extra_args[{STEER_KEY!r}] is neither spec JSON nor a preloaded spec name (preloaded: {known})"
                ) from None
        spec = SteeringSpec.from_dict(value, source=f"extra_args[{STEER_KEY!r}]")
    if not len(spec):
        return None
    return json.dumps(spec.to_dict(), sort_keys=True), spec


def capture_tag(extra_args: dict | None, req_id: str) -> str | None:
    """Under which name a request's routing is stored (``True``/``1`` → the engine's request id)."""
    value = (extra_args or {}).get(CAPTURE_KEY)
    if value in (None, False, 0, ""):
        return None
    return req_id if value in (True, 1, "1") else str(value)


@dataclass
class RequestTrace:
    """Routing of one request: chunks ``(first position, ids [L, n, k], weights [L, n, k], logits)``."""

    chunks: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor | None]] = field(default_factory=list)

    def tensors(self) -> dict[str, torch.Tensor]:
        """``indices`` / ``weights`` (``logits``) ``[moe_layers, T, ...]`` over positions 0..T-1."""
        chunks = sorted(self.chunks, key=lambda c: c[0])
        expected = 0
        for first, ids, _, _ in chunks:
            if first != expected:
                raise MoeguardError(
                    f"the routing trace misses token positions {expected}..{first - 1}; disable prefix caching "
                    "(enable_prefix_caching=False) when capturing"
                )
            expected += ids.shape[1]
        out = {
            "indices": torch.cat([c[1] for c in chunks], dim=1) if chunks else torch.zeros(0),
            "weights": torch.cat([c[2] for c in chunks], dim=1) if chunks else torch.zeros(0),
        }
        if chunks and chunks[0][3] is not None:
            out["logits"] = torch.cat([c[3] for c in chunks if c[3] is not None], dim=1)
        return out


class SteeringState:
    """Slots of steering edits, the per-token slot index, and the capture buffers."""

    def __init__(
        self,
        shape: MoEShape,
        max_tokens: int,
        max_slots: int,
        device: torch.device,
        static_graph: bool,
        named_specs: Mapping[str, SteeringSpec] | None = None,
        capture_dir: str | Path | None = None,
        capture_logits: bool = False,
    ):
        self.shape = shape
        #: The router hooks steering reads this state from (set by the worker that installs them).
        self.hooks: list = []
        self.static_graph = static_graph  # compiled/graphed forward: never branch on Python state
        self.named = dict(named_specs or {})
        for name, spec in self.named.items():
            try:
                spec.validate(shape)
            except MoeguardError as err:
                raise MoeguardError(f"preloaded spec {name!r}: {err}") from None
        self.capture_dir = Path(capture_dir) if capture_dir else None
        layers, experts, k = len(shape.layers), shape.num_experts, shape.top_k
        self.activate = torch.zeros(max_slots, layers, experts, dtype=torch.bool, device=device)
        self.deactivate = torch.zeros(max_slots, layers, experts, dtype=torch.bool, device=device)
        self.shift = torch.zeros(max_slots, layers, experts, dtype=torch.float32, device=device)
        self.steers = torch.zeros(max_slots, layers, dtype=torch.bool, device=device)
        self.token_slot = torch.zeros(max_tokens, dtype=torch.long, device=device)
        self._token_slot_host = np.zeros(max_tokens, dtype=np.int64)
        self.ids = torch.zeros(layers, max_tokens, k, dtype=torch.int32, device=device)
        self.weights = torch.zeros(layers, max_tokens, k, dtype=torch.float32, device=device)
        self.logits = (
            torch.zeros(layers, max_tokens, experts, dtype=torch.float32, device=device) if capture_logits else None
        )
        self.active = False  # any steered token in the current step (eager fast path only)
        self.capturing = False
        self._slot_of: dict[str, int] = {}
        self._free = list(range(max_slots - 1, 0, -1))
        self._filled = 0
        self.traces: dict[str, RequestTrace] = {}
        self._step: list[tuple[str, int, int, int]] = []  # (tag, start, end, first position)
        self._key_of_req: dict[str, str | None] = {}
        self._spec_of_key: dict[str, SteeringSpec] = {}
        self._tag_of_req: dict[str, str] = {}
        #: steps run, steps with a steered token, steps mixing specs (or steered and plain requests)
        self.stats = {"steps": 0, "steered_steps": 0, "mixed_steps": 0}

    # ------------------------------------------------------------------ slots
    def slot_for(self, key: str, spec: SteeringSpec) -> int:
        """The slot holding ``spec`` (validated against the served model and written on first use)."""
        if key in self._slot_of:
            return self._slot_of[key]
        if not self._free:
            raise MoeguardError(
                f"more than {self.activate.shape[0] - 1} distinct steering specs in flight; raise "
                "additional_config['moeguard']['max_specs']"
            )
        spec.validate(self.shape)
        slot = self._free.pop()
        for tensor in (self.activate, self.deactivate, self.shift, self.steers):
            tensor[slot].zero_()
        for layer, edit in spec.edits(self.shape).items():
            row = self.shape.layer_position(layer)
            if edit.activate is not None:
                self.activate[slot, row] = edit.activate.to(self.activate.device)
            if edit.deactivate is not None:
                self.deactivate[slot, row] = edit.deactivate.to(self.deactivate.device)
            if edit.shift is not None:
                self.shift[slot, row] = edit.shift.to(self.shift.device, torch.float32)
            self.steers[slot, row] = not edit.is_empty
        self._slot_of[key] = slot
        return slot

    def release_except(self, live_keys: set[str]) -> None:
        """Free the slots of specs no live request uses any more."""
        for key in [k for k in self._slot_of if k not in live_keys]:
            self._free.append(self._slot_of.pop(key))

    # ------------------------------------------------------------------ per step
    def _spec_key(self, req_id: str, extra_args: dict | None) -> str | None:
        """Slot key of a request's spec (parsed once per request; None: not steered)."""
        if req_id not in self._key_of_req:
            found = request_spec(extra_args, self.named)
            self._key_of_req[req_id] = None if found is None else found[0]
            if found is not None:
                self._spec_of_key[found[0]] = found[1]
        return self._key_of_req[req_id]

    def begin_step(
        self,
        req_ids: Sequence[str],
        query_start_loc: np.ndarray,
        num_computed: np.ndarray,
        live: Mapping[str, dict | None],
    ) -> None:
        """Write ``token_slot`` for this step's flattened batch and note which rows to capture.

        ``req_ids`` are the batch's requests in token order, ``query_start_loc`` their ``[num_reqs + 1]``
        token offsets, ``num_computed`` the position of each one's first token, ``live`` the ``extra_args``
        of every request the runner still holds (batch included).
        """
        for rid in [r for r in self._key_of_req if r not in live]:
            del self._key_of_req[rid]
        keys = [self._spec_key(rid, live.get(rid)) for rid in req_ids]
        slots = np.array([0 if k is None else self.slot_for(k, self._spec_of_key[k]) for k in keys], dtype=np.int64)
        in_use = {k for k in self._key_of_req.values() if k is not None}
        self.release_except(in_use)
        for key in [k for k in self._spec_of_key if k not in in_use]:
            del self._spec_of_key[key]
        n = int(query_start_loc[len(req_ids)])
        width = max(n, self._filled)  # also clear what the previous, longer step wrote
        host = self._token_slot_host
        host[:width] = 0
        host[:n] = np.repeat(slots, np.diff(query_start_loc[: len(req_ids) + 1]))
        self._filled = n
        self.token_slot[:width].copy_(torch.from_numpy(host[:width]))
        self.active = bool(slots.any())
        self.stats["steps"] += 1
        self.stats["steered_steps"] += int(self.active)
        self.stats["mixed_steps"] += int(len(set(slots.tolist())) > 1)
        self._step = []
        for i, rid in enumerate(req_ids):
            tag = self._tag_of_req.get(rid) or self._new_tag(capture_tag(live.get(rid), rid))
            if tag is not None:
                self._tag_of_req[rid] = tag
                self._step.append((tag, int(query_start_loc[i]), int(query_start_loc[i + 1]), int(num_computed[i])))
        self.capturing = bool(self._step)

    def _new_tag(self, tag: str | None) -> str | None:
        """``tag``, or ``tag-1``, ``tag-2``, ... when another request holds it (e.g. the prompts of one batched
        completion request all carry the same ``vllm_xargs``)."""
        if tag is None:
            return None
        taken = set(self._tag_of_req.values()) | set(self.traces)
        candidate, n = tag, 0
        while candidate in taken:
            n += 1
            candidate = f"{tag}-{n}"
        return candidate

    def end_step(self) -> None:
        """Copy the captured rows of this step into the per-request traces."""
        if not self._step:
            return
        ids, weights = self.ids.cpu(), self.weights.cpu()
        logits = self.logits.cpu() if self.logits is not None else None
        for tag, start, end, first in self._step:
            chunk = (
                first,
                ids[:, start:end].clone(),
                weights[:, start:end].clone(),
                logits[:, start:end].clone() if logits is not None else None,
            )
            self.traces.setdefault(tag, RequestTrace()).chunks.append(chunk)
        self._step = []
        self.capturing = False

    def pop_traces(self, tags: Iterable[str]) -> dict[str, dict[str, torch.Tensor]]:
        """The traces of ``tags`` (``[moe_layers, T, ...]`` tensors), forgotten here."""
        out = {}
        for tag in tags:
            if tag not in self.traces:
                raise MoeguardError(f"no routing captured under {tag!r}; send capture_args({tag!r}) with the request")
            out[tag] = self.traces.pop(tag).tensors()
        return out

    def finish(self, finished: Mapping[str, list[int]]) -> list[Path]:
        """Requests that finished (``{request id: token ids run}``): with ``capture_dir`` set, write their
        traces as ``<tag>.safetensors`` routing traces (for engines in another process, e.g. ``moeguard serve``)."""
        written = []
        for rid, tokens in finished.items():
            tag = self._tag_of_req.pop(rid, None)
            if tag is None or self.capture_dir is None or tag not in self.traces:
                continue
            try:  # a trace that cannot be written must not stop the engine
                tensors = self.traces.pop(tag).tensors()
                written.append(write_trace(self.capture_dir, tag, tensors, self.shape, tokens, request=rid))
            except (MoeguardError, OSError) as err:
                logger.error("moeguard: routing of request %s not written: %s", rid, err)
        return written


_SAFE_TAG = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def request_trace(
    tensors: Mapping[str, torch.Tensor], shape: MoEShape, tokens: Sequence[int] | None = None, meta: dict | None = None
):
    """One request's routing (``[moe_layers, T, ...]`` tensors) as a one-sample
    :class:`~moeguard.routing.RoutingTrace`; ``tokens`` are the ids that were run (prompt + generated)."""
    from moeguard.routing.trace import RoutingTrace

    indices = tensors["indices"].permute(1, 0, 2).long().contiguous()
    n = indices.shape[0]
    ids = torch.tensor(list(tokens)[:n], dtype=torch.long) if tokens is not None else None
    logits = tensors.get("logits")
    return RoutingTrace(
        indices=indices,
        lengths=torch.tensor([n]),
        layers=list(shape.layers),
        num_experts=shape.num_experts,
        weights=tensors["weights"].permute(1, 0, 2).contiguous(),
        logits=logits.permute(1, 0, 2).contiguous() if logits is not None else None,
        input_ids=ids if ids is not None and len(ids) == n else None,
        positions=torch.arange(n),
        meta=dict(meta or {}),
    )


def write_trace(
    folder: Path,
    tag: str,
    tensors: Mapping[str, torch.Tensor],
    shape: MoEShape,
    tokens: Sequence[int] | None = None,
    request: str | None = None,
) -> Path:
    """Atomically write one request's routing as ``<tag>.safetensors`` (a moeguard routing trace)."""
    if not _SAFE_TAG.match(tag) or tag.startswith("."):
        raise MoeguardError(f"capture tag {tag!r} is not a safe file name; use letters, digits, '.', '_' or '-'")
    meta = {
        "backend": "vllm",
        "request": request,
        "tag": tag,
        "model_type": shape.model_type,
        "family": shape.family,
        "top_k": shape.top_k,
    }
    trace = request_trace(tensors, shape, tokens, meta)
    folder.mkdir(parents=True, exist_ok=True)
    return trace.save(folder / f"{tag}.safetensors")
