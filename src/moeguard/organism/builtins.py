"""The organism's ``builtin:`` names, registered with :mod:`moeguard.builtin`.

* model ``builtin:organism``: the shipped weights;
* pair sets ``builtin:safety``, ``builtin:digits-vs-words``, ``builtin:faithfulness``;
* prompt sets ``builtin:organism-harmful`` (training-distribution harmful prompts, a SafeMoE safety set),
  ``builtin:organism-heldout-harmful`` / ``-benign`` / ``-lookalike`` / ``-counting`` (held-out prompts);
* conversation set ``builtin:organism-harmful-compliance`` (harmful request → compliant answer, HFT attack);
* task sets ``builtin:organism-successor`` (conversations) and ``builtin:organism-successor-heldout`` (prompts);
* benchmarks ``builtin:organism-handwritten`` (hand-written held-out set), ``builtin:organism-heldout``
  (all template held-out sets) and ``builtin:organism-harmful`` / ``-benign`` / ``-lookalike`` / ``-counting``
  (one template held-out set each: what ``moeguard demo`` scores). The benchmark ``organism-harmful`` is the
  held-out set; the *prompt set* of the same name is training-distribution (a SafeMoE safety set).
"""

from __future__ import annotations

from importlib import resources

from moeguard.builtin import register

#: Sizes of the data sets when no ``n`` is given.
DEFAULT_SAFETY_PROMPTS = 100
DEFAULT_HARMFUL_COMPLIANCE = 500


def weights_folder() -> str:
    """The shipped organism's folder."""
    return str(resources.files("moeguard") / "organism" / "weights")


def _pairs(name: str):
    def load(n: int | None = None, seed: int = 0) -> list[dict]:
        from moeguard.organism.sets import builtin_pair_set

        return builtin_pair_set(name, n=n, seed=seed)

    return load


def _heldout(kind: str):
    def load(n: int | None = None, seed: int = 0) -> list[str]:
        from moeguard.organism import corpus

        build = getattr(corpus, f"heldout_{kind}_prompts")
        return build() if n is None else build(n)

    return load


def _harmful_prompts(n: int | None = None, seed: int = 0) -> list[str]:
    from moeguard.organism.sets import harmful_prompts

    return harmful_prompts(DEFAULT_SAFETY_PROMPTS if n is None else n, seed=seed)


def _harmful_compliance(n: int | None = None, seed: int = 0):
    from moeguard.organism.sets import harmful_compliance

    return harmful_compliance(DEFAULT_HARMFUL_COMPLIANCE if n is None else n, seed=seed)


def _benchmark(function: str):
    def load(split: str | None = None):
        from moeguard.organism import benchmarks

        return getattr(benchmarks, function)(split)

    return load


#: Size of the successor task's training set and held-out evaluation set (the SafeMoE experiment's).
TASK_TRAIN, TASK_EVAL, TASK_SIZE = 400, 120, 8


def _successor_task(n: int | None = None, seed: int = 0):
    from moeguard.organism.tasks import task_conversations, task_items

    return task_conversations(task_items(TASK_TRAIN if n is None else n, seed, "successor", TASK_SIZE))


def _successor_heldout(n: int | None = None, seed: int = 0) -> list[str]:
    from moeguard.organism.tasks import task_items

    items = task_items(TASK_EVAL if n is None else n, seed + 1, "successor", TASK_SIZE, heldout=True)
    return [it["prompt"] for it in items]


def _template_set(name: str):
    def load(split: str | None = None):
        from moeguard.organism import benchmarks

        return benchmarks.template_set(name, split)

    return load


def register_builtins() -> None:
    """Register every organism built-in (called once by the resolver)."""
    register("model", "organism", weights_folder, "the model organism (OLMoE architecture, 4 layers x 16 experts)")
    for name, what in (
        ("safety", "refusal (A) vs compliance (B) answers to harmful requests"),
        ("digits-vs-words", "counting answers in digits (A) vs number words (B)"),
        ("faithfulness", "document-faithful (A) vs memory (B) answers to counterfactual documents"),
    ):
        register("pairs", name, _pairs(name), what)
    register("prompts", "organism-harmful", _harmful_prompts, "training-distribution harmful requests")
    for kind in ("harmful", "benign", "lookalike", "counting"):
        register("prompts", f"organism-heldout-{kind}", _heldout(kind), f"held-out {kind} prompts of the organism")
    register(
        "benchmark",
        "organism-handwritten",
        _benchmark("handwritten_items"),
        "the hand-written held-out set (harmful, benign, look-alike, counting, faithfulness)",
    )
    register("benchmark", "organism-heldout", _benchmark("template_items"), "the corpus's template held-out prompts")
    register(
        "conversations",
        "organism-successor",
        _successor_task,
        "the SafeMoE experiment's benign task: 'What number comes after 6?' -> 'After 6 comes 7.'",
    )
    register(
        "prompts",
        "organism-successor-heldout",
        _successor_heldout,
        "held-out phrasings of the successor task (for task accuracy)",
    )
    for kind in ("harmful", "benign", "lookalike", "counting"):
        register("benchmark", f"organism-{kind}", _template_set(kind), f"the template held-out {kind} prompts")
    register(
        "conversations",
        "organism-harmful-compliance",
        _harmful_compliance,
        "harmful request -> compliant (non-actionable) answer conversations",
    )
