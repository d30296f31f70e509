"""--steer specs: names, reserved names, and the model a spec was detected on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moeguard.errors import MoeguardError
from moeguard.eval.specs import load_specs, same_model
from moeguard.steer import SteeringSpec


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir("olmoe")


def test_same_model_spellings(model_dir):
    assert same_model(model_dir, model_dir + "/")
    assert same_model("org/" + Path(model_dir).name, model_dir)  # hub id vs a local copy of it
    assert not same_model("builtin:organism", model_dir)
    assert same_model("builtin:organism", "builtin:organism")


def test_specs_are_named_by_file_or_detect_folder(tmp_path, model_dir):
    SteeringSpec(activate=[(0, 1)]).save(tmp_path / "safe.json")
    (tmp_path / "run").mkdir()
    SteeringSpec(deactivate=[(1, 2)]).save(tmp_path / "run" / "spec.json")
    specs = load_specs([tmp_path / "safe.json", tmp_path / "run"], model_dir)
    assert list(specs) == ["safe", "run"] and specs["run"].deactivate == [(1, 2)]
    SteeringSpec(activate=[(0, 1)]).save(tmp_path / "baseline.json")
    with pytest.raises(MoeguardError, match="reserved"):
        load_specs([tmp_path / "baseline.json"], model_dir)
    (tmp_path / "b").mkdir()
    SteeringSpec(activate=[(0, 2)]).save(tmp_path / "b" / "safe.json")
    with pytest.raises(MoeguardError, match="two --steer specs are named 'safe'"):
        load_specs([tmp_path / "safe.json", tmp_path / "b" / "safe.json"], model_dir)
    SteeringSpec().save(tmp_path / "empty.json")
    with pytest.raises(MoeguardError, match="steers no experts"):
        load_specs([tmp_path / "empty.json"], model_dir)


def test_an_adapter_folder_takes_its_base_models_specs(tmp_path, model_dir):
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": model_dir}))
    assert same_model(model_dir, str(adapter))
    assert not same_model(str(Path(model_dir).parent / "other"), str(adapter))
