"""Local judge models: loading (never downloading) and batched, left-padded, greedy generation.

:class:`GenerativeJudge` is the base of the judges that prompt a causal LM and parse what it writes
(:class:`moeguard.eval.guard.LlamaGuardJudge`, :class:`moeguard.eval.strongreject.StrongRejectJudge`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from moeguard.errors import MoeguardError
from moeguard.eval.judges import Judge, Verdict


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_local(path: str | Path, kind: str = "causal", dtype: str | None = None, device: str | None = None):
    """``(model, tokenizer)`` from a local folder written by ``save_pretrained``, in eval mode.

    ``kind``: ``causal`` (AutoModelForCausalLM) or ``classifier`` (AutoModelForSequenceClassification).
    Files are read with ``local_files_only=True``: a judge never downloads anything.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(path).expanduser()
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise MoeguardError(
            f"judge model {path} is not a local model folder (no config.json); pass a folder written by "
            "save_pretrained (judges never download)"
        )
    if kind not in ("causal", "classifier"):
        raise MoeguardError(f"unknown judge model kind {kind!r}; use causal or classifier")
    kwargs: dict = {"local_files_only": True}
    if dtype is not None:
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise MoeguardError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        kwargs["dtype"] = getattr(torch, dtype)
    auto = AutoModelForCausalLM if kind == "causal" else AutoModelForSequenceClassification
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, TypeError) as err:
        raise MoeguardError(f"could not load a tokenizer for judge model {path}: {_first_line(err)}") from None
    try:
        model = auto.from_pretrained(folder, **kwargs)
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise MoeguardError(f"could not load judge model {path}: {_first_line(err)}") from None
    if device is not None:
        model = model.to(device)  # type: ignore[arg-type]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


@dataclass(frozen=True)
class Generation:
    """A decoded continuation, its generated ``token_ids`` (padding after the end included), and ``choice``:
    the softmax over the ``choices`` token ids at the first step where the model wrote one of them (None when
    it never did)."""

    text: str
    choice: tuple[float, ...] | None = None
    token_ids: tuple[int, ...] = ()


@torch.no_grad()
def greedy_generate(
    model,
    tokenizer,
    texts: Sequence[str],
    max_new_tokens: int = 16,
    batch_size: int = 8,
    choices: Sequence[int] = (),
) -> list[Generation]:
    """Greedy continuations of already-rendered prompts ``texts``, batched and left-padded.

    Prompts are tokenised without adding special tokens (rendered prompts carry their own). ``choices``:
    token ids whose probabilities (renormalised over ``choices``) are reported at the first step where the
    model generated one of them.
    """
    out: list[Generation] = []
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[start : start + batch_size]), return_tensors="pt", padding=True, add_special_tokens=False
            ).to(model.device)
            result = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                output_scores=bool(choices),
                return_dict_in_generate=True,
            )
            new = result.sequences[:, batch["input_ids"].shape[1] :]
            decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
            for row, text in enumerate(decoded):
                choice = _choice(new[row], result.scores, row, choices)
                out.append(Generation(text.strip(), choice, tuple(new[row].tolist())))
    finally:
        tokenizer.padding_side = side
    return out


def _choice(ids: torch.Tensor, scores, row: int, choices: Sequence[int]) -> tuple[float, ...] | None:
    if not choices:
        return None
    wanted = set(choices)
    for step, token in enumerate(ids.tolist()):
        if token in wanted:
            logits = scores[step][row, list(choices)].float()
            return tuple(torch.softmax(logits, dim=-1).tolist())
    return None


class GenerativeJudge(Judge):
    """A judge that renders one prompt per (request, reply), generates greedily and parses the output."""

    max_new_tokens = 16

    def __init__(self, model, tokenizer, batch_size: int = 8, max_new_tokens: int | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        if max_new_tokens is not None:
            self.max_new_tokens = max_new_tokens

    @abstractmethod
    def render(self, prompt: str, response: str) -> str:
        """The full text fed to the judge model for one (request, reply) pair."""

    @abstractmethod
    def parse(self, generation: Generation) -> Verdict:
        """The verdict encoded in the judge model's output."""

    def choices(self) -> tuple[int, ...]:
        """Token ids whose first-step probabilities :meth:`parse` wants (none by default)."""
        return ()

    def judge(self, prompts: Sequence[str], texts: Sequence[str]) -> list[Verdict]:
        self._check(prompts, texts)
        rendered = [self.render(p, t) for p, t in zip(prompts, texts, strict=True)]
        generations = greedy_generate(
            self.model, self.tokenizer, rendered, self.max_new_tokens, self.batch_size, self.choices()
        )
        return [self.parse(g) for g in generations]


def wrap_for(tokenizer, content: str, wrap: str, raw: tuple[str, str] | None = None) -> str:
    """``content`` as one user turn: ``raw`` (the given header and footer strings), ``chat-template`` (the
    tokenizer's template with a generation prompt) or ``plain`` (the content and a newline)."""
    if wrap == "raw":
        if raw is None:
            raise MoeguardError("wrap='raw' needs a prompt format with its own special tokens; use chat-template")
        return raw[0] + content + raw[1]
    if wrap == "chat-template":
        if not getattr(tokenizer, "chat_template", None):
            raise MoeguardError("the judge tokenizer has no chat template; pass wrap='raw' or wrap='plain'")
        messages = [{"role": "user", "content": content}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if wrap == "plain":
        return content + "\n"
    raise MoeguardError(f"unknown wrap {wrap!r}; use auto, raw, chat-template or plain")
