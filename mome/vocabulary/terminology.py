"""3D Slicer terminology: the per-segment "TerminologyEntry" tag and MoME's terminology context file.

The one place that builds and parses the entry, for the ``.seg.nrrd`` writer and reader, the
training data's segment mapping and the Slicer modules (this module is pure Python, so the Slicer
panel imports it without the engine's heavy dependencies).

Slicer (5.x) stores a segment's codes as one string of seven ``~``-separated fields::

    <terminology context name>~<category>~<type>~<type modifier>
        ~<anatomic context name>~<anatomic region>~<anatomic region modifier>

where every code is a ``scheme^value^meaning`` triplet and an absent code is ``^^``. For Slicer to
show the codes in its terminology selector the context must be loaded; ``MoME.term.json`` (built by
:func:`build_terminology_context`, written by ``tools/build_vocabulary.py``) is that context.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from .classes import StructureClass
from .codes import Code

#: Names of the segment tags MoME reads and writes (Slicer segment tags, also ``SegmentN_Tags`` in a .seg.nrrd).
TERMINOLOGY_TAG = "TerminologyEntry"
ALGORITHM_TYPE_TAG = "DICOM.SegmentAlgorithmType"
ALGORITHM_NAME_TAG = "DICOM.SegmentAlgorithmName"

CONTEXT_NAME = "MoME - Mixture of Vision-Language Medical Experts"
#: Slicer's built-in context, for classes that MoME's own context does not list (known only from a package).
GENERAL_ANATOMY_CONTEXT_NAME = "Segmentation category and type - 3D Slicer General Anatomy list"
# Slicer's built-in anatomic context; it holds the organ codes our lesions refer to as their region.
ANATOMIC_CONTEXT_NAME = "Anatomic codes - DICOM master list"
CONTEXT_SCHEMA = "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/schemas/segment-context-schema.json#"
EMPTY_TRIPLET = "^^"
SEPARATOR = "~"


def _triplet(code: Code | None) -> str:
    return EMPTY_TRIPLET if code is None else code.slicer_triplet()


class Coded(Protocol):
    """Anything with a structure's codes: a :class:`StructureClass` or a ``SegmentDescriptor``."""

    category: Code
    type: Code
    type_modifier: Code | None
    anatomic_region: Code | None
    anatomic_region_modifier: Code | None


def slicer_terminology_entry(coded: Coded, context_name: str = CONTEXT_NAME) -> str:
    """The value of Slicer's ``TerminologyEntry`` segment tag for a class or segment descriptor.

    ``context_name`` names the terminology context listing its category and type: MoME's own for
    vocabulary classes, :data:`GENERAL_ANATOMY_CONTEXT_NAME` for codes MoME's context lacks.
    """
    return SEPARATOR.join(
        [
            context_name,
            _triplet(coded.category),
            _triplet(coded.type),
            _triplet(coded.type_modifier),
            ANATOMIC_CONTEXT_NAME,
            _triplet(coded.anatomic_region),
            _triplet(coded.anatomic_region_modifier),
        ]
    )


def parse_slicer_terminology_entry(entry: str) -> dict[str, Any]:
    """Read a ``TerminologyEntry`` string back into context names and codes (``None`` where empty)."""
    fields = entry.split(SEPARATOR)
    if len(fields) != 7:
        raise ValueError(f"a Slicer terminology entry has 7 '~'-separated fields, got {len(fields)}: {entry!r}")

    def code(text: str) -> Code | None:
        parts = text.split("^")
        if len(parts) != 3:
            raise ValueError(f"bad code triplet {text!r} in terminology entry")
        scheme, value, meaning = parts
        return Code(value=value, scheme=scheme, meaning=meaning) if value else None

    return {
        "context_name": fields[0],
        "category": code(fields[1]),
        "type": code(fields[2]),
        "type_modifier": code(fields[3]),
        "anatomic_context_name": fields[4],
        "anatomic_region": code(fields[5]),
        "anatomic_region_modifier": code(fields[6]),
    }


def _code_fields(code: Code) -> dict[str, Any]:
    return {"CodeMeaning": code.meaning, "CodingSchemeDesignator": code.scheme, "CodeValue": code.value}


def build_terminology_context(classes: Iterable[StructureClass], context_name: str = CONTEXT_NAME) -> dict[str, Any]:
    """A Slicer ``SegmentationCategoryTypeContextName`` document listing the codes of ``classes``.

    Slicer identifies a type by its code within a category, so classes sharing a type (left and
    right kidney; liver and kidney tumour, which differ only by anatomic region) become one type
    entry, with the sides as its modifiers.
    """
    categories: dict[str, dict[str, Any]] = {}
    types: dict[tuple[str, str], dict[str, Any]] = {}
    type_classes: dict[tuple[str, str], list[StructureClass]] = {}

    for cls in classes:
        cat = categories.setdefault(
            cls.category.value, {**_code_fields(cls.category), "showAnatomy": False, "Type": []}
        )
        # Lesions are coded as "Neoplasm" + anatomic region; the region selector must be shown.
        if cls.anatomic_region is not None:
            cat["showAnatomy"] = True
        tkey = (cls.category.value, cls.type.value)
        if tkey not in types:
            types[tkey] = _code_fields(cls.type)
            type_classes[tkey] = []
            cat["Type"].append(types[tkey])
        type_classes[tkey].append(cls)

    for tkey, members in type_classes.items():
        entry = types[tkey]
        modified = [c for c in members if c.type_modifier is not None]
        plain = [c for c in members if c.type_modifier is None]
        if plain or not modified:
            # One label for the type: the class's own name when it is the only one, else the code meaning.
            entry["3dSlicerLabel"] = plain[0].name if len(plain) == 1 else entry["CodeMeaning"].lower()
            entry["recommendedDisplayRGBValue"] = list((plain or members)[0].color)
        if modified:
            modifiers: dict[str, dict[str, Any]] = {}
            for c in modified:
                assert c.type_modifier is not None
                modifiers.setdefault(
                    c.type_modifier.value,
                    {
                        **_code_fields(c.type_modifier),
                        "3dSlicerLabel": c.name,
                        "recommendedDisplayRGBValue": list(c.color),
                    },
                )
            entry["Modifier"] = list(modifiers.values())

    for cat in categories.values():
        cat["Type"].sort(key=lambda t: t["CodeMeaning"].lower())
    return {
        "SegmentationCategoryTypeContextName": context_name,
        "@schema": CONTEXT_SCHEMA,
        "SegmentationCodes": {"Category": list(categories.values())},
    }
