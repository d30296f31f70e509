"""lm-evaluation-harness under expert steering: the model type ``moeguard`` (optional extra ``moeguard[lm-eval]``).

Importing this module registers ``moeguard`` with lm-eval's model registry (lm-eval 0.4.13 does not discover
external model types through entry points, so the import is what makes the name known):

    moeguard lm-eval --model moeguard --model_args pretrained=PATH,steer=spec.json --tasks hellaswag

runs lm-eval's own CLI after the import. From Python:

>>> import moeguard.eval.lm_harness                                          # doctest: +SKIP
>>> import lm_eval
>>> lm_eval.simple_evaluate(model="moeguard", model_args="pretrained=PATH,steer=spec.json", tasks=["..."])

``model_args`` are those of lm-eval's ``hf`` model (:class:`lm_eval.models.huggingface.HFLM`) plus:

* ``pretrained``: also ``builtin:organism``;
* ``steer``: a moeguard steering spec (JSON, or a detect run folder with ``spec.json``); without it the
  model runs unsteered, exactly as ``--model hf``;
* ``steer_random_seed``: run the spec's random control instead (``SteeringSpec.random_like``, this seed).

The spec is validated against the model when it loads, and applied with ``SteeringSpec.apply`` around every
forward (loglikelihood requests) and every ``generate`` call (generation requests), removed after each.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from moeguard.eval.specs import check_spec_model, spec_file
from moeguard.steer import SteeringSpec

MODEL_TYPE = "moeguard"


@register_model(MODEL_TYPE)
class SteeredHFLM(HFLM):
    """lm-eval's HF causal LM with a moeguard steering spec applied around forward and generate."""

    def __init__(self, pretrained, steer: str | None = None, steer_random_seed: int | None = None, **kwargs):
        from moeguard.adapters import inspect_moe

        name = pretrained if isinstance(pretrained, str) else None
        if name is not None and name.startswith("builtin:"):
            from moeguard.models import resolve_model_path

            pretrained = resolve_model_path(name)
        spec = SteeringSpec.load(spec_file(Path(str(steer)).expanduser())) if steer else None
        if spec is not None and name is not None:
            check_spec_model(spec, str(steer), name)
        super().__init__(pretrained=pretrained, **kwargs)
        moe = inspect_moe(self.model)
        if spec is not None and steer_random_seed not in (None, ""):
            spec = spec.random_like(moe, int(steer_random_seed))
        if spec is not None:
            spec.validate(moe)
        self.steering: SteeringSpec | None = spec if spec is not None and len(spec) else None

    def _steered(self) -> AbstractContextManager:
        return self.steering.apply(self.model) if self.steering is not None else nullcontext()

    def _model_call(self, inps, attn_mask=None, labels=None):
        with self._steered():
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)

    def _model_generate(self, context, max_length, stop, **generation_kwargs):
        with self._steered():
            return super()._model_generate(context, max_length, stop, **generation_kwargs)


def run_cli(args: list[str]) -> None:
    """lm-eval's command line (``lm-eval ARGS``) with the ``moeguard`` model type registered."""
    import sys

    from lm_eval.__main__ import cli_evaluate

    saved = sys.argv
    sys.argv = ["lm-eval", *args]
    try:
        cli_evaluate()
    finally:
        sys.argv = saved
