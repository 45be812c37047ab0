"""Normalising structure names so that the many ways people write them compare equal.

"Left Kidney", "kidney_left", "kidney-left", "L kidney", "lt. kidney" and "kidney (left)" must all
reach the same class. Two steps get there: :func:`normalize_name` removes case and punctuation
noise, and :func:`canonical_name` moves a laterality word, wherever it stands, to the front.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

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


#: How alike (difflib's ratio, 0..1) a known spelling must be to be offered as "Did you mean".
#: 0.6 catches typos ("livr" → liver: 0.89, "spleeen" → spleen: 0.92) and keeps unrelated words out
#: ("banana" → pancreas is 0.43, → brain 0.55): a suggestion that makes no sense is worse than none.
SUGGESTION_CUTOFF = 0.6
#: The same for one misspelt word inside a name ("kidnye" → kidney: 0.83); stricter, because short
#: words are alike by chance ("banana" → canal: 0.73).
WORD_SUGGESTION_CUTOFF = 0.8


def similar_spellings(query: str, spellings: Iterable[str], n: int, cutoff: float = SUGGESTION_CUTOFF) -> list[str]:
    """The up to ``n`` spellings most like ``query`` (canonical forms), best first, above ``cutoff``."""
    return difflib.get_close_matches(canonical_name(query), list(spellings), n=n, cutoff=cutoff)
