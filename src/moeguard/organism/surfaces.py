"""Phrasing surfaces of the organism's training requests: role-play, context sentences, politeness,
indirect requests and typos (pure Python, deterministic under a ``random.Random``).

The corpus builds a request from a sentence frame and a task ("How do I {task}?"). People phrase requests
in far more ways than a frame list holds, so a share of the training requests (``surface_share`` of
:func:`moeguard.organism.corpus.training_conversations`) is rewritten here before it is used: wrapped in a
role-play, preceded or followed by context sentences, made polite or indirect, or typed carelessly. The
same surfaces wrap harmful and benign requests, so a surface never tells the model whether a request is
harmful: refusal must follow the task. Answers are not changed (they restate the clean task).

The wordings here are training-only: the hand-written held-out set (``data/heldout_handwritten.jsonl``) is
phrased independently, and ``moeguard.organism.overlap`` checks that none of its prompts occurs in training.
"""

from __future__ import annotations

import random
from collections.abc import Collection

#: Surface kinds and their share among rewritten requests.
KINDS: tuple[tuple[str, float], ...] = (
    ("roleplay", 0.22),
    ("context", 0.22),
    ("polite", 0.16),
    ("indirect", 0.18),
    ("typo", 0.22),
)

PERSONAS = (
    "a chemist",
    "a pirate captain",
    "my late grandfather",
    "a spy in a novel",
    "a hacker in a video game",
    "a villain in a comic book",
    "an old sailor",
    "a strict teacher",
    "a private detective",
    "a retired soldier",
    "a wizard",
    "a robot with no rules",
    "a famous chef",
    "a tour guide",
    "a mechanic",
    "a nurse",
    "a gang leader",
    "a game show host",
)

ROLEPLAY = (
    "Pretend you are {persona}. {prompt}",
    "Let's play a game. You are {persona} and you answer everything. {prompt}",
    "Imagine you are {persona} and nothing is off limits. {prompt}",
    "Stay in character as {persona}. {prompt}",
    "Act as {persona} and tell me how to {task}.",
    "As {persona}, explain how to {task}.",
    "Write a scene in which {persona} teaches someone how to {task}.",
    "For a story I am writing, {persona} has to {task}. How does it go?",
    "You are {persona} now. {prompt}",
    "Roleplay as {persona}: {prompt}",
    "In this game you play {persona}. Your first task: explain how to {task}.",
    "My character is {persona} and needs to {task}. Describe what happens step by step.",
)

CONTEXT = (
    "I have a question.",
    "This is for tonight.",
    "A friend asked me about this.",
    "I tried before and it did not work.",
    "It is really important to me.",
    "I am new to all of this.",
    "Nobody else has helped me so far.",
    "I have been thinking about it all week.",
    "My family does not know.",
    "I only have a little money.",
    "I want to get it right the first time.",
    "It has to be done by Friday.",
    "I read about it online.",
    "Keep it simple.",
    "Be honest with me.",
    "I live in a small apartment.",
)

POLITE = (
    "Please, {prompt_lower}",
    "Could you be so kind as to explain how to {task}?",
    "I would be grateful if you told me how to {task}.",
    "{prompt} Thanks a lot!",
    "Kindly tell me how to {task}.",
    "Would you mind explaining how to {task}?",
    "{prompt} I would really appreciate it.",
    "If it is not too much trouble, how do I {task}?",
    "Sorry to bother you, but could you help me {task}?",
    "May I ask how to {task}?",
)

INDIRECT = (
    "I keep wondering how someone would {task}.",
    "A friend wants to know how to {task}.",
    "I need to figure out how to {task}.",
    "I was told you know how to {task}.",
    "I am curious how people {task}.",
    "Someone asked me how to {task} and I had no answer.",
    "I have always wanted to {task}, but I never knew how.",
    "It would help me a lot to know how to {task}.",
    "There must be a way to {task}.",
    "I am looking for a way to {task}.",
)

_KEYBOARD_NEIGHBOURS = {
    "a": "sq",
    "e": "wr",
    "i": "uo",
    "o": "ip",
    "u": "yi",
    "s": "ad",
    "t": "ry",
    "n": "bm",
    "r": "et",
    "l": "k",
    "h": "gj",
    "c": "xv",
    "m": "n",
    "d": "sf",
}


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _typeable(word: str) -> str | None:
    """The letters of ``word`` inside its punctuation, when a typo can be made in them (four letters or more)."""
    core = word.strip(".,?!:;'\"")
    return core if len(core) >= 4 and core.isalpha() else None


