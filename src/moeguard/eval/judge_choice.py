"""``--judge``: a built-in judge name or a local judge model folder, checked before anything loads.

* ``refusal`` (default): :class:`moeguard.eval.judges.RefusalJudge`, the offline refusal judge, on the reply
  alone (``use_prompt=False``: the judge of :func:`moeguard.eval.judge.refusal_rate` and ``moeguard demo``);
* ``organism``: :class:`moeguard.eval.organism_judge.OrganismJudge`, three-way with an on-topic check;
* a local folder holding a causal LM (``config.json``): :class:`moeguard.eval.guard.LlamaGuardJudge`.

>>> choice = check_judge("refusal")
>>> choice.load().name
'offline-refusal'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from moeguard.errors import MoeguardError
from moeguard.eval.judges import Judge

BUILTIN_JUDGES = ("refusal", "organism")


@dataclass(frozen=True)
class JudgeChoice:
    """A checked ``--judge`` value: ``name`` is ``refusal``, ``organism`` or ``llama-guard`` (then ``path``)."""

    name: str
    path: str | None = None

    @property
    def label(self) -> str:
        """How run metadata names the judge (the built-in name or the model folder)."""
        return self.name if self.path is None else f"{self.name}:{self.path}"

    def load(self, device: str | None = None) -> Judge:
        """The judge (a model judge loads its folder now, local files only)."""
        if self.name == "refusal":
            from moeguard.eval.judges import RefusalJudge

            return RefusalJudge(use_prompt=False)
        if self.name == "organism":
            from moeguard.eval.organism_judge import OrganismJudge

            return OrganismJudge()
        from moeguard.eval.guard import LlamaGuardJudge

        assert self.path is not None
        return LlamaGuardJudge.from_pretrained(self.path, device=device)


def check_judge(value: str) -> JudgeChoice:
    """Validate ``--judge`` without loading a model; one-line MoeguardError naming the fix otherwise."""
    text = str(value).strip()
    if text.lower() in BUILTIN_JUDGES:
        return JudgeChoice(text.lower())
    folder = Path(text).expanduser()
    fix = f"pass {' or '.join(BUILTIN_JUDGES)}, or a local causal-LM folder (config.json) for a Llama-Guard-style judge"
    if not folder.exists():
        raise MoeguardError(f"unknown judge {text!r} (no such folder); {fix}", param="judge")
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise MoeguardError(f"judge {text} is not a model folder (no config.json); {fix}", param="judge")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MoeguardError(f"judge {text}: config.json is not valid JSON; re-save the judge model", "judge") from None
    architectures = config.get("architectures") if isinstance(config, dict) else None
    if (
        isinstance(architectures, list)
        and architectures
        and not any(str(a).endswith(("ForCausalLM", "ForConditionalGeneration")) for a in architectures)
    ):
        raise MoeguardError(
            f"judge {text} is a {architectures[0]}, not a causal LM; --judge takes a generative "
            "(Llama-Guard-style) judge model",
            param="judge",
        )
    return JudgeChoice("llama-guard", str(folder.resolve()))
