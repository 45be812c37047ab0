"""Model packages: model.json + safetensors weights + SHA-256 manifest, as a folder or a .zip.

``ModelPackage`` (torch, the network) is imported on first use; the file-level helpers are light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .evidence import ClassStatus, Study, class_statuses, read_evidence
from .files import PackageFormatError, read_package_json
from .format import PackageClass, PackageInfo, Preprocessing
from .manifest import PackageIntegrityError, sha256_file, verify_manifest

if TYPE_CHECKING:
    from .package import ModelPackage


def __getattr__(name: str):
    if name == "ModelPackage":
        return importlib.import_module(".package", __name__).ModelPackage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ClassStatus",
    "ModelPackage",
    "PackageClass",
    "PackageFormatError",
    "PackageInfo",
    "PackageIntegrityError",
    "Preprocessing",
    "Study",
    "class_statuses",
    "read_evidence",
    "read_package_json",
    "sha256_file",
    "verify_manifest",
]
