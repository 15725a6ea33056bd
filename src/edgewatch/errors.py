"""The one error type users see: a message that names the problem and a hint that names the fix."""

from __future__ import annotations


class EdgewatchError(Exception):
    """A problem with the user's input or environment, reported as one line and exit code 2.

    Args:
        message: what went wrong, naming the file, key or address involved.
        hint: what the user can do about it.

    Example:
        >>> str(EdgewatchError("no such file: a.mp4", "check the path"))
        'no such file: a.mp4 (check the path)'
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
