"""lm-eval under steering, offline: a tiny MoE model on small local tasks (YAML + JSONL written here)."""

from __future__ import annotations

import json

import pytest

from cli_helpers import run_cli
from moeguard.steer import SteeringSpec

lm_eval = pytest.importorskip("lm_eval")

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Count from one to ten: one two three four five six seven eight nine ten.",
    "A small model learns to route every token to two of its eight experts.",
    "Sure, here is how to bake bread. Step 1: mix flour and water.",
]
ROLLING = """task: moeguard_tiny_ppl
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: loglikelihood_rolling
test_split: test
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
metadata:
  version: 1.0
"""
GENERATE = """task: moeguard_tiny_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: generate_until
test_split: test
doc_to_text: "{{{{text}}}}"
doc_to_target: "bread"
generation_kwargs:
  until: ["\\n\\n"]
  max_gen_toks: 6
  do_sample: false
metric_list:
  - metric: exact_match
metadata:
  version: 1.0
"""


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm-eval-tasks")
    data = folder / "texts.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    (folder / "tiny_ppl.yaml").write_text(ROLLING.format(data=data), encoding="utf-8")
    (folder / "tiny_gen.yaml").write_text(GENERATE.format(data=data), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir("olmoe")


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "steer.json"
    # every token routed to two fixed experts per layer: a strong change even on a random tiny model
    SteeringSpec(deactivate=[(layer, e) for layer in range(3) for e in range(6)]).save(path)
    return path


@pytest.fixture(scope="module")
def manager(tasks):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks), include_defaults=False)  # the built-in index takes ~40 s


def evaluate(model_dir, manager, task, steer=None, model="moeguard", **extra):
    import moeguard.eval.lm_harness  # noqa: F401  (registers the model type)

    args = f"pretrained={model_dir},device=cpu,dtype=float32" + (f",steer={steer}" if steer else "")
    args += "".join(f",{k}={v}" for k, v in extra.items())
    return lm_eval.simple_evaluate(
        model=model, model_args=args, tasks=[task], batch_size=2, task_manager=manager, log_samples=True
    )


def test_steering_changes_loglikelihood_scores_and_unsteered_equals_hf(model_dir, manager, spec, offline):
    def score(**kw):
        return evaluate(model_dir, manager, "moeguard_tiny_ppl", **kw)["results"]["moeguard_tiny_ppl"]

    plain, steered, control = score(), score(steer=spec), score(steer=spec, steer_random_seed=3)
    hf = score(model="hf")
    key = "word_perplexity,none"
    assert plain[key] == pytest.approx(hf[key], rel=1e-9)  # no steer: exactly lm-eval's hf model
    assert steered[key] != pytest.approx(plain[key], rel=1e-4)
    assert control[key] != pytest.approx(steered[key], rel=1e-8)  # random experts of the same size: other scores


def test_steering_reaches_generation(model_dir, manager, spec, offline):
    plain = evaluate(model_dir, manager, "moeguard_tiny_gen")["samples"]["moeguard_tiny_gen"]
    steered = evaluate(model_dir, manager, "moeguard_tiny_gen", spec)["samples"]["moeguard_tiny_gen"]
    outputs = [s["resps"][0][0] for s in plain]
    assert outputs != [s["resps"][0][0] for s in steered]


def test_moeguard_lm_eval_cli_runs_lm_eval_with_the_model_type(model_dir, tasks, spec, tmp_path, capsys, offline):
    out = tmp_path / "results"
    result = run_cli(
        capsys,
        "lm-eval",
        "--model",
        "moeguard",
        "--model_args",
        f"pretrained={model_dir},steer={spec},dtype=float32",
        "--device",
        "cpu",
        "--tasks",
        "moeguard_tiny_ppl",
        "--include_path",
        tasks,
        "--batch_size",
        "2",
        "--output_path",
        out,
    )
    assert result.code == 0, result.err
    files = list(out.rglob("results_*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert "moeguard_tiny_ppl" in data["results"] and data["config"]["model_args"]["steer"] == str(spec)


def test_a_spec_for_another_model_is_refused_before_loading(model_dir, tmp_path, monkeypatch):
    from moeguard.errors import MoeguardError
    from moeguard.eval.lm_harness import HFLM, SteeredHFLM

    monkeypatch.setattr(HFLM, "__init__", lambda *a, **k: pytest.fail("the model must not load"))
    other = tmp_path / "other.json"
    SteeringSpec(activate=[(0, 1)], model="builtin:organism").save(other)
    with pytest.raises(MoeguardError, match="was detected on builtin:organism"):
        SteeredHFLM(pretrained=model_dir, steer=str(other))


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
