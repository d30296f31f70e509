"""The README's support table, generated from the adapter registry.

``python -m moeguard.adapters.table`` prints it (markdown); ``python -m moeguard.adapters.table --write
README.md`` replaces the text between :data:`START` and :data:`END` in that file. A test keeps the README
equal to the generated table, so registering a family is the only way to change it.

Rows: every registered ``config.model_type`` with its routing family, the adapter module that implements it,
the transformers Auto class that loads it, and what the test suite proves for it. "parity" and "steering"
are not claims typed by hand: ``tests/adapters/test_parity.py`` and ``test_steering.py`` are parametrised
over exactly the registered types (:data:`moeguard.testing.TINY_TYPES`), each as a tiny random model of its
real config class, saved and reloaded, in float32 and bfloat16. A registered type without a tiny config
fails those tests. The steering column is the adapter's ``steering`` note (``exact``: activation and
deactivation hold on every token).

Model types of transformers that are not in the table are listed in :data:`LEFT_OUT` with the reason.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

START = "<!-- support-table:start (generated: python -m moeguard.adapters.table --write README.md) -->"
END = "<!-- support-table:end -->"

#: MoE model types of transformers 5.24 that moeguard does not serve, and why.
LEFT_OUT: dict[str, str] = {
    "diffusion_gemma": (
        "block-diffusion model (`DiffusionGemmaForBlockDiffusion` denoises a padded 512-token canvas, no "
        "next-token decoding); its router follows the Gemma-4 rule, but capture spans, generation and SafeMoE "
        "assume a causal LM"
    ),
}
#: MoE configs of transformers that are not language models moeguard could load on their own.
NOT_LANGUAGE_MODELS: dict[str, str] = {
    "text sub-configs": (
        "`deepseek_ocr2_text`, `diffusion_gemma_text`, `ernie4_5_vl_moe_text`, `glm4v_moe_text`, `glm5_next_text`, "
        "`hy_v4_vl_text`, `mistral_large4_text`, `muse_spark_text`, `qwen3_omni_moe_text`, "
        "`qwen3_omni_moe_talker_text`, `qwen3_vl_moe_text`, `step3p5`, `unlimited_ocr_text`: no Auto class loads "
        "them alone; they are served through their composite model (the talker of Qwen3-Omni is not routed)"
    ),
    "encoder-decoder": "`nllb-moe`, `switch_transformers` (translation / T5-style, no decoder-only LM)",
    "not a language model": (
        "`dots3_note_vision_encoder` (a vision tower), `openai_privacy_filter` (token classifier), "
        "`vitpose_backbone` (pose estimation)"
    ),
}


def support_rows() -> list[tuple[str, str, str, str, str, str]]:
    """``(model_type, family, module, auto class, parity, steering)`` for every registered type, sorted."""
    from moeguard.adapters import adapter_for_model_type, supported_model_types
    from moeguard.models import auto_class_name
    from moeguard.testing import tiny_config

    rows = []
    for model_type in supported_model_types():
        adapter = adapter_for_model_type(model_type)
        assert adapter is not None
        module = type(adapter).__module__.rsplit(".", 1)[-1]
        auto = auto_class_name(tiny_config(model_type)).removeprefix("AutoModelFor")
        rows.append((model_type, adapter.family, module, auto, "fp32 + bf16", adapter.steering))
    return rows


def render() -> str:
    """The generated markdown (between, not including, the markers)."""
    rows = support_rows()
    families = {family for _, family, *_ in rows}
    lines = [
        f"{len(rows)} model types, {len(families)} adapters. In the tests every row is a tiny random model of its real "
        "config class, saved and reloaded, whose selected experts and weights equal what its experts module "
        "consumes (padded batch, float32 and bfloat16), and whose steering holds on every token as the last "
        "column says.",
        "",
        "| model type | routing family | adapter module | loaded as AutoModelFor… | parity tested | steering |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| `{t}` | {f} | `{m}` | {a} | {p} | {s} |" for t, f, m, a, p, s in rows]
    lines += ["", "Left out:", ""]
    lines += [f"- `{t}`: {why}." for t, why in LEFT_OUT.items()]
    lines += [f"- {kind}: {which}." for kind, which in NOT_LANGUAGE_MODELS.items()]
    return "\n".join(lines)


def replace_in(text: str, table: str) -> str:
    """``text`` with the part between :data:`START` and :data:`END` replaced by ``table``."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the file has no {START!r} ... {END!r} markers")
    return f"{head}{START}\n{table}\n{END}{tail}"


def generated_part(text: str) -> str:
    """The text between the markers of ``text`` (without the newlines next to them)."""
    _, start, rest = text.partition(START)
    part, end, _ = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the file has no {START!r} ... {END!r} markers")
    return part.strip("\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m moeguard.adapters.table", description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="rewrite the table between the markers of this file")
    args = parser.parse_args(argv)
    import transformers

    transformers.logging.set_verbosity_error()  # tiny configs trigger config-validation notes
    table = render()
    if args.write is None:
        sys.stdout.write(table + "\n")
        return
    args.write.write_text(replace_in(args.write.read_text(encoding="utf-8"), table), encoding="utf-8")


if __name__ == "__main__":
    main()
