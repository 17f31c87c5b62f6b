"""The errors sodctl shows to users.

Bad input is never a traceback: the CLI turns a ``SodctlUsageError`` into one
line on stderr (``sodctl: error: <message>``) and exit status 2. Messages are a
single line that says what is wrong and how to fix it.
"""

from __future__ import annotations


class SodctlUsageError(Exception):
    """Bad user input: unknown config key, wrong type, missing file, unknown method or preset."""

    def __init__(self, message: str) -> None:
        # One line, always: a multi-line message would break the CLI's error contract.
        super().__init__(" ".join(line.strip() for line in message.splitlines()))

    @property
    def message(self) -> str:
        return str(self.args[0])
