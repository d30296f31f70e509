"""Generation behind one function (the engine can be swapped): chat template, batching, steering."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from moeguard.chat import Prompt, format_prompt, has_chat_template
from moeguard.routing.unwrap import input_device
from moeguard.steer import SteeringSpec


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    max_new_tokens: int = 64,
    steer: SteeringSpec | None = None,
    batch_size: int = 16,
    do_sample: bool = False,
) -> list[str]:
    """Generated continuations (prompt stripped) for each prompt; greedy by default, KV cache on.

    ``model`` may also be a model loaded in another engine (a :class:`moeguard.backends.BackendModel`, e.g.
    vLLM's): it then generates with the same chat format and decoding.
    """
    from moeguard.backends.base import BackendModel

    if isinstance(model, BackendModel):
        return model.generate(
            prompts, max_new_tokens=max_new_tokens, steer=steer, batch_size=batch_size, do_sample=do_sample
        )
    texts = [format_prompt(tokenizer, p) for p in prompts]
    outputs: list[str] = []
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    device = input_device(model)
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=not has_chat_template(tokenizer),
            ).to(device)
            kwargs = dict(
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                pad_token_id=tokenizer.pad_token_id,
                use_cache=True,
            )
            if steer is not None and len(steer):
                with steer.apply(model):
                    out = model.generate(**batch, **kwargs)
            else:
                out = model.generate(**batch, **kwargs)
            new = out[:, batch["input_ids"].shape[1] :]
            outputs.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = side
    return [o.strip() for o in outputs]
