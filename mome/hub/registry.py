"""The model registry: ``Resources/Models.json``, the list of models MoME knows how to obtain.

Each entry names one version of one model and where its package comes from: a URL with the
expected SHA-256 and size of the .zip (so a download can be verified before anything is
installed), and/or a package bundled with MoME under ``Resources/`` (``"bundled"``). Bundled
entries may leave ``sha256``/``size`` as ``null``: the bundled package is checked by its own
manifest, and a checksum is only needed to download. Entries with a URL must carry both, so no
download can ever go unverified.

``$MOME_REGISTRY`` replaces the file, e.g. with a site's list of models on an internal mirror.
The file is a JSON list::

    [{"name": "mome-mini", "version": "0.1.0", "url": null, "sha256": null, "size": null,
      "description": "...", "license": "Apache-2.0", "classes": ["liver", ...],
      "bundled": "Models/mome-mini"}]
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..resource_files import resource_path
from .errors import RegistryError
from .naming import check_component, version_key

REGISTRY_FILE = "Models.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = {"name", "version", "url", "sha256", "size", "description", "license", "classes", "bundled"}


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    version: str
    url: str | None
    sha256: str | None
    size: int | None
    description: str = ""
    license: str = ""
    classes: tuple[str, ...] = ()
    bundled: str | None = None  # path relative to Resources/, e.g. "Models/mome-mini"

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def downloadable(self) -> bool:
        return bool(self.url and self.sha256 and self.size)

    def size_text(self) -> str:
        """Human-readable download size, e.g. ``"15.9 MB"`` (``"unknown size"`` when not given)."""
        return f"{self.size / 1e6:.1f} MB" if self.size else "unknown size"

    def download_hint(self) -> str:
        """The command that installs this entry, with what it will fetch."""
        return f"mome models download {self.spec} ({self.size_text()} from {self.url})"


def default_registry_file() -> Path:
    """``$MOME_REGISTRY`` if set (a site's own list, e.g. of models on an internal mirror), else
    the ``Resources/Models.json`` that ships with MoME."""
    override = os.environ.get("MOME_REGISTRY")
    return Path(override).expanduser() if override else resource_path(REGISTRY_FILE)


def load_registry(path: str | Path | None = None) -> list[RegistryEntry]:
    """Entries of ``path`` (default: :func:`default_registry_file`), in file order.

    Raises ``RegistryError`` naming the file and the entry for anything malformed: a broken
    registry must not silently hide models or allow an unverified download.
    """
    path = Path(path) if path is not None else default_registry_file()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"model registry {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"model registry {path} is not readable JSON: {exc}") from exc
    if not isinstance(data, list):
        raise RegistryError(f"model registry {path} must hold a JSON list of models, not {type(data).__name__}")
    entries: list[RegistryEntry] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(data):
        where = f"model registry {path}, entry {index + 1}"
        try:
            entry = _parse_entry(item)
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"{where}: {exc}") from exc
        if (entry.name, entry.version) in seen:
            raise RegistryError(f"{where}: {entry.spec} is listed twice")
        seen.add((entry.name, entry.version))
        entries.append(entry)
    return entries


def find_entry(entries: list[RegistryEntry], name: str, version: str | None = None) -> RegistryEntry | None:
    """The entry for ``name`` at ``version``, or its newest version when ``version`` is None."""
    matches = [e for e in entries if e.name == name and (version is None or e.version == version)]
    return max(matches, key=lambda e: version_key(e.version)) if matches else None


def _parse_entry(item: Any) -> RegistryEntry:
    if not isinstance(item, dict):
        raise TypeError(f"must be a JSON object, not {type(item).__name__}")
    unknown = set(item) - _FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    name = check_component(item.get("name"), "name")
    if "@" in name:
        raise ValueError(f"name {name!r} must not contain '@'")
    version = check_component(item.get("version"), "version")
    url = _optional(item, "url", str)
    sha256 = _optional(item, "sha256", str)
    size = _optional(item, "size", int)
    bundled = _optional(item, "bundled", str)
    if url is not None and not url.startswith(("https://", "http://")):
        raise ValueError(f"url {url!r} must be an http(s) URL")
    if sha256 is not None and not _SHA256.match(sha256):
        raise ValueError(f"sha256 {sha256!r} must be 64 lower-case hexadecimal digits")
    if size is not None and (isinstance(size, bool) or size <= 0):
        raise ValueError(f"size {size!r} must be a positive number of bytes")
    if bundled is not None:
        parts = PurePosixPath(bundled).parts
        if not parts or PurePosixPath(bundled).is_absolute() or ".." in parts or "\\" in bundled:
            raise ValueError(f"bundled {bundled!r} must be a relative path under Resources/ using '/'")
    if bundled is None and url is None:
        raise ValueError(f"{name}@{version} has neither a url nor a bundled package: there is no way to get it")
    if url is not None and (sha256 is None or size is None):
        # null placeholders are only for bundled packages without a download; a URL is never
        # fetched without the checksum and size to verify it against.
        raise ValueError(f"{name}@{version} has a url, so it needs both sha256 and size (not null)")
    classes = item.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise TypeError("classes must be a list of class keys (strings)")
    return RegistryEntry(
        name=name,
        version=version,
        url=url,
        sha256=sha256,
        size=size,
        description=_optional(item, "description", str) or "",
        license=_optional(item, "license", str) or "",
        classes=tuple(classes),
        bundled=bundled,
    )


def _optional(item: dict[str, Any], key: str, kind: type) -> Any:
    value = item.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise TypeError(f"{key} must be {kind.__name__} or null, not {type(value).__name__}")
    return value
