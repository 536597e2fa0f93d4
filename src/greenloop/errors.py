"""Errors a user can cause. Each becomes one clear line on stderr and exit code 2.

Bugs are ordinary exceptions and end with exit code 70 (see greenloop.cli).
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: bad config, bad input file, unreachable tracker URL."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled whole (the early gate check's child process hands errors back this way).
        return (type(self), (self.message,), dict(self.__dict__))


class ConfigError(UserError):
    """The config file is missing, malformed or names something that does not exist."""

    def __init__(self, file: str, key: str, expected: str) -> None:
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {expected}")
        self.file = file
        self.key = key
        self.expected = expected

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.file, self.key, self.expected), dict(self.__dict__))


class InputError(UserError):
    """An input file (JUnit XML, log file, tracker reply) could not be read."""


class NotBuiltYet(UserError):
    """A verb whose stage does not exist yet says so instead of pretending."""
