"""Errors caused by the user's input. Entry points print them as one paragraph and exit 2.

Each subclasses the built-in exception a caller would expect (ValueError, FileNotFoundError,
...), so code that catches those keeps working.
"""

from __future__ import annotations


class UserInputError(Exception):
    """Bad input from the user: a config value, a file, or a checkpoint that does not fit."""


class ConfigError(UserInputError, ValueError):
    """A config key or value that is unknown, of the wrong type, or inconsistent with another."""


class DataError(UserInputError, ValueError):
    """Input data that cannot be used: invalid encoding, too short, malformed records."""


class MissingInputError(UserInputError, FileNotFoundError):
    """A file, glob or download that yields nothing."""


class DirectoryInputError(UserInputError, IsADirectoryError):
    """A directory given where a file is needed."""


class UnreadableInputError(UserInputError, PermissionError):
    """A file that exists but cannot be read."""


class CheckpointMismatchError(UserInputError, ValueError):
    """A checkpoint or tokenizer that does not fit the configured model."""


class TrainingDivergedError(UserInputError, RuntimeError):
    """The loss became NaN or infinite."""


class MissingDependencyError(UserInputError, ImportError):
    """An optional package a chosen feature needs is not installed; the message names the extra."""


# The exit status of a command refused for bad input (the entry points print the error as one paragraph).
USER_ERROR_STATUS = 2
