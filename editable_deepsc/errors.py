"""Exceptions that describe bad input. The CLI turns each into a one-line message and exit code 2."""

from __future__ import annotations


class EdscError(Exception):
    """Base class of every user-facing error (bad input, unusable model, refused request)."""

    exit_code = 2


class BadInput(EdscError, ValueError):
    """An argument is out of range or malformed (SNR, CBR, channel name, ...)."""


class ImageError(BadInput):
    """An image file cannot be read, is empty, or has an unusable size."""


class ImageTooLarge(ImageError):
    """An image declares more pixels than the budget (checked before decoding)."""


class NoFaceFound(EdscError):
    """No face was detected in a user photo."""


class UnsupportedInstruction(EdscError):
    """An instruction asks for an edit the model cannot perform.

    Attributes
    ----------
    supported : list of str
        What can be asked for instead.
    nearest : str or None
        The nearest supported edit, if any.
    """

    def __init__(self, message: str, supported: list[str] | None = None, nearest: str | None = None):
        super().__init__(message)
        self.supported = list(supported or [])
        self.nearest = nearest


class CheckpointError(EdscError):
    """A checkpoint is missing, corrupt, has the wrong shapes or a sha256 mismatch."""
