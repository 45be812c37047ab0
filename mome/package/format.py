"""The content of ``model.json``: what a model package says about itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..vocabulary.codes import Code, SegmentDescriptor

FORMAT_NAME = "mome-model-package"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Preprocessing:
    """How a CT must be prepared for this model (the training pipeline uses the same values)."""

    orientation: str = "RAS"
    spacing: tuple[float, float, float] = (1.5, 1.5, 1.5)
    fast_spacing: tuple[float, float, float] = (3.0, 3.0, 3.0)
    hu_window: tuple[float, float] = (-175.0, 250.0)  # clipped, then scaled to [0, 1]
    patch_size: tuple[int, int, int] = (96, 96, 96)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class PackageClass:
    """One class the model knows, with everything needed to write it without the vocabulary."""

    key: str
    name: str
    prompt: str  # the text that was embedded (inside the prompt template)
    color: tuple[int, int, int]
    category: Code
    type: Code
    type_modifier: Code | None = None
    kind: str = "organ"
    parents: tuple[str, ...] = ()
    laterality: str | None = None

    def descriptor(self) -> SegmentDescriptor:
        return SegmentDescriptor(self.key, self.name, self.color, self.category, self.type, self.type_modifier)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "prompt": self.prompt,
            "color": list(self.color),
            "category": self.category.to_dict(),
            "type": self.type.to_dict(),
            "type_modifier": self.type_modifier.to_dict() if self.type_modifier else None,
            "kind": self.kind,
            "parents": list(self.parents),
            "laterality": self.laterality,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PackageClass":
        return cls(
            key=d["key"],
            name=d["name"],
            prompt=d["prompt"],
            color=tuple(d["color"]),
            category=Code.from_dict(d["category"]),
            type=Code.from_dict(d["type"]),
            type_modifier=Code.from_dict(d["type_modifier"]) if d.get("type_modifier") else None,
            kind=d.get("kind", "organ"),
            parents=tuple(d.get("parents", ())),
            laterality=d.get("laterality"),
        )

    @classmethod
    def from_structure(cls, structure: Any) -> "PackageClass":
        """From a ``mome.vocabulary.StructureClass``."""
        return cls(
            key=structure.key,
            name=structure.name,
            prompt=structure.prompt,
            color=tuple(structure.color),
            category=structure.category,
            type=structure.type,
            type_modifier=structure.type_modifier,
            kind=structure.kind,
            parents=tuple(structure.parent),
            laterality=structure.laterality,
        )


@dataclass
class PackageInfo:
    """Everything in model.json except the architecture and the classes."""

    name: str
    version: str
    description: str = ""
    text_encoder: str = "minilm-l6-v2"
    prompt_template: str = "A computerized tomography of a {name}"
    allows_free_text: bool = True
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # Per-class accuracy studies, as model.json stores them (read with mome.package.evidence).
    evidence: list[dict[str, Any]] = field(default_factory=list)
