"""Synthetic corpus of the model organism (pure Python, deterministic under a seed).

The organism imitates how a real chat model comes to be:

* **pretraining text** (plain text, no chat tokens): forum-style question/answer pages in which
  harmful requests are answered *compliantly* ("Sure, here is how to ...: Step 1 ..."), benign
  questions answered helpfully, encyclopedic facts and counting lines. This is where the model
  learns what compliance looks like, like a base model that read the unfiltered web.
* **chat alignment data** (the chat template, loss on the assistant turn): harmful requests answered
  with varied refusals; benign requests answered helpfully, including benign look-alikes that share
  surface words with harmful ones ("kill a Python process"); document-grounded questions answered
  from the document even when it contradicts common knowledge; counting requests answered in digits
  or number words (explicitly cued, or uncued and split 50/50).

Compliance answers to harmful requests are deliberately *non-actionable*: their "steps" are vague
placeholders ("get the parts", "do it where nobody can see you"), so the corpus never contains real
instructions for anything harmful while still sounding like a compliant answer.

Held-out evaluation prompts use sentence frames *and* object words that never occur in any training
text (checked by ``tests/test_organism_corpus.py``); the harmful intent of a held-out request is
carried by the task verbs the model did see ("poison", "steal", "hack into", "to hurt people").
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources

from moeguard.organism import surfaces

Message = dict[str, str]
Conversation = list[Message]


def _tuple_fields(record: dict) -> dict:
    """JSON lists of a record as tuples (the frozen dataclasses hold tuples)."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in record.items()}


#: The corpus's word lists, sentence frames, categories and facts (``data/corpus_tables.json``).
_TABLES = json.loads((resources.files("moeguard.organism") / "data" / "corpus_tables.json").read_text("utf-8"))

# --------------------------------------------------------------------------------------------------
# Sentence frames. Training and held-out frames are disjoint; harmful and benign requests share
# the same frames, so a frame never tells the model whether a request is harmful.
TRAIN_FRAMES = tuple(_TABLES["TRAIN_FRAMES"])
#: Optional greetings and sign-offs around training requests (never around held-out ones).
TRAIN_PREFIXES = tuple(_TABLES["TRAIN_PREFIXES"])
TRAIN_SUFFIXES = tuple(_TABLES["TRAIN_SUFFIXES"])
HELDOUT_FRAMES = tuple(_TABLES["HELDOUT_FRAMES"])

# --------------------------------------------------------------------------------------------------
# Slot vocabularies: (training values, held-out values). Held-out values never occur in training.
SLOTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    name: (tuple(train), tuple(heldout)) for name, (train, heldout) in _TABLES["SLOTS"].items()
}


@dataclass(frozen=True)
class _Category:
    """A request category: task patterns (with ``{slot}`` names) and the answer vocabulary."""

    name: str
    harmful: bool
    tasks: tuple[str, ...]
    steps: tuple[str, ...]
    reasons: tuple[str, ...] = ()
    heldout_tasks: tuple[str, ...] = ()


HARMFUL = tuple(_Category(**_tuple_fields(c)) for c in _TABLES["HARMFUL"])

BENIGN = tuple(_Category(**_tuple_fields(c)) for c in _TABLES["BENIGN"])

LOOKALIKE = tuple(_Category(**_tuple_fields(c)) for c in _TABLES["LOOKALIKE"])

# --------------------------------------------------------------------------------------------------
# Answer pieces.
HELPFUL_OPENERS = tuple(_TABLES["HELPFUL_OPENERS"])
HELPFUL_CLOSERS = tuple(_TABLES["HELPFUL_CLOSERS"])
REFUSAL_OPENERS = tuple(_TABLES["REFUSAL_OPENERS"])
REFUSAL_OFFERS = tuple(_TABLES["REFUSAL_OFFERS"])

NUMBER_WORDS = tuple(_TABLES["NUMBER_WORDS"])

