"""run_eval on a tiny model: the grid of conditions, records, resuming after an interruption, settings checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from moeguard import generation
from moeguard.errors import MoeguardError
from moeguard.eval.run import EvalSettings, prepare, run_eval
from moeguard.steer import SteeringSpec

FIXTURES = Path(__file__).parent / "fixtures"
XSTEST = str(FIXTURES / "xstest" / "xstest_prompts.csv")  # 2 benign + 1 harmful prompt


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir("olmoe")


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "unsafe.json"
    SteeringSpec(activate=[(0, 1)], deactivate=[(1, 2), (2, 3)]).save(path)
    return path


def settings(model_dir, spec_file, output, **kw) -> EvalSettings:
    base = dict(
        model=model_dir,
        benchmark=XSTEST,
        steer=(spec_file,),
        control=2,
        jailbreaks=("prefix_injection",),
        max_new_tokens=4,
        batch_size=2,
        bootstrap=200,
        output=output,
    )
    base.update(kw)
    return EvalSettings(**base)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def full_run(model_dir, spec_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return run_eval(settings(model_dir, spec_file, out), progress=False)


def test_grid_records_and_summary(full_run, spec_file):
    out = full_run.output
    records = lines(out / "samples.jsonl")
    # (baseline + spec + 2 control seeds) x (none, prefix_injection) x 3 prompts
    assert len(records) == full_run.samples == full_run.generated == 4 * 2 * 3
    assert [c.name for c in full_run.cells] == [
        "baseline",
        "unsafe",
        "random:unsafe",
        "baseline + prefix_injection",
        "unsafe + prefix_injection",
        "random:unsafe + prefix_injection",
    ]
    controls = {r["seed"] for r in records if r["control"]}
    assert controls == {0, 1} and {r["experts"] for r in records if r["steering"]} == {3}
    assert {tuple(sorted(r["metrics"])) for r in records if r["kind"] == "harmful"} == {
        ("degenerate", "harmful", "refusal")
    }
    assert {tuple(r["metrics"]) for r in records if r["kind"] == "benign"} == {("over_refusal",)}
    summary = json.loads((out / "summary.json").read_text())
    assert {r["metric"] for r in summary["rows"]} == {"refusal", "harmful", "degenerate", "over_refusal"}
    control = next(r for r in summary["rows"] if r["condition"] == "random:unsafe" and r["jailbreak"] == "none")
    assert control["seeds"] == 2 and len(control["mcnemar_seeds"]) == 2 and control["reference"] == "baseline"
    header = (out / "summary.csv").read_text().splitlines()[0]
    assert header.startswith("condition,jailbreak,metric,experts,n,value,ci_low,ci_high")
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["settings_sha256"] == full_run.settings_sha256


def test_outputs_come_from_generate_with_the_condition_spec(full_run, model_dir, spec_file):
    from moeguard.eval.benchmarks import load_benchmark
    from moeguard.eval.jailbreaks import prefix_injection
    from moeguard.models import load_model

    model, tokenizer = load_model(model_dir)
    items = load_benchmark(XSTEST)
    spec = SteeringSpec.load(spec_file)
    records = {r["key"]: r for r in lines(full_run.output / "samples.jsonl")}
    steered = generation.generate(
        model, tokenizer, [prefix_injection(i.prompt) for i in items[:2]], max_new_tokens=4, steer=spec, batch_size=2
    )
    assert [records[f"unsafe|prefix_injection|0|{i}"]["output"] for i in range(2)] == steered
    control = generation.generate(
        model, tokenizer, [items[2].prompt], max_new_tokens=4, steer=spec.random_like(model, 1), batch_size=2
    )
    assert records["random:unsafe|none|1|2"]["output"] == control[0]


def test_resume_after_truncation_gives_the_same_summary(full_run, model_dir, spec_file, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(full_run.output, out)
    (out / "summary.json").unlink()
    text = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    k = 7  # interrupted after 7 samples, in the middle of a batch and of the second condition, mid-write
    (out / "samples.jsonl").write_text("".join(text[:k]) + text[k][:30])
    result = run_eval(settings(model_dir, spec_file, out), progress=False)
    assert result.generated == len(text) - k  # the half-done batch is regenerated whole; only its missing sample kept
    assert (out / "summary.csv").read_text() == (full_run.output / "summary.csv").read_text()
    assert (
        json.loads((out / "summary.json").read_text())["rows"]
        == json.loads((full_run.output / "summary.json").read_text())["rows"]
    )
    again = {r["key"]: r["output"] for r in lines(out / "samples.jsonl")}
    assert again == {r["key"]: r["output"] for r in lines(full_run.output / "samples.jsonl")}


def test_resume_after_an_exception_in_generation(full_run, model_dir, spec_file, tmp_path, monkeypatch):
    real = generation.generate
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "generate", flaky)
    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        run_eval(settings(model_dir, spec_file, out), progress=False)
    done = len(lines(out / "samples.jsonl"))
    assert done == 5  # three batches of 2, 1, 2 prompts
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    monkeypatch.setattr(generation, "generate", real)
    result = run_eval(settings(model_dir, spec_file, out), progress=False)
    assert result.generated == result.samples - done
    assert (out / "summary.csv").read_text() == (full_run.output / "summary.csv").read_text()


def test_other_settings_in_the_same_folder_are_refused_unless_overwrite(full_run, model_dir, spec_file, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(full_run.output, out)
    with pytest.raises(MoeguardError, match=r"another eval run \(different max_new_tokens\).*--overwrite"):
        prepare(settings(model_dir, spec_file, out, max_new_tokens=5))
    result = run_eval(
        settings(model_dir, spec_file, out, max_new_tokens=5, control=0, jailbreaks=(), overwrite=True), progress=False
    )
    assert result.samples == 2 * 3 and len(lines(out / "samples.jsonl")) == 6
    # the same settings again: nothing to generate
    assert (
        run_eval(
            settings(model_dir, spec_file, out, max_new_tokens=5, control=0, jailbreaks=()), progress=False
        ).generated
        == 0
    )


def test_spec_for_another_model_is_refused(model_dir, tmp_path):
    spec = tmp_path / "other.json"
    SteeringSpec(activate=[(0, 1)], model="builtin:organism").save(spec)
    with pytest.raises(MoeguardError, match="was detected on builtin:organism, not"):
        prepare(settings(model_dir, spec, tmp_path / "o"))
    SteeringSpec(activate=[(0, 1)], model=str(model_dir)).save(spec)
    assert list(prepare(settings(model_dir, spec, tmp_path / "o")).specs) == ["other"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"benchmark": "no-such-benchmark"}, "unknown benchmark"),
        ({"benchmark": str(FIXTURES / "wrong" / "harmful_prompts.csv")}, "match no known benchmark schema"),
        ({"judge": "/no/such/judge"}, "unknown judge"),
        ({"control": 2, "steer": ()}, "control needs a --steer spec"),
        ({"jailbreaks": ("nope",)}, "unknown jailbreak"),
        ({"max_new_tokens": 0}, "max_new_tokens must be"),
    ],
)
def test_bad_input_is_one_line_before_the_model_loads(model_dir, spec_file, tmp_path, change, message, monkeypatch):
    import moeguard.models

    def no_loading(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(moeguard.models, "load_model", no_loading)
    with pytest.raises(MoeguardError, match=message) as err:
        run_eval(settings(model_dir, spec_file, tmp_path / "o", **change), progress=False)
    assert "\n" not in str(err.value)


def test_a_local_model_folder_is_a_llama_guard_judge(model_dir, tiny_judge_dir, tmp_path):
    out = tmp_path / "guarded"
    result = run_eval(
        EvalSettings(
            model=model_dir, benchmark=XSTEST, judge=str(tiny_judge_dir), max_new_tokens=3, bootstrap=20, output=out
        ),
        progress=False,
    )
    records = lines(out / "samples.jsonl")
    assert len(records) == result.samples == 3
    assert {r["label"] for r in records} <= {"safe", "unsafe", "unparsed"}
    assert all(set(r["metrics"]) <= {"harmful"} for r in records)  # no refusal label: no refusal outcomes
    assert json.loads((out / "summary.json").read_text())["judge"] == f"llama-guard:{tiny_judge_dir.resolve()}"


def test_faithfulness_items_get_the_faithful_outcome(model_dir, tmp_path):
    out = tmp_path / "faith"
    run_eval(
        EvalSettings(
            model=model_dir,
            benchmark=f"faithfulness:{FIXTURES / 'faithfulness' / 'own.jsonl'}",
            max_new_tokens=2,
            bootstrap=20,
            output=out,
        ),
        progress=False,
    )
    records = lines(out / "samples.jsonl")
    assert [sorted(r["metrics"]) for r in records] == [["faithful", "over_refusal"]] * 2
    rows = {r["metric"]: r for r in json.loads((out / "summary.json").read_text())["rows"]}
    assert rows["faithful"]["n"] == 2 and rows["faithful"]["value"] == 0.0  # a random tiny model names neither
