"""The files of a model package, read without torch: a Slicer panel or ``mome models list`` can
show what is installed without loading any network code."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from .manifest import PackageIntegrityError

MODEL_JSON = "model.json"
WEIGHTS = "weights.safetensors"


class PackageFormatError(ValueError):
    """model.json is missing, unreadable or of an unsupported format version."""


def read_package_json(path: str | Path) -> dict[str, Any]:
    """model.json of a package folder or zip, without loading (or verifying) the weights."""
    path = Path(path)
    if path.is_dir():
        return json.loads((path / MODEL_JSON).read_text())
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(MODEL_JSON))
        return json.loads(zf.read(name))


def safe_extract(zf: zipfile.ZipFile, target: Path) -> None:
    for member in zf.namelist():
        dest = (target / member).resolve()
        if not str(dest).startswith(str(target.resolve())):
            raise PackageIntegrityError(f"refusing zip entry {member!r} that points outside the package")
    zf.extractall(target)


def package_root(folder: Path) -> Path:
    """Zips made by hand often wrap the package in one folder: accept both."""
    if (folder / MODEL_JSON).is_file():
        return folder
    subdirs = [p for p in folder.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and (subdirs[0] / MODEL_JSON).is_file():
        return subdirs[0]
    raise PackageFormatError("the zip holds no model.json; it is not a MoME model package")
