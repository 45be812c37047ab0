"""Stand-in for PythonQt's ``ctk`` module (tests only): the same inert classes as ``qt``."""

from qt import __getattr__  # noqa: F401
