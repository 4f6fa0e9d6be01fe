"""Errors that reach the user as a clear message rather than a traceback."""

from __future__ import annotations

from dataclasses import dataclass


class KnsError(Exception):
    """A problem the user can fix (bad input, missing file, wrong option)."""


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file, located as precisely as we can."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class DataValidationError(KnsError):
    """Raised with every problem found, so that one run reports them all."""

    def __init__(self, problems: list[Problem], limit: int = 200):
        self.problems = list(problems)
        shown = [str(p) for p in self.problems[:limit]]
        more = len(self.problems) - len(shown)
        if more > 0:
            shown.append(f"... and {more} more problems")
        super().__init__(f"{len(self.problems)} problem(s) in the input:\n" + "\n".join(shown))


def invalid_utf8_message(raw: bytes, err: UnicodeDecodeError) -> str:
    """What is wrong with a line that is not UTF-8: the offending byte and its 1-based byte
    column (the same words for IOB2 files, prediction input and server request bodies)."""
    return f"invalid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
