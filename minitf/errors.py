"""Errors in what a user asked for, as opposed to bugs.

Every error class of minitf's for bad input derives from UserError: these, and the ones
other layers define for their own input (CheckpointError, CorpusFormatError, DeviceError,
distributed's CommunicationError). The `minitf` command prints a UserError (and an OSError)
as one `minitf: error: ...` line; any other exception is a bug and keeps its traceback.
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
