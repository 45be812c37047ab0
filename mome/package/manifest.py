"""SHA-256 manifests: written with every model package, checked before anything is loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST_NAME = "SHA256SUMS.json"


class PackageIntegrityError(RuntimeError):
    """A package file is missing or its content does not match the manifest."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, files: list[str]) -> Path:
    manifest = {name: sha256_file(folder / name) for name in sorted(files)}
    path = folder / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def verify_manifest(folder: Path) -> dict[str, str]:
    """Check every file listed in the manifest; raise ``PackageIntegrityError`` naming the culprit."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise PackageIntegrityError(
            f"{folder} has no {MANIFEST_NAME}: it is not a MoME model package, or it was damaged. "
            "Re-download or re-import the model"
        )
    manifest = json.loads(path.read_text())
    for name, expected in manifest.items():
        file = folder / name
        if not file.is_file():
            raise PackageIntegrityError(f"model package {folder} is missing {name}; re-download or re-import it")
        actual = sha256_file(file)
        if actual != expected:
            raise PackageIntegrityError(
                f"model package {folder}: {name} does not match its SHA-256 checksum "
                f"(expected {expected[:12]}…, found {actual[:12]}…). The file was modified or corrupted; "
                "it was not loaded. Re-download or re-import the model"
            )
    return manifest
