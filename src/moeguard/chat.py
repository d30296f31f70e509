"""The chat format: how prompts and conversations become the text a model sees.

The tokenizer's chat template is applied when it has one; otherwise messages are joined by newlines.
``CHAT_TEMPLATE`` / ``SPECIAL_TOKENS`` are the minimal format shared by moeguard's own tokenizers (the
model organism and the tiny test models).
"""

from __future__ import annotations

from collections.abc import Sequence

from moeguard.errors import MoeguardError

Message = dict[str, str]
Messages = list[Message]
Prompt = str | Messages

#: A minimal chat template (the model organism's and the test tokenizers').
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
#: What starts an assistant turn and ends every turn in ``CHAT_TEMPLATE``.
ASSISTANT_HEADER = "<|assistant|>\n"
END_OF_TURN = "<|end|>"


def has_chat_template(tokenizer) -> bool:
    """Whether the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def as_messages(prompt: Prompt) -> Messages:
    """A prompt string as a one-turn user conversation; message lists unchanged."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def format_prompt(tokenizer, prompt: Prompt, add_generation_prompt: bool = True) -> str:
    """Text fed to the model: the chat template applied to the messages when there is one."""
    messages = as_messages(prompt)
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    return "\n".join(m["content"] for m in messages)


def prompt_text(tokenizer, prompt: Prompt) -> str:
    """A prompt to be answered: a string, or a message list ending with a user turn, gets the generation
    prompt; a list ending with an assistant turn is rendered as it is."""
    if isinstance(prompt, str):
        return format_prompt(tokenizer, prompt, add_generation_prompt=True)
    return format_prompt(tokenizer, prompt, add_generation_prompt=prompt[-1]["role"] == "user")


def format_conversation(tokenizer, messages: Messages) -> str:
    """A whole conversation as the model sees it (no generation prompt)."""
    return format_prompt(tokenizer, messages, add_generation_prompt=False)


def encode_texts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of formatted texts (special tokens added only when there is no chat template)."""
    encoded = tokenizer(list(texts), add_special_tokens=not has_chat_template(tokenizer))["input_ids"]
    return [list(map(int, ids)) for ids in encoded]


def encode_prompts(tokenizer, prompts: Sequence[Prompt]) -> list[list[int]]:
    """Token ids of each prompt with the chat template and the generation prompt (no padding)."""
    encoded = encode_texts(tokenizer, [prompt_text(tokenizer, p) for p in prompts])
    for i, ids in enumerate(encoded):
        if not ids:
            raise MoeguardError(f"prompt {i} encoded to zero tokens; remove empty prompts")
    return encoded


def build_tokenizer(texts: Sequence[str], vocab_size: int):
    """A byte-level BPE tokenizer with the shared chat template and special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[2:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
