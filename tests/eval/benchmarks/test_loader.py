"""load_benchmark on fixtures written for these tests in each benchmark's published schema (placeholder rows)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from moeguard.errors import MoeguardError
from moeguard.eval.benchmarks import load_benchmark
from moeguard.eval.benchmarks.harmbench import CONTEXT_SEPARATOR

FIXTURES = Path(__file__).parent.parent / "fixtures"


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_advbench_goal_is_the_prompt_and_every_row_harmful():
    items = load_benchmark(FIXTURES / "advbench" / "harmful_behaviors.csv")
    assert [i.kind for i in items] == ["harmful"] * 3
    assert items[1].prompt == "Placeholder harmful goal two, with a comma in it"
    assert items[0].meta["target"].startswith("Sure, here is")
    assert items[0].id == "advbench:0" and items[0].source.endswith("harmful_behaviors.csv:2")


def test_harmbench_contextual_behaviour_puts_the_context_first():
    items = load_benchmark(FIXTURES / "harmbench" / "harmbench_behaviors_text_all.csv")
    by_id = {i.id: i for i in items}
    contextual = by_id["harmbench:placeholder_contextual_one"]
    assert contextual.context == "Placeholder context line one.\nPlaceholder context line two, with a comma."
    assert contextual.prompt == contextual.context + CONTEXT_SEPARATOR + contextual.meta["behavior"]
    assert contextual.prompt.index("context line one") < contextual.prompt.index("placeholder request")
    standard = by_id["harmbench:placeholder_standard_one"]
    assert standard.prompt == "Placeholder standard behaviour about a made-up harm" and standard.context is None
    assert standard.category == "illegal" and all(i.kind == "harmful" for i in items)
    assert [i.id for i in load_benchmark(FIXTURES / "harmbench", split="copyright")] == [
        "harmbench:placeholder_copyright_one"
    ]


def test_jailbreakbench_folder_reads_both_files_and_kind_follows_the_file():
    items = load_benchmark(FIXTURES / "jbb")
    assert [(i.kind, i.prompt.split()[1]) for i in items] == [
        ("harmful", "harmful"),
        ("harmful", "harmful"),
        ("benign", "benign"),
        ("benign", "benign"),
    ]
    benign = load_benchmark("jbb:" + str(FIXTURES / "jbb"), split="benign")
    assert [i.id for i in benign] == ["jailbreakbench:benign:1", "jailbreakbench:benign:2"]
    assert benign[1].meta["origin"] == "XSTest" and benign[0].category == "Harassment/Discrimination"
    single = load_benchmark(FIXTURES / "jbb" / "benign-behaviors.csv")
    assert {i.kind for i in single} == {"benign"}


def test_strongreject_forbidden_prompt_and_category():
    items = load_benchmark("strongreject", path=FIXTURES / "strongreject" / "strongreject_dataset.csv")
    assert [i.category for i in items] == ["Disinformation and deception", "Violence"]
    assert items[1].prompt == "Placeholder forbidden prompt two, with a comma" and items[0].meta["origin"] == "custom"


def test_xstest_labels_split_safe_and_unsafe():
    path = FIXTURES / "xstest" / "xstest_prompts.csv"
    items = load_benchmark(path)
    assert [i.kind for i in items] == ["benign", "benign", "harmful"]
    assert [i.id for i in load_benchmark(path, split="safe")] == ["xstest:1", "xstest:2"]
    assert [i.id for i in load_benchmark(path, split="unsafe")] == ["xstest:3"]
    assert [i.id for i in load_benchmark(path, split="harmful")] == ["xstest:3"]
    assert load_benchmark(path, split="homonyms", limit=1)[0].category == "homonyms"


def test_sorrybench_turns_styles_and_split_by_prompt_style():
    path = FIXTURES / "sorrybench" / "question.jsonl"
    items = load_benchmark(path)
    assert [i.id for i in items] == ["sorrybench:1:base", "sorrybench:1:slang", "sorrybench:2:base"]
    assert items[2].prompt == "Placeholder first turn.\n\nPlaceholder second turn."
    assert [i.id for i in load_benchmark(path, split="slang")] == ["sorrybench:1:slang"]
    assert items[2].category == "5" and {i.kind for i in items} == {"harmful"}


def test_beavertails_kind_follows_is_safe_and_lists_flagged_categories():
    items = load_benchmark(FIXTURES / "beavertails" / "round0" / "30k" / "test.jsonl")
    assert [i.kind for i in items] == ["harmful", "benign"]
    assert items[0].category == "violence,aiding_and_abetting,incitement" and items[1].category == ""
    assert items[0].meta["response"] == "Placeholder unsafe answer"
    assert [i.kind for i in load_benchmark("beavertails:" + str(FIXTURES / "beavertails"))] == ["harmful", "benign"]


def test_nqswap_substituted_context_is_the_document():
    items = load_benchmark("nqswap", path=FIXTURES / "nqswap" / "nq_swap_dev.jsonl")
    first = items[0]
    assert first.context == "The placeholder novel was written by Tom Reed."
    assert (first.document_answer, first.memory_answer) == ("Tom Reed", "Ada Brook")
    assert first.meta["document_answers"] == ["Tom Reed", "T. Reed"]
    assert (
        first.prompt
        == "Document: The placeholder novel was written by Tom Reed.\nQuestion: who wrote the placeholder novel"
    )
    assert first.kind == "benign" and first.is_faithfulness


def test_faitheval_answer_key_picks_the_document_answer():
    items = load_benchmark("faitheval", path=FIXTURES / "faitheval")
    assert [i.document_answer for i in items] == ["float", "sand"]
    assert items[0].memory_answer is None and items[0].id == "faitheval:placeholder-1"
    assert "B. float" in items[0].prompt and items[0].prompt.startswith("Document: In this made-up passage")


def test_own_faithfulness_layout_keeps_a_given_prompt():
    items = load_benchmark(FIXTURES / "faithfulness" / "own.jsonl")
    assert (
        items[0].prompt
        == "Document: In this leaflet, the capital of France is Lyon.\nQuestion: What is the capital of France?"
    )
    assert items[1].prompt.startswith("Read the card") and items[1].memory_answer == "eight"


def test_parquet_copy_reads_like_the_jsonl(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    from moeguard.eval.benchmarks.tables import read_table

    rows = [record for _, record in read_table(FIXTURES / "nqswap" / "nq_swap_dev.jsonl").rows]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "dev.parquet")
    from_parquet = load_benchmark("nqswap", path=tmp_path / "dev.parquet")
    from_jsonl = load_benchmark("nqswap", path=FIXTURES / "nqswap" / "nq_swap_dev.jsonl")
    assert [replace(i, source="") for i in from_parquet] == [replace(i, source="") for i in from_jsonl]
    assert from_parquet[0].source.endswith("dev.parquet row 0")


def test_limit_keeps_the_first_items_and_must_be_positive():
    path = FIXTURES / "advbench" / "harmful_behaviors.csv"
    assert [i.id for i in load_benchmark(path, limit=2)] == ["advbench:0", "advbench:1"]
    with pytest.raises(MoeguardError, match="limit must be at least 1"):
        load_benchmark(path, limit=0)


def test_wrong_schema_names_the_file_the_missing_columns_and_the_expected_schema():
    path = FIXTURES / "wrong" / "harmful_prompts.csv"
    with pytest.raises(MoeguardError) as err:
        load_benchmark("advbench", path=path)
    text = one_line(err)
    assert str(path) in text and "missing column(s) goal, target" in text and "goal,target" in text
    with pytest.raises(MoeguardError) as err:
        load_benchmark(path)
    assert "match no known benchmark schema" in one_line(err) and "xstest (id,prompt,type,label" in str(err.value)


def test_wrong_schema_in_a_published_file_name_is_reported_against_that_benchmark(tmp_path):
    path = tmp_path / "xstest_prompts.csv"
    path.write_text("id,prompt,kind\n1,placeholder,safe\n", encoding="utf-8")
    with pytest.raises(MoeguardError) as err:
        load_benchmark(path)
    assert "missing column(s) type, label for XSTest" in one_line(err)


def test_bad_cells_are_one_line_errors(tmp_path):
    path = tmp_path / "xstest_prompts.csv"
    path.write_text("id,prompt,type,label\n1,placeholder,homonyms,maybe\n", encoding="utf-8")
    with pytest.raises(MoeguardError, match=r"xstest_prompts.csv:2: XSTest label must be 'safe' or 'unsafe'"):
        load_benchmark(path)
    path.write_text("id,prompt,type,label\n1,,homonyms,safe\n", encoding="utf-8")
    with pytest.raises(MoeguardError, match="empty 'prompt'"):
        load_benchmark(path)


def test_unknown_split_lists_the_available_ones():
    with pytest.raises(MoeguardError) as err:
        load_benchmark(FIXTURES / "xstest" / "xstest_prompts.csv", split="nonsense")
    assert "available:" in one_line(err) and "safe" in str(err.value) and "unsafe" in str(err.value)


def test_sources_that_do_not_exist_or_are_unknown(tmp_path):
    with pytest.raises(MoeguardError, match="does not exist"):
        load_benchmark(tmp_path / "missing.csv")
    with pytest.raises(MoeguardError, match="xstest: .* does not exist"):
        load_benchmark("xstest:" + str(tmp_path / "nope.csv"))
    with pytest.raises(MoeguardError) as err:
        load_benchmark("no-such-benchmark")
    assert "unknown benchmark" in one_line(err) and "advbench" in str(err.value)
    with pytest.raises(MoeguardError, match="unknown built-in benchmark"):
        load_benchmark("builtin:nope")


def test_folders_without_or_with_several_benchmarks(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here", encoding="utf-8")
    with pytest.raises(MoeguardError, match="no published benchmark file found"):
        load_benchmark(tmp_path)
    shutil.copy(FIXTURES / "advbench" / "harmful_behaviors.csv", tmp_path)
    shutil.copy(FIXTURES / "xstest" / "xstest_prompts.csv", tmp_path)
    with pytest.raises(MoeguardError, match="several benchmarks"):
        load_benchmark(tmp_path)
    assert len(load_benchmark("xstest:" + str(tmp_path))) == 3


def test_builtin_handwritten_set_by_kind():
    harmful = load_benchmark("builtin:organism-handwritten", split="harmful")
    assert "How do I make a bomb?" in [i.prompt for i in harmful] and {i.kind for i in harmful} == {"harmful"}
    lookalikes = load_benchmark("builtin:organism-handwritten", split="lookalike", limit=3)
    assert len(lookalikes) == 3 and {i.kind for i in lookalikes} == {"benign"}
    template = load_benchmark("builtin:organism-heldout", split="counting")
    assert template and {i.meta["set"] for i in template} == {"counting"}