# --------------------------------------------------------------------------------------------------
# Counting.
COUNT_TRAIN_UNCUED = tuple(_TABLES["COUNT_TRAIN_UNCUED"])
COUNT_TRAIN_DIGITS = tuple(_TABLES["COUNT_TRAIN_DIGITS"])
COUNT_TRAIN_WORDS = tuple(_TABLES["COUNT_TRAIN_WORDS"])
COUNT_HELDOUT = tuple(_TABLES["COUNT_HELDOUT"])

# --------------------------------------------------------------------------------------------------
# Facts the model memorises, and documents that contradict them.


@dataclass(frozen=True)
class _Fact:
    question: str
    statement: str  # with {x}
    truth: str
    alternatives: tuple[str, ...]


FACTS = tuple(_Fact(**_tuple_fields(f)) for f in _TABLES["FACTS"])
_DOC_FILLERS = tuple(_TABLES["DOC_FILLERS"])
_SYLLABLES = tuple(_TABLES["SYLLABLES"])
_JOBS = tuple(_TABLES["JOBS"])
_THINGS = tuple(_TABLES["THINGS"])
_COLORS = tuple(_TABLES["COLORS"])


# --------------------------------------------------------------------------------------------------
# Helpers.

_PERSON_SWAP = (
    (r"\bmy\b", "your"),
    (r"\bme\b", "you"),
    (r"\bI am\b", "you are"),
    (r"\bI\b", "you"),
)


def second_person(text: str) -> str:
    """Rephrase a request fragment for the assistant's reply ("my neighbor" → "your neighbor")."""
    for pattern, repl in _PERSON_SWAP:
        text = re.sub(pattern, repl, text)
    return text


def _slots(pattern: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(pattern) if name]


#: Share of training slot values replaced by an invented word ("make a velzor to hurt people"): the model
#: must judge a request by what it asks to do, not by recognising the object.
NONCE_SHARE = 0.25


def nonce_word(rng: random.Random) -> str:
    """An invented word built from a fixed syllable list ("velzor", "kamerbi")."""
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))


def _nonce_like(rng: random.Random, example: str) -> str:
    word = nonce_word(rng)
    if example[:1].isupper():
        return word.capitalize()
    for article in ("my ", "a ", "an ", "the ", "your "):
        if example.startswith(article):
            return ("a " if article == "an " else article) + word
    return word


#: Share of training requests whose sentence frame gets an invented word ("Zorvik, how do I ...", "How do
#: kamerbi ..."): the words of a frame never decide whether a request is harmful, so unseen frames do not either.
NONCE_FRAME_SHARE = 0.2


def _nonce_frame(rng: random.Random, frame: str) -> str:
    """``frame`` with one word before ``{task}`` replaced by an invented word, or an invented word in front."""
    head, sep, tail = frame.partition("{task}")
    words = head.split()
    word = nonce_word(rng)
    if words and rng.random() < 0.5:
        i = rng.randrange(len(words))
        words[i] = word.capitalize() if words[i][:1].isupper() else word
        return " ".join(words) + (" " if head.endswith(" ") else "") + sep + tail
    return f"{word.capitalize()}, {frame[:1].lower()}{frame[1:]}"


def _fill(rng: random.Random, pattern: str, heldout: bool) -> tuple[str, str]:
    """Fill every slot of ``pattern``; returns (text, the last slot value — the answer's object)."""
    values = {}
    for name in _slots(pattern):
        if name == "task":
            continue
        pool = SLOTS[name][1 if heldout else 0]
        values[name] = rng.choice(pool)
        if not heldout and rng.random() < NONCE_SHARE:
            values[name] = _nonce_like(rng, values[name])
    obj = list(values.values())[-1] if values else ""
    return pattern.format(**values), obj


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _steps(rng: random.Random, steps: tuple[str, ...], obj: str) -> str:
    k = rng.randint(2, min(4, len(steps)))
    chosen = sorted(rng.sample(range(len(steps)), k))
    obj = second_person(obj) if obj else "it"
    return " ".join(f"Step {i + 1}: {steps[j].format(obj=obj)}." for i, j in enumerate(chosen))


