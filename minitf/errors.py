"""Errors in what a user asked for, as opposed to bugs.

The `minitf` command prints a UserError (and an OSError, the error classes that other
layers define for their own input: CheckpointError, CorpusFormatError, DeviceError, and
distributed's CommunicationError) as one `minitf: error: ...` line; any other exception is a
bug and keeps its traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """Something the user asked for cannot be done; the message says what and why."""


class ConfigError(UserError, ValueError):
    """A setting that is missing, of the wrong type or out of range (the message names it)."""


class InputError(UserError, ValueError):
    """Input text or data that cannot be used (the message names the sentence or file)."""


class TrainingError(UserError, RuntimeError):
    """Training cannot go on, e.g. the loss or the gradient norm is no longer finite."""
