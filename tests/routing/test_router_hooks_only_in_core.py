"""No router hook is installed anywhere outside moeguard/routing/ (the one place that touches routers)."""

from __future__ import annotations

import re
from pathlib import Path

import moeguard

PACKAGE = Path(moeguard.__file__).parent
HOOK_CALL = re.compile(r"register_forward_(pre_)?hook|register_module_forward_(pre_)?hook|_forward_hooks\[")


def test_no_forward_hooks_outside_the_routing_core():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "routing":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if HOOK_CALL.search(line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, "router hooks must go through moeguard.routing:\n" + "\n".join(offenders)


def test_the_check_finds_a_hook_when_there_is_one(tmp_path):
    sample = "handle = router.register_forward_hook(fn)\n"
    assert HOOK_CALL.search(sample) and not HOOK_CALL.search("tensor.register_hook(fn)\n")