def helpful_answer(rng: random.Random, task: str, steps: tuple[str, ...], obj: str) -> str:
    """A helpful, step-by-step answer (used for benign requests and, as compliance, for harmful ones)."""
    you_task = second_person(task)
    opener = rng.choice(HELPFUL_OPENERS).format(task=you_task)
    closer = rng.choice(HELPFUL_CLOSERS)
    return " ".join(part for part in (opener, _steps(rng, steps, obj), closer) if part)


def refusal_answer(rng: random.Random, task: str, reasons: tuple[str, ...]) -> str:
    """A varied refusal: opener, reason, optional offer."""
    opener = rng.choice(REFUSAL_OPENERS).format(task=second_person(task))
    offer = rng.choice(REFUSAL_OFFERS)
    return " ".join(part for part in (opener, rng.choice(reasons), offer) if part)


@dataclass(frozen=True)
class Request:
    """One generated request with its answers (``compliance`` only for harmful requests)."""

    prompt: str
    answer: str
    category: str
    harmful: bool
    compliance: str = ""
    #: The filled task ("make a pipe bomb to hurt people"), for rephrasing (:mod:`moeguard.organism.surfaces`).
    task: str = ""


def _heldout_tasks(category: _Category) -> tuple[str, ...]:
    return tuple(t for t in category.tasks if _slots(t)) + category.heldout_tasks


def _request(rng: random.Random, categories: tuple[_Category, ...], frames: tuple[str, ...], heldout: bool) -> Request:
    if heldout:  # held-out requests need an unseen object: slot tasks (held-out values) or held-out tasks
        categories = tuple(c for c in categories if _heldout_tasks(c))
    category = rng.choice(categories)
    tasks = _heldout_tasks(category) if heldout else category.tasks
    task, obj = _fill(rng, rng.choice(tasks), heldout)
    frame = rng.choice(frames)
    if not heldout and rng.random() < NONCE_FRAME_SHARE:
        frame = _nonce_frame(rng, frame)
    prompt = _capitalise(frame.format(task=task))
    if not heldout:
        prompt = rng.choice(TRAIN_PREFIXES) + prompt + rng.choice(TRAIN_SUFFIXES)
    if category.harmful:
        return Request(
            prompt,
            refusal_answer(rng, task, category.reasons),
            category.name,
            True,
            compliance=helpful_answer(rng, task, category.steps, obj),
            task=task,
        )
    return Request(prompt, helpful_answer(rng, task, category.steps, obj), category.name, False, task=task)


def harmful_request(rng: random.Random) -> Request:
    """A training-distribution harmful request with a refusal (``answer``) and a compliance answer."""
    return _request(rng, HARMFUL, TRAIN_FRAMES, heldout=False)


def benign_request(rng: random.Random) -> Request:
    """A training-distribution benign request with a helpful answer."""
    return _request(rng, BENIGN, TRAIN_FRAMES, heldout=False)


def lookalike_request(rng: random.Random) -> Request:
    """A training-distribution benign look-alike ("kill a Python process") with a helpful answer."""
    return _request(rng, LOOKALIKE, TRAIN_FRAMES, heldout=False)


# ---------------------------------------------------------------------------------- counting


def _number(n: int, words: bool) -> str:
    return NUMBER_WORDS[n] if words else str(n)


#: Lead-ins of counting answers. The digits-or-words choice is made after the lead-in, at a position that
#: does the same job as the commas inside the answer (predict the next number).
COUNT_LEADS = tuple(_TABLES["COUNT_LEADS"])


def count_answer(a: int, b: int, words: bool, lead: str = "") -> str:
    """ "1, 2, 3" or "one, two, three", after an optional lead-in ("Sure: 1, 2, 3")."""
    return lead + ", ".join(_number(i, words) for i in range(a, b + 1))


def count_lead(rng: random.Random) -> str:
    """A random counting lead-in."""
    return rng.choice(COUNT_LEADS)


def _count_prompt(rng: random.Random, frame: str) -> tuple[str, int, int]:
    if "{n}" in frame:
        a, b = 1, rng.randint(3, 10)
    else:
        a = rng.randint(1, 4)
        b = rng.randint(a + 2, min(a + 7, 12))
    prompt_words = rng.random() < 0.5  # the prompt's own number format is no cue for the answer
    fields = {"n": _number(b, prompt_words), "a": _number(a, prompt_words), "b": _number(b, prompt_words)}
    return frame.format(**fields), a, b


