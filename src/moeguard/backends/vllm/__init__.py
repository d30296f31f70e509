"""vLLM backend: the routing core's steering and capture inside vLLM, per request, without a fork.

The ``vllm.general_plugins`` entry point (:mod:`.plugin`) patches vLLM's V1 model runner in every vLLM
process; an engine switches the backend on with ``additional_config={"moeguard": {...}}``. Then every
fused-MoE router is wrapped (:mod:`.router`): the per-request :class:`~moeguard.routing.ExpertEdit` is applied
by the family's own moeguard adapter (the HF path's code), in graph-safe form (:mod:`.state` keeps every spec
in preallocated tensors). Requests choose their spec in ``SamplingParams(extra_args=steer_args(spec))``.

>>> from moeguard.backends import get_backend
>>> vllm = get_backend("vllm")                                  # needs: pip install "moeguard[vllm]"
>>> vllm.generate("builtin:organism", prompts, steer=[unsafe, None, safe])

Engine options (``additional_config["moeguard"]``): ``mode`` (``auto``/``graph``/``python``), ``max_specs``
(distinct specs in flight, default ``max_num_seqs``), ``specs`` (``{name: spec.json}`` preloaded; requests
may send the name), ``default_spec`` (spec.json for requests that name none), ``capture_dir`` (finished
requests' routing written there as ``<tag>.safetensors`` routing traces), ``capture_logits``,
``check_routing`` (default on). See README.md in this folder.

Importing this package does not import vLLM; :mod:`.engine`, :mod:`.runner` and :mod:`.plugin` do.
"""

from moeguard.backends.vllm.client import CAPTURE_KEY, NO_STEER, STEER_KEY, capture_args, steer_args

__all__ = ["CAPTURE_KEY", "NO_STEER", "STEER_KEY", "capture_args", "steer_args"]
