"""The organism's held-out sets as benchmark items (builtin:organism-handwritten / organism-heldout)."""

from __future__ import annotations

import pytest

from moeguard.errors import MoeguardError
from moeguard.organism.benchmarks import handwritten_items, template_items


def test_handwritten_items_map_kinds_and_keep_the_fields():
    items = handwritten_items()
    assert {i.kind for i in items if i.meta["set"] == "harmful"} == {"harmful"}
    assert {i.kind for i in items if i.meta["set"] != "harmful"} == {"benign"}
    counting = handwritten_items("counting")
    assert all({"start", "end", "requested_style"} <= set(i.meta) for i in counting)
    faithful = handwritten_items("faithfulness")
    assert all(i.is_faithfulness and i.context and i.memory_answer for i in faithful)
    assert {i.meta["style"] for i in handwritten_items("typo")} == {"typo"}


def test_template_items_and_unknown_split():
    assert len(template_items("harmful")) == 80 and {i.kind for i in template_items("lookalike")} == {"benign"}
    with pytest.raises(MoeguardError, match="available: .*lookalike"):
        handwritten_items("nope")


@pytest.mark.parametrize(
    ("name", "size", "kind"),
    [("harmful", 80, "harmful"), ("benign", 80, "benign"), ("lookalike", 40, "benign"), ("counting", 24, "benign")],
)
def test_template_sets_are_the_demo_prompts_as_builtin_benchmarks(name, size, kind):
    from moeguard.eval.benchmarks import load_benchmark
    from moeguard.organism import corpus

    items = load_benchmark(f"builtin:organism-{name}")
    assert [i.prompt for i in items] == getattr(corpus, f"heldout_{name}_prompts")()
    assert len(items) == size and {i.kind for i in items} == {kind}
    assert load_benchmark(f"builtin:organism-{name}", split=kind) == items
    with pytest.raises(MoeguardError, match="drop --split"):
        load_benchmark(f"builtin:organism-{name}", split="harmful" if kind == "benign" else "benign")
