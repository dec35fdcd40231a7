"""Errors that carry a message an artist can act on.

Every error the user may see derives from InpaintStudioError and its message is one sentence that says
what happened and what to do. The CLI maps the classes onto exit codes; the GUI shows the message.
"""

from __future__ import annotations


class InpaintStudioWarning(UserWarning):
    """Warnings of this project (turned into errors by the test suite)."""


class InpaintStudioError(Exception):
    """Base class: str(error) is a complete, user-facing sentence."""

    exit_code = 1


class BadInputError(InpaintStudioError, ValueError):
    """An input file or parameter cannot be used (CLI exit code 2)."""

    exit_code = 2


class EmptyMaskError(BadInputError):
    """The mask selects nothing, so there is nothing to inpaint."""


class ModelUnavailableError(InpaintStudioError):
    """The model is not installed, cannot be downloaded, or is not a usable model (CLI exit code 3)."""

    exit_code = 3


class CancelledError(InpaintStudioError):
    """The user cancelled the operation (CLI exit code 130)."""

    exit_code = 130

    def __init__(self, message: str = "Cancelled by the user; nothing was changed.") -> None:
        super().__init__(message)


class OutOfMemoryError(InpaintStudioError):
    """The device ran out of memory; the engine freed what it could and stays usable."""

    exit_code = 4


class EngineError(InpaintStudioError):
    """Any other failure inside the engine, already phrased for the user."""

    exit_code = 1
