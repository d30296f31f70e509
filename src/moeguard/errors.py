"""The one exception type users see: a single line that names the problem and the fix."""

from __future__ import annotations


class MoeguardError(ValueError):
    """Bad input or an unsupported situation; the message is one line naming the problem and the fix.

    ``param`` names the library parameter at fault (e.g. ``"max_q"``); the CLI rewrites it to its flag
    (``--max-q``) from one table. The CLI prints the message to stderr and exits with code 2.
    """

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def parameter_error(param: str, problem: str) -> MoeguardError:
    """``MoeguardError("<param> <problem>", param=param)``: a problem with one named parameter."""
    return MoeguardError(f"{param} {problem}", param=param)
