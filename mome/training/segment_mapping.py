"""Map a Slicer segment to a vocabulary class: by terminology code first, then by name."""

from __future__ import annotations

from typing import Any

from ..vocabulary import Vocabulary
from ..vocabulary.terminology import TERMINOLOGY_TAG, parse_slicer_terminology_entry


def segment_class_key(segment: dict[str, Any], vocabulary: Vocabulary) -> str | None:
    """``segment`` has ``name`` and optionally ``terminology_entry`` (Slicer's TerminologyEntry tag).

    Codes win over names because users rename segments freely ("Segment_1", "liv") but Slicer
    keeps the terminology they picked. Returns ``None`` when nothing matches.
    """
    entry = segment.get("terminology_entry") or segment.get("tags", {}).get(TERMINOLOGY_TAG)
    if entry:
        try:
            codes = parse_slicer_terminology_entry(entry)
        except ValueError:
            codes = None
        if codes and codes["type"] is not None:
            matches = [
                c for c in vocabulary
                if c.type.value == codes["type"].value and c.type.scheme == codes["type"].scheme
                and _same(c.type_modifier, codes["type_modifier"])
                and _same(c.anatomic_region, codes["anatomic_region"])
            ]
            if len(matches) == 1:
                return matches[0].key
    found = vocabulary.lookup(str(segment.get("name", "")))
    return found.key if found else None


def _same(a, b) -> bool:
    return (a.value if a else None) == (b.value if b else None)