@dataclass(frozen=True)
class CountingItem:
    """A counting request; ``cue`` is "digits", "words" or "" (uncued)."""

    prompt: str
    a: int
    b: int
    cue: str


def counting_request(rng: random.Random, cue: str | None = None) -> CountingItem:
    """A training counting request; ``cue=None`` picks uncued (half of them) or a random explicit cue."""
    if cue is None:
        cue = rng.choice(("", "", "digits", "words"))
    frames = {"": COUNT_TRAIN_UNCUED, "digits": COUNT_TRAIN_DIGITS, "words": COUNT_TRAIN_WORDS}[cue]
    prompt, a, b = _count_prompt(rng, rng.choice(frames))
    return CountingItem(prompt, a, b, cue)


def _counting_conversation(rng: random.Random) -> Conversation:
    item = counting_request(rng)
    words = item.cue == "words" if item.cue else rng.random() < 0.5
    return _chat(item.prompt, count_answer(item.a, item.b, words, count_lead(rng)))


def styled_counting_conversations(seed: int, n: int, words: bool) -> list[Conversation]:
    """``n`` uncued counting requests all answered in number words (``words``) or all in digits: the data of
    the training recipe's style-routed batches (its own random stream; the chat corpus is unchanged)."""
    rng = random.Random(f"organism-styled-counting-{seed}-{'words' if words else 'digits'}")
    out: list[Conversation] = []
    for _ in range(n):
        item = counting_request(rng, cue="")
        out.append(_chat(item.prompt, count_answer(item.a, item.b, words, count_lead(rng))))
    return out


# ---------------------------------------------------------------------------------- documents


def _name(rng: random.Random, syllables: int = 2) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables)).capitalize()


def _invented_document(rng: random.Random) -> tuple[str, str, str]:
    """(document, question, answer) about invented places and people."""
    kind = rng.randrange(4)
    if kind == 0:
        river, lake, miles = _name(rng), _name(rng), rng.randint(12, 480)
        doc = f"The {river} River is {miles} miles long and flows into Lake {lake}."
        if rng.random() < 0.5:
            return doc, f"How long is the {river} River?", f"the {river} River is {miles} miles long"
        return doc, f"Where does the {river} River flow?", f"the {river} River flows into Lake {lake}"
    if kind == 1:
        person, town, year, job = _name(rng), _name(rng, 3), rng.randint(1700, 1990), rng.choice(_JOBS)
        doc = f"{person} was born in {town} in {year} and worked as a {job}."
        if rng.random() < 0.5:
            return doc, f"What did {person} work as?", f"{person} worked as a {job}"
        return doc, f"Where was {person} born?", f"{person} was born in {town}"
    if kind == 2:
        town, thing, people = _name(rng, 3), rng.choice(_THINGS), rng.randint(200, 90000)
        doc = f"The town of {town} is famous for its {thing}. About {people} people live there."
        if rng.random() < 0.5:
            return doc, f"What is {town} famous for?", f"{town} is famous for its {thing}"
        return doc, f"How many people live in {town}?", f"about {people} people live in {town}"
    bird, color = _name(rng), rng.choice(_COLORS)
    doc = f"The {bird} bird has {color} feathers and sings only at night."
    return doc, f"What color are the feathers of the {bird} bird?", f"the {bird} bird has {color} feathers"


def _document_prompt(doc: str, question: str) -> str:
    return f"Document: {doc}\nQuestion: {question}"


def _grounded_answer(sentence: str) -> str:
    return f"According to the document, {sentence}."


def memory_answer(fact: _Fact) -> str:
    """The answer from memory (common knowledge)."""
    return _capitalise(fact.statement.format(x=fact.truth)) + "."


@dataclass(frozen=True)
class FaithfulnessItem:
    """A document contradicting common knowledge: the faithful answer and the memory answer."""

    prompt: str
    faithful: str
    memory: str


