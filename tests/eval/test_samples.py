"""samples.jsonl: append, reload, a truncated last line (interrupted write) is dropped, damage is one line."""

from __future__ import annotations

import json

import pytest

from moeguard.errors import MoeguardError
from moeguard.eval.samples import SampleStore, sample_key


def records(n: int, start: int = 0) -> list[dict]:
    return [{"key": sample_key("baseline", "none", 0, i), "output": f"reply {i}"} for i in range(start, start + n)]


def test_append_and_load_keep_file_order_and_first_record_per_key(tmp_path):
    store = SampleStore(tmp_path / "samples.jsonl")
    store.append(records(3))
    store.append([{"key": sample_key("baseline", "none", 0, 1), "output": "later duplicate"}])
    loaded = store.load()
    assert list(loaded) == ["baseline|none|0|0", "baseline|none|0|1", "baseline|none|0|2"]
    assert loaded["baseline|none|0|1"]["output"] == "reply 1"


def test_truncated_last_line_is_ignored_and_cut_before_appending(tmp_path):
    path = tmp_path / "samples.jsonl"
    store = SampleStore(path)
    store.append(records(2))
    complete = path.read_bytes()
    path.write_bytes(complete + json.dumps(records(1, 2)[0]).encode()[:-5])  # killed mid-write
    assert list(store.load()) == ["baseline|none|0|0", "baseline|none|0|1"]
    store.repair()
    assert path.read_bytes() == complete
    store.append(records(1, 2))
    assert len(store.load()) == 3 and path.read_text().count("\n") == 3


def test_a_whole_last_record_without_newline_counts_as_interrupted(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(records(1)[0]) + "\n" + json.dumps(records(1, 1)[0]))
    store = SampleStore(path)
    assert list(store.load()) == ["baseline|none|0|0"]
    store.repair()
    assert path.read_text().count("\n") == 1


def test_damage_in_the_middle_is_one_line_naming_overwrite(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(records(1)[0]) + "\nnot json\n" + json.dumps(records(1, 1)[0]) + "\n")
    with pytest.raises(MoeguardError, match="line 2 .*--overwrite") as err:
        SampleStore(path).load()
    assert "\n" not in str(err.value)
