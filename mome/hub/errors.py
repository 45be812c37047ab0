"""Exceptions of the model hub. Each message says what happened and what to do, so the CLI and the
Slicer modules can show it as it is.

The base classes are chosen so that generic handlers already treat them as the user's problem:
``ValueError``/``PermissionError``/``OSError`` and the package integrity error.
"""

from __future__ import annotations

from ..package import PackageIntegrityError


class ModelNotFoundError(FileNotFoundError):
    """``--model`` names no installed or bundled model and no existing package path."""


class RegistryError(ValueError):
    """``Models.json`` is unreadable or an entry in it is malformed."""


class StoreError(ValueError):
    """A store operation that cannot be done as asked (remove the active model, nothing to roll back)."""


class ConsentRequiredError(PermissionError):
    """A download was needed but the user did not agree to it; nothing was sent over the network."""


class DownloadError(OSError):
    """The download failed (network, HTTP status) or delivered the wrong amount of data."""


class SizeMismatchError(DownloadError):
    """The downloaded file does not have the size the registry promises; it was deleted."""

    def __init__(self, message: str, expected: int, actual: int):
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class ChecksumMismatchError(PackageIntegrityError):
    """The downloaded file's SHA-256 differs from the registry's; it was deleted."""

    def __init__(self, message: str, expected: str, actual: str):
        super().__init__(message)
        self.expected = expected
        self.actual = actual
