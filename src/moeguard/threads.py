"""CPU threads for torch when other work shares the cores.

torch starts one thread per core; when another CPU-bound process runs, those threads time-slice against it
and small-batch work (generation on a small model) slows down many times over. ``choose_threads("auto")``
takes the cores that are free by the 1-minute load average (at least one).
"""

from __future__ import annotations

import os

from moeguard.errors import MoeguardError


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_threads(setting: str | int | None = "auto") -> int:
    """``auto``: the free cores (cores minus the rounded 1-minute load average, at least 1); a number: itself."""
    cores = available_cores()
    if setting is None or setting == "auto":
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return cores
        return max(1, min(cores, cores - round(load)))
    try:
        threads = int(setting)
    except ValueError:
        raise MoeguardError(f"--threads must be a number or auto, got {setting!r}", param="threads") from None
    if threads < 1:
        raise MoeguardError(f"--threads must be at least 1, got {threads}", param="threads")
    return threads


def apply_threads(setting: str | int | None = "auto") -> int:
    """Set torch's intra-op threads per :func:`choose_threads`; returns the number set."""
    import torch

    threads = choose_threads(setting)
    torch.set_num_threads(threads)
    return threads
