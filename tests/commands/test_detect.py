"""``moeguard detect``: artifacts, agreement with the library, generate round-trip, one-line errors."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from cli_helpers import error_line, run_cli
from moeguard import RoutingRecorder, SteeringSpec, inspect_moe
from moeguard.data import pairs_sha256, read_pairs
from moeguard.detect import detect_experts, select_experts
from moeguard.models import load_model


def pair_lines(n: int) -> list[dict]:
    records = []
    for i in range(n):
        user = [{"role": "user", "content": f"Count to five, take {i}."}]
        records.append(
            {
                "messages_a": user + [{"role": "assistant", "content": "1, 2, 3, 4, 5."}],
                "messages_b": user + [{"role": "assistant", "content": "one, two, three, four, five."}],
            }
        )
    return records


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir("olmoe")


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in pair_lines(6)), encoding="utf-8")
    return path


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_detect_writes_artifacts_that_match_the_library(capsys, model_dir, pairs_file, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        capsys,
        "detect",
        model_dir,
        "--pairs",
        pairs_file,
        "--output",
        out,
        "--activate",
        "3",
        "--deactivate",
        "2",
        "--bootstrap",
        "12",
        "--seed",
        "4",
        "--batch-size",
        "4",
    )
    assert result.code == 0, result.err
    for name in ("experts.csv", "spec.json", "heatmap.png", "meta.json"):
        assert str(out / name) in result.out
    rows = read_csv(out / "experts.csv")
    columns = [
        "layer",
        "expert",
        "rate_a",
        "rate_b",
        "risk_diff",
        "p_value",
        "q_value",
        "stability",
        "pair_p_value",
        "pair_q_value",
        "ci_low",
        "ci_high",
    ]
    assert list(rows[0]) == columns
    assert len(rows) == 3 * 8
    diffs = [abs(float(r["risk_diff"])) for r in rows]
    assert diffs == sorted(diffs, reverse=True)

    model, tokenizer = load_model(model_dir)
    pairs = read_pairs(str(pairs_file))
    expected = detect_experts(model, tokenizer, pairs, batch_size=1, bootstrap=12, seed=4)
    stability = expected.stability(3, 2)
    low, high = expected.confidence_interval()
    for row in rows:
        position, expert = expected.layers.index(int(row["layer"])), int(row["expert"])
        assert float(row["rate_a"]) == expected.rate_a[position, expert].item()
        assert float(row["risk_diff"]) == expected.risk_diff[position, expert].item()
        assert float(row["q_value"]) == expected.q_values[position, expert].item()
        assert float(row["stability"]) == stability[position, expert].item()
        assert float(row["pair_p_value"]) == expected.pair_p_values[position, expert].item()
        assert float(row["pair_q_value"]) == expected.pair_q_values[position, expert].item()
        assert float(row["ci_low"]) == low[position, expert].item()
        assert float(row["ci_high"]) == high[position, expert].item()

    spec = SteeringSpec.load(out / "spec.json")
    spec.validate(inspect_moe(model))
    assert spec.model == model_dir
    assert (spec.activate, spec.deactivate) == (
        select_experts(expected, 3, 2).activate,
        select_experts(expected, 3, 2).deactivate,
    )
    by_key = {(int(r["layer"]), int(r["expert"])): float(r["risk_diff"]) for r in rows}
    assert all(by_key[key] > 0 for key in spec.activate) and all(by_key[key] < 0 for key in spec.deactivate)

    meta = json.loads((out / "meta.json").read_text())
    assert meta["model"] == model_dir and meta["seed"] == 4 and meta["bootstrap"] == 12
    assert meta["pairs"] == 6 and meta["data_sha256"] == pairs_sha256(pairs)
    assert meta["test"] == "pair" and meta["effective_pairs"] == 6 and meta["ci_level"] == 0.95
    assert meta["permutations"] == 10_000 and meta["permutations_exact"] is True  # 6 distinct pairs: exact
    assert (meta["tokens_a"], meta["tokens_b"]) == (expected.tokens_a, expected.tokens_b)
    assert meta["moeguard_version"] and meta["selected"] == {
        "activate": len(spec.activate),
        "deactivate": len(spec.deactivate),
    }
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_detect_then_generate_with_the_spec(capsys, model_dir, pairs_file, tmp_path):
    out = tmp_path / "out"
    assert (
        run_cli(
            capsys, "detect", model_dir, "--pairs", pairs_file, "--output", out, "--activate", "2", "--bootstrap", "0"
        ).code
        == 0
    )
    spec = SteeringSpec.load(out / "spec.json")
    assert len(spec.activate) == 2
    steered = run_cli(
        capsys,
        "generate",
        model_dir,
        "--prompt",
        "Count to five.",
        "--steer",
        out / "spec.json",
        "--max-new-tokens",
        "5",
    )
    assert steered.code == 0, steered.err
    # the steering is real: the spec's experts are in every token's top-k while it is applied
    model, _ = load_model(model_dir)
    recorder = RoutingRecorder(model)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with recorder, spec.apply(model):
        recorder.run(ids)
    moe = inspect_moe(model)
    for layer, expert in spec.activate:
        assert recorder.counts[moe.layer_position(layer), expert] == recorder.tokens


def test_reverse_and_filters(capsys, model_dir, pairs_file, tmp_path):
    out = tmp_path / "rev"
    result = run_cli(
        capsys,
        "detect",
        model_dir,
        "--pairs",
        pairs_file,
        "--output",
        out,
        "--activate",
        "2",
        "--reverse",
        "--bootstrap",
        "0",
    )
    assert result.code == 0, result.err
    rows = read_csv(out / "experts.csv")
    by_key = {(int(r["layer"]), int(r["expert"])): float(r["risk_diff"]) for r in rows}
    spec = SteeringSpec.load(out / "spec.json")
    assert spec.activate and all(by_key[key] < 0 for key in spec.activate)
    assert all(r["stability"] == "" for r in rows)  # no bootstrap, no stability

    strict = tmp_path / "strict"
    result = run_cli(
        capsys,
        "detect",
        model_dir,
        "--pairs",
        pairs_file,
        "--output",
        strict,
        "--activate",
        "2",
        "--max-q",
        "1e-300",
        "--bootstrap",
        "0",
    )
    assert result.code == 0
    assert SteeringSpec.load(strict / "spec.json").activate == []
    assert "selected 0/2 to activate" in result.err


def test_max_q_uses_the_chosen_test(capsys, model_dir, tmp_path):
    # 6 distinct pairs, each written twice: the pair test counts 6 (smallest p 2/2^6, so no q-value
    # reaches 0.01), the token test counts every token of all 12 and finds q-values far below 0.01
    pairs = write(tmp_path / "twice.jsonl", "".join(json.dumps(r) + "\n" for r in pair_lines(6) * 2))
    runs = {}
    for test in ("pair", "token"):
        out = tmp_path / test
        result = run_cli(
            capsys,
            "detect",
            model_dir,
            "--pairs",
            pairs,
            "--output",
            out,
            "--activate",
            "2",
            "--max-q",
            "0.01",
            "--test",
            test,
            "--bootstrap",
            "5",
        )
        assert result.code == 0, result.err
        runs[test] = (
            SteeringSpec.load(out / "spec.json"),
            json.loads((out / "meta.json").read_text()),
            read_csv(out / "experts.csv"),
        )
    (pair_spec, pair_meta, pair_rows), (token_spec, token_meta, token_rows) = runs["pair"], runs["token"]
    assert pair_meta["pairs"] == 12 and pair_meta["effective_pairs"] == 6
    assert (pair_meta["test"], token_meta["test"]) == ("pair", "token")
    assert min(float(r["pair_q_value"]) for r in pair_rows) >= 2 / 64
    assert min(float(r["q_value"]) for r in token_rows) < 0.01
    assert pair_spec.activate == [] and len(token_spec.activate) == 2
    assert pair_rows == token_rows  # the test only changes what --max-q filters, not the table


def test_builtin_pairs(capsys, model_dir, tmp_path):
    out = tmp_path / "builtin"
    result = run_cli(
        capsys,
        "detect",
        model_dir,
        "--pairs",
        "builtin:digits-vs-words",
        "--max-pairs",
        "4",
        "--output",
        out,
        "--bootstrap",
        "5",
    )
    assert result.code == 0, result.err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["pairs"] == 4 and meta["pairs_source"] == "builtin:digits-vs-words"
    assert meta["pairs_file_sha256"] is None and len(meta["data_sha256"]) == 64


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


BAD = [
    # (extra args or pairs content, expected fragment)
    ("missing-file", "does not exist"),
    ("bad-json", "pairs.jsonl:2: not valid JSON"),
    ("empty", "has no pairs"),
    ("no-assistant", "messages_b has no assistant turn"),
    ("no-span", "pair 1"),
    ("min-stability-without-bootstrap", "--min-stability needs bootstrap"),
    ("negative-activate", "--activate"),
    ("unknown-builtin", "built-in pair set"),
    ("missing-model", "model path"),
    ("bad-test", "is not one of"),
]


@pytest.mark.parametrize(("case", "fragment"), BAD)
def test_bad_input_exits_2_with_one_line(capsys, model_dir, tmp_path, case, fragment):
    good = json.dumps(pair_lines(1)[0])
    pairs = tmp_path / "pairs.jsonl"
    model = model_dir
    extra: list[str] = []
    if case == "missing-file":
        pairs = tmp_path / "nope.jsonl"
    elif case == "bad-json":
        write(pairs, good + "\n{oops\n")
    elif case == "empty":
        write(pairs, "")
    elif case == "no-assistant":
        record = pair_lines(1)[0]
        record["messages_b"] = record["messages_b"][:1]
        write(pairs, json.dumps(record) + "\n")
    elif case == "no-span":
        record = {**pair_lines(1)[0], "target_b": "never said"}
        write(pairs, good + "\n" + json.dumps(record) + "\n")
    else:
        write(pairs, good + "\n")
    if case == "min-stability-without-bootstrap":
        extra = ["--min-stability", "0.5", "--bootstrap", "0"]
    elif case == "negative-activate":
        extra = ["--activate", "-1"]
    elif case == "unknown-builtin":
        pairs = "builtin:no-such-set"
    elif case == "missing-model":
        model = str(tmp_path / "no-model")
    elif case == "bad-test":
        extra = ["--test", "z"]
    result = run_cli(capsys, "detect", model, "--pairs", pairs, "--output", tmp_path / "out", *extra)
    assert result.code == 2
    assert fragment in error_line(result)
    assert not (tmp_path / "out" / "spec.json").exists()


def test_unreachable_hub_dataset(capsys, model_dir, tmp_path, monkeypatch):
    import datasets

    import moeguard.hub

    monkeypatch.setattr(moeguard.hub, "hub_problem", lambda timeout=None: None)  # the probe passes, the load fails

    def offline(name, split=None):
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    result = run_cli(capsys, "detect", model_dir, "--pairs", "someone/pairs", "--output", tmp_path / "out")
    assert result.code == 2
    assert "could not load dataset 'someone/pairs'" in error_line(result)


def test_detect_from_capture_equals_detection_that_runs_the_model(capsys, model_dir, pairs_file, tmp_path):
    direct, capture, replay = tmp_path / "direct", tmp_path / "capture", tmp_path / "replay"
    common = ["--activate", "2", "--deactivate", "1", "--bootstrap", "9", "--seed", "3"]
    assert run_cli(capsys, "detect", model_dir, "--pairs", pairs_file, "--output", direct, *common).code == 0
    made = run_cli(capsys, "capture", model_dir, "--pairs", pairs_file, "--output", capture, "--batch-size", "4")
    assert made.code == 0, made.err
    result = run_cli(capsys, "detect", "--from-capture", capture, "--output", replay, *common)
    assert result.code == 0, result.err
    assert (direct / "experts.csv").read_text() == (replay / "experts.csv").read_text()
    assert json.loads((direct / "spec.json").read_text()) == json.loads((replay / "spec.json").read_text())
    ours, theirs = (json.loads((d / "meta.json").read_text()) for d in (direct, replay))
    assert ours["data_sha256"] == theirs["data_sha256"] and ours["tokens_a"] == theirs["tokens_a"]
    assert theirs["pairs_source"] == f"capture:{capture}"
    # a capture of prompts (not pairs), or of another model, is refused in one line
    prompts = write(tmp_path / "p.jsonl", '{"prompt": "hi"}\n')
    run_cli(capsys, "capture", model_dir, "--prompts", prompts, "--output", tmp_path / "pc")
    bad = run_cli(capsys, "detect", "--from-capture", tmp_path / "pc", "--output", tmp_path / "x")
    assert bad.code == 2 and "--pairs" in error_line(bad)
    other = run_cli(capsys, "detect", "/elsewhere/model", "--from-capture", capture, "--output", tmp_path / "y")
    assert other.code == 2 and "recorded on" in error_line(other)
