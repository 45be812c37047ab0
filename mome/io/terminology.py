"""Slicer's ``TerminologyEntry`` segment tag: building it from a descriptor and parsing it back.

The tag holds 7 ``~``-separated parts: terminology context name, category, type, type modifier,
anatomic context name, anatomic region, anatomic region modifier; each coded part is a
``scheme^value^meaning`` triplet (empty: ``^^``). See Slicer's developer guide, "Segmentations".
"""

from __future__ import annotations

from mome.vocabulary.codes import Code, SegmentDescriptor

TERMINOLOGY_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
_EMPTY = "^^"


def _triplet(code: Code | None) -> str:
    return code.slicer_triplet() if code is not None else _EMPTY


def _code(triplet: str) -> Code | None:
    parts = triplet.split("^")
    if len(parts) != 3 or not parts[1]:
        return None
    scheme, value, meaning = parts
    return Code(value=value, scheme=scheme, meaning=meaning)


def terminology_entry(segment: SegmentDescriptor, anatomic_region: Code | None = None) -> str:
    """The Slicer ``TerminologyEntry`` string for a segment descriptor."""
    return "~".join(
        [
            TERMINOLOGY_CONTEXT,
            _triplet(segment.category),
            _triplet(segment.type),
            _triplet(segment.type_modifier),
            ANATOMIC_CONTEXT,
            _triplet(anatomic_region),
            _EMPTY,
        ]
    )


def parse_terminology_entry(entry: str) -> dict[str, Code | str | None]:
    """Split a ``TerminologyEntry`` into its named parts (codes become :class:`Code` or None)."""
    parts = entry.split("~")
    parts += [""] * (7 - len(parts))
    return {
        "context": parts[0],
        "category": _code(parts[1]),
        "type": _code(parts[2]),
        "type_modifier": _code(parts[3]),
        "anatomic_context": parts[4],
        "anatomic_region": _code(parts[5]),
        "anatomic_region_modifier": _code(parts[6]),
    }


def escape_tag_value(value: str) -> str:
    """Make free text safe inside a Slicer tag list, where ``|`` separates tags."""
    return value.replace("|", "/").replace("\n", " ")
