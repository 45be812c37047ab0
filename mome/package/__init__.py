"""Model packages: model.json + safetensors weights + SHA-256 manifest, as a folder or a .zip."""

from .format import PackageClass, PackageInfo, Preprocessing
from .manifest import PackageIntegrityError, sha256_file, verify_manifest
from .package import ModelPackage, PackageFormatError, read_package_json

__all__ = [
    "ModelPackage",
    "PackageClass",
    "PackageFormatError",
    "PackageInfo",
    "PackageIntegrityError",
    "Preprocessing",
    "read_package_json",
    "sha256_file",
    "verify_manifest",
]
