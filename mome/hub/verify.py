"""Checking a model package's files against its SHA-256 manifest without loading the weights.

``mome models verify`` and the store use this: it names the first file that is missing or
modified, works on a package folder or a .zip of one, and costs one read of each file.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from ..package import PackageFormatError, verify_manifest
from ..package.files import package_root, safe_extract


def unpack_zip(zip_path: Path, target: Path) -> Path:
    """Extract a package .zip into ``target`` (refusing entries that escape it); return the folder
    holding ``model.json`` (zips made by hand often wrap the package in one folder)."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            safe_extract(zf, target)
    except zipfile.BadZipFile as exc:
        raise PackageFormatError(f"{zip_path} is not a readable .zip ({exc}); re-download or re-export it") from exc
    return package_root(target)


def verify_package(path: str | Path) -> dict[str, str]:
    """The manifest (file → SHA-256) of the package folder or .zip at ``path``, once every listed
    file matched; ``PackageIntegrityError`` naming the bad file otherwise."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model package {path} does not exist")
    if path.is_dir():
        return verify_manifest(path)
    with tempfile.TemporaryDirectory(prefix="mome-verify-") as tmp:
        return verify_manifest(unpack_zip(path, Path(tmp)))
