"""Listing the vocabulary for people (``mome classes``) and for programs (``mome classes --json``)."""

from __future__ import annotations

import json

from .classes import StructureClass, Vocabulary
from .codes import Code

_HEADERS = ("key", "name", "UM", "TotalSegmentator", "codes (category / type / modifier / region)", "synonyms")


def _code_text(code: Code | None) -> str:
    return "-" if code is None else f"{code.scheme} {code.value} {code.meaning}"


def _codes_text(cls: StructureClass) -> str:
    parts = [_code_text(cls.category), _code_text(cls.type), _code_text(cls.type_modifier)]
    if cls.anatomic_region is not None:
        region = _code_text(cls.anatomic_region)
        if cls.anatomic_region_modifier is not None:
            region += f" ({cls.anatomic_region_modifier.meaning})"
        parts.append(region)
    return " / ".join(parts)


def _row(cls: StructureClass) -> tuple[str, ...]:
    return (
        cls.key,
        cls.name,
        "" if cls.um_index is None else str(cls.um_index),
        cls.totalseg or "",
        _codes_text(cls),
        ", ".join(cls.synonyms),
    )


def format_classes_table(vocabulary: Vocabulary) -> str:
    """A plain-text table, one structure per line. The synonyms column comes last and is not padded,
    so long synonym lists only make lines longer instead of widening every column."""
    rows = [_HEADERS, *(_row(c) for c in vocabulary)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADERS) - 1)]

    def line(row: tuple[str, ...]) -> str:
        padded = [cell.ljust(w) for cell, w in zip(row[:-1], widths)]
        return "  ".join([*padded, row[-1]]).rstrip()

    rule = "  ".join("-" * w for w in widths) + "  " + "-" * len(_HEADERS[-1])
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


def classes_as_json(vocabulary: Vocabulary, indent: int | None = 2) -> str:
    """Every class in its ``vocabulary.json`` form, as a JSON list."""
    return json.dumps([c.to_dict() for c in vocabulary], indent=indent, ensure_ascii=False)
