"""Normalising structure names so that the many ways people write them compare equal.

"Left Kidney", "kidney_left", "kidney-left", "L kidney", "lt. kidney" and "kidney (left)" must all
reach the same class. Two steps get there: :func:`normalize_name` removes case and punctuation
noise, and :func:`canonical_name` moves a laterality word, wherever it stands, to the front.
"""

from __future__ import annotations

import re

# Words (after normalisation) that state a side. Single letters are only read as a side when they
# stand alone, so "L1" (a vertebra) or "T12" are never mistaken for "left".
SIDE_WORDS: dict[str, str] = {
    "left": "left",
    "lt": "left",
    "l": "left",
    "right": "right",
    "rt": "right",
    "r": "right",
}

# Characters that carry no meaning in a structure name: separators people use instead of spaces
# and the brackets/dots of forms such as "kidney (left)" or "lt. kidney".
_NOISE = re.compile(r"[_\-/()\[\]{}.]+")
_SPACES = re.compile(r"\s+")


def normalize_name(text: str) -> str:
    """Lower-case ``text``, turn ``_ - / ( ) .`` into spaces and collapse runs of whitespace."""
    return _SPACES.sub(" ", _NOISE.sub(" ", text.lower())).strip()


def split_laterality(text: str) -> tuple[str | None, str]:
    """Split a normalised name into its side ("left"/"right"/None) and the rest.

    A name that states both sides ("left and right kidney") keeps its words and gets no side:
    it is not a single lateral structure and should not silently become one.
    """
    words = text.split()
    sides = {SIDE_WORDS[w] for w in words if w in SIDE_WORDS}
    if len(sides) != 1:
        return None, text
    rest = " ".join(w for w in words if w not in SIDE_WORDS)
    if not rest:  # "left" alone is not a structure; keep it as typed
        return None, text
    return sides.pop(), rest


def canonical_name(text: str) -> str:
    """The comparison form of a name: normalised, with any side word moved to the front.

    >>> canonical_name("Kidney_Left") == canonical_name("L kidney") == "left kidney"
    True
    """
    side, rest = split_laterality(normalize_name(text))
    return f"{side} {rest}" if side else rest


def slugify(text: str) -> str:
    """A snake_case identifier for ``text`` ("Left ureter (distal)" -> "left_ureter_distal")."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
