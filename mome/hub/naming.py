"""How models are named: ``NAME`` or ``NAME@VERSION`` on the command line, and version ordering.

Names and versions become folder names in the store, so they are restricted to characters that are
safe as one path component on every platform (no separators, no leading dot, no ``..``).
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"name"`` → (name, None); ``"name@1.2.0"`` → (name, "1.2.0")."""
    name, sep, version = spec.strip().partition("@")
    if not name or (sep and not version):
        raise ValueError(f"{spec!r} is not a model name; write NAME or NAME@VERSION (e.g. mome-mini@0.1.0)")
    return name, version or None


def format_spec(name: str, version: str | None) -> str:
    return f"{name}@{version}" if version else name


def check_component(value: object, what: str) -> str:
    """``value`` if it is usable as a model name/version (one safe path component), else ValueError."""
    if not isinstance(value, str) or not _SAFE.match(value) or ".." in value:
        raise ValueError(
            f"{what} {value!r} is not allowed: use letters, digits and . _ + - only, starting with a letter "
            "or digit"
        )
    return value


def version_key(version: str) -> tuple:
    """Sort key putting versions in release order (PEP 440: 0.10.0 after 0.9.0, 1.0.0rc1 before 1.0.0).

    Versions that are not PEP 440 sort before all valid ones, among themselves by text, so an odd
    hand-made version never hides a real release as "newest".
    """
    try:
        return (1, Version(version), "")
    except InvalidVersion:
        return (0, Version("0"), version)
