"""The errors a user can fix: the command line prints their message on one line and exits with code 2.

Everything that is the user's to fix (a bad prompt, a missing file, an unknown model, weights that cannot be
loaded, an output folder holding another run) raises a subclass of `UserError`, whose message says what is
wrong and what to do. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class UserError(ValueError):
    """Bad input or a bad environment, with a one-line message that says how to fix it."""


class UsageError(UserError):
    """A command line that cannot be parsed (an unknown option, a bad value): one line and a pointer to --help."""


class ModelLoadError(UserError, RuntimeError):
    """A model's weights could not be loaded (not in the cache and offline, unreadable, wrong format)."""


class RunStopped(RuntimeError):
    """A run was stopped by a signal (SIGINT, SIGTERM) after saving what had finished."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


__all__ = ["ModelLoadError", "RunStopped", "UsageError", "UserError"]
