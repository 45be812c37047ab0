"""A dataset's own label names → vocabulary keys.

Most names resolve through the vocabulary itself (``Vocabulary.lookup``: case, punctuation, synonyms
and the side word's position do not matter: "Kidney (L)", "kidney_left", "L kidney"). What it cannot
know is context: a decathlon task calls its lesion just "cancer" or "tumour", and which organ that
is follows from the task ("Liver") or from the dataset's other label ("kidney", "tumor", "cyst" in
KiTS). ``resolve_names`` adds that, and nothing else: a name it cannot place maps to None and is
reported as unmapped, never guessed.
"""

from __future__ import annotations

import re

from ..vocabulary import Vocabulary, normalize_name

LESION_WORDS = frozenset({"tumor", "tumour", "tumors", "tumours", "cancer", "cancers", "neoplasm", "lesion",
                          "lesions", "mass", "metastasis", "metastases", "primaries", "primary"})
CYST_WORDS = frozenset({"cyst", "cysts"})
NULL_WORDS = frozenset({"null", "none", "-", ""})


class MappingError(ValueError):
    """A user-given ``NAME=KEY`` mapping that names no vocabulary class."""


def split_camel(text: str) -> str:
    """"HepaticVessel" -> "Hepatic Vessel" (decathlon task names)."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)


def _is_lesion(words: set[str]) -> bool:
    return bool(words & (LESION_WORDS | CYST_WORDS))


def resolve_names(names: list[str], vocabulary: Vocabulary, context: str = "",
                  overrides: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """Vocabulary key (or None) for each source label name.

    ``context`` is what the dataset is about (a decathlon task name, e.g. "Liver"); ``overrides`` maps
    source names (compared after normalisation) to keys, or to None to leave a label unmapped.
    """
    overrides = {normalize_name(k): v for k, v in (overrides or {}).items()}
    for key in overrides.values():
        if key is not None and key not in vocabulary:
            near = ", ".join(c.key for c in vocabulary.closest(key, 3))
            raise MappingError(f"--map gives {key!r}, which is not a vocabulary key (closest: {near}); "
                               "see `mome classes`")
    organs = [n for n in names if not _is_lesion(set(normalize_name(n).split()))]
    contexts = [normalize_name(split_camel(context))] if context else []
    if len(organs) == 1:  # "tumor" next to a lone "kidney" is a kidney tumour
        contexts.insert(0, normalize_name(organs[0]))
    return {n: _resolve(n, vocabulary, contexts, overrides) for n in names}


def _resolve(name: str, vocabulary: Vocabulary, contexts: list[str], overrides: dict[str, str | None]) -> str | None:
    norm = normalize_name(name)
    if norm in overrides:
        return overrides[norm]
    found = vocabulary.lookup(name)
    if found is not None:
        return found.key
    words = norm.split()
    if _is_lesion(set(words)):
        kind = "cyst" if set(words) & CYST_WORDS else "tumor"
        # The organ named in the label itself ("colon cancer primaries"), else the dataset's.
        own = " ".join(w for w in words if w not in LESION_WORDS | CYST_WORDS)
        for ctx in ([own] if own else []) + contexts:
            found = vocabulary.lookup(f"{ctx} {kind}")
            if found is not None:
                return found.key
        return None
    for ctx in contexts:  # "Vessel" in the task "HepaticVessel"
        if ctx.endswith(norm) and (found := vocabulary.lookup(ctx)) is not None:
            return found.key
    return None


def parse_overrides(items: list[str]) -> dict[str, str | None]:
    """``["prostate/uterus=prostate", "Lungs=null"]`` → ``{"prostate/uterus": "prostate", "Lungs": None}``."""
    out: dict[str, str | None] = {}
    for item in items:
        name, sep, key = item.rpartition("=")
        if not sep or not name.strip():
            raise MappingError(f"--map {item!r} is not NAME=KEY (e.g. --map 'prostate/uterus=prostate', "
                               "or NAME=null to leave a label unmapped)")
        out[name.strip()] = None if key.strip().lower() in NULL_WORDS else key.strip()
    return out
