"""Model packages: a folder (or the same as a .zip) holding model.json, safetensors weights and a
SHA-256 manifest. Loading verifies the manifest first and never unpickles anything.

Layout::

    model.json            format, architecture, preprocessing, classes, provenance, metrics and
                          per-class accuracy evidence (``evidence``, see evidence.py)
    weights.safetensors   network state ("model.*") + class text embeddings ("class_embeddings")
    SHA256SUMS.json       checksums of the two files above
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..model import MoME, MoMEConfig
from .format import FORMAT_NAME, FORMAT_VERSION, PackageClass, PackageInfo, Preprocessing
from .files import MODEL_JSON, WEIGHTS, PackageFormatError, package_root, read_package_json, safe_extract
from .manifest import PackageIntegrityError, verify_manifest, write_manifest

EMBEDDINGS_KEY = "class_embeddings"
# Buffers the network rebuilds identically in __init__: storing them would add ~7 MB of int64 indices.
DERIVED_BUFFER_SUFFIXES = ("relative_position_index",)


@dataclass
class ModelPackage:
    info: PackageInfo
    config: MoMEConfig
    preprocessing: Preprocessing
    classes: list[PackageClass]
    class_embeddings: torch.Tensor  # K×text_dim, raw text-encoder outputs, in class order
    state_dict: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_model(cls, model: MoME, info: PackageInfo, preprocessing: Preprocessing,
                   classes: list[PackageClass], class_embeddings: torch.Tensor) -> "ModelPackage":
        if class_embeddings.shape != (len(classes), model.config.text_dim):
            raise ValueError(
                f"class_embeddings must be {len(classes)}×{model.config.text_dim}, got {tuple(class_embeddings.shape)}"
            )
        state = {
            k: v.detach().cpu().clone()
            for k, v in model.state_dict().items()
            if not k.endswith(DERIVED_BUFFER_SUFFIXES)
        }
        return cls(info, model.config, preprocessing, list(classes), class_embeddings.detach().cpu().float(), state)

    def build_model(self, device: str | torch.device = "cpu") -> MoME:
        model = MoME(self.config)
        state = {k: v.float() if v.is_floating_point() else v for k, v in self.state_dict.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith(DERIVED_BUFFER_SUFFIXES)]
        if missing or unexpected:
            raise PackageFormatError(
                f"weights do not fit the architecture in model.json (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}); the package is inconsistent"
            )
        return model.to(device).eval()

    # ----------------------------------------------------------------- classes
    @property
    def class_keys(self) -> list[str]:
        return [c.key for c in self.classes]

    def class_by_key(self, key: str) -> PackageClass:
        for c in self.classes:
            if c.key == key:
                return c
        raise KeyError(key)

    def embeddings_for(self, keys: list[str]) -> torch.Tensor:
        index = {c.key: i for i, c in enumerate(self.classes)}
        missing = [k for k in keys if k not in index]
        if missing:
            raise KeyError(f"model {self.info.name} was not trained on {missing}")
        return self.class_embeddings[[index[k] for k in keys]]

    def with_version(self, version: str, **info_changes: Any) -> "ModelPackage":
        return replace(self, info=replace(self.info, version=version, **info_changes))

    # ----------------------------------------------------------------- save
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "name": self.info.name,
            "version": self.info.version,
            "description": self.info.description,
            "architecture": self.config.to_dict(),
            "text": {
                "encoder": self.info.text_encoder,
                "template": self.info.prompt_template,
                "allows_free_text": self.info.allows_free_text,
            },
            "preprocessing": self.preprocessing.to_dict(),
            "classes": [c.to_dict() for c in self.classes],
            "provenance": self.info.provenance,
            "metrics": self.info.metrics,
            "evidence": self.info.evidence,
        }

    def save(self, path: str | Path, dtype: torch.dtype | None = None, overwrite: bool = False) -> Path:
        """Write a folder, or a .zip when ``path`` ends with .zip; atomically, never over an existing one
        unless ``overwrite``. ``dtype=torch.float16`` halves the size of shipped weights."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; choose a new version or pass overwrite=True")
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".mome-save-") as tmp:
            folder = Path(tmp) / "package"
            folder.mkdir()
            self._write_folder(folder, dtype)
            if path.suffix == ".zip":
                staged = Path(tmp) / "package.zip"
                with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as zf:
                    for file in sorted(folder.iterdir()):
                        zf.write(file, file.name)
            else:
                staged = folder
            if path.exists():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            staged.replace(path)
        return path

    def _write_folder(self, folder: Path, dtype: torch.dtype | None) -> None:
        tensors = {}
        for k, v in self.state_dict.items():
            v = v.contiguous()
            tensors[f"model.{k}"] = v.to(dtype) if dtype is not None and v.is_floating_point() else v
        tensors[EMBEDDINGS_KEY] = self.class_embeddings.contiguous()
        save_file(tensors, str(folder / WEIGHTS), metadata={"format": FORMAT_NAME})
        (folder / MODEL_JSON).write_text(json.dumps(self.to_json(), indent=2) + "\n")
        write_manifest(folder, [MODEL_JSON, WEIGHTS])

    # ----------------------------------------------------------------- load
    @classmethod
    def load(cls, path: str | Path) -> "ModelPackage":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"model package {path} does not exist")
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise PackageFormatError(f"{path} is neither a model package folder nor a .zip of one")
            with tempfile.TemporaryDirectory(prefix="mome-package-") as tmp:
                with zipfile.ZipFile(path) as zf:
                    safe_extract(zf, Path(tmp))
                return cls._load_folder(package_root(Path(tmp)))
        return cls._load_folder(path)

    @classmethod
    def _load_folder(cls, folder: Path) -> "ModelPackage":
        verify_manifest(folder)
        try:
            meta = json.loads((folder / MODEL_JSON).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PackageFormatError(f"{folder / MODEL_JSON} is unreadable: {exc}") from exc
        if meta.get("format") != FORMAT_NAME:
            raise PackageFormatError(f"{folder} is not a MoME model package (format {meta.get('format')!r})")
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise PackageFormatError(
                f"{folder} uses package format {meta['format_version']}; this MoME reads up to "
                f"{FORMAT_VERSION}. Upgrade MoME (`pip install -U mome-seg`)"
            )
        tensors = load_file(str(folder / WEIGHTS))  # safetensors: plain tensors, no code
        state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        text = meta.get("text", {})
        info = PackageInfo(
            name=meta["name"],
            version=meta["version"],
            description=meta.get("description", ""),
            text_encoder=text.get("encoder", "minilm-l6-v2"),
            prompt_template=text.get("template", PackageInfo.prompt_template),
            allows_free_text=text.get("allows_free_text", True),
            provenance=meta.get("provenance", {}),
            metrics=meta.get("metrics", {}),
            evidence=meta.get("evidence", []),
        )
        return cls(
            info=info,
            config=MoMEConfig.from_dict(meta["architecture"]),
            preprocessing=Preprocessing.from_dict(meta["preprocessing"]),
            classes=[PackageClass.from_dict(c) for c in meta["classes"]],
            class_embeddings=tensors[EMBEDDINGS_KEY].float(),
            state_dict=state,
        )


__all__ = ["ModelPackage", "PackageFormatError", "PackageIntegrityError", "read_package_json"]
