"""Exceptions of the inference engine; their messages are meant to be shown to users as they are."""

from __future__ import annotations


class Cancelled(KeyboardInterrupt):
    """The caller's cancel event was set. A ``KeyboardInterrupt`` so that it takes the same clean
    path as Ctrl-C everywhere (no ``except Exception`` swallows it, temporary files are removed)."""


class ClassNotSupportedError(ValueError):
    """A requested class cannot be segmented with this model (no embedding, no free text)."""
