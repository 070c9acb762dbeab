"""Exceptions tipl-opt raises for problems a user can fix.

Each message says what is wrong and what to do about it; the CLI prints it as it is.
"""

from __future__ import annotations


class TiplError(Exception):
    """Base class for every error tipl-opt raises on purpose."""


class PathFormatError(TiplError):
    """A learning-path file is truncated, inconsistent, non-finite or of an unknown version."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class PluginNotFoundError(TiplError):
    """An adapter or predictor was asked for by name but no installed plugin registers it."""


class ConfigError(TiplError):
    """A configuration value or file is invalid."""


class IncompatibleEnvError(TiplError):
    """The requested algorithm cannot train on the requested environment."""