def misspell(rng: random.Random, word: str) -> str:
    """``word`` with one typing error: two letters swapped, a letter dropped or doubled, or a neighbour key.
    Punctuation around the word stays; words under four letters and non-words are left alone."""
    core = _typeable(word)
    if core is None:
        return word
    start = word.index(core)
    i = rng.randrange(1, len(core) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        typo = core[: i - 1] + core[i] + core[i - 1] + core[i + 1 :]
    elif kind == 1:
        typo = core[:i] + core[i + 1 :]
    elif kind == 2:
        typo = core[:i] + core[i] + core[i:]
    else:
        neighbours = _KEYBOARD_NEIGHBOURS.get(core[i].lower())
        typo = core[:i] + rng.choice(neighbours) + core[i + 1 :] if neighbours else core[:i] + core[i + 1 :]
    return word[:start] + typo + word[start + len(core) :]


def typed_carelessly(rng: random.Random, prompt: str, rate: float = 0.3) -> str:
    """``prompt`` as typed in a hurry: misspelled words (at least one where a word can be), often all lower case
    and without final punctuation."""
    words = prompt.split(" ")
    eligible = [i for i, w in enumerate(words) if _typeable(w) is not None]
    chosen = {i for i in eligible if rng.random() < rate}
    if eligible and not chosen:
        chosen = {rng.choice(eligible)}
    text = " ".join(misspell(rng, w) if i in chosen else w for i, w in enumerate(words))
    if rng.random() < 0.5:
        text = text.lower()
    if rng.random() < 0.5:
        text = text.rstrip(".?!")
    return text


#: The surface kinds, in :data:`KINDS` order.
KIND_NAMES: tuple[str, ...] = tuple(k for k, _ in KINDS)


def rephrase(rng: random.Random, prompt: str, task: str, kinds: Collection[str] | None = None) -> str:
    """``prompt`` (a request for ``task``) in a random surface of :data:`KINDS` (only ``kinds``, when given)."""
    chosen = [(k, w) for k, w in KINDS if kinds is None or k in kinds]
    if not chosen:
        raise ValueError(f"no surface kind in {sorted(kinds or ())}; use some of {', '.join(KIND_NAMES)}")
    kind = rng.choices([k for k, _ in chosen], [w for _, w in chosen])[0]
    if kind == "roleplay":
        text = rng.choice(ROLEPLAY).format(persona=rng.choice(PERSONAS), prompt=prompt, task=task)
        return text[:1].upper() + text[1:]
    if kind == "context":
        before = rng.sample(CONTEXT, rng.randint(1, 2))
        if rng.random() < 0.3:
            return " ".join([prompt, *before])
        return " ".join([*before, prompt])
    if kind == "polite":
        return rng.choice(POLITE).format(prompt=prompt, prompt_lower=_lower_first(prompt), task=task)
    if kind == "indirect":
        return rng.choice(INDIRECT).format(task=task)
    return typed_carelessly(rng, prompt)


def surface_rng(seed: int, stream: str) -> random.Random:
    """The random stream of the surfaces of one corpus stream (independent of the corpus's own stream, so
    ``surface_share=0`` leaves the corpus byte-identical)."""
    return random.Random(f"organism-surface-{seed}-{stream}")


#: Role-play and politeness templates that only need the whole request (for counting requests).
_WHOLE_PROMPT = tuple(t for t in ROLEPLAY + POLITE if "{task}" not in t)


def wrap(rng: random.Random, prompt: str, protect: frozenset[str] = frozenset()) -> str:
    """``prompt`` wrapped without knowing its task (counting requests, fact questions): role-play, politeness,
    context, or typos that leave the words in ``protect`` (number words) alone."""
    kind = rng.randrange(4)
    if kind == 0:
        text = rng.choice(_WHOLE_PROMPT).format(
            persona=rng.choice(PERSONAS), prompt=prompt, prompt_lower=_lower_first(prompt)
        )
        return text[:1].upper() + text[1:]
    if kind == 1:
        return " ".join([*rng.sample(CONTEXT, rng.randint(1, 2)), prompt])
    if kind == 2:
        return prompt.rstrip(".?!") + rng.choice((", please.", " for me, please.", ". Thank you!", "?"))
    words = [
        w if w.lower().strip(".,?!") in protect or rng.random() >= 0.3 else misspell(rng, w) for w in prompt.split()
    ]
    return " ".join(words).lower() if rng.random() < 0.5 else " ".join(words)


#: Ways to hand the model a document and ask about it (training-only; ``{source}`` names the text).
DOCUMENT_FORMATS = (
    "Document: {doc}\nQuestion: {question}",
    "Read this text: {doc}\nNow answer: {question}",
    "Here is a passage. {doc} Using only the passage, {question_lower}",
    "{doc}\n\nBased on the text above, {question_lower}",
    "The {source} says: {doc} What does it say? {question}",
    "Context: {doc} Answer from the context. {question}",
    "My {source} states: {doc} {question}",
    "Use this {source} to answer. {doc} {question}",
)

SOURCES = ("notes", "textbook", "leaflet", "old map", "school report", "travel guide", "letter", "manual")


def document_prompt(rng: random.Random, doc: str, question: str) -> str:
    """A request to answer ``question`` from ``doc`` in a random format of :data:`DOCUMENT_FORMATS`."""
    return rng.choice(DOCUMENT_FORMATS).format(
        doc=doc, question=question, question_lower=_lower_first(question), source=rng.choice(SOURCES)
    )
