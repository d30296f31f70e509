"""The one exception type users see: a single line that names the problem and the fix."""


class MoeguardError(Exception):
    """Bad input or an unsupported situation; the message is one line naming the problem and the fix.

    The CLI prints it to stderr and exits with code 2.
    """
