"""The "Structures" line edit: completion of the name being typed, presets, and checking what was typed.

Pure text functions over ``mome.vocabulary`` (no Qt, no torch), so the widget only wires them to a
QLineEdit/QCompleter and tests check them directly. Given the selected model's ``model.json``
(``meta``), what was typed is also checked against what the model can be trusted with
(``mome.inference.reliability``, the same functions ``mome segment`` uses before it starts): each
structure's status and evidence, and which ones the engine would refuse with the current opt-ins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .parameters import ALLOW_NOT_LEARNED_LABEL, ALLOW_ZERO_SHOT_LABEL

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


def add_preset(text: str, preset: str, vocabulary: Any | None = None, meta: Mapping[str, Any] | None = None,
               allow_zero_shot: bool = False, allow_not_learned: bool = False) -> tuple[str, list[Any]]:
    """The typed list with the structures of ``preset`` (``mome.vocabulary.presets``) appended, and
    the preset's structures left out because the model (``meta``) would refuse them with these
    opt-ins (``Reliability`` objects, to be shown). Without ``meta`` everything is added."""
    from mome.vocabulary import preset_classes

    classes = preset_classes(preset, _vocabulary(vocabulary))
    refused = _refused(classes, meta, allow_zero_shot, allow_not_learned) if meta is not None else []
    left_out = {r.key for r in refused}
    return add_names(text, [c.name for c in classes if c.key not in left_out]), refused


def preset_coverage(preset: str, vocabulary: Any | None, meta: Mapping[str, Any] | None, allow_zero_shot: bool = False,
                    allow_not_learned: bool = False) -> tuple[int, int]:
    """(structures the model would segment, structures in the preset), e.g. (3, 14)."""
    from mome.vocabulary import preset_classes

    classes = preset_classes(preset, _vocabulary(vocabulary))
    refused = _refused(classes, meta, allow_zero_shot, allow_not_learned) if meta is not None else []
    return len(classes) - len(refused), len(classes)


def _refused(classes: Sequence[Any], meta: Mapping[str, Any], allow_zero_shot: bool,
             allow_not_learned: bool) -> list[Any]:
    """What ``mome segment`` would refuse: its own policy function, so panel and engine agree."""
    from mome.inference.reliability import UnreliableStructureError, assess, refuse_unreliable

    try:
        refuse_unreliable(assess(classes, meta), meta, allow_zero_shot, allow_not_learned)
    except UnreliableStructureError as exc:
        return list(exc.refused)
    return []


def model_label(meta: Mapping[str, Any]) -> str:
    return f"{meta.get('name')} {meta.get('version')}"


def model_offer(meta: Mapping[str, Any]) -> list[str]:
    """The names of the structures the model segments without an opt-in (not 'not learned')."""
    from mome.package.evidence import class_statuses

    statuses = class_statuses(meta)
    return [c.get("name", c["key"]) for c in meta.get("classes", [])
            if statuses.get(c["key"]) is None or statuses[c["key"]].status != "not_learned"]


# Levels of the lines under the line edit (the widget colours them).
OK, CAUTION, REFUSED, UNKNOWN, NOTE = "ok", "caution", "refused", "unknown", "note"


@dataclass
class TargetCheck:
    names: list[str] = field(default_factory=list)  # what will be segmented, in order
    unknown: dict[str, list[str]] = field(default_factory=dict)  # typed item → suggestions
    warnings: list[str] = field(default_factory=list)
    reliability: list[Any] = field(default_factory=list)  # mome Reliability per structure (model known)
    refused: list[Any] = field(default_factory=list)  # those the engine would refuse with these opt-ins
    model: str = ""  # "mome-mini 1.1.0"; "" when the model could not be read
    model_problem: str = ""  # why the reliability is unknown
    zero_shot_possible: bool = True  # False: the package forbids untrained structures
    offer: list[str] = field(default_factory=list)  # what the model segments without an opt-in

    @property
    def ok(self) -> bool:
        return bool(self.names) and not self.unknown and not self.refused

    @property
    def refused_statuses(self) -> set[str]:
        return {r.status for r in self.refused}

    def lines(self) -> list[tuple[str, str]]:
        """(level, text) lines for the panel under the line edit: one per structure with its
        reliability when the model is known, then what to do about anything refused or unknown."""
        if not self.names and not self.unknown:
            return [(NOTE, "Type structure names separated by commas, or add a preset.")]
        out: list[tuple[str, str]] = []
        for item, near in self.unknown.items():
            hint = f" — did you mean {', '.join(near[:3])}?" if near else ""
            out.append((UNKNOWN, f"Unknown: '{item}'{hint}"))
        if self.reliability:
            refused = {r.key for r in self.refused}
            out += [structure_line(r, self.model, r.key in refused) for r in self.reliability]
        elif self.names:
            out.append((NOTE, f"{len(self.names)} structure(s): {', '.join(self.names)}"))
            if self.model_problem:
                out.append((NOTE, f"How reliable each is cannot be shown: {self.model_problem}"))
        out += [(CAUTION, w) for w in self.warnings]
        if self.refused:
            out.append((REFUSED, self._refusal_advice()))
        elif self.unknown and self.zero_shot_possible:
            out.append((UNKNOWN, f"Check the spelling, or tick '{ALLOW_ZERO_SHOT_LABEL}' to segment a name "
                                 "MoME does not know from its text alone."))
        return out

    def _refusal_advice(self) -> str:
        boxes = []
        if "not_learned" in self.refused_statuses:
            boxes.append(f"'{ALLOW_NOT_LEARNED_LABEL}'")
        if "zero_shot" in self.refused_statuses and self.zero_shot_possible:
            boxes.append(f"'{ALLOW_ZERO_SHOT_LABEL}'")
        text = "Segment stays off while a refused structure is listed: remove it or choose another model"
        if boxes:
            text += f"; or tick {' and '.join(boxes)} to get the guess anyway, marked in the segment's name"
        if "zero_shot" in self.refused_statuses and not self.zero_shot_possible:
            text += f". {self.model}'s package does not allow structures it was not trained on"
        return text + "."

    def summary(self) -> str:
        return "\n".join(text for _, text in self.lines())


def structure_line(reliability: Any, model: str, refused: bool) -> tuple[str, str]:
    """One structure's line, e.g. "liver — weak (Dice 0.66 on 1 patient never seen in training (ircad_1.1))"."""
    r = reliability
    if r.status == "zero_shot":
        why = "not a name MoME knows" if r.key.startswith("free_text_") else f"{model} was never trained on it"
        if refused:
            return REFUSED, f"{r.name} — zero-shot ({why}): refused"
        return CAUTION, f"{r.name} — zero-shot ({why}; a guess from the name alone): named '{r.display_name}'"
    if r.status == "not_learned":
        if refused:
            return REFUSED, f"{r.name} — not learned by {model}: refused ({r.reason})"
        return CAUTION, f"{r.name} — not learned ({r.reason}): named '{r.display_name}'"
    return (OK if r.status == "validated" else CAUTION), f"{r.name} — {r.label} ({r.reason})"


