"""The structures MoME knows: one :class:`StructureClass` per structure, gathered in a :class:`Vocabulary`.

The data lives in ``Resources/Vocabulary/vocabulary.json`` (written by ``tools/build_vocabulary.py``,
which documents where every entry comes from). This module only reads it and answers questions about
it: which class has this key, which class does this user-typed name mean, what did they probably mean.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..resource_files import resource_path
from .codes import Code, SegmentDescriptor
from .names import WORD_SUGGESTION_CUTOFF, canonical_name, similar_spellings

KINDS = ("organ", "tumor", "cyst", "vessel", "bone", "muscle", "other")
LATERALITIES = ("left", "right")


@dataclass(frozen=True)
class StructureClass:
    """One segmentable structure: how to name it, prompt for it, code it and colour it."""

    key: str  # stable snake_case id, e.g. "kidney_left"
    name: str  # display name, e.g. "left kidney"
    prompt: str  # text for the CLIP template "A computerized tomography of a {prompt}"
    category: Code  # DICOM SegmentedPropertyCategoryCode
    type: Code  # DICOM SegmentedPropertyTypeCode
    color: tuple[int, int, int]  # 0-255 RGB
    kind: str = "organ"  # one of KINDS
    synonyms: tuple[str, ...] = ()
    laterality: str | None = None  # "left", "right" or None
    parent: tuple[str, ...] = ()  # organ keys a lesion lies in (tumours, cysts)
    type_modifier: Code | None = None  # e.g. Left / Right
    anatomic_region: Code | None = None  # where a lesion lies, e.g. Liver for a liver tumour
    anatomic_region_modifier: Code | None = None
    um_index: int | None = None  # 1-based class index in the CLIP-Driven Universal Model template
    totalseg: str | None = None  # TotalSegmentator v2 "total" class name
    totalseg_id: int | None = None  # its label value in TotalSegmentator's output
    free_text: bool = False  # made up from an unknown prompt; no model was trained on it

    def __post_init__(self) -> None:
        # Catch a malformed vocabulary file when it is loaded, not when a writer uses the class.
        if self.kind not in KINDS:
            raise ValueError(f"{self.key}: kind {self.kind!r} is not one of {KINDS}")
        if self.laterality not in (None, *LATERALITIES):
            raise ValueError(f"{self.key}: laterality {self.laterality!r} is not left/right/None")
        if len(self.color) != 3 or not all(0 <= int(c) <= 255 for c in self.color):
            raise ValueError(f"{self.key}: colour {self.color!r} is not three 0-255 values")

    def descriptor(self) -> SegmentDescriptor:
        """What the output writers need to describe this class's segment."""
        return SegmentDescriptor(
            key=self.key,
            name=self.name,
            color=self.color,
            category=self.category,
            type=self.type,
            type_modifier=self.type_modifier,
            anatomic_region=self.anatomic_region,
            anatomic_region_modifier=self.anatomic_region_modifier,
        )

    def all_names(self) -> tuple[str, ...]:
        """Every spelling that should find this class: key, name, prompt, TotalSegmentator name, synonyms."""
        names = [self.key, self.name, self.prompt, *self.synonyms]
        if self.totalseg:
            names.append(self.totalseg)
        return tuple(dict.fromkeys(names))  # drop repeats, keep order

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used in ``vocabulary.json``."""

        def code(c: Code | None) -> dict[str, str] | None:
            return None if c is None else c.to_dict()

        return {
            "key": self.key,
            "name": self.name,
            "prompt": self.prompt,
            "synonyms": list(self.synonyms),
            "laterality": self.laterality,
            "kind": self.kind,
            "parent": list(self.parent),
            "category": code(self.category),
            "type": code(self.type),
            "type_modifier": code(self.type_modifier),
            "anatomic_region": code(self.anatomic_region),
            "anatomic_region_modifier": code(self.anatomic_region_modifier),
            "color": list(self.color),
            "um_index": self.um_index,
            "totalseg": self.totalseg,
            "totalseg_id": self.totalseg_id,
            **({"free_text": True} if self.free_text else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StructureClass":
        return cls(
            key=data["key"],
            name=data["name"],
            prompt=data.get("prompt") or data["name"],
            synonyms=tuple(data.get("synonyms", ())),
            laterality=data.get("laterality"),
            kind=data.get("kind", "organ"),
            parent=tuple(data.get("parent", ())),
            category=Code.from_dict(data["category"]),
            type=Code.from_dict(data["type"]),
            type_modifier=Code.from_optional_dict(data.get("type_modifier")),
            anatomic_region=Code.from_optional_dict(data.get("anatomic_region")),
            anatomic_region_modifier=Code.from_optional_dict(data.get("anatomic_region_modifier")),
            color=tuple(int(c) for c in data["color"]),  # type: ignore[arg-type]
            um_index=data.get("um_index"),
            totalseg=data.get("totalseg"),
            totalseg_id=data.get("totalseg_id"),
            free_text=bool(data.get("free_text", False)),
        )


@dataclass
class Vocabulary:
    """An ordered, key-addressed collection of :class:`StructureClass` with name lookup."""

    classes: list[StructureClass]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_key: dict[str, StructureClass] = {}
        # canonical spelling -> key; every name of every class must point at exactly one class,
        # otherwise a prompt could silently pick the wrong one.
        self._index: dict[str, str] = {}
        for cls in self.classes:
            if cls.key in self._by_key:
                raise ValueError(f"duplicate vocabulary key {cls.key!r}")
            self._by_key[cls.key] = cls
            for name in cls.all_names():
                canon = canonical_name(name)
                owner = self._index.setdefault(canon, cls.key)
                if owner != cls.key:
                    raise ValueError(f"name {name!r} is ambiguous: it names both {owner!r} and {cls.key!r}")
        for cls in self.classes:
            missing = [p for p in cls.parent if p not in self._by_key]
            if missing:
                raise ValueError(f"{cls.key}: parent(s) {missing} are not in the vocabulary")

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Vocabulary":
        meta = {k: v for k, v in data.items() if k != "classes"}
        return cls([StructureClass.from_dict(c) for c in data["classes"]], meta)

    @classmethod
    def from_json(cls, path: str | Path) -> "Vocabulary":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    # -- container protocol -------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        """``"kidney_left" in vocabulary``; keys only (use :meth:`lookup` for free-form names)."""
        return key in self._by_key

    def __iter__(self) -> Iterator[StructureClass]:
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    def keys(self) -> list[str]:
        return [c.key for c in self.classes]

    def get(self, key: str) -> StructureClass:
        """The class with this exact key; ``KeyError`` naming close keys otherwise."""
        try:
            return self._by_key[key]
        except KeyError:
            near = difflib.get_close_matches(key, self._by_key, n=3)
            hint = f" (close: {', '.join(near)})" if near else ""
            raise KeyError(f"no structure with key {key!r}{hint}") from None

    # -- name resolution ----------------------------------------------------------------------

    def lookup(self, name: str) -> StructureClass | None:
        """The class a user-typed name means, or None.

        Case, spaces, hyphens, underscores, brackets and the position/abbreviation of the side
        ("kidney left", "L kidney", "lt kidney", "kidney (left)") do not matter.
        """
        key = self._index.get(canonical_name(name))
        return None if key is None else self._by_key[key]

    def closest(self, name: str, n: int = 5) -> list[StructureClass]:
        """Up to ``n`` classes whose names or synonyms look most like ``name`` (best first)."""
        query = canonical_name(name)
        found: list[StructureClass] = []

        def add(spellings: Iterable[str]) -> None:
            for spelling in spellings:
                cls = self._by_key[self._index[spelling]]
                if cls not in found:
                    found.append(cls)

        # Whole-name similarity catches typos ("livr"); shared words catch names that are right
        # but incomplete or extended ("heart ventricle" -> heart). Nothing looser: "banana" gets no
        # suggestion rather than "brain, pancreas" (see names.SUGGESTION_CUTOFF).
        add(similar_spellings(query, self._index, n=n * 4))
        words = {w for w in query.split() if len(w) > 2}
        known_words = {w for s in self._index for w in s.split()}
        words |= {m for w in words for m in similar_spellings(w, known_words, 1, WORD_SUGGESTION_CUTOFF)}
        add(s for s in self._index if words & set(s.split()))
        return found[:n]

    def um_classes(self) -> list[StructureClass]:
        """The 32 CLIP-Driven Universal Model classes, in their template index order."""
        return sorted((c for c in self.classes if c.um_index is not None), key=lambda c: c.um_index or 0)

    def totalseg_classes(self) -> list[StructureClass]:
        """The TotalSegmentator "total" classes, in their label-value order."""
        return sorted((c for c in self.classes if c.totalseg_id is not None), key=lambda c: c.totalseg_id or 0)


def default_vocabulary_path() -> Path:
    return resource_path("Vocabulary", "vocabulary.json")


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> Vocabulary:
    return Vocabulary.from_json(path)


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """Load a vocabulary file (default: the bundled one). Loaded files are cached by path.

    The result is shared between callers; treat it as read-only.
    """
    resolved = Path(path) if path is not None else default_vocabulary_path()
    return _load_cached(str(resolved.resolve()))
