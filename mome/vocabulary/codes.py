"""Coded concepts (DICOM / SNOMED CT) and the description of one output segment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """A coded concept as DICOM writes it: (CodeValue, CodingSchemeDesignator, CodeMeaning)."""

    value: str
    scheme: str
    meaning: str

    def to_dict(self) -> dict[str, str]:
        return {"value": self.value, "scheme": self.scheme, "meaning": self.meaning}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> "Code":
        return cls(value=str(data["value"]), scheme=str(data["scheme"]), meaning=str(data["meaning"]))

    @classmethod
    def from_optional_dict(cls, data: dict[str, str] | None) -> "Code | None":
        """``from_dict`` that passes ``None`` (an absent optional code) through."""
        return None if data is None else cls.from_dict(data)

    def slicer_triplet(self) -> str:
        """The ``scheme^value^meaning`` form Slicer's terminology tags use."""
        return f"{self.scheme}^{self.value}^{self.meaning}"


@dataclass(frozen=True)
class SegmentDescriptor:
    """What every writer (label map, .seg.nrrd, DICOM-SEG, Slicer node) needs to know of a segment."""

    key: str  # stable identifier, e.g. "kidney_left"
    name: str  # display name, e.g. "left kidney"
    color: tuple[int, int, int]  # 0-255 RGB
    category: Code
    type: Code
    type_modifier: Code | None = None
    # Where a lesion sits (e.g. Neoplasm *in* the Liver): DICOM's AnatomicRegionSequence and its modifier.
    anatomic_region: Code | None = None
    anatomic_region_modifier: Code | None = None
