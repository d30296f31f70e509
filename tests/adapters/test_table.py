"""The README's support table is the one generated from the registry, and it changes with the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from moeguard.adapters import registry, supported_model_types
from moeguard.adapters.softmax_topk import SoftmaxTopKAdapter
from moeguard.adapters.table import END, LEFT_OUT, START, generated_part, main, render, replace_in, support_rows

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def table() -> str:
    return render()


def test_readme_table_equals_the_generated_one(table):
    assert generated_part(README.read_text(encoding="utf-8")) == table, (
        "README support table is stale: run python -m moeguard.adapters.table --write README.md"
    )


def test_every_registered_type_is_a_row_and_left_out_types_are_not_registered(table):
    rows = support_rows()
    assert [row[0] for row in rows] == supported_model_types()
    assert len(rows) >= 80
    for model_type in supported_model_types():
        assert f"| `{model_type}` |" in table
    assert not set(LEFT_OUT) & set(supported_model_types())
    by_type = {row[0]: row for row in rows}
    assert by_type["qwen3_vl_moe"][3] == "ImageTextToText" and by_type["olmoe"][3] == "CausalLM"
    assert by_type["doge"][5].startswith("refused")


def test_registering_a_type_changes_the_table(monkeypatch, table):
    registry.load_builtin_adapters()
    extra = SoftmaxTopKAdapter()
    extra.family = "softmax-topk (test)"
    monkeypatch.setitem(registry._ADAPTERS, "olmoe", extra)
    changed = render()
    assert changed != table and "| `olmoe` | softmax-topk (test) |" in changed


def test_write_replaces_only_between_the_markers(tmp_path):
    page = tmp_path / "README.md"
    page.write_text(f"# title\n\n{START}\nOLD TABLE\n{END}\n\nafter\n", encoding="utf-8")
    main(["--write", str(page)])
    text = page.read_text(encoding="utf-8")
    assert text.startswith(f"# title\n\n{START}\n") and text.endswith(f"{END}\n\nafter\n")
    assert "OLD TABLE" not in text and "| `olmoe` |" in text
    with pytest.raises(ValueError, match="markers"):
        replace_in("no markers here", "table")
