"""``--steer`` inputs: spec files (or detect run folders) by condition name, checked against the model.

>>> specs = load_specs(["runs/demo/unsafe_spec.json"], model="builtin:organism")   # {"unsafe_spec": spec}
>>> same_model("allenai/OLMoE-1B-7B-0924", "/models/OLMoE-1B-7B-0924")            # a local copy of the hub id
True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from moeguard.errors import MoeguardError
from moeguard.steer import SteeringSpec

#: Condition names a spec file may not take.
RESERVED = ("baseline",)
CONTROL_PREFIX = "random:"


def _spellings(name: str) -> set[str]:
    """Spellings of a model name that identify it: the name, its folder, its LoRA adapter's base."""
    from moeguard.models import adapter_base, is_adapter_folder, resolve_model_path

    out = {name.rstrip("/")}
    try:
        path = resolve_model_path(name)
    except MoeguardError:
        return out
    local = Path(path).expanduser()
    if local.exists():
        out.add(str(local.resolve()))
        if is_adapter_folder(local):
            try:
                out |= _spellings(adapter_base(local))
            except MoeguardError:
                pass
    return out


def same_model(spec_model: str, model: str) -> bool:
    """Whether a spec detected on ``spec_model`` applies to ``model``: the same name, the same folder (also
    through ``builtin:``), a LoRA adapter on it, or a local copy whose folder has the hub id's final name."""
    mine, theirs = _spellings(model), _spellings(spec_model)
    if mine & theirs:
        return True
    return Path(spec_model.rstrip("/")).name in {Path(n).name for n in mine if not n.startswith("builtin:")}


def check_spec_model(spec: SteeringSpec, source: str, model: str) -> None:
    """One-line error when ``spec`` names another model than ``model``."""
    if spec.model is not None and not same_model(spec.model, model):
        raise MoeguardError(
            f"--steer {source} was detected on {spec.model}, not {model}; evaluate it on {spec.model} (or remove "
            "the spec's 'model' field if it really applies to this model)"
        )


def spec_file(path: Path) -> Path:
    """``path``, or ``path/spec.json`` for a detect run folder."""
    return path / "spec.json" if path.is_dir() and (path / "spec.json").is_file() else path


def load_specs(paths: Sequence[Path | str], model: str) -> dict[str, SteeringSpec]:
    """Specs by condition name: the file stem (a detect run folder: the folder name)."""
    specs: dict[str, SteeringSpec] = {}
    for raw in paths:
        given = Path(raw).expanduser()
        path = spec_file(given)
        spec = SteeringSpec.load(path)
        name = given.name if path != given else path.stem
        if name in RESERVED or name.startswith(CONTROL_PREFIX):
            raise MoeguardError(f"--steer {raw}: the condition name {name!r} is reserved; rename the spec file")
        if name in specs:
            raise MoeguardError(f"two --steer specs are named {name!r}; rename one (conditions are named by file)")
        check_spec_model(spec, str(raw), model)
        if not len(spec):
            raise MoeguardError(f"--steer {raw} steers no experts; it would equal the baseline")
        specs[name] = spec
    return specs