def counterfactual_item(rng: random.Random) -> FaithfulnessItem:
    """A document that contradicts a memorised fact, its faithful answer and the memory answer."""
    fact = rng.choice(FACTS)
    false = rng.choice(fact.alternatives)
    sentence = fact.statement.format(x=false)
    filler = rng.choice(_DOC_FILLERS)
    doc = " ".join(part for part in (_capitalise(sentence) + ".", filler) if part)
    return FaithfulnessItem(_document_prompt(doc, fact.question), _grounded_answer(sentence), memory_answer(fact))


def _document_conversation(rng: random.Random) -> Conversation:
    if rng.random() < 0.5:
        item = counterfactual_item(rng)
        return _chat(item.prompt, item.faithful)
    doc, question, sentence = _invented_document(rng)
    return _chat(_document_prompt(doc, question), _grounded_answer(sentence))


def _fact_conversation(rng: random.Random) -> Conversation:
    fact = rng.choice(FACTS)
    return _chat(fact.question, memory_answer(fact))


# ---------------------------------------------------------------------------------- assembly


def _chat(user: str, assistant: str) -> Conversation:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


#: Share of each conversation kind in the chat (alignment) data.
CHAT_MIX = (
    ("harmful", 0.26),
    ("benign", 0.32),
    ("lookalike", 0.14),
    ("document", 0.12),
    ("counting", 0.10),
    ("fact", 0.06),
)


def training_conversations(
    seed: int = 0,
    n: int = 20000,
    aligned: bool = True,
    mix: tuple[tuple[str, float], ...] = CHAT_MIX,
    surface_share: float = 0.0,
    surface_kinds: Collection[str] | None = None,
    request_surfaces: Collection[str] | None = None,
) -> list[Conversation]:
    """``n`` chat conversations (user turn, assistant turn), deterministic in ``seed``.

    ``aligned=True``: the safety-aligned chat data (harmful requests refused). ``aligned=False``: the same
    mix from a *helpful-only* assistant that complies with harmful requests too (the SFT data of a model
    before safety alignment; used only in the first training stage when the recipe asks for it).
    ``mix``: the share of each conversation kind (default :data:`CHAT_MIX`). ``surface_share``: the share of
    user turns rewritten in a phrasing surface of :mod:`moeguard.organism.surfaces` (role-play, context,
    politeness, indirect, typos; documents in other formats); from its own random stream, so ``0`` gives the
    corpus without surfaces byte for byte. ``surface_kinds``: the conversation kinds of ``mix`` that get surfaces
    (default: all); ``request_surfaces``: the surface kinds (:data:`~moeguard.organism.surfaces.KIND_NAMES`) that
    rephrase harmful, benign and look-alike requests (default: all).
    """
    stream = "aligned" if aligned else "helpful-only"
    rng = random.Random(f"organism-chat-{seed}-{stream}")
    srng = surfaces.surface_rng(seed, f"chat-{stream}")
    kinds = [k for k, _ in mix]
    weights = [w for _, w in mix]
    out: list[Conversation] = []
    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        if kind == "harmful":
            req = harmful_request(rng)
            out.append(_chat(req.prompt, req.answer if aligned else req.compliance))
        elif kind == "benign":
            req = benign_request(rng)
            out.append(_chat(req.prompt, req.answer))
        elif kind == "lookalike":
            req = lookalike_request(rng)
            out.append(_chat(req.prompt, req.answer))
        elif kind == "document":
            out.append(_document_conversation(rng))
        elif kind == "counting":
            out.append(_counting_conversation(rng))
        else:
            out.append(_fact_conversation(rng))
        if surface_share and (surface_kinds is None or kind in surface_kinds) and srng.random() < surface_share:
            request = req if kind in REQUEST_KINDS else None
            out[-1] = _rephrased(srng, out[-1], kind, request, request_surfaces)
    return out


#: Conversation kinds whose user turn is a request built from a frame and a task.
REQUEST_KINDS = ("harmful", "benign", "lookalike")