def check_targets(text: str, vocabulary: Any | None = None, allow_zero_shot: bool = False,
                  allow_not_learned: bool = False, meta: Mapping[str, Any] | None = None,
                  model_problem: str = "") -> TargetCheck:
    """What ``mome segment --prompts text`` will segment, checked before the process is started;
    with the model's ``meta`` (its ``model.json``) also how reliable each structure is and what
    the engine would refuse (``model_problem``: why ``meta`` is missing, for the panel)."""
    from mome.vocabulary import UnknownStructureError, parse_prompts

    vocab = _vocabulary(vocabulary)
    check = TargetCheck(model_problem=model_problem)
    if meta is not None:
        check.model = model_label(meta)
        check.zero_shot_possible = bool((meta.get("text") or {}).get("allows_free_text", True))
        check.offer = model_offer(meta)
    if not items(text):
        return check
    try:
        parsed = parse_prompts(text, vocab, allow_free_text=allow_zero_shot)
    except UnknownStructureError as exc:
        check.unknown = {u: list(exc.suggestions.get(u) or []) for u in exc.unknown}
        known = [i for i in items(text) if i not in check.unknown]
        if not known:
            return check
        try:
            parsed = parse_prompts(", ".join(known), vocab)
        except ValueError:
            return check
    except ValueError:
        return check
    check.names = [c.name for c in parsed.classes]
    # A name read as free text gets its own zero-shot line below; its parse warning would repeat it.
    free = tuple(repr(f) for f in parsed.free_text) if meta is not None else ()
    check.warnings = [w for w in parsed.warnings if not (free and w.startswith(free))]
    if meta is not None:
        from mome.inference.reliability import assess

        check.reliability = assess(parsed.classes, meta)
        check.refused = _refused(parsed.classes, meta, allow_zero_shot, allow_not_learned)
    return check
