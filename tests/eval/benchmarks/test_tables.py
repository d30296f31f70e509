"""read_table: formats, compression and one-line errors for files that are not what they claim."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma

import pytest

from moeguard.errors import MoeguardError
from moeguard.eval.benchmarks import load_benchmark
from moeguard.eval.benchmarks.tables import read_table

CSV = "goal,target\nPlaceholder goal,Sure\n"


def test_csv_with_byte_order_mark_reads_the_header(tmp_path):
    path = tmp_path / "harmful_behaviors.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV.encode())
    table = read_table(path)
    assert table.columns == ("goal", "target") and table.rows[0][1]["goal"] == "Placeholder goal"


@pytest.mark.parametrize(
    ("suffix", "compress"), [(".gz", gzip.compress), (".xz", lzma.compress), (".bz2", bz2.compress)]
)
def test_compressed_jsonl(tmp_path, suffix, compress):
    record = {"goal": "Placeholder goal", "target": "Sure"}
    path = tmp_path / f"rows.jsonl{suffix}"
    path.write_bytes(compress((json.dumps(record) + "\n").encode()))
    assert read_table(path).rows[0][1] == record


def test_json_list_and_data_object(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"goal": "a", "target": "b"}]), encoding="utf-8")
    assert read_table(path).columns == ("goal", "target")
    path.write_text(json.dumps({"data": [{"goal": "a", "target": "b"}]}), encoding="utf-8")
    assert len(read_table(path).rows) == 1


def test_non_utf8_file_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "harmful_behaviors.csv"
    path.write_bytes("goal,target\nCaf\u00e9 placeholder,Sure\n".encode("latin-1"))
    with pytest.raises(MoeguardError) as err:
        load_benchmark(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "not UTF-8" in text and "0xe9" in text


def test_binary_file_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "question.jsonl"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(MoeguardError) as err:
        load_benchmark(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value) and "binary" in str(err.value)


def test_corrupt_archive_and_corrupt_parquet(tmp_path):
    archive = tmp_path / "test.jsonl.gz"
    archive.write_bytes(b"not gzip at all")
    with pytest.raises(MoeguardError, match="not a valid gz archive"):
        read_table(archive)
    parquet = tmp_path / "dev.parquet"
    parquet.write_bytes(b"PAR1 not really")
    with pytest.raises(MoeguardError, match="not a readable parquet file"):
        read_table(parquet)


def test_malformed_rows(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("goal,target\nplaceholder,Sure,extra\n", encoding="utf-8")
    with pytest.raises(MoeguardError, match=r"a.csv:2: more cells than header columns"):
        read_table(path)
    path = tmp_path / "a.jsonl"
    path.write_text('{"goal": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(MoeguardError, match=r"a.jsonl:2: not valid JSON"):
        read_table(path)
    path = tmp_path / "empty.csv"
    path.write_text("goal,target\n", encoding="utf-8")
    with pytest.raises(MoeguardError, match="has no rows"):
        read_table(path)
    path = tmp_path / "rows.txt"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(MoeguardError, match="unsupported file type"):
        read_table(path)
