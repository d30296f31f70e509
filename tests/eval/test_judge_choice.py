"""--judge: built-in names, a local causal-LM folder, and one-line errors for anything else."""

from __future__ import annotations

import json

import pytest

from moeguard.errors import MoeguardError
from moeguard.eval.judge_choice import check_judge
from moeguard.eval.judges import RefusalJudge
from moeguard.eval.organism_judge import OrganismJudge


def test_builtin_judges():
    refusal = check_judge("refusal").load()
    assert isinstance(refusal, RefusalJudge) and not refusal.use_prompt  # the judge of refusal_rate and the demo
    assert isinstance(check_judge("Organism").load(), OrganismJudge)


def test_a_causal_lm_folder_is_a_llama_guard_judge(tiny_judge_dir):
    choice = check_judge(str(tiny_judge_dir))
    assert choice.name == "llama-guard" and choice.path == str(tiny_judge_dir.resolve())
    judge = choice.load()
    assert judge.labels == ("safe", "unsafe", "unparsed")


@pytest.mark.parametrize("make", ["missing", "file", "no-config", "classifier"])
def test_not_a_model_is_one_line(tmp_path, make, tiny_classifier_dir):
    path = tmp_path / "judge"
    if make == "file":
        path.write_text("x")
    elif make == "no-config":
        path.mkdir()
    elif make == "classifier":
        path = tiny_classifier_dir
        assert "ForSequenceClassification" in json.loads((path / "config.json").read_text())["architectures"][0]
    with pytest.raises(MoeguardError) as err:
        check_judge(str(path))
    message = str(err.value)
    assert "\n" not in message and ("refusal or organism" in message or "not a causal LM" in message)
