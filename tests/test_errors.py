"""Every error class of minitf's for bad input derives from UserError, so the CLI (and a
script) catches one class and prints one line."""
import pytest

from minitf.backend import DeviceError
from minitf.cli import USER_ERRORS
from minitf.data import CorpusFormatError
from minitf.distributed import CommunicationError
from minitf.errors import ConfigError, InputError, TrainingError, UserError
from minitf.serialization import CheckpointError


@pytest.mark.parametrize("error", [ConfigError, InputError, TrainingError, CheckpointError, CorpusFormatError,
                                   DeviceError, CommunicationError])
def test_every_user_error_class_derives_from_user_error_and_keeps_its_builtin_base(error):
    assert issubclass(error, UserError)
    assert issubclass(error, (ValueError, RuntimeError))  # what callers caught before still catches it


def test_the_command_catches_user_errors_and_os_errors_only():
    assert set(USER_ERRORS) == {UserError, OSError}
