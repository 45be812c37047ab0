"""The "Structures" line edit: completion of the name being typed, presets, and checking what was typed.

Pure text functions over ``mome.vocabulary`` (no Qt, no torch), so the widget only wires them to a
QLineEdit/QCompleter and tests check them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_SEPARATOR = re.compile(r"[,;\n]")


def _vocabulary(vocabulary: Any | None) -> Any:
    if vocabulary is not None:
        return vocabulary
    from mome.vocabulary import load_vocabulary

    return load_vocabulary()


def completion_names(vocabulary: Any | None = None) -> list[str]:
    """Every name worth offering while typing: display names first, then synonyms, no repeats."""
    vocab = _vocabulary(vocabulary)
    names = [c.name for c in vocab]
    for c in vocab:
        names.extend(s for s in c.synonyms if len(s) > 2)  # "IVC" yes, one-letter noise no
    return list(dict.fromkeys(n for n in names if n))


def current_item(text: str, cursor: int | None = None) -> str:
    """The (stripped) item being typed: what follows the last separator before the cursor."""
    before = text if cursor is None else text[:cursor]
    return _SEPARATOR.split(before)[-1].strip()


def replace_current_item(text: str, choice: str, cursor: int | None = None) -> tuple[str, int]:
    """``text`` with the item under the cursor replaced by ``choice`` followed by ", "; and the new
    cursor position (at the end of the inserted name and separator)."""
    cursor = len(text) if cursor is None else cursor
    before, after = text[:cursor], text[cursor:]
    parts = _SEPARATOR.split(before)
    head = before[: len(before) - len(parts[-1])]
    if head and not head.endswith(" "):
        head += " "
    rest = after.split(",", 1)[1] if "," in after else ""
    inserted = head + choice + ", "
    new_text = inserted + rest.lstrip()
    return new_text, len(inserted)


def items(text: str) -> list[str]:
    return [p.strip() for p in _SEPARATOR.split(text) if p.strip()]


def add_names(text: str, names: list[str]) -> str:
    """Append ``names`` to the typed list, skipping any already there (case-insensitive)."""
    present = [i for i in items(text)]
    seen = {i.casefold() for i in present}
    for name in names:
        if name.casefold() not in seen:
            present.append(name)
            seen.add(name.casefold())
    return ", ".join(present)


def preset_names() -> list[str]:
    from mome.vocabulary import preset_names as names

    return names()


def add_preset(text: str, preset: str, vocabulary: Any | None = None) -> str:
    """The typed list with every structure of ``preset`` (``mome.vocabulary.presets``) appended."""
    from mome.vocabulary import preset_classes

    return add_names(text, [c.name for c in preset_classes(preset, _vocabulary(vocabulary))])


@dataclass
class TargetCheck:
    names: list[str] = field(default_factory=list)  # what will be segmented, in order
    unknown: dict[str, list[str]] = field(default_factory=dict)  # typed item → suggestions
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.names) and not self.unknown

    def summary(self) -> str:
        """One or two lines for the panel under the line edit."""
        if not self.names and not self.unknown:
            return "Type structure names separated by commas, or add a preset."
        parts = []
        for item, near in self.unknown.items():
            hint = f" — did you mean {', '.join(near[:3])}?" if near else ""
            parts.append(f"Unknown: '{item}'{hint}")
        if self.names:
            parts.append(f"{len(self.names)} structure(s): {', '.join(self.names)}")
        parts.extend(self.warnings)
        return "\n".join(parts)


def check_targets(text: str, vocabulary: Any | None = None, allow_free_text: bool = False) -> TargetCheck:
    """What ``mome segment --prompts text`` will segment, checked before the process is started."""
    from mome.vocabulary import UnknownStructureError, parse_prompts

    vocab = _vocabulary(vocabulary)
    check = TargetCheck()
    if not items(text):
        return check
    try:
        parsed = parse_prompts(text, vocab, allow_free_text=allow_free_text)
    except UnknownStructureError as exc:
        check.unknown = {u: list(exc.suggestions.get(u) or []) for u in exc.unknown}
        known = [i for i in items(text) if i not in check.unknown]
        if known:
            try:
                check.names = [c.name for c in parse_prompts(", ".join(known), vocab).classes]
            except ValueError:
                pass
        return check
    except ValueError:
        return check
    check.names = [c.name for c in parsed.classes]
    check.warnings = list(parsed.warnings)
    return check
