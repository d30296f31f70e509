"""The README's Python blocks run as written (in one namespace, in order, in a scratch folder)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_has_python_blocks():
    assert python_blocks(README.read_text(encoding="utf-8"))


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for number, block in enumerate(python_blocks(README.read_text(encoding="utf-8")), start=1):
        exec(compile(block, f"README.md python block {number}", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "routing.safetensors").is_file()
