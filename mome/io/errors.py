"""Exceptions of the I/O layer, with messages meant to be shown to users as they are."""

from __future__ import annotations

from ..imaging.grid import GeometryMismatchError

__all__ = ["GeometryMismatchError", "ImageReadError", "first_error_line"]


class ImageReadError(ValueError):
    """An input image cannot be used; the message names the problem and how to fix it."""


def first_error_line(exc: BaseException) -> str:
    """The informative line of an ITK exception (its first lines are C++ source locations)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
