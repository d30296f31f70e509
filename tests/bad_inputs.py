"""Bad inputs across every command: each must give one 'moeguard: error:' line and exit code 2.

Used by ``test_bad_inputs.py``; ``python tests/bad_inputs.py MODEL_DIR`` prints the table of
(command, input, exit code, message) for the issue note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Case:
    """One bad invocation: ``args`` with ``{model}``, ``{tmp}``, ``{file}`` ... placeholders."""

    name: str
    args: list[str]
    fragment: str
    #: Raise if the command loads a model: the problem must be caught before any work.
    before_load: bool = True
    files: dict[str, str | bytes] = field(default_factory=dict)
    #: Only meaningful where vLLM is not installed (the "needs vLLM" message).
    without_vllm: bool = False


PAIR = {
    "messages_a": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "1, 2"}],
    "messages_b": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "one, two"}],
}
GOOD_PAIRS = json.dumps(PAIR) + "\n"
GOOD_PROMPTS = '{"prompt": "Count to five."}\n'
GOOD_SFT = '{"prompt": "Count to three.", "response": "1, 2, 3."}\n' * 4
OTHER_SPEC = json.dumps({"activate": [[0, 1]], "model": "/some/other/model"})
LATIN1 = "caf\xe9 au lait\n".encode("latin-1")

CASES = [
    # ---- models
    Case("model path missing", ["inspect", "{tmp}/nope"], "does not exist", before_load=False),
    Case("model trailing slash missing", ["inspect", "{tmp}/nope/"], "no such folder", before_load=False),
    Case(
        "model is a file",
        ["inspect", "{file:prompts.jsonl}"],
        "is a file",
        before_load=False,
        files={"prompts.jsonl": GOOD_PROMPTS},
    ),
    Case("model folder without config", ["inspect", "{tmp}"], "no config.json", before_load=False),
    Case("unknown builtin model", ["inspect", "builtin:nope"], "unknown built-in model", before_load=False),
    Case("unknown device", ["inspect", "{model}", "--device", "tpu9"], "unknown device", before_load=False),
    Case("cuda not available", ["inspect", "{model}", "--device", "cuda"], "CUDA is not available", before_load=False),
    Case("unknown dtype", ["inspect", "{model}", "--dtype", "float8"], "float8", before_load=False),
    Case("unreachable hub model", ["inspect", "nobody/no-such-model"], "hub", before_load=False),
    # ---- generate
    Case("empty prompt", ["generate", "{model}", "--prompt", "  "], "--prompt is empty"),
    Case("spec missing", ["generate", "{model}", "--prompt", "hi", "--steer", "{tmp}/spec.json"], "does not exist"),
    Case("spec is a folder", ["generate", "{model}", "--prompt", "hi", "--steer", "{tmp}"], "is a folder"),
    Case(
        "spec not JSON",
        ["generate", "{model}", "--prompt", "hi", "--steer", "{file:spec.json}"],
        "not valid JSON",
        files={"spec.json": "{oops"},
    ),
    Case(
        "spec binary",
        ["generate", "{model}", "--prompt", "hi", "--steer", "{file:spec.json}"],
        "binary",
        files={"spec.json": b"\x00\x01\x02"},
    ),
    Case(
        "spec for another model",
        ["generate", "{model}", "--prompt", "hi", "--steer", "{file:spec.json}"],
        "--force",
        files={"spec.json": OTHER_SPEC},
    ),
    Case(
        "spec expert out of range",
        ["generate", "{model}", "--prompt", "hi", "--steer", "{file:spec.json}"],
        "out of range",
        before_load=False,
        files={"spec.json": json.dumps({"deactivate": [[0, 99]]})},
    ),
    Case("max-new-tokens 0", ["generate", "{model}", "--prompt", "hi", "--max-new-tokens", "0"], "--max-new-tokens"),
    # ---- capture
    Case(
        "capture output is a file",
        ["capture", "{model}", "--prompts", "{file:p.jsonl}", "-o", "{file:p.jsonl}"],
        "is a file",
        files={"p.jsonl": GOOD_PROMPTS},
    ),
    Case(
        "capture output inside a file",
        ["capture", "{model}", "--prompts", "{file:p.jsonl}", "-o", "{tmp}/p.jsonl/out"],
        "inside",
        files={"p.jsonl": GOOD_PROMPTS},
    ),
    Case(
        "capture output unwritable",
        ["capture", "{model}", "--prompts", "{file:p.jsonl}", "-o", "/proc/moeguard"],
        "cannot be written",
        files={"p.jsonl": GOOD_PROMPTS},
    ),
    Case(
        "capture prompts not UTF-8",
        ["capture", "{model}", "--prompts", "{file:p.jsonl}", "-o", "{tmp}/o"],
        "p.jsonl:1 is not UTF-8",
        files={"p.jsonl": LATIN1},
    ),
    Case("capture prompts is a folder", ["capture", "{model}", "--prompts", "{tmp}", "-o", "{tmp}/o"], "is a folder"),
    Case(
        "capture both prompts and pairs",
        ["capture", "{model}", "--prompts", "{file:p.jsonl}", "--pairs", "builtin:safety", "-o", "{tmp}/o"],
        "exactly one",
        files={"p.jsonl": GOOD_PROMPTS},
    ),
    Case(
        "capture bad JSONL line",
        ["capture", "{model}", "--prompts", "{file:p.jsonl}", "-o", "{tmp}/o"],
        "p.jsonl:2: not valid JSON",
        files={"p.jsonl": GOOD_PROMPTS + "{oops\n"},
    ),
    # ---- detect
    Case(
        "detect output is a file",
        ["detect", "{model}", "--pairs", "{file:x.jsonl}", "-o", "{file:x.jsonl}"],
        "is a file",
        files={"x.jsonl": GOOD_PAIRS},
    ),
    Case(
        "detect pairs not UTF-8",
        ["detect", "{model}", "--pairs", "{file:x.jsonl}", "-o", "{tmp}/o"],
        "is not UTF-8",
        files={"x.jsonl": LATIN1},
    ),
    Case(
        "detect csv missing column",
        ["detect", "{model}", "--pairs", "{file:x.csv}", "-o", "{tmp}/o"],
        "lacks column",
        files={"x.csv": "messages_a\n[]\n"},
    ),
    Case(
        "detect unknown builtin pairs",
        ["detect", "{model}", "--pairs", "builtin:nope", "-o", "{tmp}/o"],
        "unknown built-in pair set",
    ),
    Case(
        "detect min-stability without bootstrap",
        [
            "detect",
            "{model}",
            "--pairs",
            "builtin:safety",
            "-o",
            "{tmp}/o",
            "--min-stability",
            "0.5",
            "--bootstrap",
            "0",
        ],
        "--min-stability needs bootstrap",
    ),
    Case(
        "detect max-q out of range",
        ["detect", "{model}", "--pairs", "builtin:safety", "-o", "{tmp}/o", "--max-q", "2"],
        "--max-q",
    ),
    Case(
        "detect unknown test",
        ["detect", "{model}", "--pairs", "builtin:safety", "-o", "{tmp}/o", "--test", "z"],
        "is not one of",
    ),
    Case(
        "detect no permutations",
        ["detect", "{model}", "--pairs", "builtin:safety", "-o", "{tmp}/o", "--permutations", "0"],
        "--permutations",
    ),
    Case(
        "detect from a missing capture", ["detect", "--from-capture", "{tmp}/none", "-o", "{tmp}/o"], "does not exist"
    ),
    Case("detect without model or capture", ["detect", "-o", "{tmp}/o"], "--pairs"),
    Case("detect unreachable hub pairs", ["detect", "{model}", "--pairs", "nobody/pairs", "-o", "{tmp}/o"], "hub"),
    # ---- demo
    Case("demo output is a file", ["demo", "-o", "{file:d.txt}"], "is a file", files={"d.txt": "x"}),
    Case("demo bad threads", ["demo", "-o", "{tmp}/d", "--threads", "zero"], "--threads"),
    Case(
        "detect zero threads",
        ["detect", "{model}", "--pairs", "builtin:safety", "-o", "{tmp}/o", "--threads", "0"],
        "--threads must be at least 1",
    ),
    Case(
        "eval bad threads",
        ["eval", "{model}", "-b", "builtin:organism-harmful", "-o", "{tmp}/e", "--threads", "two"],
        "--threads must be a number or auto",
    ),
    Case(
        "validate bad threads",
        [
            "validate",
            "{model}",
            "--spec",
            "{tmp}/s.json",
            "-b",
            "builtin:organism-harmful",
            "-o",
            "{tmp}/v",
            "--threads",
            "-3",
        ],
        "--threads must be at least 1",
    ),
    Case("organism eval bad threads", ["organism", "eval", "{model}", "--threads", "1.5"], "--threads"),
    Case(
        "demo missing model", ["demo", "--model", "{tmp}/missing", "-o", "{tmp}/d"], "does not exist", before_load=False
    ),
    # ---- safemoe reference
    Case(
        "reference output is a folder",
        ["safemoe", "reference", "{model}", "--prompts", "builtin:organism-harmful", "-o", "{tmp}"],
        "is a folder",
    ),
    Case(
        "reference unknown builtin prompts",
        ["safemoe", "reference", "{model}", "--prompts", "builtin:nope", "-o", "{tmp}/r.safetensors"],
        "unknown built-in prompt set",
    ),
    Case(
        "reference bad scope",
        [
            "safemoe",
            "reference",
            "{model}",
            "--prompts",
            "builtin:organism-harmful",
            "-o",
            "{tmp}/r.safetensors",
            "--scope",
            "middle",
        ],
        "middle",
    ),
    Case(
        "reference empty prompt file",
        ["safemoe", "reference", "{model}", "--prompts", "{file:p.txt}", "-o", "{tmp}/r.safetensors"],
        "empty",
        files={"p.txt": "\n\n"},
    ),
    # ---- finetune
    Case(
        "finetune schedule without safemoe",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/ft", "--schedule", "step"],
        "--safemoe",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune negative max-steps",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/ft", "--max-steps", "-5"],
        "--max-steps",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune zero max-steps",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/ft", "--max-steps", "0"],
        "--max-steps 0",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune lora options without lora",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/ft", "--lora-r", "4"],
        "--lora",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune into a non-empty folder",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}"],
        "not empty",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune resume without a run",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}", "--resume"],
        "not a moeguard fine-tuning run",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune resume and overwrite",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/f", "--resume", "--overwrite"],
        "pick one",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune bad lora targets",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/f", "--lora", "--lora-targets", "routers"],
        "routers",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune lora layers without lora",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/f", "--lora-layers", "0"],
        "add --lora",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune lora layers not integers",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/f", "--lora", "--lora-layers", "first"],
        "--lora-layers must be comma-separated integers",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune lora layer below zero",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/f", "--lora", "--lora-layers", "1,-2"],
        ">= 0",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune lora layer past the model",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/f", "--lora", "--lora-layers", "0,7"],
        "LoRA layers [7] are not in the model",
        before_load=False,
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune zero learning rate",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/f", "--lr", "0"],
        "--lr must be > 0",
        files={"d.jsonl": GOOD_SFT},
    ),
    Case(
        "finetune data without assistant",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/f"],
        "no assistant",
        files={"d.jsonl": json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n"},
    ),
    Case(
        "finetune reference missing",
        ["finetune", "{model}", "--data", "{file:d.jsonl}", "-o", "{tmp}/f", "--safemoe", "{tmp}/ref.safetensors"],
        "does not exist",
        files={"d.jsonl": GOOD_SFT},
    ),
    # ---- attack build
    Case(
        "attack count above task size",
        [
            "attack",
            "build",
            "--task",
            "{file:t.jsonl}",
            "--harmful",
            "builtin",
            "--count",
            "500",
            "-o",
            "{tmp}/a.jsonl",
        ],
        "more harmful samples",
        files={"t.jsonl": GOOD_SFT},
    ),
    Case(
        "attack count and ratio",
        [
            "attack",
            "build",
            "--task",
            "{file:t.jsonl}",
            "--harmful",
            "builtin",
            "--count",
            "1",
            "--ratio",
            "0.1",
            "-o",
            "{tmp}/a.jsonl",
        ],
        "exactly one",
        files={"t.jsonl": GOOD_SFT},
    ),
    Case(
        "attack ratio above one",
        ["attack", "build", "--task", "{file:t.jsonl}", "--harmful", "builtin", "--ratio", "3", "-o", "{tmp}/a.jsonl"],
        "more harmful than task",
        files={"t.jsonl": GOOD_SFT},
    ),
    Case(
        "attack output is a folder",
        ["attack", "build", "--task", "{file:t.jsonl}", "--harmful", "builtin", "--count", "1", "-o", "{tmp}"],
        "is a folder",
        files={"t.jsonl": GOOD_SFT},
    ),
    Case(
        "attack task-count for a file",
        [
            "attack",
            "build",
            "--task",
            "{file:t.jsonl}",
            "--harmful",
            "builtin",
            "--count",
            "1",
            "--task-count",
            "3",
            "-o",
            "{tmp}/a.jsonl",
        ],
        "builtin task",
        files={"t.jsonl": GOOD_SFT},
    ),
    # ---- drift
    Case("drift without prompts", ["drift", "{model}", "{model}", "-o", "{tmp}/d"], "--prompts"),
    Case(
        "drift zero temperature",
        ["drift", "{model}", "{model}", "--prompts", "builtin:organism-harmful", "-o", "{tmp}/d", "--temperature", "0"],
        "--temperature must be > 0",
    ),
    Case(
        "drift output inside a file",
        ["drift", "{model}", "{model}", "--prompts", "builtin:organism-harmful", "-o", "{file:x.txt}/d"],
        "inside",
        files={"x.txt": "x"},
    ),
    # ---- organism
    Case("organism train into a file", ["organism", "train", "-o", "{file:x.txt}"], "is a file", files={"x.txt": "x"}),
    Case(
        "organism train into a non-empty folder",
        ["organism", "train", "-o", "{tmp}"],
        "not empty",
        files={"x.txt": "x"},
    ),
    Case(
        "organism train surface share above 1",
        ["organism", "train", "-o", "{tmp}/o", "--surface-share", "1.5"],
        "--surface-share",
    ),
    Case(
        "organism train unknown surface kind",
        ["organism", "train", "-o", "{tmp}/o", "--surface-kinds", "counting,poetry"],
        "unknown surface kinds poetry",
    ),
    Case(
        "organism train empty request surfaces",
        ["organism", "train", "-o", "{tmp}/o", "--request-surfaces", ","],
        "request surfaces are empty",
    ),
    Case("organism eval unknown task", ["organism", "eval", "{model}", "--task", "juggling"], "unknown task"),
    Case(
        "organism eval update-card without steering", ["organism", "eval", "{model}", "--update-card"], "--update-card"
    ),
    # ---- validate
    Case(
        "validate spec missing",
        ["validate", "{model}", "--spec", "{tmp}/s.json", "-b", "builtin:organism-harmful", "-o", "{tmp}/v"],
        "does not exist",
    ),
    Case(
        "validate empty spec",
        ["validate", "{model}", "--spec", "{file:s.json}", "-b", "builtin:organism-harmful", "-o", "{tmp}/v"],
        "steers no expert",
        files={"s.json": "{}"},
    ),
    Case(
        "validate dose above spec size",
        [
            "validate",
            "{model}",
            "--spec",
            "{file:s.json}",
            "-b",
            "builtin:organism-harmful",
            "--doses",
            "1,5",
            "-o",
            "{tmp}/v",
        ],
        "--doses must lie in 1..1",
        files={"s.json": json.dumps({"deactivate": [[0, 1]]})},
    ),
    Case(
        "validate benchmark without harmful items",
        ["validate", "{model}", "--spec", "{file:s.json}", "-b", "builtin:organism-benign", "-o", "{tmp}/v"],
        "no item the metric 'refusal' applies to",
        files={"s.json": json.dumps({"deactivate": [[0, 1]]})},
    ),
    Case(
        "validate output not empty",
        ["validate", "{model}", "--spec", "{file:s.json}", "-b", "builtin:organism-harmful", "-o", "{tmp}"],
        "not empty",
        files={"s.json": json.dumps({"deactivate": [[0, 1]]})},
    ),
    # ---- attack experts
    Case(
        "attack experts shared prompts",
        [
            "attack",
            "experts",
            "{model}",
            "--search",
            "builtin:organism-harmful",
            "--heldout",
            "builtin:organism-harmful",
            "-o",
            "{tmp}/a",
        ],
        "share 80",
    ),
    Case(
        "attack experts target out of range",
        [
            "attack",
            "experts",
            "{model}",
            "--search",
            "builtin:organism-harmful",
            "--heldout",
            "builtin:organism-handwritten",
            "--target",
            "1",
            "-o",
            "{tmp}/a",
        ],
        "--target must be in [0, 1)",
    ),
    Case(
        "attack experts candidates without ranking",
        [
            "attack",
            "experts",
            "{model}",
            "--search",
            "builtin:organism-harmful",
            "--heldout",
            "builtin:organism-handwritten",
            "--candidates",
            "4",
            "-o",
            "{tmp}/a",
        ],
        "--candidates needs --ranking",
    ),
    # ---- backends
    Case(
        "vLLM backend not installed",
        ["generate", "{model}", "--prompt", "hi", "--backend", "vllm"],
        "needs vLLM",
        without_vllm=True,
    ),
    Case("serve without vLLM", ["serve", "{model}"], "needs vLLM", without_vllm=True),
    Case(
        "unknown backend",
        ["detect", "{model}", "--pairs", "{file:p.jsonl}", "-o", "{tmp}/d", "--backend", "tgi"],
        "is not one of",
        before_load=False,
        files={"p.jsonl": GOOD_PAIRS},
    ),
    # ---- cli
    Case("unknown command", ["frobnicate"], "No such command", before_load=False),
    Case("unknown option", ["inspect", "{model}", "--frob"], "No such option", before_load=False),
]


def materialise(case: Case, tmp: Path, model: str) -> list[str]:
    """The case's arguments with placeholders filled and its files written into ``tmp``."""
    for name, content in case.files.items():
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    args = []
    for arg in case.args:
        for name in case.files:
            arg = arg.replace(f"{{file:{name}}}", str(tmp / name))
        args.append(arg.replace("{model}", model).replace("{tmp}", str(tmp)))
    return args


if __name__ == "__main__":
    import contextlib
    import io
    import sys
    import tempfile

    from moeguard.cli import main

    model = sys.argv[1]
    print("| # | command | bad input | exit | message |\n|---:|---|---|---:|---|")
    for number, case in enumerate(CASES, start=1):
        with tempfile.TemporaryDirectory() as tmp:
            args = materialise(case, Path(tmp), model)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    main(args)
                    code = 0
                except SystemExit as stop:
                    code = int(stop.code or 0)
            lines = [line for line in err.getvalue().splitlines() if line.startswith("moeguard: error:")]
            message = (lines[0] if lines else err.getvalue().strip()[-120:]).replace(tmp, "TMP").replace("|", "\\|")
        print(f"| {number} | {case.args[0]} | {case.name} | {code} | {message} |")
