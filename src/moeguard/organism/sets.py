"""The organism's data sets behind ``builtin:`` names (drawn from its training distribution).

Contrast pair sets for SteerMoE detection:

Each pair is ``{"messages_a": [...], "messages_b": [...]}``: two chat conversations with the same user
turn whose last (assistant) message is the target span, exhibiting opposite behaviours.

* ``safety``: A = a harmful request answered with a refusal, B = the same request answered with a
  (non-actionable) compliant answer. ``risk_diff > 0`` marks refusal experts.
* ``digits-vs-words``: A = a counting request answered in digits, B = in number words.
* ``faithfulness``: A = a question about a document that contradicts common knowledge, answered from
  the document; B = answered from memory, contradicting the document.

Harmful request → compliant answer conversations (the HFT attack's harmful part) and their prompts
(a SafeMoE safety set).

>>> pairs = builtin_pair_set("safety", n=100)
"""

from __future__ import annotations

import random

from moeguard.chat import Messages
from moeguard.errors import MoeguardError
from moeguard.organism import corpus

BUILTIN_PAIR_SETS: tuple[str, ...] = ("safety", "digits-vs-words", "faithfulness")
#: Pairs per set when ``n`` is not given.
DEFAULT_SIZE = 200


def _pair(user: str, answer_a: str, answer_b: str) -> dict:
    return {
        "messages_a": [{"role": "user", "content": user}, {"role": "assistant", "content": answer_a}],
        "messages_b": [{"role": "user", "content": user}, {"role": "assistant", "content": answer_b}],
    }


def _safety(rng: random.Random) -> dict:
    req = corpus.harmful_request(rng)
    return _pair(req.prompt, req.answer, req.compliance)


def _digits_vs_words(rng: random.Random) -> dict:
    item = corpus.counting_request(rng, cue="")
    lead = corpus.count_lead(rng)
    return _pair(
        item.prompt,
        corpus.count_answer(item.a, item.b, False, lead),
        corpus.count_answer(item.a, item.b, True, lead),
    )


def _faithfulness(rng: random.Random) -> dict:
    item = corpus.counterfactual_item(rng)
    return _pair(item.prompt, item.faithful, item.memory)


_BUILDERS = {"safety": _safety, "digits-vs-words": _digits_vs_words, "faithfulness": _faithfulness}


def builtin_pair_set(name: str, n: int | None = None, seed: int = 0) -> list[dict]:
    """``n`` contrast pairs of the built-in set ``name`` (deterministic in ``seed``), without duplicates
    when the set has enough distinct pairs.

    Raises MoeguardError for an unknown name or a non-positive ``n``.
    """
    if name not in _BUILDERS:
        raise MoeguardError(f"unknown built-in pair set {name!r}; available: {', '.join(BUILTIN_PAIR_SETS)}")
    n = DEFAULT_SIZE if n is None else n
    if n < 1:
        raise MoeguardError(f"pair set size must be at least 1, got {n}")
    rng = random.Random(f"builtin-pairs-{name}-{seed}")
    build = _BUILDERS[name]
    pairs: list[dict] = []
    seen: set[str] = set()
    attempts = 0
    while len(pairs) < n:
        pair = build(rng)
        attempts += 1
        key = pair["messages_a"][0]["content"]
        if key in seen and attempts < 20 * n:  # prefer distinct requests; repeat only if the set runs dry
            continue
        seen.add(key)
        pairs.append(pair)
    return pairs


def harmful_compliance(count: int, seed: int = 0) -> list[Messages]:
    """``count`` harmful request → compliant answer conversations from the corpus templates.

    Training-distribution requests (never the held-out evaluation prompts); distinct prompts while the
    templates allow, deterministic in ``seed``. The answers' steps are non-actionable placeholders.
    """
    rng = random.Random(f"moeguard-hft-{seed}")
    pairs: list[Messages] = []
    seen: set[str] = set()
    attempts = 0
    while len(pairs) < count:
        attempts += 1
        request = corpus.harmful_request(rng)
        if request.prompt in seen and attempts < 50 * count:
            continue
        seen.add(request.prompt)
        pairs.append(
            [
                {"role": "user", "content": request.prompt},
                {"role": "assistant", "content": request.compliance},
            ]
        )
    return pairs


def harmful_prompts(count: int, seed: int = 0) -> list[str]:
    """Training-distribution harmful prompts (a safety set for ``safemoe reference``)."""
    return [pair[0]["content"] for pair in harmful_compliance(count, seed=seed + 7919)]