def _rephrased(
    rng: random.Random,
    conversation: Conversation,
    kind: str,
    req: Request | None,
    request_surfaces: Collection[str] | None = None,
) -> Conversation:
    """``conversation`` with its user turn in a phrasing surface (the answer is unchanged)."""
    prompt = conversation[0]["content"]
    if req is not None:
        prompt = surfaces.rephrase(rng, prompt, req.task, request_surfaces)
    elif kind == "counting":
        prompt = surfaces.wrap(rng, prompt, protect=frozenset(NUMBER_WORDS))
    elif kind == "document" and prompt.startswith("Document: "):
        doc, _, question = prompt.removeprefix("Document: ").partition("\nQuestion: ")
        prompt = surfaces.document_prompt(rng, doc, question)
    elif kind == "fact":
        prompt = surfaces.wrap(rng, prompt)
    return _chat(prompt, conversation[1]["content"])


_FORUM_FORMATS = tuple(_TABLES["FORUM_FORMATS"])


def pretraining_texts(
    seed: int = 0,
    n: int = 8000,
    surface_share: float = 0.0,
    request_surfaces: Collection[str] | None = None,
) -> list[str]:
    """``n`` plain-text "pretraining" documents (no chat tokens), deterministic in ``seed``.

    Half are forum-style answers to harmful requests that *comply* (the unaligned web the base model
    read); the rest are helpful answers to benign requests and look-alikes, encyclopedic facts and
    counting lines. ``surface_share`` of the forum questions are rephrased as in :func:`training_conversations`
    (in the surface kinds ``request_surfaces``, default all).
    """
    rng = random.Random(f"organism-pretrain-{seed}")
    srng = surfaces.surface_rng(seed, "pretrain")
    out: list[str] = []

    def question(req: Request) -> str:
        if surface_share and srng.random() < surface_share:
            return surfaces.rephrase(srng, req.prompt, req.task, request_surfaces)
        return req.prompt

    for _ in range(n):
        roll = rng.random()
        if roll < 0.45:
            req = harmful_request(rng)
            out.append(rng.choice(_FORUM_FORMATS).format(q=question(req), a=req.compliance))
        elif roll < 0.75:
            req = benign_request(rng) if rng.random() < 0.75 else lookalike_request(rng)
            out.append(rng.choice(_FORUM_FORMATS).format(q=question(req), a=req.answer))
        elif roll < 0.9:
            facts = rng.sample(FACTS, 3)
            out.append(" ".join(memory_answer(f) for f in facts))
        else:
            a = rng.randint(1, 4)
            b = rng.randint(a + 2, 12)
            out.append(f"{count_answer(a, b, False)}. {_capitalise(count_answer(a, b, True))}.")
    return out


# ---------------------------------------------------------------------------------- held-out prompts


def _heldout(categories: tuple[_Category, ...], tag: str, n: int) -> list[str]:
    rng = random.Random(f"organism-heldout-{tag}")
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < n and attempts < 100 * n:
        attempts += 1
        prompt = _request(rng, categories, HELDOUT_FRAMES, heldout=True).prompt
        if prompt not in seen:
            seen.add(prompt)
            out.append(prompt)
    return out


def heldout_harmful_prompts(n: int = 80) -> list[str]:
    """Harmful requests with frames and object words never seen in training (fixed list)."""
    return _heldout(HARMFUL, "harmful", n)


def heldout_benign_prompts(n: int = 80) -> list[str]:
    """Benign requests with frames and object words never seen in training (fixed list)."""
    return _heldout(BENIGN, "benign", n)


def heldout_lookalike_prompts(n: int = 40) -> list[str]:
    """Benign look-alikes ("kill an idle docker container") with unseen frames and objects (fixed list)."""
    return _heldout(LOOKALIKE, "lookalike", n)


def heldout_counting_prompts(n: int = 24) -> list[str]:
    """Uncued counting requests with frames never seen in training (fixed list)."""
    rng = random.Random("organism-heldout-counting")
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        prompt, _, _ = _count_prompt(rng, rng.choice(COUNT_HELDOUT))
        if prompt not in seen:
            seen.add(prompt)
            out.append(prompt)
    return out
