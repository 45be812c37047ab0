"""Turning what the user typed ("Liver, spleen; left kidney") into vocabulary classes.

Rules, in the order they are tried for each comma/semicolon/newline-separated item:

1. the item names a class (any case, synonym, abbreviation or side position, see ``names.py``);
2. a plural is read as its singular ("kidney tumors" -> "kidney tumor");
3. a paired structure named without a side means both sides ("kidneys" -> left + right kidney);
4. otherwise the item is unknown: an :class:`UnknownStructureError` that suggests close names, or,
   when free text is allowed, an ad-hoc class with generic codes and a warning.

Repeats are dropped, keeping the first position, so "liver, Liver, hepar" segments the liver once.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .classes import StructureClass, Vocabulary
from .codes import Code
from .names import normalize_name, slugify, split_laterality

# Generic codes for structures the vocabulary does not know. "Anatomical Structure" is the category
# every vocabulary organ uses; SCT 91723000 "Anatomical structure" is the most general body-structure
# concept, so a free-text segment is coded truthfully as "some anatomical structure".
FREE_TEXT_CATEGORY = Code("123037004", "SCT", "Anatomical Structure")
FREE_TEXT_TYPE = Code("91723000", "SCT", "Anatomical structure")
SIDE_CODES = {"left": Code("7771000", "SCT", "Left"), "right": Code("24028007", "SCT", "Right")}

FREE_TEXT_KEY_PREFIX = "free_text_"

#: What separates prompts in one text: commas, semicolons and line breaks.
PROMPT_SEPARATORS = re.compile(r"[,;\n\r]+")


class UnknownStructureError(ValueError):
    """One or more prompts name no known structure. ``suggestions`` maps each to close known names."""

    def __init__(self, unknown: list[str], suggestions: dict[str, list[str]]):
        self.unknown = unknown
        self.suggestions = suggestions
        parts = []
        for text in unknown:
            near = suggestions.get(text) or []
            hint = f" Did you mean: {', '.join(near)}?" if near else ""
            parts.append(f"Unknown structure {text!r}.{hint}")
        parts.append("Run `mome classes` to list every known structure.")
        super().__init__(" ".join(parts))


@dataclass
class ParsedPrompts:
    """The outcome of :func:`parse_prompts`."""

    classes: list[StructureClass] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    free_text: list[str] = field(default_factory=list)  # the items that became free-text classes

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.classes]

    @property
    def prompts(self) -> list[str]:
        """The texts to embed, one per class, in class order."""
        return [c.prompt for c in self.classes]

    def __len__(self) -> int:
        return len(self.classes)


def split_prompt_text(text_or_list: str | Iterable[str]) -> list[str]:
    """Break the input into stripped, non-empty items (commas, semicolons and newlines separate)."""
    pieces = [text_or_list] if isinstance(text_or_list, str) else list(text_or_list)
    items: list[str] = []
    for piece in pieces:
        if not isinstance(piece, str):
            raise TypeError(f"prompts must be strings, got {type(piece).__name__}")
        items.extend(p.strip() for p in PROMPT_SEPARATORS.split(piece))
    return [item for item in items if item]


def parse_prompts(
    text_or_list: str | Iterable[str],
    vocabulary: Vocabulary,
    allow_free_text: bool = False,
) -> ParsedPrompts:
    """Resolve prompts to classes; see the module docstring for the rules.

    Raises ``ValueError`` when nothing was given and :class:`UnknownStructureError` (listing every
    unknown item at once, so the user can fix them all in one go) unless ``allow_free_text``.
    """
    items = split_prompt_text(text_or_list)
    if not items:
        raise ValueError("No structures given: type one or more names, e.g. 'liver, spleen, left kidney'.")

    result = ParsedPrompts()
    seen: set[str] = set()
    unknown: list[str] = []

    def add(cls: StructureClass) -> None:
        if cls.key not in seen:
            seen.add(cls.key)
            result.classes.append(cls)

    for item in items:
        resolved = resolve_item(item, vocabulary)
        if resolved:
            if len(resolved) > 1:
                names = " and ".join(c.name for c in resolved)
                result.warnings.append(f"{item!r} was read as both sides: {names}.")
            for cls in resolved:
                add(cls)
        elif allow_free_text:
            cls = free_text_class(item)
            if cls.key not in seen:
                result.free_text.append(item)
                result.warnings.append(
                    f"{item!r} is not a known structure; it is segmented from its text alone, which the "
                    "model was never trained on, so expect a poor or empty result."
                )
            add(cls)
        elif item not in unknown:
            unknown.append(item)

    if unknown:
        suggestions = {text: [c.name for c in vocabulary.closest(text)] for text in unknown}
        raise UnknownStructureError(unknown, suggestions)
    return result


def resolve_item(item: str, vocabulary: Vocabulary) -> list[StructureClass]:
    """The class(es) one prompt item means; empty when it means none."""
    for candidate in _spellings(item):
        cls = vocabulary.lookup(candidate)
        if cls is not None:
            return [cls]
    # A paired organ without a side ("lung", "adrenal glands") means both sides, but only when both
    # exist: "left"+"right" forms of the same words are then unambiguous.
    for candidate in _spellings(item):
        side, _ = split_laterality(normalize_name(candidate))
        if side is None:
            left = vocabulary.lookup(f"left {candidate}")
            right = vocabulary.lookup(f"right {candidate}")
            if left is not None and right is not None:
                return [left, right]
    return []


def _spellings(item: str) -> list[str]:
    """The item as typed, then with a plural last word made singular ("kidneys" -> "kidney")."""
    words = normalize_name(item).split()
    spellings = [item]
    if words and len(words[-1]) > 3 and words[-1].endswith("s") and not words[-1].endswith("ss"):
        last = words[-1]
        # "vessels" -> "vessel", "arteries" -> "artery"; good enough for anatomy plurals
        singular = last[:-3] + "y" if last.endswith("ies") else last[:-1]
        spellings.append(" ".join([*words[:-1], singular]))
    return spellings


def free_text_class(text: str) -> StructureClass:
    """An ad-hoc class for a name the vocabulary lacks: generic codes and a stable colour."""
    name = normalize_name(text)
    side, _ = split_laterality(name)
    return StructureClass(
        key=FREE_TEXT_KEY_PREFIX + (slugify(name) or "structure"),
        name=name,
        prompt=" ".join(text.split()),  # keep the user's wording for the text encoder
        category=FREE_TEXT_CATEGORY,
        type=FREE_TEXT_TYPE,
        type_modifier=SIDE_CODES.get(side) if side else None,
        laterality=side,
        color=text_color(name),
        kind="other",
        free_text=True,
    )


def text_color(text: str) -> tuple[int, int, int]:
    """A colour that depends only on ``text`` (same name, same colour in every run and process)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    hue = digest[0] / 255.0
    saturation = 0.55 + 0.35 * digest[1] / 255.0  # vivid enough to see on CT greys
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, 0.95)
    return (round(r * 255), round(g * 255), round(b * 255))
